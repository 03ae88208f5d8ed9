// The outbound client against real Beast servers on loopback (port 0).
#include "http/client.h"

#include "core/address_policy.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/process.h"
#include "tests/support/test_certs.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::http::client_test {
namespace {

using namespace std::chrono_literals;
using test::test_origin;

/// Loopback only: these tests allow 127.0.0.0/8 and nothing else.
client_options loopback_options() {
  client_options o;
  o.allow_networks = {*parse_cidr("127.0.0.0/8")};
  return o;
}

std::unique_ptr<client> make_client(client_options o = loopback_options()) {
  auto c = client::create(std::move(o));
  EXPECT_TRUE(c.is_ok()) << c.error().message();
  return std::move(*c);
}

outbound_result send_sync(client& c, outbound_request req, std::chrono::milliseconds timeout = 5s) {
  auto p = std::make_shared<std::promise<outbound_result>>();
  auto f = p->get_future();
  c.send(std::move(req), timeout, [p](outbound_result r) { p->set_value(std::move(r)); });
  if (f.wait_for(timeout + 10s) != std::future_status::ready) {
    ADD_FAILURE() << "no completion";
    return {};
  }
  return f.get();
}

outbound_request get(const std::string& url) { return {"GET", url, {}, ""}; }

std::string url(const test_origin& o, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(o.port()) + path;
}

/// A lookup that knows a few names, so no test ever asks a real DNS server.
lookup_fn fake_dns(std::map<std::string, std::string> names) {
  return [names](const std::string& host) -> result<std::vector<ip_address>> {
    if (host == "slow.test") std::this_thread::sleep_for(1500ms);
    auto it = names.find(host);
    if (it == names.end()) return invalid_argument("\"" + host + "\" does not resolve");
    return std::vector<ip_address>{*parse_ip(it->second)};
  };
}

TEST(Client, OkWithBodyAndHeaders) {
  test_origin o;
  auto c = make_client();
  auto r = send_sync(*c, get(url(o, "/ok")));
  ASSERT_TRUE(r.response) << r.error->message;
  EXPECT_EQ(r.response->status, 200);
  EXPECT_EQ(r.response->body, "hello");
  EXPECT_EQ(r.response->body_bytes, 5u);
  EXPECT_FALSE(r.response->body_truncated);
  EXPECT_EQ(r.response->header("content-type"), "text/plain");
}

TEST(Client, ChunkedResponse) {
  test_origin o;
  auto c = make_client();
  auto r = send_sync(*c, get(url(o, "/chunked")));
  ASSERT_TRUE(r.response);
  EXPECT_EQ(r.response->status, 200);
  EXPECT_EQ(r.response->body, "part1part2part3");
  EXPECT_EQ(r.response->header("transfer-encoding"), "chunked");
}

TEST(Client, RedirectIsReturnedNotFollowed) {
  test_origin o;
  auto c = make_client();
  auto r = send_sync(*c, get(url(o, "/redirect")));
  ASSERT_TRUE(r.response);
  EXPECT_EQ(r.response->status, 302);
  EXPECT_EQ(r.response->header("location"), "/ok");
  EXPECT_EQ(o.requests(), 1u);
}

TEST(Client, BodyOverTheHardLimitIsTruncatedAndTheConnectionNotReused) {
  test_origin o;
  client_options opts = loopback_options();
  opts.max_body_bytes = 1 << 20;
  auto c = make_client(opts);
  auto r = send_sync(*c, get(url(o, "/big?n=3145728")));
  ASSERT_TRUE(r.response) << r.error->message;
  EXPECT_EQ(r.response->status, 200);
  EXPECT_EQ(r.response->body, std::string(4096, 'x'));
  EXPECT_TRUE(r.response->body_truncated);
  EXPECT_TRUE(r.response->body_over_limit);
  EXPECT_GT(r.response->body_bytes, 1u << 20);
  EXPECT_LT(r.response->body_bytes, 3145728u);
  auto next = send_sync(*c, get(url(o, "/ok")));
  ASSERT_TRUE(next.response);
  EXPECT_FALSE(next.response->reused_connection);
  EXPECT_EQ(o.accepts(), 2u);
}

TEST(Client, BodyUnderTheHardLimitIsDrainedAndTheConnectionReused) {
  test_origin o;
  auto c = make_client();
  auto r = send_sync(*c, get(url(o, "/big?n=100000")));
  ASSERT_TRUE(r.response);
  EXPECT_EQ(r.response->body.size(), 4096u);
  EXPECT_TRUE(r.response->body_truncated);
  EXPECT_FALSE(r.response->body_over_limit);
  EXPECT_EQ(r.response->body_bytes, 100000u);
  auto next = send_sync(*c, get(url(o, "/ok")));
  ASSERT_TRUE(next.response);
  EXPECT_TRUE(next.response->reused_connection);
  EXPECT_EQ(o.accepts(), 1u);
}

TEST(Client, ServerThatNeverAnswersTimesOutAtTheDeadline) {
  test_origin o;
  auto c = make_client();
  auto t0 = std::chrono::steady_clock::now();
  auto r = send_sync(*c, get(url(o, "/hang")), 300ms);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->kind, error_class::timeout) << r.error->message;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 5s);
}

