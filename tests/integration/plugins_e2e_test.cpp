// The plugin pipeline end to end: the real fetchrelay process loading the built-in modules from
// build/plugins through YAML, delivering to real Beast targets on loopback.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <thread>

#include "tests/support/relay_process.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* key = "relay_sk_tenant_a_123";

std::string config(const temp_dir& dir) {
  return "server: {listen: 127.0.0.1:0}\n"
         "storage: {path: " + dir.file("data") + "}\n"
         "auth: {keys: [{tenant: a, key: " + std::string(key) + "}]}\n"
         "delivery: {allow_networks: [127.0.0.0/8], max_connections_per_origin: 1}\n"
         "plugins: {search_path: [" FETCHRELAY_BUILTIN_PLUGIN_DIR "], load: [rate_limit, circuit_breaker]}\n"
         "policies:\n"
         "  default: {timeout: 2s, retry: {attempts: 10, schedule: [100ms], jitter: 0}}\n"
         "  limited:\n"
         "    retry: {attempts: 3, schedule: [100ms], jitter: 0}\n"
         "    pipeline:\n"
         "      - rate_limit: {rate: 20/s, burst: 1}\n"
         "  guarded:\n"
         "    timeout: 2s\n"
         "    retry: {attempts: 10, schedule: [100ms], jitter: 0}\n"
         "    pipeline:\n"
         "      - circuit_breaker: {consecutive_failures: 3, open_for: 500ms, max_open_for: 2s, jitter: 0}\n";
}

std::vector<std::string> submit(relay_process& relay, const test_origin& origin, const std::string& path,
                                const std::string& policy, int n) {
  std::vector<std::string> ids;
  std::string h = "X-Fetch-Url: http://127.0.0.1:" + std::to_string(origin.port()) + path + "\r\nX-Policy: " + policy + "\r\n";
  for (int i = 0; i < n; ++i) {
    auto r = relay.call("POST", "/v1/fetch", key, h, "{\"n\":" + std::to_string(i) + "}");
    EXPECT_TRUE(r && r->status == 202) << (r ? r->body : "no answer");
    if (r && r->status == 202) ids.push_back(json::parse(r->body)["id"]);
  }
  return ids;
}

template <class Pred>
bool wait_until(Pred done, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

TEST(PluginsEndToEnd, ARateLimitOf20PerSecondHoldsInEveryWindowAndEveryJobArrivesOnce) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config(dir), key);
  ASSERT_NE(relay.port(), 0) << relay.log();
  auto ids = submit(relay, origin, "/ok", "limited", 100);
  ASSERT_EQ(ids.size(), 100u);
  ASSERT_TRUE(wait_until([&] { return origin.received().size() >= 100; }, 30s)) << origin.received().size();
  std::this_thread::sleep_for(300ms);  // nothing more may come
  auto got = origin.received();
  ASSERT_EQ(got.size(), 100u) << "each exactly once";
  std::set<std::string> seen;
  for (const auto& r : got) seen.insert(r.headers.at("x-fetch-job-id"));
  EXPECT_EQ(seen, std::set<std::string>(ids.begin(), ids.end()));
  // Every window [t_i, t_j] holds at most 1 + 20·(t_j − t_i) arrivals. Arrival times are taken
  // by the sink's thread after reading each request, on 2 shared cores (and under the sanitizer),
  // so 10 ms of scheduling noise is allowed per window: two attempts sent in one 50 ms slot would
  // still be caught.
  std::vector<std::int64_t> t;
  for (const auto& r : got) {
    t.push_back(std::chrono::duration_cast<std::chrono::microseconds>(r.at.time_since_epoch()).count());
  }
  std::sort(t.begin(), t.end());
  int worst_excess = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    for (std::size_t j = i + 1; j < t.size(); ++j) {
      double allowed = 1.0 + 20.0 * static_cast<double>(t[j] - t[i] + 10'000) / 1e6;
      int count = static_cast<int>(j - i + 1);
      if (count > allowed) worst_excess = std::max(worst_excess, count - static_cast<int>(allowed));
    }
  }
  EXPECT_EQ(worst_excess, 0);
  EXPECT_GE(t.back() - t.front(), 99 * 50'000 - 10'000) << "100 attempts at 20/s take about 5 s";
  auto m = relay.call("GET", "/metrics", "");
  EXPECT_GT(metric_value(m->body, "fetchrelay_plugin_rate_limit_deferred_total"), 0);
  EXPECT_EQ(metric_value(m->body, "fetchrelay_jobs{status=\"delivered\"}"), 100);
}

