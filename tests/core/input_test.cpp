// Bytes from outside: UTF-8 checks and escaping, and the URL rules shared by the API and the
// client (issue: one bad byte must never stop the relay).
#include <gtest/gtest.h>
#include <arpa/inet.h>

#include "core/job_json.h"
#include "core/text.h"
#include "core/url.h"

namespace fetchrelay::input_test {
namespace {

TEST(Utf8, ValidAndInvalidSequences) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("a\xc3"));              // truncated
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));           // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));       // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));       // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));   // past U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\x80"));               // lone continuation
}

TEST(Utf8, EscapingKeepsValidTextAndShowsEachBadByte) {
  EXPECT_EQ(utf8_escaped("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(utf8_escaped("http://a/\xff\xfe"), "http://a/\\xFF\\xFE");
  EXPECT_EQ(utf8_escaped("x\xc3\xa9\xc3"), "x\xc3\xa9\\xC3");
  EXPECT_TRUE(is_valid_utf8(utf8_escaped("\xff\x80\xc0\xaf")));
}

TEST(Utf8, SafeDumpNeverThrows) {
  nlohmann::json j = {{"url", std::string("http://a/\xff")}};
  EXPECT_THROW((void)j.dump(), nlohmann::json::type_error);  // what took the store actor down
  std::string out;
  EXPECT_NO_THROW(out = safe_dump(j));
  EXPECT_TRUE(is_valid_utf8(out));
  EXPECT_NE(out.find("http://a/"), std::string::npos);
}

// A job stored before the checks (or a target's answer) with bytes that are not UTF-8 is shown
// escaped: it never breaks a listing (before: json type_error.316 in the store actor's reply).
TEST(JobJson, BadBytesInAStoredJobAreShownEscaped) {
  job_state s;
  s.id = "job_01JDQX7Z8Y9ABCDEFGHJKMNPQR";
  s.status = job_status::failed;
  s.url = "http://a.example/\xff";
  s.last_error = "status 500 \xc3";
  s.finished_at_ms = 1;
  s.response = response_summary{500, {{"X-Bad\xfe", "v\xff"}}, "body \xff"};
  std::vector<attempt_record> attempts{{1, 0, 5, 500, "protocol: \xff"}};
  std::string out;
  ASSERT_NO_THROW(out = job_json(s, attempts).dump());  // escaped before the dump: no replace needed
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["url"], "http://a.example/\\xFF");
  EXPECT_EQ(j["last_error"], "status 500 \\xC3");
  EXPECT_EQ(j["attempts"][0]["error"], "protocol: \\xFF");
  EXPECT_EQ(j["report"]["response"]["headers"]["X-Bad\\xFE"], "v\\xFF");
  EXPECT_NO_THROW((void)report_json(s).dump());
}

TEST(Url, AcceptsWhatDeliveryCanAttempt) {
  auto u = parse_url("https://Example.COM:8443/a/b?q=1#frag");
  ASSERT_TRUE(u.is_ok());
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "example.com");
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->target, "/a/b?q=1");
  EXPECT_EQ(u->origin, "https://example.com:8443");
  EXPECT_FALSE(u->ip);
  auto v6 = parse_url("http://[::1]:9000");
  ASSERT_TRUE(v6.is_ok());
  EXPECT_EQ(v6->origin, "http://[::1]:9000");
  EXPECT_EQ(v6->host_header, "[::1]:9000");
  ASSERT_TRUE(v6->ip);
  EXPECT_TRUE(parse_url("http://under_score.internal/").is_ok());
  EXPECT_TRUE(parse_url("http://xn--caf-dma.example/%C3%A9").is_ok());
  EXPECT_EQ(u->host_header, "example.com:8443");
  auto plain = parse_url("HTTPS://Example.com?q=1");  // the default port: Host without it
  ASSERT_TRUE(plain.is_ok());
  EXPECT_EQ(plain->host_header, "example.com");
  EXPECT_EQ(plain->origin, "https://example.com:443");
  EXPECT_EQ(plain->target, "/?q=1");
  auto v6_default = parse_url("http://[::1]");
  ASSERT_TRUE(v6_default.is_ok());
  EXPECT_EQ(v6_default->host_header, "[::1]");
  EXPECT_EQ(v6_default->origin, "http://[::1]:80");
  EXPECT_EQ(v6_default->target, "/");
}

TEST(Url, RefusesWhatWouldFailForever) {
  for (const char* bad : {"http://a/\xff", "http://caf\xc3\xa9.example/", "http://a/b c", "http://a/\x01",
                          "http://[::g]/", "http://[1.2.3.4]/", "http://[fe80::1%25eth0]/", "http://a:b:c/",
                          "http://a:/", "http://[::1]:/", "http://ex ample/", "http://a!b/", "ftp://a/",
                          "http://user@a/", "http://a:0/", "http://a:65536/", "http:///x", "http://[::1/"}) {
    EXPECT_FALSE(parse_url(bad).is_ok()) << bad;
  }
}

TEST(Url, KnowsEveryIpv4LiteralFormGetaddrinfoTakes) {
  for (const char* host : {"127.0.0.1", "127.1", "0x7f000001", "2130706433", "0177.0.0.1"}) {
    auto u = parse_url(std::string("http://") + host + "/");
    ASSERT_TRUE(u.is_ok()) << host;
    ASSERT_TRUE(u->ip) << host;
    EXPECT_EQ(u->ip->bytes[12], 127) << host;
    EXPECT_EQ(u->ip->bytes[15], 1) << host;
  }
  EXPECT_FALSE(parse_url("http://example.com/")->ip);
}

// The dotted-quad shortcut reads the same address inet_aton does, and leaves every other form
// (octal, hex, short forms, out of range) to inet_aton.
TEST(Url, Ipv4ShortcutAgreesWithInetAton) {
  for (const char* host : {"0.0.0.0", "10.0.0.255", "255.255.255.255", "192.168.1.20", "256.1.1.1", "1.2.3.256",
                           "010.0.0.1", "1.2.3.04", "1.2.3", "1.2.3.4.5", "1.2.3.", "1..2.3", "1234.1.1.1",
                           "0.0.0.00", "9.99.199.249"}) {
    in_addr a{};
    bool valid = inet_aton(host, &a) != 0;
    auto u = parse_url(std::string("http://") + host + "/");
    ASSERT_TRUE(u.is_ok()) << host;
    ASSERT_EQ(u->ip.has_value(), valid) << host;
    if (!valid) continue;
    const auto* b = reinterpret_cast<const std::uint8_t*>(&a.s_addr);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(u->ip->bytes[12 + i], b[i]) << host << " byte " << i;
  }
}

}  // namespace
}  // namespace fetchrelay::input_test