TEST(Client, NameThatDoesNotResolveIsDns) {
  client_options opts = loopback_options();
  opts.dns.lookup = fake_dns({});
  auto c = make_client(opts);
  auto r = send_sync(*c, get("http://nowhere.test/x"));
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->kind, error_class::dns);
  EXPECT_EQ(r.error->message, "\"nowhere.test\" does not resolve");
}

TEST(Client, SlowDnsIsCutOffAtTheDeadlineWithoutBlockingOthers) {
  test_origin o;
  client_options opts = loopback_options();
  opts.dns.lookup = fake_dns({{"slow.test", "127.0.0.1"}});
  auto c = make_client(opts);
  auto p = std::make_shared<std::promise<outbound_result>>();
  auto slow = p->get_future();
  auto t0 = std::chrono::steady_clock::now();
  c->send(get("http://slow.test:1/x"), 200ms, [p](outbound_result r) { p->set_value(std::move(r)); });
  // The io thread is free meanwhile.
  auto fast = send_sync(*c, get(url(o, "/ok")));
  ASSERT_TRUE(fast.response);
  ASSERT_EQ(slow.wait_for(5s), std::future_status::ready);
  auto r = slow.get();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1400ms) << "waited for the lookup";
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->kind, error_class::timeout);
  EXPECT_EQ(r.error->message, "the deadline passed while resolving slow.test");
}

TEST(Client, RealResolverFindsLocalhost) {
  auto r = system_lookup("localhost");
  ASSERT_TRUE(r.is_ok()) << r.error().message();
  bool loopback = false;
  for (const auto& a : *r) loopback = loopback || address_policy::restricted_range(a) == "loopback";
  EXPECT_TRUE(loopback);
}

TEST(Client, ResolverCachesAnswers) {
  test_origin o;
  client_options opts = loopback_options();
  opts.dns.lookup = fake_dns({{"origin.test", "127.0.0.1"}});
  opts.reuse_connections = false;  // every request resolves again
  auto c = make_client(opts);
  std::string u = "http://origin.test:" + std::to_string(o.port()) + "/ok";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(send_sync(*c, get(u)).response);
  EXPECT_EQ(o.accepts(), 3u);
}

TEST(Client, RefusedPortIsConnect) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);  // bound, never listened: connecting is refused
  auto c = make_client();
  auto r = send_sync(*c, get("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/x"));
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->kind, error_class::connect);
  EXPECT_NE(r.error->message.find("Connection refused"), std::string::npos) << r.error->message;
}

