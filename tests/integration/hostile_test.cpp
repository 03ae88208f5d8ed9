// Hostile input against the real fetchrelay process on loopback (issue: one bad byte must never
// stop the relay). Each test here failed on the code before the fix; the comment says how.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/relay_process.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::test::hostile_test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* key_a = "relay_sk_tenant_a_123";
constexpr const char* key_b = "relay_sk_tenant_b_456";

std::string config_text(const temp_dir& dir, const std::string& delivery = "{allow_networks: [127.0.0.0/8]}") {
  return "server: {listen: 127.0.0.1:0}\n"
         "storage: {path: " + dir.file("data") + "}\n"
         "auth: {keys: [{tenant: a, key: " + key_a + "}, {tenant: b, key: " + key_b + "}]}\n"
         "delivery: " + delivery + "\n"
         "policies:\n  default: {timeout: 2s, retry: {attempts: 3, schedule: [200ms], jitter: 0}}\n";
}

std::string url_of(const test_origin& o, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(o.port()) + path;
}

/// The relay still takes, lists and delivers a valid job, and says it is ready.
void expect_still_serving(relay_process& relay, const test_origin& origin, const std::string& tag) {
  SCOPED_TRACE("still serving after " + tag);
  auto r = relay.call("POST", "/v1/fetch", key_a, "X-Fetch-Url: " + url_of(origin, "/jobs/" + tag) + "\r\n", "{}");
  ASSERT_TRUE(r) << "no answer: " << relay.log();
  ASSERT_EQ(r->status, 202) << r->body;
  std::string id = json::parse(r->body)["id"];
  auto job = relay.wait_terminal(id);
  EXPECT_EQ(job["status"], "delivered") << job.dump();
  for (const char* status : {"", "delivered", "scheduled", "failed"}) {
    auto l = relay.call("GET", std::string("/v1/jobs?limit=100") + (*status ? "&status=" : "") + status, key_a);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->status, 200) << status << ": " << l->body;
    EXPECT_NO_THROW((void)json::parse(l->body));
  }
  auto ready = relay.call("GET", "/readyz", "");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
}

// Before: a 0xFF in X-Fetch-Url answered 202; the next listing threw in the store actor's reply
// (json type_error.316), after which every POST /v1/fetch hung, also after a restart. X-Delay,
// X-Policy and the path answered 500.
TEST(Hostile, A0xFFInEveryHeaderTheApiReadsAndInThePathIs4xxAndTheRelayGoesOn) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config_text(dir), key_a);
  ASSERT_NE(relay.port(), 0) << relay.log();
  const std::string ok_url = url_of(origin, "/ok");
  struct bad_case {
    std::string headers;
    std::string code;
  };
  const std::vector<bad_case> cases = {
      {"X-Fetch-Url: " + ok_url + "/\xff\r\n", "invalid_url"},
      {"X-Fetch-Url: http://caf\xc3\xa9.example/\r\n", "invalid_url"},
      {"X-Fetch-Url: " + ok_url + "\r\nX-Fetch-Method: P\xffST\r\n", "invalid_header"},
      {"X-Fetch-Url: " + ok_url + "\r\nX-Delay: 1\xff\r\n", "invalid_header"},
      {"X-Fetch-Url: " + ok_url + "\r\nX-Delay: \xef\xbc\x91s\r\n", "invalid_header"},  // fullwidth 1
      {"X-Fetch-Url: " + ok_url + "\r\nX-Not-Before: 2026\xff\r\n", "invalid_header"},
      {"X-Fetch-Url: " + ok_url + "\r\nX-Policy: def\xffult\r\n", "invalid_header"},
      {"X-Fetch-Url: " + ok_url + "\r\nX-Retries: 1\xff\r\n", "invalid_header"},
      {"X-Fetch-Url: " + ok_url + "\r\nX-Timeout: 1\xffs\r\n", "invalid_header"},
      {"X-Fetch-Url: " + ok_url + "\r\nX-Callback: " + ok_url + "/\xff\r\n", "invalid_callback"},
      {"X-Fetch-Url: " + ok_url + "\r\nX-Failure-Callback: " + ok_url + "/\xff\r\n", "invalid_callback"},
      {"X-Fetch-Url: " + ok_url + "\r\nX-Idempotency-Key: k\xff\r\n", "invalid_header"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.headers);
    auto r = relay.call("POST", "/v1/fetch", key_a, c.headers, "{}");
    ASSERT_TRUE(r) << relay.log();
    EXPECT_EQ(r->status, 400) << r->body;
    ASSERT_NO_THROW((void)json::parse(r->body)) << r->body;
    EXPECT_EQ(json::parse(r->body)["error"]["code"], c.code) << r->body;
  }
  for (const std::string path : {"/v1/fetch\xff", "/v1/jobs/job_\xff", "/\xff", "/v1/jobs?status=\xff"}) {
    auto r = relay.call("GET", path, key_a);
    ASSERT_TRUE(r) << relay.log();
    EXPECT_GE(r->status, 400) << path;
    EXPECT_LT(r->status, 500) << path << ": " << r->body;
  }
  auto r = relay.call("GET", "/v1/jobs?status=%FF&cursor=%FF", key_a);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  expect_still_serving(relay, origin, "after-bad-bytes");
  EXPECT_EQ(relay.stop(), 0);
  relay.start();
  ASSERT_NE(relay.port(), 0) << relay.log();
  expect_still_serving(relay, origin, "after-restart");
}

