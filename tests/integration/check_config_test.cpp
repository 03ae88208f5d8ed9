// `fetchrelay check-config` as a user runs it: the real binary on each broken config.
#include <gtest/gtest.h>

#include "tests/config/broken_configs.h"
#include "tests/support/process.h"

namespace fetchrelay::test::check_config_test {
namespace {

using namespace std::chrono_literals;

TEST(CheckConfig, BrokenConfigsExitNonZeroWithExactMessages) {
  auto cases = broken_configs();
  ASSERT_GE(cases.size(), 8u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    std::string out;
    auto info = run_command(FETCHRELAY_BIN, {"check-config", "--config", c.path}, out, 30s);
    ASSERT_TRUE(info.exited);
    EXPECT_EQ(info.code, 2);
    auto expected = c.expected;
    expected.push_back(c.path + ": invalid (" + std::to_string(c.expected.size()) +
                       (c.expected.size() == 1 ? " error)" : " errors)"));
    EXPECT_EQ(log_messages(out, " config="), expected);
  }
}

TEST(CheckConfig, TheExampleConfigIsValid) {
  std::string path = std::string(FETCHRELAY_SOURCE_DIR) + "/examples/fetchrelay.yaml";
  std::string out;
  auto info = run_command(FETCHRELAY_BIN, {"check-config", "--config", path}, out, 30s);
  ASSERT_TRUE(info.exited);
  EXPECT_EQ(info.code, 0) << out;
  EXPECT_EQ(log_messages(out, " config="), std::vector<std::string>{path + ": ok"});
}

TEST(CheckConfig, MissingFileIsNamed) {
  std::string out;
  auto info = run_command(FETCHRELAY_BIN, {"check-config", "--config", "/nonexistent/x.yaml"}, out, 30s);
  ASSERT_TRUE(info.exited);
  EXPECT_EQ(info.code, 2);
  EXPECT_EQ(log_messages(out, " config=")[0], "/nonexistent/x.yaml: cannot read the file");
}

TEST(Version, PrintsProjectVersionAndRevision) {
  std::string out;
  auto info = run_command(FETCHRELAY_BIN, {"--version"}, out, 30s);
  ASSERT_TRUE(info.exited);
  EXPECT_EQ(info.code, 0);
  EXPECT_EQ(out.rfind("fetchrelay 0.1.0 (rev ", 0), 0u) << out;
}

TEST(Usage, UnknownCommandExits2WithUsage) {
  std::string out;
  auto info = run_command(FETCHRELAY_BIN, {"frobnicate"}, out, 30s);
  ASSERT_TRUE(info.exited);
  EXPECT_EQ(info.code, 2);
  EXPECT_NE(out.find("unknown command \"frobnicate\""), std::string::npos);
  EXPECT_NE(out.find("usage:"), std::string::npos);
}

}  // namespace
}  // namespace fetchrelay::test::check_config_test
