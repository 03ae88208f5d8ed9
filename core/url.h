// Absolute http(s) URLs as the relay accepts them: targets and callbacks (DESIGN §2). Pure
// parsing, no I/O. The API checks every URL with this at submission, and the client parses it
// again at delivery with the same rules, so a URL that is accepted can always be attempted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/net.h"
#include "core/status.h"

namespace fetchrelay {

struct parsed_url {
  bool tls = false;
  std::string host;         // lower case, without brackets
  std::string host_header;  // as sent in Host
  std::uint16_t port = 0;
  std::string target;       // path and query
  std::string origin;       // scheme://host:port
  /// The address, if the host is an IP literal: IPv4 in any form getaddrinfo takes
  /// (127.0.0.1, 127.1, 0x7f000001, 2130706433) or a bracketed IPv6 address.
  std::optional<ip_address> ip;
};

/// Rules: http:// or https://; printable ASCII only (no spaces, controls or bytes >= 0x80: a
/// non-ASCII name must be sent in its punycode form, a path percent-encoded); no user info; a
/// bracketed host must be a valid IPv6 address; any other host is letters, digits, '-', '.'
/// and '_'; a port from 1 to 65535.
result<parsed_url> parse_url(std::string_view url);

/// scheme://host:port of a valid URL.
result<std::string> url_origin(std::string_view url);

}  // namespace fetchrelay
