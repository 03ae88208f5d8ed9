// The SSRF guard (DESIGN §8): which resolved addresses delivery may connect to.
//
// By default every address that is not public unicast is refused: loopback, private (RFC 1918),
// CGNAT, link-local (and so cloud metadata at 169.254.169.254), unique-local, multicast,
// unspecified, broadcast, documentation and benchmarking ranges, for IPv4 and IPv6. An IPv6
// address that carries an IPv4 address is also judged as that address: IPv4-mapped
// (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), NAT64
// (64:ff9b::/96) and 6to4 (2002:AABB:CCDD::/48).
//
// allow_private_networks opens all of them (development only); allow_networks opens chosen
// blocks. Pure logic: the check runs on the resolved address, never on the host name.
#pragma once

#include <string>
#include <vector>

#include "core/net.h"

namespace fetchrelay {

class address_policy {
 public:
  address_policy() = default;
  address_policy(bool allow_private_networks, std::vector<cidr> allow_networks)
      : allow_private_(allow_private_networks), allow_(std::move(allow_networks)) {}

  /// True if delivery may connect to `a`.
  bool permits(const ip_address& a) const;

  /// The name of the refused range `a` falls in ("loopback", "private", ...), or "" if public.
  static std::string restricted_range(const ip_address& a);

 private:
  bool allow_private_ = false;
  std::vector<cidr> allow_;
};

}  // namespace fetchrelay
