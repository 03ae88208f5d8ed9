// Dead-letter operations end to end: bulk retry of 10,000 failed jobs, bulk cancel and purge
// with exact counts.
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/relay_process.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::test::bulk_test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* key = "relay_sk_tenant_a_123";

std::string config_text(const temp_dir& dir) {
  return loopback_config(dir, "{tenant: a, key: " + std::string(key) + "}", "policies:\n  default: {timeout: 2s, retry: {attempts: 1}}\n");
}

/// Submits `n` jobs with `headers` on 4 keep-alive connections; how many were accepted (bounded: 120 s).
int submit_many(std::uint16_t port, int n, const std::string& headers) {
  std::atomic<int> next{0}, accepted{0};
  auto deadline = std::chrono::steady_clock::now() + 120s;
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&] {
      auto c = connection::open(port);
      if (!c) return;
      while (next.fetch_add(1) < n && std::chrono::steady_clock::now() < deadline) {
        bool ok = c->send("POST /v1/fetch HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " + std::string(key) + "\r\n" +
                          headers + "Content-Length: 0\r\n\r\n");
        auto r = ok ? c->read_response(10s) : std::nullopt;
        if (!r) return;
        if (r->status == 202) ++accepted;
      }
    });
  }
  for (auto& t : threads) t.join();
  return accepted.load();
}

/// Repeats a bulk call with its cursor until it is null; the counts summed (at most 20 calls).
std::size_t bulk(relay_process& relay, const std::string& path, json body) {
  std::size_t total = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = relay.call("POST", path, key, "Content-Type: application/json\r\n", body.dump());
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    if (!r || r->status != 200) break;
    auto j = json::parse(r->body);
    total += j["count"].get<std::size_t>();
    if (j["next_cursor"].is_null()) break;
    body["cursor"] = j["next_cursor"];
  }
  return total;
}

TEST(Bulk, RetryOfTenThousandFailedJobsIsDeliveredInFull) {
  temp_dir dir;
  test_origin origin;  // /switch answers 503 until told otherwise
  relay_process relay(dir, config_text(dir), key);
  ASSERT_NE(relay.port(), 0) << relay.log();
  constexpr int n = 10'000;
  std::string target = "X-Fetch-Url: http://127.0.0.1:" + std::to_string(origin.port()) + "/switch\r\n";
  ASSERT_EQ(submit_many(relay.port(), n, target), n);
  auto m = relay.metrics_when("fetchrelay_jobs{status=\"failed\"}", n);
  ASSERT_EQ(metric_value(m, "fetchrelay_jobs{status=\"failed\"}"), n) << "one attempt each, all 503";

  EXPECT_EQ(relay.call("POST", "/v1/jobs/retry", key, "", R"({"status":"delivered"})")->status, 400);
  EXPECT_EQ(relay.call("POST", "/v1/jobs/retry", key, "", R"({"status":"failed","color":"red"})")->status, 400);
  origin.set_switch(200);
  EXPECT_EQ(bulk(relay, "/v1/jobs/retry", {{"status", "failed"}}), static_cast<std::size_t>(n));
  m = relay.metrics_when("fetchrelay_jobs{status=\"delivered\"}", n);
  for (int i = 0; i < 600 && metric_value(m, "fetchrelay_jobs{status=\"delivered\"}") != n; ++i) {
    std::this_thread::sleep_for(100ms);  // bounded: 60 s more under sanitizers
    m = relay.call("GET", "/metrics", "")->body;
  }
  EXPECT_EQ(metric_value(m, "fetchrelay_jobs{status=\"delivered\"}"), n) << "every retried job is delivered";
  EXPECT_EQ(metric_value(m, "fetchrelay_jobs{status=\"failed\"}"), 0);
  EXPECT_EQ(origin.received().size(), static_cast<std::size_t>(2 * n));
  EXPECT_EQ(bulk(relay, "/v1/jobs/retry", {{"status", "failed"}}), 0u) << "nothing left to retry";
}

TEST(Bulk, CancelAndPurgeGiveExactCounts) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config_text(dir), key);
  std::string base = "http://127.0.0.1:" + std::to_string(origin.port());
  ASSERT_EQ(submit_many(relay.port(), 30, "X-Fetch-Url: " + base + "/jobs/later\r\nX-Delay: 1h\r\n"), 30);
  ASSERT_EQ(submit_many(relay.port(), 20, "X-Fetch-Url: " + base + "/jobs/soon\r\nX-Delay: 10s\r\n"), 20);
  ASSERT_EQ(submit_many(relay.port(), 5, "X-Fetch-Url: " + base + "/jobs/now\r\n"), 5);
  relay.metrics_when("fetchrelay_jobs{status=\"delivered\"}", 5);

  EXPECT_EQ(relay.call("POST", "/v1/jobs/cancel", key, "", "{}")->status, 400) << "a cancel needs a filter";
  EXPECT_EQ(relay.call("POST", "/v1/jobs/cancel", key, "", "[1]")->status, 400);
  // Hibernated (1 h) and waiting in memory (10 s) alike; the delivered ones are not counted.
  EXPECT_EQ(bulk(relay, "/v1/jobs/cancel", {{"url_prefix", base + "/jobs/"}}), 50u);
  EXPECT_EQ(bulk(relay, "/v1/jobs/cancel", {{"url_prefix", base + "/jobs/"}}), 0u);
  auto m = relay.metrics_when("fetchrelay_jobs{status=\"cancelled\"}", 50);
  EXPECT_EQ(metric_value(m, "fetchrelay_jobs{status=\"cancelled\"}"), 50);
  auto purged = relay.call("DELETE", "/v1/jobs?status=cancelled", key);
  ASSERT_TRUE(purged && purged->status == 200);
  EXPECT_EQ(json::parse(purged->body)["count"], 50);
  auto left = json::parse(relay.call("GET", "/v1/jobs?limit=100", key)->body)["jobs"];
  EXPECT_EQ(left.size(), 5u);
  // Cancelled jobs are retryable in bulk too.
  EXPECT_EQ(bulk(relay, "/v1/jobs/retry", {{"status", "cancelled"}}), 0u) << "purged: none left";
}

}  // namespace
}  // namespace fetchrelay::test::bulk_test
