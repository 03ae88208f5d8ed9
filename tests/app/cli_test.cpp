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