// Before: a 409 told tenant B that tenant A's unfinished job exists.
TEST(Hostile, AnotherTenantsJobIs404OnEveryPerJobRoute) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config_text(dir), key_a);
  ASSERT_NE(relay.port(), 0) << relay.log();
  auto r = relay.call("POST", "/v1/fetch", key_a, "X-Fetch-Url: " + url_of(origin, "/hang") + "\r\nX-Timeout: 30s\r\n");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  std::string id = json::parse(r->body)["id"];
  for (auto [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/v1/jobs/" + id}, {"DELETE", "/v1/jobs/" + id}, {"POST", "/v1/jobs/" + id + "/retry"}}) {
    auto other = relay.call(method, path, key_b);
    ASSERT_TRUE(other);
    EXPECT_EQ(other->status, 404) << method << " " << path << ": " << other->body;
  }
  auto own = relay.call("POST", "/v1/jobs/" + id + "/retry", key_a);
  ASSERT_TRUE(own);
  EXPECT_EQ(own->status, 409) << "the owner learns it is not finished: " << own->body;
  auto still = relay.call("GET", "/v1/jobs/" + id, key_a);
  ASSERT_TRUE(still);
  EXPECT_NE(json::parse(still->body)["status"], "cancelled");
}

// Before: accepted with 202, then failing (or retried) forever.
TEST(Hostile, WhatCanNeverBeDeliveredIsRefusedAtSubmission) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config_text(dir, "{allow_private_networks: false}"), key_a);
  ASSERT_NE(relay.port(), 0) << relay.log();
  struct bad_case {
    std::string headers;
    std::string code;
  };
  const std::vector<bad_case> cases = {
      {"X-Fetch-Url: http://[::g]/\r\n", "invalid_url"},
      {"X-Fetch-Url: http://10.0.0.1/\r\n", "blocked_destination"},
      {"X-Fetch-Url: http://127.0.0.1:9/\r\n", "blocked_destination"},
      {"X-Fetch-Url: http://0x7f000001/\r\n", "blocked_destination"},
      {"X-Fetch-Url: http://2130706433/\r\n", "blocked_destination"},
      {"X-Fetch-Url: http://169.254.169.254/latest/meta-data\r\n", "blocked_destination"},
      {"X-Fetch-Url: http://[::1]/\r\n", "blocked_destination"},
      {"X-Fetch-Url: http://[::127.0.0.1]/\r\n", "blocked_destination"},
      {"X-Fetch-Url: http://[::ffff:0:7f00:1]/\r\n", "blocked_destination"},
      {"X-Fetch-Url: http://[::ffff:127.0.0.1]/\r\n", "blocked_destination"},
      {"X-Fetch-Url: http://[2002:7f00:1::]/\r\n", "blocked_destination"},
      {"X-Fetch-Url: http://[64:ff9b::a9fe:a9fe]/\r\n", "blocked_destination"},
      {"X-Fetch-Url: http://8.8.8.8/\r\nX-Callback: http://192.168.1.1/cb\r\n", "blocked_destination"},
      {"X-Fetch-Url: http://8.8.8.8/\r\nX-Failure-Callback: http://[fd00::1]/cb\r\n", "blocked_destination"},
      {"X-Fetch-Url: http://8.8.8.8/\r\nX-Not-Before: 2026-02-30T10:00:00Z\r\n", "invalid_not_before"},
      {"X-Fetch-Url: http://8.8.8.8/\r\nX-Not-Before: 2026-12-01T10:00:00+25:00\r\n", "invalid_not_before"},
      {"X-Fetch-Url: http://8.8.8.8/\r\nX-Delay: 1s\r\nX-Delay: 1h\r\n", "duplicate_header"},
      {"X-Fetch-Url: http://8.8.8.8/\r\nX-Fetch-Url: http://8.8.4.4/\r\n", "duplicate_header"},
      {"X-Fetch-Url: http://8.8.8.8/\r\nX-Policy: default\r\nx-policy: default\r\n", "duplicate_header"},
      {"X-Fetch-Url: http://8.8.8.8/\r\nX-Idempotency-Key: a\r\nX-Idempotency-Key: b\r\n", "duplicate_header"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.headers);
    auto r = relay.call("POST", "/v1/fetch", key_a, c.headers);
    ASSERT_TRUE(r) << relay.log();
    EXPECT_EQ(r->status, 400) << r->body;
    EXPECT_EQ(json::parse(r->body)["error"]["code"], c.code) << r->body;
  }
  // Forwarded headers are passed on as given, repeats included.
  auto r = relay.call("POST", "/v1/fetch", key_a,
                      "X-Fetch-Url: http://8.8.8.8/\r\nX-Delay: 1h\r\nX-Fetch-Forward-A: 1\r\nX-Fetch-Forward-A: 2\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202) << r->body;
  auto list = relay.call("GET", "/v1/jobs", key_a);
  ASSERT_TRUE(list);
  EXPECT_EQ(json::parse(list->body)["jobs"].size(), 1u) << "only the valid job was stored: " << list->body;
}

