#include "core/net.h"

#include <gtest/gtest.h>

namespace fetchrelay::net_test {
namespace {

TEST(ParseListenAddress, AcceptsIpv4Ipv6AndLocalhost) {
  auto a = parse_listen_address("127.0.0.1:8080");
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  auto b = parse_listen_address("[::1]:0");
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 0);
  EXPECT_EQ(b->to_string(), "[::1]:0");
  auto c = parse_listen_address("localhost:9000");
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->to_string(), "localhost:9000");
}

TEST(ParseListenAddress, RejectsWithReasons) {
  struct {
    const char* text;
    const char* error;
  } cases[] = {
      {"8080", "missing ':<port>'"},
      {":8080", "missing host (use e.g. 127.0.0.1 or 0.0.0.0)"},
      {"127.0.0.1:", "port must be a number from 0 to 65535"},
      {"127.0.0.1:65536", "port must be a number from 0 to 65535"},
      {"127.0.0.1:http", "port must be a number from 0 to 65535"},
      {"example.com:80", "host must be an IP address or localhost"},
      {"::1:80", "write IPv6 addresses in brackets, e.g. [::1]:8080"},
      {"[::1:80", "missing ']' after IPv6 address"},
      {"[::1]80", "missing ':<port>' after the address"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    auto r = parse_listen_address(c.text);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.error().message(), c.error);
  }
}

TEST(Cidr, MatchesIpv4Ipv6AndMappedAddresses) {
  auto net10 = parse_cidr("10.0.0.0/8");
  ASSERT_TRUE(net10.is_ok());
  EXPECT_TRUE(net10->contains(*parse_ip("10.1.2.3")));
  EXPECT_FALSE(net10->contains(*parse_ip("11.0.0.1")));
  // An IPv4 block also covers the IPv4-mapped IPv6 form of its addresses.
  EXPECT_TRUE(net10->contains(*parse_ip("::ffff:10.9.9.9")));
  auto ula = parse_cidr("fc00::/7");
  ASSERT_TRUE(ula.is_ok());
  EXPECT_TRUE(ula->contains(*parse_ip("fd12::1")));
  EXPECT_FALSE(ula->contains(*parse_ip("fe80::1")));
  auto host = parse_cidr("::1");
  ASSERT_TRUE(host.is_ok());
  EXPECT_EQ(host->prefix_bits, 128);
  EXPECT_TRUE(parse_cidr("0.0.0.0/0")->contains(*parse_ip("8.8.8.8")));
}

TEST(Cidr, RejectsMalformedBlocks) {
  EXPECT_EQ(parse_cidr("10.0.0.1/8").error().message(), "host bits are set below the prefix length");
  EXPECT_EQ(parse_cidr("10.0.0.0/33").error().message(), "prefix length must be 0..32");
  EXPECT_EQ(parse_cidr("::/129").error().message(), "prefix length must be 0..128");
  EXPECT_EQ(parse_cidr("10.0.0.0/").error().message(), "prefix length must be 0..32");
  EXPECT_EQ(parse_cidr("example.com/8").error().message(), "not an IP address or CIDR block");
}

}  // namespace
}  // namespace fetchrelay::net_test