TEST(Client, ServerClosingMidResponseIsReset) {
  test_origin o;
  auto c = make_client();
  auto r = send_sync(*c, get(url(o, "/close-mid")));
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->kind, error_class::reset) << r.error->message;
}

TEST(Client, ThousandSequentialRequestsUseOneConnection) {
  test_origin o;
  auto c = make_client();
  for (int i = 0; i < 1000; ++i) {
    auto r = send_sync(*c, get(url(o, "/ok")));
    ASSERT_TRUE(r.response) << i << ": " << r.error->message;
    ASSERT_EQ(r.response->status, 200);
  }
  EXPECT_EQ(o.accepts(), 1u);
  EXPECT_EQ(c->stats().connections_opened, 1u);
  EXPECT_EQ(c->stats().reused, 999u);
}

TEST(Client, ThousandConcurrentRequestsStayWithinThePoolCap) {
  test_origin o;
  client_options opts = loopback_options();
  opts.max_connections_per_origin = 8;
  auto c = make_client(opts);
  constexpr int n = 1000;
  std::atomic<int> ok{0};
  std::atomic<int> done{0};
  std::promise<void> all;
  for (int i = 0; i < n; ++i) {
    c->send(get(url(o, "/ok")), 30s, [&](outbound_result r) {
      if (r.response && r.response->status == 200) ++ok;
      if (++done == n) all.set_value();
    });
  }
  ASSERT_EQ(all.get_future().wait_for(60s), std::future_status::ready);
  EXPECT_EQ(ok.load(), n);
  EXPECT_LE(o.accepts(), 8u);
  EXPECT_GE(o.accepts(), 1u);
}

TEST(Client, HopByHopAndReservedHeadersAreNotForwarded) {
  test_origin o;
  client_options opts = loopback_options();
  opts.user_agent = "fetchrelay/test";
  auto c = make_client(opts);
  outbound_request req{"POST", url(o, "/echo?a=1"), {}, "{\"k\":1}"};
  req.headers = {{"Connection", "upgrade"},     {"Transfer-Encoding", "chunked"},
                 {"Upgrade", "websocket"},      {"Keep-Alive", "timeout=5"},
                 {"Host", "evil.example"},      {"Content-Length", "999"},
                 {"TE", "trailers"},            {"Proxy-Authorization", "x"},
                 {"User-Agent", "spoofed"},     {"Content-Type", "application/json"},
                 {"Authorization", "Bearer t"}, {"X-Fetch-Job-Id", "job_1"}};
  auto r = send_sync(*c, req);
  ASSERT_TRUE(r.response);
  auto j = nlohmann::json::parse(r.response->body);
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["target"], "/echo?a=1");
  EXPECT_EQ(j["body"], "{\"k\":1}");
  auto h = j["headers"];
  EXPECT_EQ(h["host"], "127.0.0.1:" + std::to_string(o.port()));
  EXPECT_EQ(h["content-length"], "7");
  EXPECT_EQ(h["user-agent"], "fetchrelay/test");
  EXPECT_EQ(h["content-type"], "application/json");
  EXPECT_EQ(h["authorization"], "Bearer t");
  EXPECT_EQ(h["x-fetch-job-id"], "job_1");
  for (const char* banned : {"transfer-encoding", "upgrade", "keep-alive", "te", "proxy-authorization"}) {
    EXPECT_FALSE(h.contains(banned)) << banned;
  }
  EXPECT_NE(h.value("connection", ""), "upgrade");
}

TEST(Client, HeaderWithALineBreakIsRefused) {
  test_origin o;
  auto c = make_client();
  outbound_request req = get(url(o, "/ok"));
  req.headers = {{"X-A", "1\r\nX-Injected: 1"}};
  auto r = send_sync(*c, req);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->kind, error_class::unusable);
  EXPECT_EQ(o.requests(), 0u);
}

