// The admin CLI (`fetchrelay jobs …`, `schedules …`, `queues …`, `topics …`, `destinations`,
// `stats`, `events`) against the real relay process: every command runs as a user would run
// it, its --json output is compared with the API's answer to the same request, and its exit
// codes (0, 1 for an API error or no relay, 2 for usage) are checked.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/relay_process.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::test::cli_e2e_test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* key = "relay_sk_cli_123";

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    relay_ = std::make_unique<relay_process>(
        dir_,
        loopback_config(dir_, std::string("{tenant: t, key: ") + key + "}, {tenant: other, key: relay_sk_other_123}",
                        "policies: {default: {timeout: 2s, retry: {attempts: 1}}}\n"),
        key);
    ASSERT_NE(relay_->port(), 0) << relay_->log();
    url_ = "http://127.0.0.1:" + std::to_string(relay_->port());
  }

  /// Runs `fetchrelay args… --url … --key …`; its exit code and output.
  std::pair<int, std::string> cli(std::vector<std::string> args, bool with_flags = true) {
    if (with_flags) {
      args.insert(args.begin(), {"--url", url_});  // before the subcommand …
      args.insert(args.end(), {"--key", key});     // … and after it
    }
    std::string out;
    auto r = run_command(FETCHRELAY_BIN, args, out, 20s);
    return {r.exited ? r.code : -1, out};
  }

  /// The command's --json output, checked equal to the API's answer to `method path`.
  json same_as_api(std::vector<std::string> args, const std::string& method, const std::string& path) {
    args.push_back("--json");
    auto [code, out] = cli(args);
    EXPECT_EQ(code, 0) << out;
    json mine = json::parse(out, nullptr, false);
    EXPECT_FALSE(mine.is_discarded()) << out;
    auto api = relay_->call(method, path, key);
    EXPECT_TRUE(api.has_value());
    if (api) EXPECT_EQ(mine, json::parse(api->body)) << args[0] << " " << (args.size() > 1 ? args[1] : "");
    return mine;
  }

  std::string submit(const std::string& path, const std::string& extra = "") {
    auto r = relay_->call("POST", "/v1/fetch", key,
                          "X-Fetch-Url: http://127.0.0.1:" + std::to_string(origin_.port()) + path + "\r\n" + extra, "{}");
    EXPECT_TRUE(r && r->status == 202) << (r ? r->body : "no answer");
    return r && r->status == 202 ? json::parse(r->body)["id"].get<std::string>() : "";
  }

  temp_dir dir_;
  test_origin origin_;
  std::unique_ptr<relay_process> relay_;
  std::string url_;
};

