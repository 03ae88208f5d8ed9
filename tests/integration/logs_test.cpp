// What an operator reads: the log lines of one job's life (docs/operations.md), at info and at
// debug, as text and as JSON; config errors in the format asked for; 401s without the key.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/relay_process.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::test::logs_test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* key = "relay_sk_logs_secret_77";

std::string config_text(const temp_dir& dir, const std::string& log) {
  return "server: {listen: 127.0.0.1:0}\n"
         "storage: {path: " + dir.file("data") + "}\n"
         "log: " + log + "\n"
         "auth: {keys: [{tenant: acme, key: " + std::string(key) + "}]}\n"
         "delivery: {allow_networks: [127.0.0.0/8]}\n"
         "policies:\n  default: {timeout: 2s, retry: {attempts: 3, schedule: [100ms], jitter: 0}}\n";
}

/// Runs one job that fails once (500) and then is delivered, plus one 401; returns the log.
std::string one_job_life(const std::string& log_config, std::string& id) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config_text(dir, log_config), key);
  EXPECT_NE(relay.port(), 0) << relay.log();
  auto r = relay.call("POST", "/v1/fetch", key,
                      "X-Fetch-Url: http://127.0.0.1:" + std::to_string(origin.port()) + "/fail/1/life?token=hush\r\n",
                      "{}");
  EXPECT_TRUE(r && r->status == 202);
  id = json::parse(r->body)["id"];
  auto job = relay.wait_terminal(id);
  EXPECT_EQ(job["status"], "delivered") << job.dump();
  for (int i = 0; i < 3; ++i) relay.call("GET", "/v1/jobs", "relay_sk_wrong_key_999");  // 3 refused, 1 line
  relay.call("POST", "/v1/fetch", key, "X-Fetch-Url: http://127.0.0.1:1/\r\nX-Delay: 1h\r\nX-Delay: 2h\r\n");
  EXPECT_EQ(relay.stop(), 0);
  return relay.log();
}

std::vector<json> json_lines(const std::string& log) {
  std::vector<json> out;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    auto j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
    if (!j.is_discarded()) out.push_back(j);
  }
  return out;
}

const json* find_line(const std::vector<json>& lines, const std::string& msg) {
  for (const auto& j : lines) {
    if (j["msg"] == msg) return &j;
  }
  return nullptr;
}

TEST(Logs, OneJobsLifeAtInfoAsText) {
  std::string id;
  std::string log = one_job_life("{level: info, format: text}", id);
  // 2026-11-29T10:00:00.123Z info  attempt failed job_id=job_... tenant=acme attempt=1 status_code=500 ...
  std::regex failed("\\n\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z info  attempt failed job_id=" + id +
                    " tenant=acme attempt=1 status_code=500 duration_ms=\\d+ next_attempt_at=\\S+Z\\n");
  EXPECT_TRUE(std::regex_search(log, failed)) << log;
  std::regex ended("\\n\\S+Z info  job delivered job_id=" + id +
                   " tenant=acme origin=http://127.0.0.1:\\d+ job_status=delivered attempts=2 status_code=200 "
                   "duration_ms=\\d+\\n");
  EXPECT_TRUE(std::regex_search(log, ended)) << log;
  EXPECT_EQ(log.find("job accepted"), std::string::npos) << "debug lines at info";
  EXPECT_EQ(log.find("submission refused"), std::string::npos) << "debug lines at info";
  EXPECT_EQ(log.find("hush"), std::string::npos) << "the query string may hold secrets";
  EXPECT_EQ(log.find("relay_sk_"), std::string::npos) << "an API key in the log";
  std::regex refused("\\n\\S+Z info  request refused: unauthorized method=GET path=/v1/jobs reason=\"unknown key\" "
                     "status_code=401 suppressed=0\\n");
  EXPECT_TRUE(std::regex_search(log, refused)) << log;
  auto count = [&](const std::string& s) {
    std::size_t n = 0;
    for (auto p = log.find(s); p != std::string::npos; p = log.find(s, p + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("request refused: unauthorized"), 1u) << "401s are rate-limited";
}

TEST(Logs, OneJobsLifeAtDebugAsJson) {
  std::string id;
  auto lines = json_lines(one_job_life("{level: debug, format: json}", id));
  std::regex ts("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z");
  for (const auto& j : lines) {
    ASSERT_TRUE(j.contains("ts") && j.contains("level") && j.contains("msg")) << j.dump();
    EXPECT_TRUE(std::regex_match(j["ts"].get<std::string>(), ts)) << j.dump();
  }
  auto accepted = find_line(lines, "job accepted");
  ASSERT_TRUE(accepted);
  EXPECT_EQ((*accepted)["job_id"], id);
  EXPECT_EQ((*accepted)["tenant"], "acme");
  EXPECT_EQ((*accepted)["level"], "debug");
  auto started = find_line(lines, "attempt started");
  ASSERT_TRUE(started);
  EXPECT_EQ((*started)["attempt"], 1);
  auto failed = find_line(lines, "attempt failed");
  ASSERT_TRUE(failed);
  EXPECT_EQ((*failed)["level"], "info");
  EXPECT_EQ((*failed)["job_id"], id);
  EXPECT_EQ((*failed)["status_code"], 500);
  EXPECT_TRUE((*failed)["duration_ms"].is_number());
  auto refused = find_line(lines, "submission refused");
  ASSERT_TRUE(refused) << "a 4xx submission is logged at debug";
  EXPECT_EQ((*refused)["code"], "duplicate_header");
  EXPECT_EQ((*refused)["status_code"], 400);
  auto ended = find_line(lines, "job delivered");
  ASSERT_TRUE(ended);
  EXPECT_EQ((*ended)["job_status"], "delivered");
  EXPECT_EQ((*ended)["attempts"], 2);
  EXPECT_EQ((*ended)["status_code"], 200);
  EXPECT_TRUE((*ended)["duration_ms"].is_number());
}

TEST(Logs, ConfigErrorsFollowTheLogFormatAndComeInOneRound) {
  temp_dir dir;
  // An unset variable, a schema error and a semantic error: before, three rounds of fixing.
  std::string cfg = dir.write("relay.yaml",
                              "server: {listen: 127.0.0.1:0, max_connections: many}\n"
                              "storage:\n  path: ${FETCHRELAY_TEST_UNSET_VAR_42}\n"
                              "auth: {keys: [{tenant: acme, key: " + std::string(key) + "}]}\n"
                              "routes: [{match: {host: a.example}, policy: nope}]\n");
  std::string out;
  auto info = run_command(FETCHRELAY_BIN, {"check-config", "--config", cfg, "--log-format", "json"}, out, 30s);
  EXPECT_EQ(info.code, 2) << out;
  auto lines = json_lines(out);
  std::vector<std::string> keys;
  for (const auto& j : lines) {
    EXPECT_EQ(j["level"], "error") << j.dump();
    if (j.contains("key")) keys.push_back(j["key"]);
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"storage.path", "server.max_connections", "routes[0].policy"})) << out;
  process serve(FETCHRELAY_BIN, {"serve", "--config", cfg, "--log-format", "json"}, dir.file("log"));
  auto s = serve.wait(20s);
  EXPECT_EQ(s.code, 2);
  for (const auto& j : json_lines(serve.log())) EXPECT_EQ(j["level"], "error");
}

}  // namespace
}  // namespace fetchrelay::test::logs_test