TEST(Client, HeaderThatCannotBeWrittenIsRefusedNotDropped) {
  test_origin o;
  auto c = make_client();
  for (header_pair bad : {header_pair{"X A", "1"}, header_pair{"X-A", std::string("1\0", 2)}, header_pair{"", "1"}}) {
    outbound_request req = get(url(o, "/ok"));
    req.headers = {bad};
    auto r = send_sync(*c, req);
    ASSERT_TRUE(r.error) << bad.name;
    EXPECT_EQ(r.error->kind, error_class::unusable) << bad.name;
  }
  EXPECT_EQ(o.requests(), 0u) << "no request goes out with the field silently left out";
}

TEST(Client, IdleConnectionsExpire) {
  test_origin o;
  client_options opts = loopback_options();
  opts.pool_idle_timeout = 100ms;
  auto c = make_client(opts);
  ASSERT_TRUE(send_sync(*c, get(url(o, "/ok"))).response);
  std::this_thread::sleep_for(300ms);
  auto r = send_sync(*c, get(url(o, "/ok")));
  ASSERT_TRUE(r.response);
  EXPECT_FALSE(r.response->reused_connection);
  EXPECT_EQ(o.accepts(), 2u);
}

TEST(Client, PooledConnectionClosedByThePeerIsRetriedOnceOnAFreshOne) {
  test_origin o;
  auto c = make_client();
  ASSERT_TRUE(send_sync(*c, get(url(o, "/ok-then-drop"))).response);
  std::this_thread::sleep_for(50ms);  // the peer's close reaches us while the connection is idle
  auto r = send_sync(*c, get(url(o, "/ok")));
  ASSERT_TRUE(r.response) << r.error->message;
  EXPECT_EQ(r.response->status, 200);
  EXPECT_FALSE(r.response->reused_connection);
  EXPECT_EQ(o.accepts(), 2u);
  EXPECT_EQ(o.requests(), 2u);
}

TEST(Client, ConnectionCloseIsNotReused) {
  test_origin o;
  auto c = make_client();
  ASSERT_TRUE(send_sync(*c, get(url(o, "/close"))).response);
  auto r = send_sync(*c, get(url(o, "/ok")));
  ASSERT_TRUE(r.response);
  EXPECT_FALSE(r.response->reused_connection);
  EXPECT_EQ(o.accepts(), 2u);
}

// -- SSRF ------------------------------------------------------------------------------------

TEST(ClientSsrf, LoopbackIsBlockedByDefault) {
  test_origin o;
  auto c = make_client(client_options{});  // no allow list
  auto r = send_sync(*c, get(url(o, "/ok")));
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->kind, error_class::blocked);
  EXPECT_EQ(r.error->message,
            "127.0.0.1 resolves to 127.0.0.1 (loopback), which delivery may not reach "
            "(delivery.allow_networks / allow_private_networks)");
  EXPECT_EQ(o.accepts(), 0u);
}

TEST(ClientSsrf, AllowPrivateNetworksOpensLoopback) {
  test_origin o;
  client_options opts;
  opts.allow_private_networks = true;
  auto c = make_client(opts);
  auto r = send_sync(*c, get(url(o, "/ok")));
  ASSERT_TRUE(r.response);
}

TEST(ClientSsrf, HostnameResolvingToAPrivateAddressIsBlocked) {
  // The name resolves to a private address; the guard refuses it before any packet is sent.
  client_options opts = loopback_options();
  opts.dns.lookup = fake_dns({{"internal.test", "10.1.2.3"}, {"metadata.test", "169.254.169.254"},
                              {"mapped.test", "::ffff:192.168.0.1"}});
  auto c = make_client(opts);
  for (const char* host : {"internal.test", "metadata.test", "mapped.test"}) {
    auto r = send_sync(*c, get(std::string("http://") + host + "/x"));
    ASSERT_TRUE(r.error) << host;
    EXPECT_EQ(r.error->kind, error_class::blocked) << host;
  }
  EXPECT_EQ(c->stats().connections_opened, 0u);
}

