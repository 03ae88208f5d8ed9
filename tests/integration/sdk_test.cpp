// The installed plugin SDK, as a plugin author uses it: `cmake --install` puts it in a prefix;
// the example plugins in examples/plugins/ and a copy of the template folder build out of tree
// against that prefix alone; the real relay loads them through YAML and they do their work.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>

#include "tests/support/relay_process.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::test::sdk_test {
namespace {

using namespace std::chrono_literals;

void run(const std::vector<std::string>& args, std::chrono::seconds limit = 240s) {
  std::string out;
  auto r = run_command("/usr/bin/env", args, out, limit);
  ASSERT_TRUE(r.exited && r.code == 0) << args[0] << " " << (args.size() > 1 ? args[1] : "") << " failed:\n" << out;
}

/// Configures and builds an out-of-tree plugin; returns its build directory.
std::string build_plugin(const std::string& source, const std::string& build, const std::string& sdk) {
  run({"cmake", "-S", source, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_PREFIX_PATH=" + sdk});
  run({"cmake", "--build", build});
  return build;
}

TEST(PluginSdk, ExamplesAndACopiedTemplateBuildAgainstTheInstalledSdkAndLoadThroughYaml) {
  temp_dir dir;
  const std::string sdk = dir.file("sdk");
  ASSERT_NO_FATAL_FAILURE(run({"cmake", "--install", FETCHRELAY_BUILD_DIR, "--prefix", sdk}));
  // Adding a plugin is one folder: a copy of the template under the new name, nothing else changed.
  ASSERT_NO_FATAL_FAILURE(run({"cp", "-r", FETCHRELAY_SOURCE_DIR "/examples/plugins/template", dir.file("probe_plugin")}));
  std::string examples = FETCHRELAY_SOURCE_DIR "/examples/plugins/";
  std::string env_auth, slack, probe;
  ASSERT_NO_FATAL_FAILURE(env_auth = build_plugin(examples + "env_auth", dir.file("b_env_auth"), sdk));
  ASSERT_NO_FATAL_FAILURE(slack = build_plugin(examples + "slack_message", dir.file("b_slack"), sdk));
  ASSERT_NO_FATAL_FAILURE(probe = build_plugin(dir.file("probe_plugin"), dir.file("b_probe"), sdk));

  setenv("FETCHRELAY_TEST_SLACK_TOKEN", "xoxb-not-a-real-token", 1);
  test_origin origin;
  std::string cfg = "server: {listen: 127.0.0.1:0}\n"
                    "storage: {path: " + dir.file("data") + "}\n"
                    "auth: {keys: [{tenant: a, key: relay_sk_a_123}]}\n"
                    "delivery: {allow_networks: [127.0.0.0/8]}\n"
                    "plugins: {search_path: [" + env_auth + ", " + slack + ", " + probe + "],\n"
                    "          load: [env_auth, slack_message, probe_plugin]}\n"
                    "policies:\n"
                    "  default: {retry: {attempts: 1}}\n"
                    "  slack:\n"
                    "    retry: {attempts: 1}\n"
                    "    pipeline:\n"
                    "      - env_auth: {env: FETCHRELAY_TEST_SLACK_TOKEN, prefix: \"Bearer \"}\n"
                    "      - slack_message: {title_field: event}\n"
                    "      - probe_plugin: {}\n";
  relay_process relay(dir, cfg, "relay_sk_a_123");
  ASSERT_NE(relay.port(), 0) << relay.log();
  auto r = relay.call("POST", "/v1/fetch", "relay_sk_a_123",
                      "X-Fetch-Url: http://127.0.0.1:" + std::to_string(origin.port()) + "/ok\r\nX-Policy: slack\r\n",
                      R"({"event":"signup","userId":"user_456"})");
  ASSERT_TRUE(r && r->status == 202) << (r ? r->body : "");
  EXPECT_EQ(relay.wait_terminal(nlohmann::json::parse(r->body)["id"])["status"], "delivered");
  auto got = origin.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].headers["authorization"], "Bearer xoxb-not-a-real-token");
  EXPECT_EQ(got[0].headers["x-plugin"], "probe_plugin");
  EXPECT_EQ(got[0].headers["content-type"], "application/json");
  EXPECT_EQ(nlohmann::json::parse(got[0].body),
            nlohmann::json::parse(R"({"text": "signup: user_456", "blocks": [{"type": "section",
                                     "text": {"type": "mrkdwn", "text": "*signup*\nuserId: user_456"}}]})"));
  EXPECT_EQ(relay.log().find("xoxb-not-a-real-token"), std::string::npos) << "no secret in the logs";
}

}  // namespace
}  // namespace fetchrelay::test::sdk_test