TEST_F(Cli, JobsListGetRetryRunCancelAndBulkAsTheApiAnswers) {
  std::string failed = submit("/status/500");
  std::string delivered = submit("/echo");
  std::string later = submit("/echo", "X-Delay: 1h\r\n");
  EXPECT_EQ(relay_->wait_terminal(failed)["status"], "failed");
  EXPECT_EQ(relay_->wait_terminal(delivered)["status"], "delivered");

  json list = same_as_api({"jobs", "list"}, "GET", "/v1/jobs");
  EXPECT_EQ(list["jobs"].size(), 3u);
  json only_failed = same_as_api({"jobs", "list", "--status", "failed", "--limit", "5"}, "GET", "/v1/jobs?status=failed&limit=5");
  ASSERT_EQ(only_failed["jobs"].size(), 1u);
  EXPECT_EQ(only_failed["jobs"][0]["id"], failed);
  same_as_api({"jobs", "list", "--url-prefix", "http://127.0.0.1:" + std::to_string(origin_.port()) + "/echo"}, "GET",
              "/v1/jobs?url_prefix=http%3A%2F%2F127.0.0.1%3A" + std::to_string(origin_.port()) + "%2Fecho");
  same_as_api({"jobs", "get", failed}, "GET", "/v1/jobs/" + failed);

  // A person's table: one row per job with its id and status.
  auto [code, table] = cli({"jobs", "list"});
  EXPECT_EQ(code, 0);
  EXPECT_NE(table.find("ID"), std::string::npos) << table;
  EXPECT_NE(table.find(failed + "  failed"), std::string::npos) << table;

  auto [rc_run, run] = cli({"jobs", "run", later, "--json"});
  EXPECT_EQ(rc_run, 0) << run;
  EXPECT_EQ(json::parse(run)["status"], "active");
  EXPECT_EQ(relay_->wait_terminal(later)["status"], "delivered") << "run now ended its hour of delay";

  auto [rc_retry, retry] = cli({"jobs", "retry", failed, "--json"});
  EXPECT_EQ(rc_retry, 0) << retry;
  EXPECT_EQ(json::parse(retry)["status"], "scheduled");
  EXPECT_EQ(relay_->wait_terminal(failed)["attempts"].size(), 2u);

  // Bulk: every failed job of the filter runs again; the count is printed.
  auto [rc_bulk, bulk] = cli({"jobs", "retry", "--status", "failed"});
  EXPECT_EQ(rc_bulk, 0) << bulk;
  EXPECT_NE(bulk.find("retried 1 jobs"), std::string::npos) << bulk;
  EXPECT_EQ(relay_->wait_terminal(failed)["attempts"].size(), 3u);

  std::string waiting = submit("/echo", "X-Delay: 1h\r\n");
  auto [rc_cancel, cancel] = cli({"jobs", "cancel", waiting, "--json"});
  EXPECT_EQ(rc_cancel, 0) << cancel;
  EXPECT_EQ(json::parse(cancel)["status"], "cancelled");
  std::string w2 = submit("/echo", "X-Delay: 1h\r\n");
  auto [rc_bc, bc] = cli({"jobs", "cancel", "--status", "scheduled", "--json"});
  EXPECT_EQ(rc_bc, 0) << bc;
  EXPECT_EQ(json::parse(bc)["count"], 1) << "one page's answer, unchanged";
  EXPECT_EQ(relay_->wait_terminal(w2)["status"], "cancelled");

  // Errors: the API's code and exit 1; a finished job cannot be cancelled.
  auto [rc_gone, gone] = cli({"jobs", "cancel", delivered});
  EXPECT_EQ(rc_gone, 1);
  EXPECT_NE(gone.find("job_finished"), std::string::npos) << gone;
  auto [rc_nf, nf] = cli({"jobs", "get", "job_00000000000000000000000000"});
  EXPECT_EQ(rc_nf, 1);
  EXPECT_NE(nf.find("job_not_found"), std::string::npos) << nf;
}