TEST(ClientSsrf, TableOfRestrictedAddressesBehindHostNamesIsBlockedBeforeAnyConnection) {
  const char* addresses[] = {"127.0.0.1",       "127.1.2.3",       "::1",           "10.0.0.1",
                             "172.16.0.1",      "172.31.255.254",  "192.168.1.1",   "169.254.169.254",
                             "100.64.0.1",      "fc00::1",         "fd00:ec2::254", "fe80::1",
                             "::ffff:127.0.0.1", "::ffff:10.0.0.1", "0.0.0.0",       "::",
                             "224.0.0.1",       "ff02::1",         "255.255.255.255", "198.18.0.1",
                             "64:ff9b::a9fe:a9fe"};
  std::map<std::string, std::string> names;
  for (size_t i = 0; i < std::size(addresses); ++i) names["h" + std::to_string(i) + ".test"] = addresses[i];
  client_options opts;  // defaults: nothing private allowed
  opts.dns.lookup = fake_dns(names);
  auto c = make_client(opts);
  for (const auto& [host, address] : names) {
    auto r = send_sync(*c, get("http://" + host + ":8080/x"));
    ASSERT_TRUE(r.error) << host << " -> " << address;
    EXPECT_EQ(r.error->kind, error_class::blocked) << host << " -> " << address;
  }
  EXPECT_EQ(c->stats().connections_opened, 0u);
  // The same guard lets a public address through (checked without contacting it).
  EXPECT_TRUE(address_policy().permits(*parse_ip("93.184.216.34")));
}

// -- TLS -------------------------------------------------------------------------------------

class ClientTls : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = test::make_test_ca("fetchrelay test CA");
    leaf_ = test::make_test_leaf(ca_, {"relay-test.local"}, {});
    pem_pair chain = leaf_;
    origin_ = std::make_unique<test_origin>(&leaf_);
    ca_file_ = dir_.write("ca.pem", ca_.cert);
  }

  std::unique_ptr<client> tls_client(bool with_ca) {
    client_options opts = loopback_options();
    opts.dns.lookup = fake_dns({{"relay-test.local", "127.0.0.1"}, {"other.local", "127.0.0.1"}});
    if (with_ca) opts.ca_file = ca_file_;
    return make_client(opts);
  }

  std::string https(const std::string& host) {
    return "https://" + host + ":" + std::to_string(origin_->port()) + "/ok";
  }

  using pem_pair = test::pem_pair;
  test::temp_dir dir_;
  pem_pair ca_;
  pem_pair leaf_;
  std::unique_ptr<test_origin> origin_;
  std::string ca_file_;
};

TEST_F(ClientTls, SucceedsWithTheCaFile) {
  auto c = tls_client(true);
  auto r = send_sync(*c, get(https("relay-test.local")));
  ASSERT_TRUE(r.response) << r.error->message;
  EXPECT_EQ(r.response->status, 200);
  EXPECT_EQ(r.response->body, "hello");
  auto again = send_sync(*c, get(https("relay-test.local")));
  ASSERT_TRUE(again.response);
  EXPECT_TRUE(again.response->reused_connection);
}

TEST_F(ClientTls, FailsWithoutTheCaFile) {
  auto c = tls_client(false);
  auto r = send_sync(*c, get(https("relay-test.local")));
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->kind, error_class::tls);
  EXPECT_NE(r.error->message.find("certificate verify failed"), std::string::npos) << r.error->message;
}

TEST_F(ClientTls, FailsOnAHostnameMismatch) {
  auto c = tls_client(true);
  auto r = send_sync(*c, get(https("other.local")));
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->kind, error_class::tls) << r.error->message;
}

TEST(ClientTlsConfig, MissingCaFileIsRefusedAtCreation) {
  client_options opts;
  opts.ca_file = "/nonexistent/ca.pem";
  auto c = client::create(opts);
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.error().message().rfind("cannot load delivery.ca_file /nonexistent/ca.pem", 0), 0u);
}

}  // namespace
}  // namespace fetchrelay::http::client_test
