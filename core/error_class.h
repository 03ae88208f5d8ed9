// Why an attempt got no HTTP answer: one enum for the client, the job actor, the metrics and
// the logs (the attempt record keeps it as text: "<class>: <message>").
#pragma once

#include <cstdint>
#include <string_view>

namespace fetchrelay {

enum class error_class : std::uint8_t {
  none,      // there was an answer (or the attempt was deferred)
  dns,       // the name does not resolve, or resolution failed
  connect,   // no connection could be made (refused, unreachable, connect timeout, pool full)
  tls,       // handshake or certificate verification failed
  timeout,   // the attempt's deadline passed
  reset,     // the connection broke or closed before the response was complete
  protocol,  // the peer did not speak valid HTTP/1.1
  blocked,   // the SSRF guard refused every resolved address
  rejected,  // a plugin refused the attempt
  unusable,  // the request cannot be sent as it is (a URL the client cannot use, a header with CR/LF)
};

/// "" for none, else the name above.
constexpr std::string_view to_string(error_class c) noexcept {
  switch (c) {
    case error_class::none: return "";
    case error_class::dns: return "dns";
    case error_class::connect: return "connect";
    case error_class::tls: return "tls";
    case error_class::timeout: return "timeout";
    case error_class::reset: return "reset";
    case error_class::protocol: return "protocol";
    case error_class::blocked: return "blocked";
    case error_class::rejected: return "rejected";
    case error_class::unusable: return "unusable";
  }
  return "unknown";
}

/// Trying again cannot help (DESIGN §3): the job fails at once, whatever its retry budget.
constexpr bool is_permanent(error_class c) noexcept {
  return c == error_class::blocked || c == error_class::rejected || c == error_class::unusable;
}

}  // namespace fetchrelay