// Before: a repeat always said "scheduled", and the same key with another URL or body silently
// returned the first job.
TEST(Hostile, IdempotencyRepeatsTellTheStatusNowAndOtherRequestsUnderTheKeyAre409) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config_text(dir), key_a);
  ASSERT_NE(relay.port(), 0) << relay.log();
  const std::string url = "X-Fetch-Url: " + url_of(origin, "/ok") + "\r\n";
  const std::string keyed = url + "X-Idempotency-Key: order-9\r\nX-Fetch-Forward-X-Shop: 1\r\n";
  auto first = relay.call("POST", "/v1/fetch", key_a, keyed, "{\"a\":1}");
  ASSERT_TRUE(first && first->status == 202);
  std::string id = json::parse(first->body)["id"];
  ASSERT_EQ(relay.wait_terminal(id)["status"], "delivered");
  auto repeat = relay.call("POST", "/v1/fetch", key_a, keyed, "{\"a\":1}");
  ASSERT_TRUE(repeat);
  EXPECT_EQ(repeat->status, 202);
  auto r = json::parse(repeat->body);
  EXPECT_EQ(r["id"], id);
  EXPECT_EQ(r["status"], "delivered") << repeat->body;
  EXPECT_EQ(r["deduplicated"], true);
  for (const auto& [headers, body] : std::vector<std::pair<std::string, std::string>>{
           {"X-Fetch-Url: " + url_of(origin, "/jobs/other") + "\r\nX-Idempotency-Key: order-9\r\nX-Fetch-Forward-X-Shop: 1\r\n", "{\"a\":1}"},
           {keyed, "{\"a\":2}"},
           {url + "X-Idempotency-Key: order-9\r\nX-Fetch-Forward-X-Shop: 2\r\n", "{\"a\":1}"},
           {keyed + "X-Fetch-Method: PUT\r\n", "{\"a\":1}"}}) {
    SCOPED_TRACE(headers + body);
    auto c = relay.call("POST", "/v1/fetch", key_a, headers, body);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->status, 409) << c->body;
    EXPECT_EQ(json::parse(c->body)["error"]["code"], "idempotency_key_conflict");
    EXPECT_NE(c->body.find(id), std::string::npos) << "the answer names the first job";
  }
  EXPECT_EQ(origin.requests(), 1u);
}

/// One request built from random bytes in one place (method, path, an X-* header or the framing),
/// or a valid one; the rest is valid, so most requests reach the part under test.
struct fuzz_case {
  std::string text;
  bool framing = false;  // the body length may be in doubt: the client half-closes after it
};