TEST(PluginsEndToEnd, ABreakerStopsHammeringADeadTargetAndEveryJobIsDeliveredOnceItRecovers) {
  temp_dir dir;
  test_origin origin;  // /switch answers 503 until told otherwise
  relay_process relay(dir, config(dir), key);
  ASSERT_NE(relay.port(), 0) << relay.log();
  auto ids = submit(relay, origin, "/switch", "guarded", 20);
  ASSERT_EQ(ids.size(), 20u);
  std::this_thread::sleep_for(3s);  // the target stays down
  std::size_t seen_down = origin.received().size();
  auto m = relay.call("GET", "/metrics", "");
  double probes = metric_value(m->body, "fetchrelay_plugin_circuit_breaker_half_opened_total");
  EXPECT_GE(metric_value(m->body, "fetchrelay_plugin_circuit_breaker_opened_total"), 1);
  // consecutive_failures (3) + attempts in flight when it tripped (≤ 1: one connection) + one
  // probe per half-open period.
  EXPECT_LE(static_cast<double>(seen_down), 3 + 1 + std::max(0.0, probes)) << "probes " << probes;
  EXPECT_GT(metric_value(m->body, "fetchrelay_plugin_circuit_breaker_deferred_total"), 0);
  EXPECT_EQ(metric_value(m->body, "fetchrelay_jobs{status=\"failed\"}"), 0) << "a deferral is not a failure";

  origin.set_switch(200);
  bool all = wait_until(
      [&] {
        for (const auto& id : ids) {
          auto r = relay.call("GET", "/v1/jobs/" + id, key);
          if (!r || r->status != 200 || json::parse(r->body)["status"] != "delivered") return false;
        }
        return true;
      },
      30s);
  EXPECT_TRUE(all) << relay.log();
  m = relay.call("GET", "/metrics", "");
  EXPECT_EQ(metric_value(m->body, "fetchrelay_jobs{status=\"delivered\"}"), 20);
  EXPECT_EQ(metric_value(m->body, "fetchrelay_jobs{status=\"failed\"}"), 0);
  EXPECT_GE(metric_value(m->body, "fetchrelay_plugin_circuit_breaker_closed_total"), 1);
}

TEST(PluginsEndToEnd, SignaturesVerifyWithTheStandardWebhooksPackageOnANodeReceiver) {
  temp_dir dir;
  // The receiver and its dependencies, installed from the committed lockfile.
  std::string src = FETCHRELAY_SOURCE_DIR "/tests/integration/node/";
  for (const char* f : {"package.json", "package-lock.json", "receiver.mjs"}) {
    std::string out;
    ASSERT_TRUE(run_command("/bin/cp", {src + f, dir.path()}, out, 10s).exited);
  }
  std::string npm_out;
  auto npm = run_command("/usr/bin/env", {"npm", "ci", "--prefix", dir.path(), "--no-audit", "--no-fund"}, npm_out, 180s);
  ASSERT_TRUE(npm.exited && npm.code == 0) << "npm ci failed (the npm registry must be reachable):\n" << npm_out;
  const std::string current = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const std::string retired = "whsec_cmV0aXJlZC1rZXktZm9yLXRoZS10ZXN0";
  process receiver("/usr/bin/env", {"node", dir.file("receiver.mjs"), current, dir.file("receiver.port"), dir.file("receiver.log")},
                   dir.file("receiver.out"));
  auto port = wait_for_port_file(dir.file("receiver.port"), 30s);
  ASSERT_TRUE(port) << receiver.log();

  std::string cfg = "server: {listen: 127.0.0.1:0}\n"
                    "storage: {path: " + dir.file("data") + "}\n"
                    "auth: {keys: [{tenant: a, key: " + std::string(key) + "}]}\n"
                    "delivery: {allow_networks: [127.0.0.0/8]}\n"
                    "plugins: {search_path: [" FETCHRELAY_BUILTIN_PLUGIN_DIR "], load: [signing]}\n"
                    "policies:\n"
                    "  default: {timeout: 2s, retry: {attempts: 1}}\n"
                    "  rotating:\n"
                    "    retry: {attempts: 1}\n"
                    "    pipeline: [{signing: {secrets: [" + retired + ", " + current + "]}}]\n"
                    "  stale:\n"
                    "    retry: {attempts: 1}\n"
                    "    pipeline: [{signing: {secrets: [" + retired + "]}}]\n";
  relay_process relay(dir, cfg, key);
  ASSERT_NE(relay.port(), 0) << relay.log();
  std::string url = "X-Fetch-Url: http://127.0.0.1:" + std::to_string(*port) + "/hooks\r\nContent-Type: application/json\r\n";
  std::vector<std::string> signed_ids;
  for (int i = 0; i < 5; ++i) {
    auto r = relay.call("POST", "/v1/fetch", key, url + "X-Policy: rotating\r\n",
                        "{\"n\":" + std::to_string(i) + ",\"text\":\"h\u00e9llo \u2713\"}");
    ASSERT_TRUE(r && r->status == 202);
    signed_ids.push_back(json::parse(r->body)["id"]);
  }
  auto bad = relay.call("POST", "/v1/fetch", key, url + "X-Policy: stale\r\n", "{}");
  ASSERT_TRUE(bad && bad->status == 202);
  for (const auto& id : signed_ids) EXPECT_EQ(relay.wait_terminal(id)["status"], "delivered") << id;
  auto failed = relay.wait_terminal(json::parse(bad->body)["id"]);
  EXPECT_EQ(failed["status"], "failed") << "signed only with a secret the receiver does not know";
  EXPECT_EQ(failed["report"]["last_status_code"], 401);

  std::ifstream in(dir.file("receiver.log"));
  std::string line;
  int verified = 0, rejected = 0;
  while (std::getline(in, line)) {
    if (line.rfind("verified ", 0) == 0) ++verified;
    if (line.rfind("rejected ", 0) == 0) ++rejected;
  }
  EXPECT_EQ(verified, 5);
  EXPECT_EQ(rejected, 1);
}

}  // namespace
}  // namespace fetchrelay::test
