#include "core/address_policy.h"

#include <gtest/gtest.h>

namespace fetchrelay::address_policy_test {
namespace {

struct address_case {
  const char* address;
  const char* range;  // "" for a public address
};

const address_case cases[] = {
    {"127.0.0.1", "loopback"},
    {"127.255.0.9", "loopback"},
    {"::1", "loopback"},
    {"10.0.0.1", "private"},
    {"10.255.255.53", "private"},
    {"172.16.0.1", "private"},
    {"172.31.255.255", "private"},
    {"192.168.1.1", "private"},
    {"169.254.169.254", "link-local"},  // cloud metadata
    {"100.64.0.1", "carrier-grade NAT"},
    {"100.127.255.254", "carrier-grade NAT"},
    {"fc00::1", "unique-local"},
    {"fd00:ec2::254", "unique-local"},  // AWS metadata over IPv6
    {"fe80::1", "link-local"},
    {"::ffff:127.0.0.1", "loopback"},   // IPv4-mapped IPv6
    {"::ffff:10.1.2.3", "private"},
    {"::ffff:169.254.169.254", "link-local"},
    {"64:ff9b::a9fe:a9fe", "link-local"},  // NAT64 of 169.254.169.254
    {"0.0.0.0", "unspecified"},
    {"::", "unspecified"},
    {"224.0.0.1", "multicast"},
    {"239.255.255.250", "multicast"},
    {"ff02::1", "multicast"},
    {"255.255.255.255", "reserved"},
    {"198.18.0.1", "benchmarking"},
    {"192.0.2.10", "documentation"},
    {"2001:db8::1", "documentation"},
    // IPv6 forms that carry a blocked IPv4 address (the review found the first three retried)
    {"::127.0.0.1", "loopback"},          // IPv4-compatible
    {"::ffff:0:7f00:1", "loopback"},      // IPv4-translated
    {"2002:7f00:1::", "loopback"},        // 6to4
    {"2002:a9fe:a9fe::1", "link-local"},  // 6to4 of the metadata address
    {"::ffff:0:a00:1", "private"},
    {"64:ff9b::10.0.0.1", "private"},     // NAT64
    {"64:ff9b:1::1", "NAT64 local-use"},
    // public
    {"8.8.8.8", ""},
    {"1.1.1.1", ""},
    {"172.32.0.1", ""},
    {"100.128.0.1", ""},
    {"2606:4700:4700::1111", ""},
    {"::ffff:8.8.8.8", ""},
    {"2002:808:808::1", ""},      // 6to4 of a public address
    {"64:ff9b::808:808", ""},     // NAT64 of a public address
};

TEST(AddressPolicy, BlocksRestrictedRangesByDefaultAndAllowsWithPrivateNetworks) {
  address_policy strict;
  address_policy open(true, {});
  for (const auto& c : cases) {
    SCOPED_TRACE(c.address);
    auto ip = parse_ip(c.address);
    ASSERT_TRUE(ip.is_ok());
    EXPECT_EQ(address_policy::restricted_range(*ip), c.range);
    bool is_public = std::string(c.range).empty();
    EXPECT_EQ(strict.permits(*ip), is_public);
    EXPECT_TRUE(open.permits(*ip));
  }
}

TEST(AddressPolicy, AllowListOpensOnlyItsBlocks) {
  address_policy p(false, {*parse_cidr("127.0.0.0/8"), *parse_cidr("::1/128")});
  EXPECT_TRUE(p.permits(*parse_ip("127.0.0.1")));
  EXPECT_TRUE(p.permits(*parse_ip("::ffff:127.0.0.1")));
  EXPECT_TRUE(p.permits(*parse_ip("::1")));
  EXPECT_FALSE(p.permits(*parse_ip("10.0.0.1")));
  EXPECT_FALSE(p.permits(*parse_ip("169.254.169.254")));
  EXPECT_TRUE(p.permits(*parse_ip("8.8.8.8")));
}

}  // namespace
}  // namespace fetchrelay::address_policy_test
