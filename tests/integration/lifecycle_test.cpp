// The process as an operator meets it: a port in use, and SIGTERM with a delivery in flight.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/relay_process.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::test::lifecycle_test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* key = "relay_sk_lifecycle_1";

/// A listening socket on 127.0.0.1 that holds a port.
struct held_port {
  held_port() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd, 1) == 0) {
      socklen_t n = sizeof a;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
      port = ntohs(a.sin_port);
    }
  }
  ~held_port() { ::close(fd); }
  int fd = -1;
  std::uint16_t port = 0;
};

// Before: relay::start failed, ~relay waited in server::wait() for a shutdown nothing sent; the
// bind error was never printed and only kill -9 ended the process.
TEST(Lifecycle, APortInUseExitsOneWithinTwoSecondsNamingTheAddress) {
  held_port busy;
  ASSERT_NE(busy.port, 0);
  temp_dir dir;
  std::string cfg = dir.write("relay.yaml", "server: {listen: 127.0.0.1:" + std::to_string(busy.port) +
                                                "}\nstorage: {path: " + dir.file("data") +
                                                "}\nauth: {keys: [{tenant: t, key: " + key + "}]}\n");
  auto t0 = std::chrono::steady_clock::now();
  process p(FETCHRELAY_BIN, {"serve", "--config", cfg}, dir.file("log"));
  auto info = p.wait(10s);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(info.exited) << "still running after 10 s: " << p.log();
  EXPECT_EQ(info.code, 1) << p.log();
  EXPECT_LT(took, 2s) << p.log();
  EXPECT_NE(p.log().find("127.0.0.1:" + std::to_string(busy.port)), std::string::npos) << p.log();
  EXPECT_NE(p.log().find("in use"), std::string::npos) << p.log();
}

/// A relay with `grace` and a job to the origin's /sleep/<ms> whose attempt has started; the
/// job's id.
std::string start_slow_delivery(relay_process& relay, const test_origin& origin, int sleep_ms) {
  auto r = relay.call("POST", "/v1/fetch", key,
                      "X-Fetch-Url: http://127.0.0.1:" + std::to_string(origin.port()) + "/sleep/" +
                          std::to_string(sleep_ms) + "\r\n",
                      "{}");
  EXPECT_TRUE(r && r->status == 202) << (r ? r->body : relay.log());
  if (!r || r->status != 202) return "";
  for (int i = 0; i < 200 && origin.requests() == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(origin.requests(), 1u) << "the attempt did not start";
  return json::parse(r->body)["id"];
}

std::string slow_config(const temp_dir& dir, const std::string& grace) {
  return "server: {listen: 127.0.0.1:0, shutdown_grace: " + grace + "}\n"
         "storage: {path: " + dir.file("data") + "}\n"
         "auth: {keys: [{tenant: t, key: " + std::string(key) + "}]}\n"
         "delivery: {allow_networks: [127.0.0.0/8]}\n"
         "policies:\n  default: {timeout: 15s, retry: {attempts: 3, schedule: [1s], jitter: 0}}\n";
}

// Before: the relay exited 1.5 s after SIGTERM; the attempt was not recorded and after the
// restart the target got the job again with X-Fetch-Attempt: 1.
TEST(Lifecycle, SigtermDuringAnEightSecondDeliveryWaitsRecordsItAndItIsDeliveredOnce) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, slow_config(dir, "20s"), key);
  ASSERT_NE(relay.port(), 0) << relay.log();
  std::string id = start_slow_delivery(relay, origin, 8000);
  ASSERT_FALSE(id.empty());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(relay.stop(), 0) << relay.log();
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 7s) << "did not wait for the delivery in flight:\n" << relay.log();
  EXPECT_LT(took, 15s) << relay.log();

  relay.start();
  ASSERT_NE(relay.port(), 0) << relay.log();
  auto job = relay.call("GET", "/v1/jobs/" + id, key);
  ASSERT_TRUE(job);
  ASSERT_EQ(job->status, 200) << job->body;
  auto j = json::parse(job->body);
  EXPECT_EQ(j["status"], "delivered") << j.dump();
  ASSERT_EQ(j["attempts"].size(), 1u) << j.dump();
  EXPECT_EQ(j["attempts"][0]["status_code"], 200);
  std::this_thread::sleep_for(1500ms);  // a retry would be due by now (schedule 1s)
  EXPECT_EQ(origin.requests(), 1u) << "the target got the job again after the restart";
  EXPECT_EQ(relay.stop(), 0);
}

// The other half of the contract: past the grace, the attempt is abandoned and its job stays
// due; after the restart it runs again (attempt 1 again, since none was recorded).
TEST(Lifecycle, AnAttemptStillRunningAtTheDeadlineIsAbandonedAndRunsAgainAfterARestart) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, slow_config(dir, "1s"), key);
  ASSERT_NE(relay.port(), 0) << relay.log();
  std::string id = start_slow_delivery(relay, origin, 5000);
  ASSERT_FALSE(id.empty());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(relay.stop(), 0) << relay.log();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s) << relay.log();
  EXPECT_NE(relay.log().find("abandoned"), std::string::npos) << relay.log();
  relay.start();
  ASSERT_NE(relay.port(), 0) << relay.log();
  auto j = relay.wait_terminal(id);
  EXPECT_EQ(j["status"], "delivered") << j.dump();
  EXPECT_EQ(origin.requests(), 2u);
  EXPECT_EQ(relay.stop(), 0);
}

}  // namespace
}  // namespace fetchrelay::test::lifecycle_test
