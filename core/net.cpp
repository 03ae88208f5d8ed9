#include "core/net.h"

#include <arpa/inet.h>

#include <charconv>

namespace fetchrelay {

std::string listen_address::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

result<listen_address> parse_listen_address(std::string_view text) {
  listen_address out;
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return invalid_argument("missing ']' after IPv6 address");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return invalid_argument("missing ':<port>' after the address");
    }
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return invalid_argument("missing ':<port>'");
    host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) {
      return invalid_argument("write IPv6 addresses in brackets, e.g. [::1]:8080");
    }
    port = text.substr(colon + 1);
  }
  if (host.empty()) return invalid_argument("missing host (use e.g. 127.0.0.1 or 0.0.0.0)");
  if (host != "localhost" && !parse_ip(host)) {
    return invalid_argument("host must be an IP address or localhost");
  }
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || value > 65535) {
    return invalid_argument("port must be a number from 0 to 65535");
  }
  out.host = std::string(host);
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

result<ip_address> parse_ip(std::string_view text) {
  std::string s(text);
  ip_address out;
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    out.v4 = true;
    out.bytes[10] = 0xff;
    out.bytes[11] = 0xff;
    auto* p = reinterpret_cast<const std::uint8_t*>(&v4.s_addr);
    for (int i = 0; i < 4; ++i) out.bytes[12 + i] = p[i];
    return out;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    for (int i = 0; i < 16; ++i) out.bytes[i] = v6.s6_addr[i];
    return out;
  }
  return invalid_argument("not an IP address");
}

bool cidr::contains(const ip_address& a) const noexcept {
  int bits = prefix_bits;
  for (int i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    std::uint8_t mask = bits >= 8 ? 0xff : static_cast<std::uint8_t>(0xff << (8 - bits));
    if ((a.bytes[i] & mask) != (network.bytes[i] & mask)) return false;
  }
  return true;
}

result<cidr> parse_cidr(std::string_view text) {
  auto slash = text.find('/');
  auto ip = parse_ip(text.substr(0, slash));
  if (!ip) return invalid_argument("not an IP address or CIDR block");
  cidr out;
  out.network = *ip;
  int max_bits = ip->v4 ? 32 : 128;
  int bits = max_bits;
  if (slash != std::string_view::npos) {
    auto p = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), bits);
    if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || bits < 0 ||
        bits > max_bits) {
      return invalid_argument("prefix length must be 0.." + std::to_string(max_bits));
    }
  }
  out.prefix_bits = ip->v4 ? bits + 96 : bits;
  // Reject host bits below the prefix: "10.0.0.1/8" is almost always a typo.
  int b = out.prefix_bits;
  for (int i = 0; i < 16; ++i, b -= 8) {
    std::uint8_t keep = b >= 8 ? 0xff : b <= 0 ? 0 : static_cast<std::uint8_t>(0xff << (8 - b));
    if ((out.network.bytes[i] & ~keep & 0xff) != 0) {
      return invalid_argument("host bits are set below the prefix length");
    }
  }
  return out;
}

}  // namespace fetchrelay
