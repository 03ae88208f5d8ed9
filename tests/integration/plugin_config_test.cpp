// Plugin configuration through the real binary: check-config and serve load the plugins, check
// each pipeline block against its plugin's schema and the plugin itself, and refuse with the path.
#include <gtest/gtest.h>

#include "tests/support/process.h"

namespace fetchrelay::test::plugin_config_test {
namespace {

using namespace std::chrono_literals;

std::string config(const temp_dir& dir, const std::string& load, const std::string& block) {
  return "storage: {path: " + dir.file("data") + "}\n"
         "server: {listen: 127.0.0.1:0}\n"
         "auth: {keys: [{tenant: a, key: relay_sk_test_123}]}\n"
         "plugins: {search_path: [" FETCHRELAY_BUILTIN_PLUGIN_DIR "], load: [" + load + "]}\n"
         "policies:\n  default:\n    pipeline:\n      - " + block + "\n";
}

std::string check(const temp_dir& dir, const std::string& text, int expected_code) {
  std::string path = dir.write("relay.yaml", text);
  std::string out;
  auto r = run_command(FETCHRELAY_BIN, {"check-config", "--config", path}, out, 30s);
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.code, expected_code) << out;
  return out;
}

TEST(PluginConfig, CheckConfigNamesTheBadFieldOfAPluginBlock) {
  temp_dir dir;
  auto out = check(dir, config(dir, "rate_limit", "rate_limit: {rate: 20/s, burst: 0}"), 2);
  EXPECT_NE(out.find("policies.default.pipeline[0].rate_limit.burst: expected an integer between 1 and 1000000, got 0"),
            std::string::npos) << out;
  out = check(dir, config(dir, "rate_limit", "rate_limit: {rate: fast}"), 2);
  EXPECT_NE(out.find("policies.default.pipeline[0].rate_limit: rate: expected <count>/s, /m or /h with a count ≥ 1, "
                     "got \"fast\""), std::string::npos) << out;
  out = check(dir, config(dir, "rate_limit, circuit_breaker", "rate_limit: {rate: 20/s}"), 0);
  EXPECT_NE(out.find(": ok"), std::string::npos) << out;
}

TEST(PluginConfig, APluginNotFoundStopsStartUpNamingTheSearchPath) {
  temp_dir dir;
  std::string text = config(dir, "rate_limit, nope", "rate_limit: {rate: 20/s}");
  auto out = check(dir, text, 2);
  std::string expected = "plugin \"nope\" not found: no nope.so in plugins.search_path [" FETCHRELAY_BUILTIN_PLUGIN_DIR "]";
  EXPECT_NE(out.find(expected), std::string::npos) << out;
  process relay(FETCHRELAY_BIN, {"serve", "--config", dir.file("relay.yaml"), "--port-file", dir.file("port")},
                dir.file("relay.log"));
  auto info = relay.wait(30s);
  EXPECT_TRUE(info.exited);
  EXPECT_EQ(info.code, 1);
  EXPECT_NE(relay.log().find(expected), std::string::npos) << relay.log();
}

}  // namespace
}  // namespace fetchrelay::test::plugin_config_test
