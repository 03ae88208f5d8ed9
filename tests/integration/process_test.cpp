// The real fetchrelay process on loopback: start with --port-file, talk HTTP, signal it.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/process.h"
#include "tests/support/relay_process.h"
#include "tests/support/raw_http.h"

namespace fetchrelay::test::process_test {
namespace {

using namespace std::chrono_literals;

constexpr const char* secret_key = "sk_test_do_not_log_4f7a9c";

std::string relay_config(const temp_dir& dir, const std::string& extra_server = "",
                         const std::string& extra = "") {
  return "server: {listen: 127.0.0.1:0, shutdown_grace: 10s" + extra_server +
         "}\n"
         "storage: {path: " + dir.file("data") + "}\n"
         "auth: {keys: [{tenant: default, key: " + secret_key + "}]}\n" + extra;
}

/// A started relay with its port known.
struct relay {
  explicit relay(const temp_dir& dir, const std::string& config_text,
                 std::vector<std::string> extra_args = {}) {
    std::string cfg = dir.write("relay.yaml", config_text);
    std::vector<std::string> args = {"serve", "--config", cfg, "--port-file", dir.file("port")};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    proc = std::make_unique<process>(FETCHRELAY_BIN, args, dir.file("relay.log"));
    auto p = wait_for_port_file(dir.file("port"), 30s);
    if (p) port = *p;
  }
  std::unique_ptr<process> proc;
  std::uint16_t port = 0;
};

TEST(Serve, AnswersHealthzAndJson404ThenExitsZeroOnSigterm) {
  temp_dir dir;
  relay r(dir, relay_config(dir));
  ASSERT_NE(r.port, 0) << r.proc->log();

  auto h = http_request(r.port, "GET", "/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(h->headers["content-type"], "application/json");
  auto j = nlohmann::json::parse(h->body);
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["version"], "0.1.0");

  auto nf = http_request(r.port, "GET", "/nope");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
  EXPECT_EQ(nf->body, R"({"error":{"code":"not_found","message":"no route for GET /nope"}})");

  auto wrong = http_request(r.port, "DELETE", "/healthz");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 405);
  EXPECT_EQ(wrong->headers["allow"], "GET");

