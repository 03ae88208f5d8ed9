// Topics end to end: one submission fans out to every endpoint as jobs of their own.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/relay_process.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::test::topics_test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* key_a = "relay_sk_tenant_a_123";
constexpr const char* key_b = "relay_sk_tenant_b_456";

std::string config_text(const temp_dir& dir) {
  return loopback_config(dir, "{tenant: a, key: " + std::string(key_a) + "}, {tenant: b, key: " + std::string(key_b) + "}",
                         "policies:\n  default: {timeout: 2s, retry: {attempts: 3, schedule: [200ms], jitter: 0}}\n");
}

/// How many requests the target received per path.
std::map<std::string, int> hits(const test_origin& o) {
  std::map<std::string, int> out;
  for (const auto& r : o.received()) ++out[r.target];
  return out;
}

TEST(Topics, OneSubmissionThreeJobsEachEndpointOnceAndAFailingOneRetriedAlone) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config_text(dir), key_a);
  std::string base = "http://127.0.0.1:" + std::to_string(origin.port());
  std::string topic = R"({"endpoints":[{"url":")" + base + R"(/jobs/a","name":"a"},{"url":")" + base +
                      R"(/fail/1/tb","name":"b"},{"url":")" + base + R"(/jobs/c"}]})";
  auto put = relay.call("PUT", "/v1/topics/orders", key_a, "Content-Type: application/json\r\n", topic);
  ASSERT_TRUE(put);
  ASSERT_EQ(put->status, 201) << put->body;
  EXPECT_EQ(json::parse(put->body)["endpoints"][2]["name"], base + "/jobs/c") << "the name defaults to the URL";
  auto again = relay.call("PUT", "/v1/topics/orders", key_a, "", topic);
  EXPECT_EQ(again->status, 200) << again->body;

  auto r = relay.call("POST", "/v1/fetch", key_a, "X-Fetch-Topic: orders\r\nContent-Type: text/plain\r\n", "evt");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  auto jobs = json::parse(r->body)["jobs"];
  ASSERT_EQ(jobs.size(), 3u) << r->body;
  EXPECT_EQ(jobs[0]["endpoint"], "a");
  EXPECT_EQ(jobs[1]["endpoint"], "b");
  EXPECT_EQ(jobs[1]["url"], base + "/fail/1/tb");
  std::map<std::string, int> attempts;
  for (const auto& j : jobs) {
    auto done = relay.wait_terminal(j["id"]);
    EXPECT_EQ(done["status"], "delivered") << done.dump();
    EXPECT_EQ(done["topic"], "orders");
    attempts[done["endpoint"]] = static_cast<int>(done["attempts"].size());
  }
  EXPECT_EQ(attempts["a"], 1);
  EXPECT_EQ(attempts["b"], 2) << "the failing endpoint is retried alone";
  EXPECT_EQ(attempts[base + "/jobs/c"], 1);
  auto got = hits(origin);
  EXPECT_EQ(got["/jobs/a"], 1);
  EXPECT_EQ(got["/jobs/c"], 1);
  EXPECT_EQ(got["/fail/1/tb"], 2);
  for (const auto& req : origin.received()) EXPECT_EQ(req.body, "evt");
  auto listed = json::parse(relay.call("GET", "/v1/jobs?topic=orders", key_a)->body)["jobs"];
  EXPECT_EQ(listed.size(), 3u);

  // A key covers the whole submission: a repeat answers the same jobs.
  auto k1 = relay.call("POST", "/v1/fetch", key_a, "X-Fetch-Topic: orders\r\nX-Idempotency-Key: k1\r\n", "once");
  ASSERT_TRUE(k1 && k1->status == 202) << (k1 ? k1->body : "");
  auto k2 = relay.call("POST", "/v1/fetch", key_a, "X-Fetch-Topic: orders\r\nX-Idempotency-Key: k1\r\n", "once");
  ASSERT_TRUE(k2 && k2->status == 202) << (k2 ? k2->body : "");
  auto first = json::parse(k1->body)["jobs"], second = json::parse(k2->body)["jobs"];
  ASSERT_EQ(second.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(first[i]["id"], second[i]["id"]);
    EXPECT_EQ(second[i]["deduplicated"], true);
  }

  // A schedule to a topic fires to every endpoint.
  auto sched = relay.call("POST", "/v1/schedules", key_a, "X-Fetch-Topic: orders\r\nX-Cron: @yearly\r\nX-Schedule-Id: fan\r\n");
  ASSERT_TRUE(sched && sched->status == 201) << (sched ? sched->body : "");
  auto trig = relay.call("POST", "/v1/schedules/fan/trigger", key_a);
  ASSERT_TRUE(trig && trig->status == 202) << (trig ? trig->body : "");
  auto fired = json::parse(relay.call("GET", "/v1/jobs?schedule=fan", key_a)->body)["jobs"];
  EXPECT_EQ(fired.size(), 3u) << fired.dump();

  // Per tenant, and deleted topics are gone.
  EXPECT_EQ(relay.call("GET", "/v1/topics/orders", key_b)->status, 404);
  auto theirs = relay.call("POST", "/v1/fetch", key_b, "X-Fetch-Topic: orders\r\n");
  EXPECT_EQ(theirs->status, 400);
  EXPECT_EQ(json::parse(theirs->body)["error"]["code"], "unknown_topic");
  auto list = json::parse(relay.call("GET", "/v1/topics", key_a)->body);
  ASSERT_EQ(list["topics"].size(), 1u);
  EXPECT_EQ(list["topics"][0]["name"], "orders");
  EXPECT_EQ(relay.call("DELETE", "/v1/topics/orders", key_a)->status, 200);
  EXPECT_EQ(relay.call("GET", "/v1/topics/orders", key_a)->status, 404);
  EXPECT_EQ(relay.call("POST", "/v1/fetch", key_a, "X-Fetch-Topic: orders\r\n")->status, 400);
}