fuzz_case random_request(std::mt19937_64& rng, const std::string& url) {
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  auto bytes = [&](std::size_t max_len) {
    std::string s(1 + pick(max_len), '\0');
    for (auto& c : s) {
      auto kind = pick(100);
      if (kind < 10) c = static_cast<char>(0x80 + pick(0x80));      // non-ASCII
      else if (kind < 13) c = static_cast<char>(pick(0x20));         // controls, CR and LF included
      else c = static_cast<char>(0x20 + pick(0x5f));                 // printable
    }
    return s;
  };
  static const char* x_headers[] = {"X-Fetch-Url", "X-Fetch-Method", "X-Delay", "X-Not-Before", "X-Policy",
                                    "X-Retries", "X-Timeout", "X-Callback", "X-Failure-Callback",
                                    "X-Idempotency-Key", "X-Fetch-Forward-Auth", "Authorization",
                                    "Content-Type"};
  std::string method = "POST", path = "/v1/fetch", body = "{\"n\":1}";
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Host", "relay"}, {"Authorization", std::string("Bearer ") + key_a}, {"X-Fetch-Url", url}, {"X-Delay", "1h"}};
  fuzz_case out;
  std::string framing;
  auto where = pick(20);  // one in five stays valid: the relay must keep taking jobs among the rest
  switch (where < 3 ? 0 : where < 6 ? 1 : where < 12 ? 2 : where < 16 ? 3 : 4) {
    case 0: method = bytes(12); break;
    case 1: path = pick(2) ? "/" + bytes(40) : "/v1/jobs" + bytes(40); break;
    case 2: {
      std::string name = x_headers[pick(std::size(x_headers))];
      bool replaced = false;
      for (auto& [n, v] : headers) {
        if (n == name) v = bytes(60), replaced = true;
      }
      if (!replaced) headers.emplace_back(name, bytes(60));
      if (pick(5) == 0) headers.emplace_back(name, bytes(20));  // and sometimes twice
      break;
    }
    case 4: break;
    default: {
      out.framing = true;
      static const char* names[] = {"Transfer-Encoding", "Content-Length"};
      int n = 1 + static_cast<int>(pick(3));
      for (int i = 0; i < n; ++i) {
        std::string v = pick(2) ? bytes(12) : std::vector<std::string>{"chunked", "gzip", "3", "7", "-1", "chunked, gzip", " 7"}[pick(7)];
        framing += std::string(names[pick(2)]) + ": " + v + "\r\n";
      }
    }
  }
  out.text = method + " " + path + " HTTP/1.1\r\n";
  for (const auto& [n, v] : headers) out.text += n + ": " + v + "\r\n";
  out.text += framing.empty() ? "Content-Length: " + std::to_string(body.size()) + "\r\n" : framing;
  out.text += "\r\n" + body;
  return out;
}

std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

// Property: no request made of random bytes in the method, the path, any X-* header or the
// framing headers gets a 5xx; afterwards the relay still takes, lists and delivers a job.
TEST(Hostile, TwentyThousandRandomRequestsGetNo5xxAndTheRelayGoesOn) {
  const std::uint64_t seed = 20261129;
  std::printf("property seed: %llu\n", static_cast<unsigned long long>(seed));
  temp_dir dir;
  test_origin origin;
  std::string cfg = config_text(dir);
  cfg.replace(cfg.find("storage: {path: "), 16, "storage: {sync: false, path: ");
  relay_process relay(dir, cfg, key_a);
  ASSERT_NE(relay.port(), 0) << relay.log();
  std::mt19937_64 rng(seed);
  const std::string url = url_of(origin, "/ok");
  std::optional<connection> c;
  std::map<int, int> statuses;
  int no_answer = 0, done = 0;
  auto deadline = std::chrono::steady_clock::now() + 150s;
  for (int i = 0; i < 20000 && std::chrono::steady_clock::now() < deadline; ++i, ++done) {
    auto req = random_request(rng, url);
    if (!c) c = connection::open(relay.port());
    ASSERT_TRUE(c) << "cannot connect at request " << i << ": " << relay.log();
    ASSERT_TRUE(c->send(req.text) || (c = connection::open(relay.port()), c && c->send(req.text))) << i;
    if (req.framing) ::shutdown(c->fd(), SHUT_WR);  // a body length in doubt must not hang the test
    auto r = c->read_response(5s);
    if (!r) {
      ++no_answer;  // closed without an answer (e.g. the request was never complete)
      c.reset();
      continue;
    }
    ++statuses[r->status];
    ASSERT_LT(r->status, 500) << "request " << i << " (seed " << seed << "): " << printable(req.text) << "\n"
                              << r->body;
    if (req.framing || r->headers["connection"] == "close") c.reset();
  }
  EXPECT_EQ(done, 20000) << "the 150 s bound cut the run short";
  std::string summary;
  for (auto [status, n] : statuses) summary += std::to_string(status) + ":" + std::to_string(n) + " ";
  std::printf("statuses: %sno answer: %d\n", summary.c_str(), no_answer);
  EXPECT_GT(statuses[202], 1000) << "too few valid requests: the property would test little";
  EXPECT_GT(statuses[400], 1000);
  expect_still_serving(relay, origin, "after-fuzz");
}

}  // namespace
}  // namespace fetchrelay::test::hostile_test
