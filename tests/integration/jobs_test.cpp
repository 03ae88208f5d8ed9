// The v1 API end to end: the real fetchrelay process on loopback, delivering to a real Beast
// target (tests/support/test_origin).
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "core/time.h"
#include "tests/support/process.h"
#include "tests/support/relay_process.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::test::jobs_test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* key_a = "relay_sk_tenant_a_123";
constexpr const char* key_b = "relay_sk_tenant_b_456";

std::string config_text(const temp_dir& dir) {
  return loopback_config(dir, "{tenant: a, key: " + std::string(key_a) + "}, {tenant: b, key: " + std::string(key_b) + "}",
                         "policies:\n  default: {timeout: 2s, retry: {attempts: 3, schedule: [200ms], jitter: 0}}\n");
}

std::string fetch_headers(const test_origin& o, const std::string& path, const std::string& extra = "") {
  return "X-Fetch-Url: http://127.0.0.1:" + std::to_string(o.port()) + path + "\r\n" + extra;
}

TEST(JobsApi, FetchApiExampleIsDeliveredAfterTheDelay) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config_text(dir), key_a);
  ASSERT_NE(relay.port(), 0) << relay.log();
  auto t0 = std::chrono::system_clock::now();
  auto r = relay.call("POST", "/v1/fetch", key_a,
                      fetch_headers(origin, "/jobs/send-welcome-email", "X-Delay: 2s\r\nContent-Type: application/json\r\n"),
                      R"({"userId":"user_456"})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  auto answer = json::parse(r->body);
  std::string id = answer["id"];
  EXPECT_EQ(id.rfind("job_", 0), 0u);
  EXPECT_EQ(answer["status"], "scheduled");
  EXPECT_EQ(answer["deduplicated"], false);

  auto job = relay.wait_terminal(id);
  ASSERT_EQ(job["status"], "delivered") << job.dump();
  ASSERT_EQ(job["attempts"].size(), 1u);
  EXPECT_EQ(job["attempts"][0]["status_code"], 200);
  EXPECT_EQ(job["report"]["status"], "delivered");
  auto got = origin.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].target, "/jobs/send-welcome-email");
  EXPECT_EQ(got[0].method, "POST");
  EXPECT_EQ(got[0].body, R"({"userId":"user_456"})");
  EXPECT_EQ(got[0].headers["x-fetch-job-id"], id);
  EXPECT_EQ(got[0].headers["x-fetch-attempt"], "1");
  EXPECT_EQ(got[0].headers["content-type"], "application/json");
  EXPECT_EQ(got[0].headers["user-agent"].rfind("fetchrelay/", 0), 0u);
  EXPECT_GE(got[0].at - t0, 2s) << "delivered before the delay";

  // The terminal snapshot is synced just after the job reports delivered: poll briefly. A scrape is
  // not one snapshot (the counters above the live-actor gauge are read first), so wait for both.
  auto settled = [](const std::string& body) {
    return body.find("fetchrelay_live_job_actors 0\n") != std::string::npos &&
           body.find("fetchrelay_jobs{status=\"delivered\"} 1\n") != std::string::npos;
  };
  auto m = relay.call("GET", "/metrics", "");
  for (int i = 0; i < 100 && m && !settled(m->body); ++i) {
    std::this_thread::sleep_for(20ms);
    m = relay.call("GET", "/metrics", "");
  }
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  EXPECT_EQ(m->headers["content-type"], "text/plain; version=0.0.4");
  for (const char* line : {"fetchrelay_jobs{status=\"delivered\"} 1\n", "fetchrelay_jobs{status=\"scheduled\"} 0\n",
                           "fetchrelay_attempts_total{outcome=\"2xx\"} 1\n", "fetchrelay_delivery_latency_seconds_count 1\n",
                           "fetchrelay_lateness_seconds_count 1\n", "fetchrelay_live_job_actors 0\n",
                           "fetchrelay_store_commit_batch_size_bucket{le=\"+Inf\"} "}) {
    EXPECT_NE(m->body.find(line), std::string::npos) << line << "\n" << m->body;
  }
}