TEST(Topics, BadTopicsAndSubmissionsAre400) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config_text(dir), key_a);
  std::string url = "http://127.0.0.1:" + std::to_string(origin.port()) + "/jobs/x";
  std::string many = R"({"endpoints":[)";
  for (int i = 0; i < 101; ++i) many += std::string(i ? "," : "") + R"({"url":")" + url + R"(","name":"e)" + std::to_string(i) + "\"}";
  many += "]}";
  for (const std::string& body :
       {std::string("not json"), std::string(R"({"endpoints":[]})"), many, std::string(R"({"endpoints":[{"name":"x"}]})"),
        std::string(R"({"endpoints":[{"url":"ftp://x/"}]})"), std::string(R"({"endpoints":[{"url":"http://169.254.169.254/"}]})"),
        R"({"endpoints":[{"url":")" + url + R"(","name":"a"},{"url":")" + url + R"(","name":"a"}]})",
        R"({"endpoints":[{"url":")" + url + R"(","color":"red"}]})", R"({"endpoints":[{"url":")" + url + R"("}],"x":1})"}) {
    auto r = relay.call("PUT", "/v1/topics/t", key_a, "", body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << body.substr(0, 120) << " " << r->body;
  }
  EXPECT_EQ(relay.call("PUT", "/v1/topics/bad%20name", key_a, "", R"({"endpoints":[{"url":")" + url + R"("}]})")->status, 400);
  auto both = relay.call("POST", "/v1/fetch", key_a, "X-Fetch-Topic: t\r\nX-Fetch-Url: " + url + "\r\n");
  EXPECT_EQ(json::parse(both->body)["error"]["code"], "url_and_topic");
  auto unknown = relay.call("POST", "/v1/fetch", key_a, "X-Fetch-Topic: nope\r\n");
  EXPECT_EQ(unknown->status, 400);
  EXPECT_EQ(json::parse(unknown->body)["error"]["code"], "unknown_topic");
  EXPECT_EQ(relay.call("GET", "/v1/topics/nope", key_a)->status, 404);
  EXPECT_EQ(relay.call("GET", "/v1/topics?color=red", key_a)->status, 400);
}

}  // namespace
}  // namespace fetchrelay::test::topics_test
