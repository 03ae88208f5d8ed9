// The plugin host: loading modules (real .so files built for these tests), the ABI and symbol
// checks, schema checks of pipeline blocks, and the chain runner's order and verdicts.
#include "plugins/host/plugin_host.h"

#include <gtest/gtest.h>

#include "fetchrelay/plugin.hpp"

namespace fetchrelay::plugins::plugin_host_test {
namespace {

std::string described;  // what the fake host's describe was told

TEST(HostRevision, TheSdkCallsRevisionOneAndTwoFunctionsOnlyOnAHostThatHasThem) {
  fr_host_v1 old_host{};
  old_host.abi_version = FETCHRELAY_PLUGIN_ABI_VERSION;  // revision 0: no describe, no count_seconds
  fetchrelay::sdk::host on_old(&old_host);
  on_old.describe("x", "help");  // calling through the null entries would crash here
  on_old.count_seconds("x", 1.5);
  fr_host_v1 new_host{};
  new_host.abi_version = FETCHRELAY_PLUGIN_ABI_VERSION | (FETCHRELAY_HOST_REVISION << 16);
  new_host.describe = [](void*, const char* name, const char* help) { described = std::string(name) + "=" + help; };
  fetchrelay::sdk::host on_new(&new_host);
  on_new.describe("wait", "Seconds waited.");
  EXPECT_EQ(described, "wait=Seconds waited.");
  EXPECT_EQ(FR_HOST_REVISION(&new_host), 2u);
  // Revision 2's shared buckets: on an older host the SDK answers "none shared" without calling.
  fr_host_v1 rev1{};
  rev1.abi_version = FETCHRELAY_PLUGIN_ABI_VERSION | (1u << 16);
  fetchrelay::sdk::host on_rev1(&rev1);
  EXPECT_EQ(on_rev1.take_tokens(1, 10.0, 5), -1);
  EXPECT_EQ(on_rev1.relay_count(), 1);
  on_rev1.pause_tokens(5);
  EXPECT_EQ(new_host.abi_version & 0xffffu, FETCHRELAY_PLUGIN_ABI_VERSION) << "the low bits stay the ABI version";
}

const std::string dir = FETCHRELAY_TEST_PLUGIN_DIR;

std::shared_ptr<const registry> load(const std::vector<std::string>& names) {
  auto r = registry::load(names, {"/nonexistent", dir});
  EXPECT_TRUE(r.is_ok()) << r.error().message();
  return r.is_ok() ? r.value() : registry::empty();
}

services test_services(std::shared_ptr<relay_metrics> m = nullptr) {
  return {std::make_shared<manual_wall_clock>(1'000'000), [] { return std::uint64_t{4}; }, std::move(m)};
}

config::plugin_step step(const std::string& name, config::json cfg = config::json::object()) {
  return {name, std::move(cfg)};
}

TEST(PluginLoader, AnAbiMismatchIsRefusedNamingTheFileAndBothVersions) {
  auto m = load_module(dir + "/wrong_abi.so", "wrong_abi");
  ASSERT_FALSE(m.is_ok());
  EXPECT_EQ(m.error().message(), dir + "/wrong_abi.so: plugin ABI version 99, but this fetchrelay speaks 1; "
                                       "rebuild the plugin against this SDK");
}

TEST(PluginLoader, AMissingEntrySymbolIsReported) {
  auto m = load_module(dir + "/no_entry.so", "no_entry");
  ASSERT_FALSE(m.is_ok());
  EXPECT_NE(m.error().message().find(dir + "/no_entry.so has no symbol fetchrelay_plugin_v1"), std::string::npos)
      << m.error().message();
}

TEST(PluginLoader, ASchemaTheHostCannotReadIsRefusedAtLoad) {
  auto m = load_module(dir + "/bad_schema.so", "bad_schema");
  ASSERT_FALSE(m.is_ok());
  EXPECT_EQ(m.error().message(), dir + "/bad_schema.so: config_schema: properties must be a mapping of schemas");
}

TEST(PluginLoader, APluginThatIsNotFoundNamesTheSearchPath) {
  auto r = registry::load({"stamp", "nope"}, {"/opt/a", dir});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().message(), "plugin \"nope\" not found: no nope.so in plugins.search_path [/opt/a, " + dir + "]");
}

TEST(PluginLoader, AModuleLoadedUnderAnotherNameIsRefused) {
  auto m = load_module(dir + "/stamp.so", "signing");
  ASSERT_FALSE(m.is_ok());
  EXPECT_EQ(m.error().message(), dir + "/stamp.so: the plugin calls itself \"stamp\" but was loaded as \"signing\"");
}

TEST(PluginLoader, PipelineBlocksAreCheckedAgainstEachPluginsSchema) {
  auto r = load({"stamp", "defer"});
  std::map<std::string, std::vector<config::plugin_step>> pipelines;
  pipelines["default"] = {step("stamp", {{"header", 7}}), step("defer", config::json::object()),
                          step("defer", {{"for_ms", 0}, {"extra", true}})};
  std::vector<config::config_error> errors;
  r->check(pipelines, errors);
  std::vector<std::string> got;
  for (const auto& e : errors) got.push_back(e.to_string());
  EXPECT_EQ(got, (std::vector<std::string>{
                     "policies.default.pipeline[0].stamp.header: expected a string, got 7 (quote it to make it a string)",
                     "policies.default.pipeline[1].defer.for_ms: is required but missing",
                     "policies.default.pipeline[2].defer.for_ms: expected an integer ≥ 1, got 0",
                     "policies.default.pipeline[2].defer.extra: unknown key (allowed: for_ms)",
                 }));
}

TEST(PluginChain, RunsInOrderStopsAtTheFirstDeferAndReportsOutcomesInReverse) {
  auto r = load({"stamp", "defer"});
  auto metrics = std::make_shared<relay_metrics>();
  auto c = chain::create(*r, "slow", {step("stamp"), step("defer", {{"for_ms", 250}}), step("stamp", {{"header", "X-Never"}})},
                         test_services(metrics));
  ASSERT_TRUE(c.is_ok()) << c.error().message();
  attempt_data a;
  a.job_id = "job_1";
  a.number = 3;
  a.policy = "slow";
  a.headers = {{"x-stamp", "old"}};
  auto v = (*c)->on_attempt(a);
  EXPECT_EQ(v.kind, FR_DEFER);
  EXPECT_EQ(v.defer_until_ms, 1'000'250);
  EXPECT_EQ(v.reason, "test: waiting");
  EXPECT_EQ(v.proceeded, 1u);
  ASSERT_EQ(a.headers.size(), 1u) << "the header was replaced, whatever its case";
  EXPECT_EQ(a.headers[0].name, "X-Stamp");
  EXPECT_EQ(a.headers[0].value, "1000000/3/slow");
  (*c)->on_outcome(a, {0, "deferred", -1, 0}, v.proceeded);
  std::string text = metrics->render();
  EXPECT_NE(text.find("fetchrelay_plugin_stamp_stamped_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("fetchrelay_plugin_stamp_not_sent_total 1\n"), std::string::npos) << text;
}

TEST(PluginChain, AHookThatThrowsBecomesARejectWithTheMessage) {
  auto r = load({"throws"});
  auto c = chain::create(*r, "default", {step("throws")}, test_services());
  ASSERT_TRUE(c.is_ok());
  attempt_data a;
  auto v = (*c)->on_attempt(a);
  EXPECT_EQ(v.kind, FR_REJECT);
  EXPECT_EQ(v.reason, "throws threw: boom");
  EXPECT_EQ(v.proceeded, 0u);
}

TEST(PluginChain, ACreateFailureNamesThePolicyStepAndMessage) {
  auto r = load({"stamp"});
  auto c = chain::create(*r, "default", {step("stamp", {{"refuse", true}})}, test_services());
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.error().message(), "policies.default.pipeline[0] (stamp): refused on purpose");
}

TEST(PluginChain, TheHostRefusesHeadersItMustOwn) {
  // set_header through the real host table: what the SDK's attempt::set_header calls.
  auto r = load({"stamp"});
  for (const char* bad : {"Host", "content-length", "Connection", "X-Bad\r\nInjected", ""}) {
    auto c = chain::create(*r, "default", {step("stamp", {{"header", bad}})}, test_services());
    ASSERT_TRUE(c.is_ok());
    attempt_data a;
    (*c)->on_attempt(a);
    EXPECT_TRUE(a.headers.empty()) << bad;
  }
}

}  // namespace
}  // namespace fetchrelay::plugins::plugin_host_test
