#include "core/address_policy.h"

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
    };
    std::vector<range> out;
    for (const auto& [text, name] : table) out.push_back({*parse_cidr(text), name});
    return out;
  }();
  return ranges;
}

/// For NAT64 (64:ff9b::/96) the IPv4 address in the low 32 bits is what is reached.
ip_address effective(const ip_address& a) {
  static const cidr nat64 = *parse_cidr("64:ff9b::/96");
  if (!nat64.contains(a)) return a;
  ip_address v4;
  v4.v4 = true;
  v4.bytes[10] = 0xff;
  v4.bytes[11] = 0xff;
  for (int i = 12; i < 16; ++i) v4.bytes[i] = a.bytes[i];
  return v4;
}

}  // namespace

std::string address_policy::restricted_range(const ip_address& address) {
  ip_address a = effective(address);
  for (const auto& r : restricted_ranges()) {
    if (r.block.contains(a)) return r.name;
  }
  return "";
}

bool address_policy::permits(const ip_address& address) const {
  if (allow_private_) return true;
  ip_address a = effective(address);
  for (const auto& c : allow_) {
    if (c.contains(a) || c.contains(address)) return true;
  }
  return restricted_range(address).empty();
}

}  // namespace fetchrelay
