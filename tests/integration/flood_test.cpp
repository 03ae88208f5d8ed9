// Slowloris and floods against the real fetchrelay process on loopback (issue 16): slow
// connections must not starve normal clients, connections past server.max_connections get 503
// while the relay keeps serving, and a huge body is refused from its headers alone.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <nlohmann/json.hpp>
#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/relay_process.h"

namespace fetchrelay::test::flood_test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* key_a = "relay_sk_tenant_a_123";

/// A submission due in an hour (nothing is delivered during the test); true on 202 within 5 s.
bool submit(const relay_process& relay, int n, std::string* why) {
  std::string auth = std::string("Authorization: Bearer ") + key_a + "\r\n";
  auto r = http_request(relay.port(), "POST", "/v1/fetch", "{\"n\":" + std::to_string(n) + "}",
                        auth + "X-Fetch-Url: http://127.0.0.1:9/never\r\nX-Delay: 1h\r\nContent-Type: application/json\r\n");
  if (!r) {
    *why = "no answer";
    return false;
  }
  *why = std::to_string(r->status) + " " + r->body;
  return r->status == 202;
}

/// Raises this process's open-file limit so it can hold `n` sockets (the relay started after
/// it inherits the limit, and raises its own as far as the hard limit allows).
bool allow_open_files(rlim_t n) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
  if (lim.rlim_cur >= n) return true;
  if (lim.rlim_max < n) return false;
  lim.rlim_cur = n;
  return setrlimit(RLIMIT_NOFILE, &lim) == 0;
}

// 1,000 connections each send one byte of a request's headers a second. The relay holds every
// one of them (they count in fetchrelay_http_connections) and still answers 100 normal
// submissions, each on a new connection; then the header timeout closes the slow ones, although
// they never stopped sending.
TEST(Flood, ThousandSlowlorisConnectionsDoNotKeepNormalClientsOut) {
  if (!allow_open_files(4096)) GTEST_SKIP() << "needs 4096 open files (ulimit -Hn)";
  temp_dir dir;
  // A header timeout of 20 s (the default is 10 s): room for the 100 submissions on a loaded
  // machine before the slow connections are cut.
  std::string config = loopback_config(dir, std::string("{tenant: a, key: ") + key_a + "}");
  config.replace(0, config.find('\n'), "server: {listen: 127.0.0.1:0, header_timeout: 20s}");
  relay_process relay(dir, config, key_a);
  ASSERT_TRUE(relay.wait_ready()) << relay.log();

  constexpr int slow_count = 1000;
  std::vector<connection> slow;
  slow.reserve(slow_count);
  for (int i = 0; i < slow_count; ++i) {
    auto c = connection::open(relay.port());
    ASSERT_TRUE(c) << "connection " << i << " refused";
    slow.push_back(std::move(*c));
  }
  const std::string headers = "POST /v1/fetch HTTP/1.1\r\nHost: relay\r\nX-Padding: " + std::string(64, 'a');
  std::atomic<bool> stop{false};
  std::atomic<int> rounds{0};
  std::jthread dribble([&] {
    for (std::size_t at = 0; !stop && at < headers.size(); ++at) {  // bounded: one byte a second
      for (auto& c : slow) (void)c.send(std::string(1, headers[at]));
      ++rounds;
      for (int i = 0; i < 20 && !stop; ++i) std::this_thread::sleep_for(50ms);
    }
  });

  struct stop_on_exit {  // destroyed before the thread joins, also on an early ASSERT return
    std::atomic<bool>& flag;
    ~stop_on_exit() { flag = true; }
  } stopper{stop};

  // Every slow connection is open at the relay before the normal clients come (the gauge also
  // counts the connection that reads /metrics).
  std::string text = relay.metrics_when("fetchrelay_http_connections", slow_count + 1);
  ASSERT_EQ(metric_value(text, "fetchrelay_http_connections"), slow_count + 1) << relay.log().substr(0, 3000);

  int answered = 0;
  for (int n = 0; n < 100; ++n) {
    std::string why;
    if (submit(relay, n, &why)) {
      ++answered;
    } else {
      ADD_FAILURE() << "submission " << n << ": " << why;
    }
  }
  EXPECT_EQ(answered, 100);
  // The slow connections were all still open while the submissions were answered (a
  // submission's own connection may still be closing, hence ≥).
  auto m = relay.call("GET", "/metrics", "");
  ASSERT_TRUE(m);
  EXPECT_GE(metric_value(m->body, "fetchrelay_http_connections"), slow_count + 1);
  EXPECT_GE(rounds.load(), 1);

  // The header timeout cuts them although each keeps sending.
  int closed = 0;
  for (auto& c : slow) closed += c.wait_closed(30s) ? 1 : 0;
  stop = true;
  EXPECT_EQ(closed, slow_count);
  text = relay.metrics_when("fetchrelay_http_connections", 1);
  EXPECT_EQ(metric_value(text, "fetchrelay_http_connections"), 1);
  auto listed = relay.call("GET", "/v1/jobs?limit=100", key_a);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->status, 200) << listed->body;
  EXPECT_EQ(json::parse(listed->body)["jobs"].size(), 100u);
}