TEST(JobsApi, RetriesA500ThenDelivers) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config_text(dir), key_a);
  auto r = relay.call("POST", "/v1/fetch", key_a,
                      fetch_headers(origin, "/fail/1/k1", "X-Fetch-Forward-Authorization: Bearer sk_target_secret\r\n"
                                                          "X-Fetch-Forward-X-Trace: t-1\r\n"), "x");
  ASSERT_TRUE(r && r->status == 202) << (r ? r->body : "no answer");
  auto job = relay.wait_terminal(json::parse(r->body)["id"]);
  ASSERT_EQ(job["status"], "delivered") << job.dump();
  ASSERT_EQ(job["attempts"].size(), 2u);
  EXPECT_EQ(job["attempts"][0]["status_code"], 500);
  EXPECT_EQ(job["attempts"][0]["response_excerpt"], "failing k1") << "a failed attempt keeps what the target said";
  EXPECT_EQ(job["attempts"][1]["status_code"], 200);
  EXPECT_TRUE(job["attempts"][1]["response_excerpt"].is_null()) << "a 2xx shows in the report instead";
  ASSERT_EQ(origin.received().size(), 2u);
  // The job answer shows the request with the secret masked; the target got it as given.
  EXPECT_EQ(job["request"]["headers"]["Authorization"], "***");
  EXPECT_EQ(job["request"]["headers"]["X-Trace"], "t-1");
  EXPECT_EQ(job["request"]["body_base64"], "eA==");
  EXPECT_EQ(job.dump().find("sk_target_secret"), std::string::npos);
  EXPECT_EQ(origin.received()[1].headers.at("authorization"), "Bearer sk_target_secret");
}

/// GET /v1/events?job=ID as `key`, polled until it holds `count` events (bounded: 10 s).
json job_events(relay_process& relay, const std::string& key, const std::string& id, std::size_t count) {
  json events = json::array();
  for (int i = 0; i < 200; ++i) {
    auto r = relay.call("GET", "/v1/events?job=" + id, key);
    if (r && r->status == 200) events = json::parse(r->body)["events"];
    if (events.size() >= count) break;
    std::this_thread::sleep_for(50ms);
  }
  return events;
}

std::vector<std::string> types_of(const json& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e["type"]);
  return out;
}

TEST(JobsApi, EventsTellAJobsWholeLifeAcrossARestartAndOnlyToItsTenant) {
  temp_dir dir;
  test_origin origin;
  auto relay = std::make_unique<relay_process>(dir, config_text(dir), key_a);
  auto r = relay->call("POST", "/v1/fetch", key_a, fetch_headers(origin, "/fail/1/ev1"), "x");
  ASSERT_TRUE(r && r->status == 202) << (r ? r->body : "no answer");
  std::string early = json::parse(r->body)["id"];
  ASSERT_EQ(relay->wait_terminal(early)["status"], "delivered");
  ASSERT_EQ(job_events(*relay, key_a, early, 3).size(), 3u);
  // A second job lives across the restart: created before it, delivered after.
  r = relay->call("POST", "/v1/fetch", key_a, fetch_headers(origin, "/ok", "X-Delay: 2s\r\n"), "y");
  ASSERT_TRUE(r && r->status == 202);
  std::string late = json::parse(r->body)["id"];
  EXPECT_EQ(relay->stop(), 0);
  relay->start();
  ASSERT_NE(relay->port(), 0) << relay->log();
  ASSERT_EQ(relay->wait_terminal(late)["status"], "delivered");

  auto ev = job_events(*relay, key_a, early, 3);
  ASSERT_EQ(types_of(ev), (std::vector<std::string>{"created", "retrying", "delivered"})) << ev.dump();
  EXPECT_EQ(ev[1]["attempt"], 1);
  EXPECT_EQ(ev[1]["status_code"], 500);
  EXPECT_EQ(ev[1]["error"], "status 500");
  EXPECT_TRUE(ev[1].contains("next_attempt_at"));
  EXPECT_EQ(ev[2]["attempt"], 2);
  EXPECT_EQ(ev[2]["status_code"], 200);
  for (const auto& e : ev) {
    EXPECT_EQ(e["job_id"], early);
    EXPECT_EQ(e["id"].get<std::string>().rfind("evt_", 0), 0u);
  }
  EXPECT_LT(ev[0]["id"].get<std::string>(), ev[2]["id"].get<std::string>());
  auto lev = job_events(*relay, key_a, late, 2);
  EXPECT_EQ(types_of(lev), (std::vector<std::string>{"created", "delivered"})) << lev.dump();

  // The tenant's feed: ascending, from a cursor; the other tenant sees none of it.
  auto all = relay->call("GET", "/v1/events?limit=100", key_a);
  ASSERT_TRUE(all && all->status == 200);
  auto feed = json::parse(all->body)["events"];
  EXPECT_EQ(feed.size(), 5u) << feed.dump();
  auto after = relay->call("GET", "/v1/events?type=delivered&cursor=" + ev[0]["id"].get<std::string>(), key_a);
  ASSERT_TRUE(after && after->status == 200);
  EXPECT_EQ(json::parse(after->body)["events"].size(), 2u) << after->body;
  auto other = relay->call("GET", "/v1/events", key_b);
  ASSERT_TRUE(other && other->status == 200);
  EXPECT_EQ(json::parse(other->body)["events"].size(), 0u) << other->body;
  EXPECT_EQ(job_events(*relay, key_b, early, 0).size(), 0u);
  for (const char* bad : {"/v1/events?type=nope", "/v1/events?cursor=job_1", "/v1/events?job=x", "/v1/events?limit=0",
                          "/v1/events?color=red"}) {
    auto b = relay->call("GET", bad, key_a);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->status, 400) << bad << " " << b->body;
  }
}

