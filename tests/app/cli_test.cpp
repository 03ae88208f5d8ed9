#include "app/cli.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include "app/serve.h"

namespace fetchrelay::app {
namespace {

TEST(ParseCli, ServeWithEveryOption) {
  auto r = parse_cli({"serve", "--config", "c.yaml", "--port-file", "p", "--log-format", "json",
                      "--log-level", "debug"});
  ASSERT_TRUE(r.is_ok()) << r.error().message();
  EXPECT_EQ(r->cmd, command::serve);
  EXPECT_EQ(r->config_path, "c.yaml");
  EXPECT_EQ(r->port_file, "p");
  EXPECT_EQ(r->log_format, "json");
  EXPECT_EQ(r->log_level, "debug");
}

TEST(ParseCli, Errors) {
  struct {
    std::vector<std::string> args;
    const char* error;
  } cases[] = {
      {{}, "missing command"},
      {{"start"}, "unknown command \"start\""},
      {{"serve"}, "serve needs --config FILE"},
      {{"serve", "--config"}, "--config needs a value"},
      {{"serve", "--config", "c", "--log-format", "xml"}, "--log-format must be text or json"},
      {{"serve", "--config", "c", "--log-level", "loud"},
       "--log-level must be trace, debug, info, warn or error"},
      {{"check-config", "--config", "c", "--port-file", "p"},
       "unknown option \"--port-file\" for check-config"},
  };
  for (const auto& c : cases) {
    auto r = parse_cli(c.args);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.error().message(), c.error);
  }
}

TEST(ParseCli, Version) {
  EXPECT_EQ(parse_cli({"--version"})->cmd, command::version);
  EXPECT_EQ(parse_cli({"version"})->cmd, command::version);
}

TEST(RaiseFdLimit, NoChangeWhenAlreadyEnough) {
  rlimit before{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &before), 0);
  EXPECT_TRUE(raise_fd_limit(16, "test").is_ok());
  rlimit after{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &after), 0);
  EXPECT_EQ(after.rlim_cur, before.rlim_cur);
}

TEST(RaiseFdLimit, RaisesTheSoftLimitUpToTheHardOne) {
  rlimit lim{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < 2048) GTEST_SKIP() << "hard limit too low";
  rlimit lowered = lim;
  lowered.rlim_cur = 1024;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  EXPECT_TRUE(raise_fd_limit(2000, "test").is_ok());
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_GE(now.rlim_cur, 2000u);
  setrlimit(RLIMIT_NOFILE, &lim);
}

TEST(RaiseFdLimit, RefusesPastWhatTheKernelAllows) {
  // fs.nr_open bounds even root; ask for more than that.
  auto r = raise_fd_limit(1ULL << 40, "server.max_connections (x)");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.code(), status_code::resource_exhausted);
  EXPECT_NE(r.message().find("server.max_connections (x) need 1099511627776 file descriptors"),
            std::string::npos)
      << r.message();
}

}  // namespace
}  // namespace fetchrelay::app

#include "app/api.h"

namespace fetchrelay::app {
namespace {

TEST(NotBefore, UnixSecondsAndRfc3339) {
  EXPECT_EQ(parse_not_before("1764324000"), 1'764'324'000'000);
  EXPECT_EQ(parse_not_before("2025-11-28T10:00:00Z"), 1'764'324'000'000);
  EXPECT_EQ(parse_not_before("2025-11-28T10:00:00.25Z"), 1'764'324'000'250);
  EXPECT_EQ(parse_not_before("2025-11-28T11:30:00+01:30"), 1'764'324'000'000);
  EXPECT_EQ(parse_not_before("2025-11-28T08:00:00-02:00"), 1'764'324'000'000);
  for (const char* bad : {"", "tomorrow", "2025-11-28", "2025-11-28T10:00:00", "2025-11-28T10:00:00Zx",
                          "2025-11-28T10:00:00.Z", "1234567890123"}) {
    EXPECT_EQ(parse_not_before(bad), std::nullopt) << bad;
  }
}

TEST(NotBefore, DatesAreCheckedAgainstTheCalendar) {
  // strptime took these and timegm rolled them over: accepted, then due at another time.
  for (const char* bad : {"2026-02-30T10:00:00Z", "2026-02-29T10:00:00Z", "2026-04-31T00:00:00Z",
                          "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-01-00T00:00:00Z",
                          "2026-01-01T24:00:00Z", "2026-01-01T23:60:00Z", "2026-01-01T23:59:60Z",
                          "2026-01-01T10:00:00+25:00", "2026-01-01T10:00:00+01:60", "2026-01-01T10:00:00+0100",
                          " 2026-01-01T10:00:00Z", "2026-1-01T10:00:00Z", "2026-01-01T1:00:00Z",
                          "2026-01-01T10:00:00+01", "2026-01-01X10:00:00Z"}) {
    EXPECT_EQ(parse_not_before(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(parse_not_before("2024-02-29T00:00:00Z"), 1'709'164'800'000);  // a leap day
  EXPECT_EQ(parse_not_before("2000-02-29T00:00:00Z"), 951'782'400'000);
  EXPECT_EQ(parse_not_before("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_not_before("2025-11-28t10:00:00z"), 1'764'324'000'000);
  EXPECT_EQ(parse_not_before("2025-11-28T10:00:00.123456Z"), 1'764'324'000'123);
}

TEST(ConstantTimeEqual, ComparesWholeKeys) {
  EXPECT_TRUE(constant_time_equal("relay_sk_dev", "relay_sk_dev"));
  EXPECT_FALSE(constant_time_equal("relay_sk_dev", "relay_sk_de"));
  EXPECT_FALSE(constant_time_equal("relay_sk_de", "relay_sk_dev"));
  EXPECT_FALSE(constant_time_equal("relay_sk_dev", "relay_sk_deX"));
  EXPECT_FALSE(constant_time_equal("", "x"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

}  // namespace
}  // namespace fetchrelay::app