// Connections past server.max_connections get 503 too_many_connections and are closed; the
// relay keeps serving, and once the flood goes it takes submissions again.
TEST(Flood, ConnectionsPastMaxConnectionsGet503AndTheRelayGoesOn) {
  temp_dir dir;
  std::string config = loopback_config(dir, std::string("{tenant: a, key: ") + key_a + "}");
  config.replace(0, config.find('\n'), "server: {listen: 127.0.0.1:0, max_connections: 50}");
  relay_process relay(dir, config, key_a);
  ASSERT_TRUE(relay.wait_ready()) << relay.log();
  std::vector<connection> held;
  for (int i = 0; i < 50; ++i) {
    auto c = connection::open(relay.port());
    ASSERT_TRUE(c);
    held.push_back(std::move(*c));
  }
  // /metrics itself needs a connection, so the relay holds 49 idle ones plus the one asking.
  held.pop_back();
  std::string text = relay.metrics_when("fetchrelay_http_connections", 50);
  ASSERT_EQ(metric_value(text, "fetchrelay_http_connections"), 50) << "the relay holds 49 and the /metrics call";
  // The 50th: once the relay has let the /metrics connection go, it is accepted and served.
  std::optional<connection> c50;
  for (int attempt = 0; attempt < 100 && !c50; ++attempt) {
    auto c = connection::open(relay.port());
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send("GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n"));
    auto r = c->read_response(5s);
    if (r && r->status == 200) c50 = std::move(c);
    else std::this_thread::sleep_for(20ms);  // refused: the /metrics connection was still counted
  }
  ASSERT_TRUE(c50) << "the 50th connection was never served";
  held.push_back(std::move(*c50));
  int refused = 0;
  for (int i = 0; i < 30; ++i) {
    auto c = connection::open(relay.port());
    ASSERT_TRUE(c);
    auto r = c->read_response(5s);
    if (r && r->status == 503 && r->body.find("too_many_connections") != std::string::npos) ++refused;
    EXPECT_TRUE(c->wait_closed(5s));
  }
  EXPECT_EQ(refused, 30);
  held.clear();
  // The relay notices the closes and serves again, without a restart.
  text = relay.metrics_when("fetchrelay_http_connections", 1);
  ASSERT_EQ(metric_value(text, "fetchrelay_http_connections"), 1);
  std::string why;
  EXPECT_TRUE(submit(relay, 1, &why)) << why;
  EXPECT_EQ(relay.call("GET", "/readyz", "")->status, 200);
}

// A request that announces 1 GB is refused at its headers: the 413 arrives although not one
// byte of the body was sent, and the connection is closed.
TEST(Flood, AGigabyteBodyIsRefusedAtTheHeaders) {
  temp_dir dir;
  relay_process relay(dir, loopback_config(dir, std::string("{tenant: a, key: ") + key_a + "}"), key_a);
  ASSERT_TRUE(relay.wait_ready()) << relay.log();
  auto c = connection::open(relay.port());
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send(std::string("POST /v1/fetch HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer ") + key_a +
                      "\r\nX-Fetch-Url: http://127.0.0.1:9/x\r\nContent-Type: application/octet-stream\r\n"
                      "Content-Length: 1073741824\r\n\r\n"));
  auto r = c->read_response(5s);
  ASSERT_TRUE(r) << "no answer before the body";
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("body_too_large"), std::string::npos) << r->body;
  EXPECT_TRUE(c->wait_closed(5s));
  std::string why;
  EXPECT_TRUE(submit(relay, 2, &why)) << why;
}

}  // namespace
}  // namespace fetchrelay::test::flood_test