TEST(JobsApi, TimeoutAndRefusedConnectionFailAfterTheirAttempts) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config_text(dir), key_a);
  auto t = relay.call("POST", "/v1/fetch", key_a, fetch_headers(origin, "/hang", "X-Timeout: 300ms\r\nX-Retries: 0\r\n"));
  ASSERT_TRUE(t && t->status == 202) << (t ? t->body : "");
  auto refused = relay.call("POST", "/v1/fetch", key_a, "X-Fetch-Url: http://127.0.0.1:9/x\r\nX-Retries: 1\r\n");
  ASSERT_TRUE(refused && refused->status == 202);
  auto tj = relay.wait_terminal(json::parse(t->body)["id"]);
  ASSERT_EQ(tj["status"], "failed") << tj.dump();
  ASSERT_EQ(tj["attempts"].size(), 1u);
  EXPECT_EQ(tj["attempts"][0]["error"].get<std::string>().rfind("timeout: ", 0), 0u) << tj.dump();
  auto rj = relay.wait_terminal(json::parse(refused->body)["id"]);
  ASSERT_EQ(rj["status"], "failed") << rj.dump();
  ASSERT_EQ(rj["attempts"].size(), 2u);
  EXPECT_EQ(rj["attempts"][1]["error"].get<std::string>().rfind("connect: ", 0), 0u) << rj.dump();
  EXPECT_EQ(rj["last_error"].get<std::string>().find("gave up after 2 attempts") != std::string::npos, true);
}

TEST(JobsApi, TenantsSeeOnlyTheirOwnJobs) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config_text(dir), key_a);
  auto r = relay.call("POST", "/v1/fetch", key_a, fetch_headers(origin, "/ok", "X-Delay: 1h\r\n"));
  ASSERT_TRUE(r && r->status == 202);
  std::string id = json::parse(r->body)["id"];
  EXPECT_EQ(relay.call("GET", "/v1/jobs/" + id, key_a)->status, 200);
  auto other = relay.call("GET", "/v1/jobs/" + id, key_b);
  EXPECT_EQ(other->status, 404);
  EXPECT_EQ(relay.call("DELETE", "/v1/jobs/" + id, key_b)->status, 404);
  EXPECT_EQ(json::parse(relay.call("GET", "/v1/jobs", key_b)->body)["jobs"].size(), 0u);
  auto mine = json::parse(relay.call("GET", "/v1/jobs?status=scheduled", key_a)->body);
  ASSERT_EQ(mine["jobs"].size(), 1u);
  EXPECT_EQ(mine["jobs"][0]["id"], id);
  // Cancel: 200, then 409 once it is terminal.
  EXPECT_EQ(relay.call("DELETE", "/v1/jobs/" + id, key_a)->status, 200);
  auto j = relay.wait_terminal(id);
  EXPECT_EQ(j["status"], "cancelled");
  EXPECT_EQ(relay.call("DELETE", "/v1/jobs/" + id, key_a)->status, 409);
}

