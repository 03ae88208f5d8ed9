// Address literals: listen addresses and CIDR blocks. Pure parsing, no I/O, no DNS.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fetchrelay {

/// host:port where host is an IPv4 literal, a bracketed IPv6 literal or "localhost".
struct listen_address {
  std::string host;  // without brackets; "localhost" is kept as written
  std::uint16_t port = 0;

  std::string to_string() const;  // "127.0.0.1:8080", "[::1]:0"
};

result<listen_address> parse_listen_address(std::string_view text);

/// An IP address as 16 bytes; IPv4 addresses are held IPv4-mapped (::ffff:a.b.c.d).
struct ip_address {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = false;
};

result<ip_address> parse_ip(std::string_view text);

/// A network block, e.g. 10.0.0.0/8 or fc00::/7. Held in the 128-bit space: an IPv4
/// block's prefix is stored plus 96, so an IPv4-mapped IPv6 address matches it too.
struct cidr {
  ip_address network;
  int prefix_bits = 0;  // in the 128-bit space

  bool contains(const ip_address& a) const noexcept;
};

/// "10.0.0.0/8", "::1/128"; a bare address means a single host (/32 or /128).
/// Host bits set below the prefix are an error ("10.0.0.1/8").
result<cidr> parse_cidr(std::string_view text);

}  // namespace fetchrelay
