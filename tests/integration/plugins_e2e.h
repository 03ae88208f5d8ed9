// Shared by the plugin end-to-end tests: a config loading the built-ins, submitting, waiting.
#pragma once

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/relay_process.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::test {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* key = "relay_sk_tenant_a_123";

inline std::string config(const temp_dir& dir) {
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

inline std::vector<std::string> submit(relay_process& relay, const test_origin& origin, const std::string& path,
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

}  // namespace fetchrelay::test