TEST(JobsApi, IdempotencyKeyReturnsTheSameId) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config_text(dir), key_a);
  std::string h = fetch_headers(origin, "/ok", "X-Idempotency-Key: order-42\r\nX-Delay: 1h\r\n");
  auto first = relay.call("POST", "/v1/fetch", key_a, h);
  auto again = relay.call("POST", "/v1/fetch", key_a, h);
  auto other_tenant = relay.call("POST", "/v1/fetch", key_b, h);
  ASSERT_TRUE(first && again && other_tenant);
  ASSERT_EQ(first->status, 202);
  ASSERT_EQ(again->status, 202);
  EXPECT_EQ(json::parse(again->body)["id"], json::parse(first->body)["id"]);
  EXPECT_EQ(json::parse(again->body)["deduplicated"], true);
  EXPECT_NE(json::parse(other_tenant->body)["id"], json::parse(first->body)["id"]);
}

TEST(JobsApi, IdempotencyKeySurvivesARestart) {
  temp_dir dir;
  test_origin origin;
  auto relay = std::make_unique<relay_process>(dir, config_text(dir), key_a);
  std::string h = fetch_headers(origin, "/ok", "X-Idempotency-Key: invoice-7\r\nX-Delay: 1h\r\n");
  auto first = relay->call("POST", "/v1/fetch", key_a, h);
  ASSERT_TRUE(first && first->status == 202);
  EXPECT_EQ(relay->stop(), 0);
  relay->start();
  ASSERT_NE(relay->port(), 0) << relay->log();
  auto again = relay->call("POST", "/v1/fetch", key_a, h);
  ASSERT_TRUE(again);
  ASSERT_EQ(again->status, 202) << again->body;
  EXPECT_EQ(json::parse(again->body)["id"], json::parse(first->body)["id"]);
  EXPECT_EQ(json::parse(again->body)["deduplicated"], true);
  EXPECT_EQ(json::parse(again->body)["run_at"], json::parse(first->body)["run_at"]);
  auto fresh = relay->call("POST", "/v1/fetch", key_a, fetch_headers(origin, "/ok", "X-Idempotency-Key: invoice-8\r\nX-Delay: 1h\r\n"));
  ASSERT_TRUE(fresh && fresh->status == 202);
  EXPECT_EQ(json::parse(fresh->body)["deduplicated"], false);
}

