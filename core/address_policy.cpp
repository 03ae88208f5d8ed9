#include "core/address_policy.h"

#include <optional>
#include <utility>

namespace fetchrelay {
namespace {

struct range {
  cidr block;
  const char* name;
};

const std::vector<range>& restricted_ranges() {
  static const std::vector<range> ranges = [] {
    const std::pair<const char*, const char*> table[] = {
        {"0.0.0.0/8", "unspecified"},         {"10.0.0.0/8", "private"},
        {"100.64.0.0/10", "carrier-grade NAT"}, {"127.0.0.0/8", "loopback"},
        {"169.254.0.0/16", "link-local"},     {"172.16.0.0/12", "private"},
        {"192.0.0.0/24", "IETF protocol assignments"}, {"192.0.2.0/24", "documentation"},
        {"192.88.99.0/24", "6to4 relay"},     {"192.168.0.0/16", "private"},
        {"198.18.0.0/15", "benchmarking"},    {"198.51.100.0/24", "documentation"},
        {"203.0.113.0/24", "documentation"},  {"224.0.0.0/4", "multicast"},
        {"240.0.0.0/4", "reserved"},          // includes 255.255.255.255 (broadcast)
        {"::/128", "unspecified"},            {"::1/128", "loopback"},
        {"100::/64", "discard"},              {"2001:db8::/32", "documentation"},
        {"2001::/23", "IETF protocol assignments"},
        {"fc00::/7", "unique-local"},         {"fe80::/10", "link-local"},
        {"fec0::/10", "site-local"},          {"ff00::/8", "multicast"},
        {"64:ff9b:1::/48", "NAT64 local-use"},
    };
    std::vector<range> out;
    for (const auto& [text, name] : table) out.push_back({*parse_cidr(text), name});
    return out;
  }();
  return ranges;
}

/// The IPv4 address an IPv6 address carries, for the forms that reach it: IPv4-compatible
/// (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), NAT64 (64:ff9b::/96) and 6to4
/// (2002:AABB:CCDD::/48). IPv4-mapped addresses are already held as IPv4.
std::optional<ip_address> embedded_v4(const ip_address& a) {
  static const cidr compatible = *parse_cidr("::/96");
  static const cidr translated = *parse_cidr("::ffff:0:0:0/96");
  static const cidr nat64 = *parse_cidr("64:ff9b::/96");
  static const cidr six_to_four = *parse_cidr("2002::/16");
  if (a.v4) return std::nullopt;
  int at = -1;
  if (compatible.contains(a) || translated.contains(a) || nat64.contains(a)) at = 12;
  else if (six_to_four.contains(a)) at = 2;
  if (at < 0) return std::nullopt;
  ip_address v4;
  v4.v4 = true;
  v4.bytes[10] = 0xff;
  v4.bytes[11] = 0xff;
  for (int i = 0; i < 4; ++i) v4.bytes[12 + i] = a.bytes[at + i];
  return v4;
}

std::string range_of(const ip_address& a) {
  for (const auto& r : restricted_ranges()) {
    if (r.block.contains(a)) return r.name;
  }
  return "";
}

}  // namespace

std::string address_policy::restricted_range(const ip_address& address) {
  if (auto name = range_of(address); !name.empty()) return name;
  if (auto v4 = embedded_v4(address)) {
    if (auto name = range_of(*v4); !name.empty()) return name;
  }
  return "";
}

bool address_policy::permits(const ip_address& address) const {
  if (allow_private_) return true;
  auto v4 = embedded_v4(address);
  for (const auto& c : allow_) {
    if (c.contains(address) || (v4 && c.contains(*v4))) return true;
  }
  return restricted_range(address).empty();
}

}  // namespace fetchrelay