  r.proc->signal(SIGTERM);
  auto info = r.proc->wait(20s);
  ASSERT_TRUE(info.exited) << r.proc->log();
  EXPECT_EQ(info.code, 0) << r.proc->log();
  std::string log = r.proc->log();
  EXPECT_NE(log.find("listening on 127.0.0.1:" + std::to_string(r.port)), std::string::npos) << log;
  EXPECT_EQ(log.find(secret_key), std::string::npos) << "the API key reached the log";
}

TEST(Serve, SigtermWhileABodyIsUploadingFinishesItRefusesNewAndExitsZero) {
  temp_dir dir;
  relay r(dir, relay_config(dir));
  ASSERT_NE(r.port, 0) << r.proc->log();

  auto slow = connection::open(r.port);
  ASSERT_TRUE(slow);
  const std::string body(1000, 'b');
  ASSERT_TRUE(slow->send(std::string("POST /v1/fetch HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer ") +
                         secret_key + "\r\nX-Fetch-Url: http://relay-test.invalid/x\r\nX-Delay: 1h\r\n"
                         "Content-Length: 1000\r\n\r\n"));
  ASSERT_TRUE(slow->send(body.substr(0, 100)));
  // Wait until the server has the partial request in hand (its gauge says so; bounded).
  bool receiving = false;
  for (int i = 0; i < 200 && !receiving; ++i) {
    auto m = http_request(r.port, "GET", "/metrics");
    receiving = m && metric_value(m->body, "fetchrelay_http_requests_receiving") == 1;
    if (!receiving) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(receiving) << "the partial upload never showed in fetchrelay_http_requests_receiving";

  r.proc->signal(SIGTERM);

  // New connections are refused once the listener is closed (bounded wait).
  int err = 0;
  bool refused = false;
  // (A connect racing the close may land in the kernel's backlog and be reset instead:
  // keep trying until the listener is gone and connects are refused outright.)
  for (int i = 0; i < 400 && !refused; ++i) {
    auto c = connection::open(r.port, &err, 1s);
    refused = !c && err == ECONNREFUSED;
    if (!refused) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(refused) << "still accepting after SIGTERM";
  EXPECT_EQ(err, ECONNREFUSED);

  // The upload continues slowly and its request completes.
  for (size_t off = 100; off < body.size(); off += 100) {
    std::this_thread::sleep_for(20ms);
    ASSERT_TRUE(slow->send(body.substr(off, 100)));
  }
  auto resp = slow->read_response(10s);
  ASSERT_TRUE(resp) << r.proc->log();
  EXPECT_EQ(resp->status, 202) << resp->body;  // the job was taken, durably, during shutdown
  EXPECT_EQ(resp->headers["connection"], "close");
  EXPECT_NE(resp->body.find("\"status\":\"scheduled\""), std::string::npos);

  auto info = r.proc->wait(20s);
  ASSERT_TRUE(info.exited) << r.proc->log();
  EXPECT_EQ(info.code, 0) << r.proc->log();
}

TEST(Serve, SigintAlsoShutsDownCleanly) {
  temp_dir dir;
  relay r(dir, relay_config(dir));
  ASSERT_NE(r.port, 0) << r.proc->log();
  r.proc->signal(SIGINT);
  auto info = r.proc->wait(20s);
  ASSERT_TRUE(info.exited);
  EXPECT_EQ(info.code, 0) << r.proc->log();
}

TEST(Serve, JsonLogFormatWritesOneObjectPerLine) {
  temp_dir dir;
  relay r(dir, relay_config(dir), {"--log-format", "json"});
  ASSERT_NE(r.port, 0) << r.proc->log();
  r.proc->signal(SIGTERM);
  ASSERT_TRUE(r.proc->wait(20s).exited);
  std::istringstream lines(r.proc->log());
  std::string line;
  int n = 0;
  bool saw_listening = false;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    EXPECT_TRUE(j.contains("ts") && j.contains("level") && j.contains("msg")) << line;
    if (j["msg"].get<std::string>().rfind("listening on ", 0) == 0) saw_listening = true;
    ++n;
  }
  EXPECT_GE(n, 3);
  EXPECT_TRUE(saw_listening);
}

TEST(Serve, SecondRelayOnTheSameStoreRefusesToStart) {
  temp_dir dir;
  relay first(dir, relay_config(dir));
  ASSERT_NE(first.port, 0) << first.proc->log();
  temp_dir dir2;
  std::string cfg = dir2.write("relay.yaml", relay_config(dir));  // same data dir
  process second(FETCHRELAY_BIN, {"serve", "--config", cfg}, dir2.file("log"));
  auto info = second.wait(20s);
  ASSERT_TRUE(info.exited);
  EXPECT_EQ(info.code, 1);
  EXPECT_NE(second.log().find("is in use by another process"), std::string::npos) << second.log();
  first.proc->signal(SIGTERM);
  EXPECT_EQ(first.proc->wait(20s).code, 0);
}

TEST(Serve, RefusesToStartWhenTheDescriptorLimitCannotFit) {
  std::ifstream nr("/proc/sys/fs/nr_open");
  unsigned long long nr_open = 0;
  nr >> nr_open;
  const unsigned long long needed = 1000000ULL + 1000000ULL + 1024ULL;
  if (nr_open == 0 || nr_open >= needed) GTEST_SKIP() << "fs.nr_open allows " << nr_open;
  temp_dir dir;
  std::string cfg = dir.write(
      "relay.yaml", relay_config(dir, ", max_connections: 1000000", "limits: {max_in_flight: 1000000}\n"));
  process p(FETCHRELAY_BIN, {"serve", "--config", cfg}, dir.file("log"));
  auto info = p.wait(20s);
  ASSERT_TRUE(info.exited);
  EXPECT_EQ(info.code, 1);
  EXPECT_NE(p.log().find("server.max_connections (1000000) + limits.max_in_flight (1000000) + 1024 "
                         "reserved need 2001024 file descriptors"),
            std::string::npos)
      << p.log();
}

TEST(Serve, InvalidConfigDoesNotStart) {
  temp_dir dir;
  std::string cfg = dir.write("relay.yaml", "storage: {path: x}\n");
  process p(FETCHRELAY_BIN, {"serve", "--config", cfg}, dir.file("log"));
  auto info = p.wait(20s);
  ASSERT_TRUE(info.exited);
  EXPECT_EQ(info.code, 2);
  EXPECT_EQ(log_messages(p.log(), " config="),
            (std::vector<std::string>{"auth: is required but missing", cfg + ": invalid config, not starting"}));
}

}  // namespace
}  // namespace fetchrelay::test::process_test