TEST(JobsApi, AcknowledgedJobSurvivesARestart) {
  temp_dir dir;
  test_origin origin;
  auto relay = std::make_unique<relay_process>(dir, config_text(dir), key_a);
  auto r = relay->call("POST", "/v1/fetch", key_a, fetch_headers(origin, "/ok", "X-Delay: 2s\r\n"), "durable");
  ASSERT_TRUE(r && r->status == 202);
  std::string id = json::parse(r->body)["id"];
  EXPECT_EQ(relay->stop(), 0);
  EXPECT_TRUE(origin.received().empty());
  relay->start();
  ASSERT_NE(relay->port(), 0) << relay->log();
  // Ready once the due index of the coming horizon is loaded (a moment after the port opens).
  int ready = 0;
  for (int i = 0; i < 200 && ready != 200; ++i) {
    auto r = relay->call("GET", "/readyz", "");
    ready = r ? r->status : 0;
    if (ready != 200) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(ready, 200);
  auto j = relay->wait_terminal(id);
  ASSERT_EQ(j["status"], "delivered") << j.dump() << relay->log();
  ASSERT_EQ(origin.received().size(), 1u);
  EXPECT_EQ(origin.received()[0].body, "durable");
}

TEST(JobsApi, CallbacksCarryTheReportAndFailedJobsCanBeRetried) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config_text(dir), key_a);
  std::string base = "http://127.0.0.1:" + std::to_string(origin.port());
  // 410 fails at once; its failure callback receives the report.
  auto r = relay.call("POST", "/v1/fetch", key_a,
                      fetch_headers(origin, "/status/410", "X-Failure-Callback: " + base + "/jobs/failed-cb\r\n"
                                    "X-Callback: " + base + "/jobs/ok-cb\r\n"), "payload");
  ASSERT_TRUE(r && r->status == 202) << (r ? r->body : "");
  std::string id = json::parse(r->body)["id"];
  auto j = relay.wait_terminal(id);
  ASSERT_EQ(j["status"], "failed") << j.dump();
  std::optional<received_request> cb;
  for (int i = 0; i < 200 && !cb; ++i) {
    for (const auto& got : origin.received()) {
      if (got.target == "/jobs/failed-cb") cb = got;
    }
    if (!cb) std::this_thread::sleep_for(25ms);
  }
  ASSERT_TRUE(cb) << "no failure callback";
  EXPECT_EQ(cb->method, "POST");
  EXPECT_EQ(cb->headers["content-type"], "application/json");
  auto report = json::parse(cb->body);
  EXPECT_EQ(report["id"], id);
  EXPECT_EQ(report["status"], "failed");
  EXPECT_EQ(report["last_status_code"], 410);
  EXPECT_EQ(report["response"]["status"], 410);
  for (const auto& got : origin.received()) EXPECT_NE(got.target, "/jobs/ok-cb") << "success callback on failure";

  // Retry: runs again with a fresh budget; attempt numbers go on. A job reads as failed a
  // moment before its end is synced; a retry then waits for it instead of answering 409.
  auto again = relay.call("POST", "/v1/jobs/" + id + "/retry", key_a);
  ASSERT_TRUE(again);
  ASSERT_EQ(again->status, 202) << again->body;
  EXPECT_EQ(json::parse(again->body)["status"], "scheduled");
  // The retry was committed before its 202, so a terminal status read now is the new run's.
  auto j2 = relay.wait_terminal(id);
  ASSERT_EQ(j2["status"], "failed") << j2.dump();
  ASSERT_EQ(j2["attempts"].size(), 2u) << j2.dump();
  EXPECT_EQ(j2["attempts"][1]["n"], 2);
  EXPECT_EQ(relay.call("POST", "/v1/jobs/" + id + "/retry", key_b)->status, 404);
  EXPECT_EQ(relay.call("GET", "/v1/jobs/" + id + "/retry", key_a)->status, 405);

  // A retry may wait: X-Delay / X-Not-Before, checked as on POST /v1/fetch.
  auto both = relay.call("POST", "/v1/jobs/" + id + "/retry", key_a, "X-Delay: 1h\r\nX-Not-Before: 1\r\n");
  EXPECT_EQ(both->status, 400);
  EXPECT_EQ(json::parse(both->body)["error"]["code"], "delay_and_not_before");
  auto bad_delay = relay.call("POST", "/v1/jobs/" + id + "/retry", key_a, "X-Delay: soon\r\n");
  EXPECT_EQ(json::parse(bad_delay->body)["error"]["code"], "invalid_delay");
  auto t0 = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch()).count();
  auto later = relay.call("POST", "/v1/jobs/" + id + "/retry", key_a, "X-Delay: 1h\r\n");
  ASSERT_EQ(later->status, 202) << later->body;
  auto run_at = parse_rfc3339(json::parse(later->body)["run_at"].get<std::string>());
  ASSERT_TRUE(run_at);
  EXPECT_GE(*run_at, t0 + 3'600'000);
  EXPECT_LT(*run_at, t0 + 3'600'000 + 60'000);
  auto waiting = json::parse(relay.call("GET", "/v1/jobs/" + id, key_a)->body);
  EXPECT_EQ(waiting["status"], "scheduled");
  EXPECT_EQ(waiting["attempts"].size(), 2u) << "no attempt before the hour is up";
  EXPECT_EQ(relay.call("DELETE", "/v1/jobs/" + id, key_a)->status, 200);

  // A delivered job cannot be retried.
  auto ok = relay.call("POST", "/v1/fetch", key_a, fetch_headers(origin, "/ok"));
  std::string ok_id = json::parse(ok->body)["id"];
  ASSERT_EQ(relay.wait_terminal(ok_id)["status"], "delivered");
  auto conflict = relay.call("POST", "/v1/jobs/" + ok_id + "/retry", key_a);
  EXPECT_EQ(conflict->status, 409);
  EXPECT_EQ(json::parse(conflict->body)["error"]["code"], "job_not_retryable");

  // Purge now: the delivered jobs (the one above and the success callbacks' jobs) go; others stay.
  EXPECT_EQ(relay.call("DELETE", "/v1/jobs?status=delivered", key_b)->body, R"({"count":0,"next_cursor":null})")
      << "another tenant purges only its own";
  auto purged = relay.call("DELETE", "/v1/jobs?status=delivered&url_prefix=" + base + "/ok", key_a);
  ASSERT_EQ(purged->status, 200) << purged->body;
  EXPECT_EQ(json::parse(purged->body)["count"], 1);
  EXPECT_EQ(relay.call("GET", "/v1/jobs/" + ok_id, key_a)->status, 404);
  EXPECT_EQ(relay.call("GET", "/v1/jobs/" + id, key_a)->status, 200) << "a cancelled job is not a delivered one";
}