TEST_F(Cli, SchedulesQueuesTopicsDestinationsStatsAndEvents) {
  std::string target = "http://127.0.0.1:" + std::to_string(origin_.port()) + "/echo";
  auto s = relay_->call("POST", "/v1/schedules", key, "X-Fetch-Url: " + target + "\r\nX-Cron: 0 3 * * *\r\nX-Schedule-Id: nightly\r\n", "");
  ASSERT_TRUE(s && s->status == 201) << (s ? s->body : "");
  same_as_api({"schedules", "list"}, "GET", "/v1/schedules");
  same_as_api({"schedules", "get", "nightly"}, "GET", "/v1/schedules/nightly");
  auto [rc_p, paused] = cli({"schedules", "pause", "nightly", "--json"});
  EXPECT_EQ(rc_p, 0) << paused;
  EXPECT_EQ(json::parse(paused)["paused"], true);
  auto [rc_r, resumed] = cli({"schedules", "resume", "nightly"});
  EXPECT_EQ(rc_r, 0) << resumed;
  EXPECT_NE(resumed.find("paused: no"), std::string::npos) << resumed;
  auto [rc_t, trig] = cli({"schedules", "trigger", "nightly", "--json"});
  EXPECT_EQ(rc_t, 0) << trig;
  auto [rc_d, del] = cli({"schedules", "delete", "nightly"});
  EXPECT_EQ(rc_d, 0) << del;
  EXPECT_EQ(relay_->call("GET", "/v1/schedules/nightly", key)->status, 404);

  auto [rc_set, set] = cli({"queues", "set", "mail", "--parallelism", "3", "--json"});
  EXPECT_EQ(rc_set, 0) << set;
  EXPECT_EQ(json::parse(set)["parallelism"], 3);
  same_as_api({"queues", "list"}, "GET", "/v1/queues");
  same_as_api({"queues", "get", "mail"}, "GET", "/v1/queues/mail");
  auto [rc_qp, qp] = cli({"queues", "pause", "mail", "--json"});
  EXPECT_EQ(rc_qp, 0) << qp;
  EXPECT_EQ(json::parse(relay_->call("GET", "/v1/queues/mail", key)->body)["paused"], true);
  auto [rc_qr, qr] = cli({"queues", "resume", "mail"});
  EXPECT_EQ(rc_qr, 0) << qr;
  EXPECT_EQ(json::parse(relay_->call("GET", "/v1/queues/mail", key)->body)["paused"], false);
  auto [rc_qd, qd] = cli({"queues", "delete", "mail"});
  EXPECT_EQ(rc_qd, 0) << qd;

  auto t = relay_->call("PUT", "/v1/topics/orders", key, "Content-Type: application/json\r\n",
                        "{\"endpoints\":[{\"url\":\"" + target + "\",\"name\":\"a\"}]}");
  ASSERT_TRUE(t && t->status == 201) << (t ? t->body : "");
  same_as_api({"topics", "list"}, "GET", "/v1/topics");
  same_as_api({"topics", "get", "orders"}, "GET", "/v1/topics/orders");
  auto [rc_td, td] = cli({"topics", "delete", "orders"});
  EXPECT_EQ(rc_td, 0) << td;

  std::string id = submit("/echo");
  EXPECT_EQ(relay_->wait_terminal(id)["status"], "delivered");
  json d = same_as_api({"destinations"}, "GET", "/v1/destinations");
  ASSERT_FALSE(d["destinations"].empty());
  auto [rc_st, st] = cli({"stats", "--json"});
  EXPECT_EQ(rc_st, 0) << st;
  EXPECT_EQ(json::parse(st)["jobs"], json::parse(relay_->call("GET", "/v1/stats", key)->body)["jobs"]);
  same_as_api({"events", "--job", id}, "GET", "/v1/events?job=" + id);

  // events --follow prints each event once, as it comes (one JSON object a line with --json),
  // until stopped: here by run_command's deadline.
  std::string out;
  auto follow = run_command(FETCHRELAY_BIN, {"events", "--follow", "--json", "--job", id, "--interval", "200ms", "--url", url_,
                                             "--key", key}, out, 1500ms);
  EXPECT_FALSE(follow.exited) << "it follows until stopped: " << out;
  std::size_t lines = 0, created = 0;
  for (std::size_t pos = 0, end; (end = out.find('\n', pos)) != std::string::npos; pos = end + 1, ++lines) {
    json e = json::parse(out.substr(pos, end - pos), nullptr, false);
    ASSERT_FALSE(e.is_discarded()) << out;
    if (e["type"] == "created") ++created;
  }
  EXPECT_EQ(created, 1u) << out;
  EXPECT_EQ(lines, json::parse(relay_->call("GET", "/v1/events?job=" + id, key)->body)["events"].size()) << out;
}

TEST_F(Cli, TheKeyAndUrlComeFromTheEnvironmentAndUsageErrorsExit2) {
  std::string out;
  auto env = run_command("/usr/bin/env", {"FETCHRELAY_URL=" + url_, "FETCHRELAY_KEY=relay_sk_other_123", FETCHRELAY_BIN, "jobs",
                                          "list", "--json"}, out, 20s);
  EXPECT_TRUE(env.exited && env.code == 0) << out;
  EXPECT_EQ(json::parse(out)["jobs"], json::array()) << "tenant other sees none of t's jobs";

  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {"jobs", "frobnicate"}, {"jobs", "get"}, {"jobs", "list", "--colour", "red"}, {"queues", "set", "q"},
           {"jobs", "list", "extra"}, {"stats", "--follow"}}) {
    auto [code, msg] = cli(bad);
    EXPECT_EQ(code, 2) << bad[0] << " " << bad[1] << ": " << msg;
  }
  auto [no_key, nk] = cli({"--url", url_, "jobs", "list"}, false);
  EXPECT_EQ(no_key, 2) << nk;
  auto [v1, v1msg] = cli({"--url", url_ + "/v1", "jobs", "list", "--key", key}, false);
  EXPECT_EQ(v1, 2) << "the base URL is without /v1: " << v1msg;
  auto [wrong, wm] = cli({"--url", url_, "--key", "nope", "jobs", "list"}, false);
  EXPECT_EQ(wrong, 1);
  EXPECT_NE(wm.find("unauthorized"), std::string::npos) << wm;
  auto [down, dm] = cli({"--url", "http://127.0.0.1:1", "--key", key, "stats"}, false);
  EXPECT_EQ(down, 1);
  EXPECT_NE(dm.find("cannot reach"), std::string::npos) << dm;
}

}  // namespace
}  // namespace fetchrelay::test::cli_e2e_test
