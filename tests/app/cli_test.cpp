#include "app/cli.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include "app/admin_cli.h"
#include "app/serve.h"

namespace fetchrelay::app::cli_test {
namespace {

TEST(ParseAdmin, FlagsGoBeforeOrAfterTheSubcommandAndTheEnvironmentGivesDefaults) {
  std::map<std::string, std::string> env{{"FETCHRELAY_URL", "http://relay:9000/"}, {"FETCHRELAY_KEY", "k_env"}};
  auto a = parse_admin({"--json", "jobs", "list", "--status", "failed", "--url-prefix=https://x/y z"}, env);
  ASSERT_TRUE(a.is_ok()) << a.error().message();
  EXPECT_EQ(a->url, "http://relay:9000") << "a trailing slash is dropped";
  EXPECT_EQ(a->key, "k_env");
  EXPECT_TRUE(a->json);
  EXPECT_EQ(a->call.method, "GET");
  EXPECT_EQ(a->call.path, "/v1/jobs?status=failed&url_prefix=https%3A%2F%2Fx%2Fy%20z");
  auto b = parse_admin({"--url", "https://other", "queues", "set", "mail", "--parallelism", "4", "--key", "k_flag"}, env);
  ASSERT_TRUE(b.is_ok()) << b.error().message();
  EXPECT_EQ(b->url, "https://other");
  EXPECT_EQ(b->key, "k_flag") << "a flag wins over the environment";
  EXPECT_EQ(b->call.method, "PUT");
  EXPECT_EQ(b->call.path, "/v1/queues/mail");
  EXPECT_EQ(b->call.body, "{\"parallelism\":4}");
  auto bulk = parse_admin({"jobs", "retry", "--status", "failed", "--queue", "q"}, env);
  ASSERT_TRUE(bulk.is_ok());
  EXPECT_TRUE(bulk->bulk);
  EXPECT_EQ(bulk->call.path, "/v1/jobs/retry");
  EXPECT_EQ(bulk->call.body, "{\"queue\":\"q\",\"status\":\"failed\"}");
  auto one = parse_admin({"jobs", "cancel", "job_1"}, env);
  ASSERT_TRUE(one.is_ok());
  EXPECT_FALSE(one->bulk);
  EXPECT_EQ(one->call.method, "DELETE");
  EXPECT_EQ(one->call.path, "/v1/jobs/job_1");
  auto ev = parse_admin({"events", "--follow", "--job", "job_1", "--interval", "250ms"}, env);
  ASSERT_TRUE(ev.is_ok()) << ev.error().message();
  EXPECT_TRUE(ev->follow);
  EXPECT_EQ(ev->interval_ms, 250);
  EXPECT_EQ(ev->call.path, "/v1/events?job=job_1");
}

TEST(ParseAdmin, UsageErrorsSayWhat) {
  std::map<std::string, std::string> env;
  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {"jobs"}, {"jobs", "get"}, {"jobs", "list", "job_1"}, {"jobs", "retry"}, {"schedules", "list", "--status", "x"},
           {"queues", "set", "q", "--parallelism", "many"}, {"events", "--interval", "1ms"}, {"stats", "--follow"},
           {"--url", "ftp://x", "stats"}, {"--url", "http://x/v1", "stats"}, {"jobs", "list", "--json=yes"}, {"jobs", "list", "--limit"}}) {
    auto r = parse_admin(bad, env);
    EXPECT_FALSE(r.is_ok()) << bad[0] << " " << (bad.size() > 1 ? bad[1] : "");
  }
}

TEST(RenderTable, ShowsOneRowPerItemAndTheNextCursor) {
  admin_command c;
  c.resource = "jobs";
  c.verb = "list";
  std::string t = render_table(c, R"({"jobs":[{"id":"job_1","status":"failed","attempt_count":3,"created_at":"2026-11-29T00:00:00.000Z",
                                               "next_attempt_at":null,"url":"https://x/\nnext\u001b]52;c;aGk=\u0007"}],"next_cursor":"job_1"})");
  EXPECT_NE(t.find("ID"), std::string::npos) << t;
  EXPECT_NE(t.find("job_1  failed  3"), std::string::npos) << t;
  EXPECT_NE(t.find("https://x/ next ]52;c;aGk= "), std::string::npos) << "control characters never reach the terminal: " << t;
  for (char ch : t) EXPECT_TRUE(ch == '\n' || static_cast<unsigned char>(ch) >= 0x20) << static_cast<int>(ch);
  EXPECT_NE(t.find("more: --cursor job_1"), std::string::npos) << t;
}

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
}  // namespace fetchrelay::app::cli_test