TEST(JobsApi, BadInputGetsAClear4xxAndTheServerKeepsServing) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config_text(dir), key_a);
  std::string ok_url = fetch_headers(origin, "/ok");
  struct bad {
    std::string key, headers;
    int status;
    std::string code;
  } cases[] = {
      {key_a, "", 400, "missing_url"},
      {key_a, "X-Fetch-Url: ftp://example.com/x\r\n", 400, "invalid_url"},
      {key_a, "X-Fetch-Url: not a url\r\n", 400, "invalid_url"},
      {key_a, "X-Fetch-Url: http://" + std::string(2100, 'a') + "/\r\n", 400, "url_too_long"},
      {key_a, ok_url + "X-Delay: soon\r\n", 400, "invalid_delay"},
      {key_a, ok_url + "X-Delay: -5s\r\n", 400, "invalid_delay"},
      {key_a, ok_url + "X-Delay: 400d\r\n", 400, "delay_too_long"},
      {key_a, ok_url + "X-Delay: 5s\r\nX-Not-Before: 1999999999\r\n", 400, "delay_and_not_before"},
      {key_a, ok_url + "X-Not-Before: tomorrow\r\n", 400, "invalid_not_before"},
      {key_a, ok_url + "X-Retries: -1\r\n", 400, "invalid_retries"},
      {key_a, ok_url + "X-Retries: 101\r\n", 400, "invalid_retries"},
      {key_a, ok_url + "X-Retries: three\r\n", 400, "invalid_retries"},
      {key_a, ok_url + "X-Timeout: 0s\r\n", 400, "invalid_timeout"},
      {key_a, ok_url + "X-Timeout: 1h\r\n", 400, "timeout_too_long"},
      {key_a, ok_url + "X-Fetch-Method: TRACE\r\n", 400, "invalid_method"},
      {key_a, ok_url + "X-Policy: nope\r\n", 400, "unknown_policy"},
      {key_a, ok_url + "X-Callback: mailto:x@y\r\n", 400, "invalid_callback"},
      {key_a, ok_url + "X-Idempotency-Key: " + std::string(300, 'k') + "\r\n", 400, "invalid_idempotency_key"},
      {"", ok_url, 401, "unauthorized"},
      {"wrong_key", ok_url, 401, "unauthorized"},
      {key_a, ok_url + "X-Big: " + std::string(40000, 'h') + "\r\n", 431, "headers_too_large"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.code + " " + c.headers.substr(0, 60));
    auto r = relay.call("POST", "/v1/fetch", c.key, c.headers);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status) << r->body;
    auto j = json::parse(r->body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r->body;
    EXPECT_EQ(j["error"]["code"], c.code) << r->body;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  }
  // Over max_body, unknown job, bad routes and methods, garbage.
  auto big = relay.call("POST", "/v1/fetch", key_a, ok_url, std::string((1 << 20) + 1, 'b'));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(relay.call("GET", "/v1/jobs/job_01M8G4C9VE6ZQQ9E3CHBJYQ15B", key_a)->status, 404);
  EXPECT_EQ(relay.call("GET", "/v1/jobs/nonsense", key_a)->status, 404);
  EXPECT_EQ(relay.call("GET", "/v1/jobs?status=weird", key_a)->status, 400);
  EXPECT_EQ(relay.call("GET", "/v1/jobs?limit=0", key_a)->status, 400);
  EXPECT_EQ(relay.call("PUT", "/v1/fetch", key_a)->status, 405);
  auto garbage = connection::open(relay.port());
  ASSERT_TRUE(garbage);
  garbage->send(" not http at all\r\n\r\n");
  auto g = garbage->read_response();
  ASSERT_TRUE(g);
  EXPECT_EQ(g->status, 400);
  // Still serving, and a valid job is delivered.
  auto good = relay.call("POST", "/v1/fetch", key_a, ok_url, "after");
  ASSERT_TRUE(good && good->status == 202);
  EXPECT_EQ(relay.wait_terminal(json::parse(good->body)["id"])["status"], "delivered");
}

}  // namespace
}  // namespace fetchrelay::test::jobs_test
