// The plugin pipeline end to end: the real fetchrelay process loading the built-in modules from
// build/plugins through YAML, delivering to real Beast targets on loopback.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/integration/plugins_e2e.h"

namespace fetchrelay::test::plugins_e2e_test {
namespace {

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
  double probes = metric_sum(m->body, "fetchrelay_plugin_circuit_breaker_half_opened_total");
  EXPECT_GE(metric_sum(m->body, "fetchrelay_plugin_circuit_breaker_opened_total"), 1);
  // consecutive_failures (3) + attempts in flight when it tripped (≤ 1: one connection) + one
  // probe per half-open period.
  EXPECT_LE(static_cast<double>(seen_down), 3 + 1 + std::max(0.0, probes)) << "probes " << probes;
  EXPECT_GT(metric_sum(m->body, "fetchrelay_plugin_circuit_breaker_deferred_total"), 0);
  EXPECT_EQ(metric_value(m->body, "fetchrelay_jobs{status=\"failed\"}"), 0) << "a deferral is not a failure";
  // GET /v1/destinations shows the origin down: breaker open, every recent attempt failed.
  std::string origin_name = "http://127.0.0.1:" + std::to_string(origin.port());
  auto d = relay.call("GET", "/v1/destinations", key);
  ASSERT_TRUE(d && d->status == 200);
  auto dests = json::parse(d->body)["destinations"];
  ASSERT_EQ(dests.size(), 1u) << d->body;
  EXPECT_EQ(dests[0]["origin"], origin_name);
  EXPECT_NE(dests[0]["breaker"], "closed") << d->body;
  EXPECT_EQ(dests[0]["breakers"]["guarded"], dests[0]["breaker"]);
  EXPECT_EQ(dests[0]["error_rate"], 1.0);
  EXPECT_GE(dests[0]["failures_recent"], seen_down);
  EXPECT_GT(dests[0]["deferrals_recent"], 0);
  EXPECT_EQ(dests[0]["last_error"], "503");

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
  std::string text = relay.metrics_when("fetchrelay_jobs{status=\"delivered\"}", 20);
  EXPECT_EQ(metric_value(text, "fetchrelay_jobs{status=\"delivered\"}"), 20);
  EXPECT_EQ(metric_value(text, "fetchrelay_jobs{status=\"failed\"}"), 0);
  EXPECT_GE(metric_sum(text, "fetchrelay_plugin_circuit_breaker_closed_total"), 1);
  EXPECT_NE(text.find("fetchrelay_plugin_circuit_breaker_state{origin=\"http://127.0.0.1:" + std::to_string(origin.port()) +
                         "\",policy=\"guarded\"} 0\n"), std::string::npos) << "closed again, per origin";
  EXPECT_GT(metric_value(text, "fetchrelay_deferrals_total{plugin=\"circuit_breaker\"}"), 0);
  auto after = json::parse(relay.call("GET", "/v1/destinations", key)->body)["destinations"][0];
  EXPECT_EQ(after["breaker"], "closed");
  EXPECT_EQ(after["in_flight"], 0);
  EXPECT_EQ(after["attempts_total"], origin.received().size()) << "every attempt the target saw";
}

/// Runs `promtool check metrics` on `text`; its exit code and output.
std::pair<int, std::string> promtool_check(const temp_dir& dir, const std::string& text) {
  std::string file = dir.file("metrics.txt");
  std::ofstream(file) << text;
  std::string out;
  auto r = run_command("/bin/sh", {"-c", "promtool check metrics < " + file}, out, 60s);
  return {r.exited ? r.code : -1, out};
}

TEST(PluginsEndToEnd, MetricsPassPromtoolWithEveryBuiltInPluginLoadedAfterTraffic) {
  temp_dir dir;
  test_origin origin;
  std::string cfg = config(dir);
  cfg.replace(cfg.find("load: [rate_limit, circuit_breaker]"), 35, "load: [rate_limit, circuit_breaker, signing]");
  cfg += "  signed:\n    retry: {attempts: 1}\n    pipeline: [{signing: {secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}}]\n";
  relay_process relay(dir, cfg, key);
  ASSERT_NE(relay.port(), 0) << relay.log();
  auto limited = submit(relay, origin, "/echo", "limited", 6);       // deferred by the rate limit: waits counted
  auto guarded = submit(relay, origin, "/switch", "guarded", 5);     // 503s open the breaker
  auto signed_ids = submit(relay, origin, "/echo", "signed", 2);     // signed
  for (const auto& id : limited) EXPECT_EQ(relay.wait_terminal(id)["status"], "delivered") << id;
  for (const auto& id : signed_ids) EXPECT_EQ(relay.wait_terminal(id)["status"], "delivered") << id;
  ASSERT_TRUE(wait_until(
      [&] { return metric_sum(relay.call("GET", "/metrics", "")->body, "fetchrelay_plugin_circuit_breaker_opened_total") >= 1; },
      10s));
  std::string text = relay.call("GET", "/metrics", "")->body;

  for (const char* series : {"fetchrelay_plugin_rate_limit_wait_seconds_total", "fetchrelay_plugin_signing_signed_total",
                             "fetchrelay_plugin_circuit_breaker_state", "fetchrelay_deferrals_total", "process_cpu_seconds_total",
                             "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"}) {
    EXPECT_NE(text.find("# HELP " + std::string(series) + " "), std::string::npos) << series << " has no HELP:\n" << text;
  }
  EXPECT_GT(metric_sum(text, "fetchrelay_plugin_rate_limit_wait_seconds_total"), 0);
  EXPECT_GT(metric_value(text, "process_resident_memory_bytes"), 1e6);
  EXPECT_GT(metric_value(text, "process_open_fds"), 3);
  EXPECT_NE(text.find("fetchrelay_build_info{version=\""), std::string::npos);
  EXPECT_EQ(text.find("_ms_total"), std::string::npos) << "durations are in seconds";

  auto [code, out] = promtool_check(dir, text);
  EXPECT_EQ(code, 0) << "promtool check metrics (Debian package prometheus):\n" << out;
  // The check can fail: a series without HELP and with a unit abbreviated is refused.
  auto [bad_code, bad_out] = promtool_check(dir, text + "# TYPE fetchrelay_wait_ms_total counter\nfetchrelay_wait_ms_total 1\n");
  EXPECT_NE(bad_code, 0) << bad_out;
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
}  // namespace fetchrelay::test::plugins_e2e_test
