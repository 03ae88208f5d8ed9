#include "core/url.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "core/ascii.h"
#include "core/text.h"

namespace fetchrelay {
namespace {

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_';
}

ip_address v4_address(const std::uint8_t (&b)[4]) {
  ip_address out;
  out.v4 = true;
  out.bytes[10] = 0xff;
  out.bytes[11] = 0xff;
  for (int i = 0; i < 4; ++i) out.bytes[12 + i] = b[i];
  return out;
}

/// The common form, four decimal numbers 0-255 without leading zeros, read without inet_aton
/// (which costs more than the rest of the URL); false for anything else.
bool plain_dotted_quad(std::string_view host, std::uint8_t (&b)[4]) {
  int part = 0;
  std::size_t i = 0;
  while (part < 4) {
    std::size_t start = i;
    unsigned v = 0;
    while (i < host.size() && host[i] >= '0' && host[i] <= '9' && i - start < 3) v = v * 10 + static_cast<unsigned>(host[i++] - '0');
    std::size_t digits = i - start;
    if (digits == 0 || v > 255 || (digits > 1 && host[start] == '0')) return false;
    b[part++] = static_cast<std::uint8_t>(v);
    if (part < 4) {
      if (i >= host.size() || host[i] != '.') return false;
      ++i;
    }
  }
  return i == host.size();
}

/// IPv4 in the forms inet_aton takes (and so getaddrinfo resolves without DNS), as ip_address.
std::optional<ip_address> ipv4_any_form(const std::string& host) {
  std::uint8_t b[4];
  if (plain_dotted_quad(host, b)) return v4_address(b);
  in_addr a{};
  if (inet_aton(host.c_str(), &a) == 0) return std::nullopt;
  std::memcpy(b, &a.s_addr, 4);
  return v4_address(b);
}

}  // namespace

result<parsed_url> parse_url(std::string_view s) {
  if (!is_visible_ascii(s)) {
    return invalid_argument(
        "the URL must be printable ASCII without spaces (percent-encode the path; use the punycode form of a "
        "non-ASCII host name)");
  }
  parsed_url u;
  auto starts = [&](std::string_view p) { return s.size() >= p.size() && iequals(s.substr(0, p.size()), p); };
  if (starts("https://")) {
    u.tls = true;
    s.remove_prefix(8);
  } else if (starts("http://")) {
    s.remove_prefix(7);
  } else {
    return invalid_argument("the URL must start with http:// or https://");
  }
  size_t end = find_any(s, "/?#");
  std::string_view authority = s.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? std::string_view() : s.substr(end);
  if (authority.find('@') != std::string_view::npos) return invalid_argument("user info in URLs is not supported");
  std::string_view host = authority;
  std::string_view port;
  bool bracketed_host = false;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return invalid_argument("unterminated IPv6 address in URL");
    host = authority.substr(1, close - 1);
    bracketed_host = true;
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return invalid_argument("bad port in URL");
      port = authority.substr(close + 2);
      if (port.empty()) return invalid_argument("bad port in URL");
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return invalid_argument("bad port in URL");
  }
  if (host.empty()) return invalid_argument("the URL has no host");
  u.host = std::string(host);
  for (auto& ch : u.host) ch = ascii_lower(ch);
  if (bracketed_host) {
    in6_addr v6{};
    if (u.host.find('%') != std::string::npos || inet_pton(AF_INET6, u.host.c_str(), &v6) != 1) {
      return invalid_argument("\"[" + u.host + "]\" is not an IPv6 address");
    }
    ip_address ip;
    for (int i = 0; i < 16; ++i) ip.bytes[i] = v6.s6_addr[i];
    u.ip = ip;
  } else {
    for (char c : host) {
      if (!is_host_char(c)) return invalid_argument("bad host in URL (letters, digits, '-', '.' and '_' only)");
    }
    u.ip = ipv4_any_form(u.host);
  }
  u.port = u.tls ? 443 : 80;
  if (!port.empty()) {
    unsigned v = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || v > 65535) return invalid_argument("bad port in URL");
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v == 0 || v > 65535) return invalid_argument("bad port in URL");
    u.port = static_cast<std::uint16_t>(v);
  }
  // Built by appending into reserved strings: every attempt parses its URL again.
  char port_buf[8];
  std::string_view port_text(port_buf, static_cast<std::size_t>(std::to_chars(port_buf, port_buf + sizeof port_buf, u.port).ptr - port_buf));
  std::string_view scheme = u.tls ? "https://" : "http://";
  u.origin.reserve(scheme.size() + u.host.size() + 2 + 1 + port_text.size());
  u.origin.append(scheme);
  if (bracketed_host) u.origin += '[';
  u.origin.append(u.host);
  if (bracketed_host) u.origin += ']';
  std::size_t shown_end = u.origin.size();
  u.origin += ':';
  u.origin.append(port_text);
  bool default_port = u.port == (u.tls ? 443 : 80);
  u.host_header.assign(u.origin, scheme.size(), (default_port ? shown_end : u.origin.size()) - scheme.size());
  size_t fragment = rest.find('#');
  if (fragment != std::string_view::npos) rest = rest.substr(0, fragment);
  if (rest.empty() || rest.front() != '/') u.target += '/';
  u.target.append(rest);
  return u;
}

result<std::string> url_origin(std::string_view url) {
  auto u = parse_url(url);
  if (!u) return u.error();
  return u->origin;
}

}  // namespace fetchrelay
