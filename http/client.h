// The outbound HTTP client that carries every delivery attempt (Boost.Beast inside; no Beast or
// Asio type in this header).
//
// * Keep-alive pools per origin (scheme://host:port): at most max_connections_per_origin
//   sockets; a connection is reused only if its last response allowed it; past the cap,
//   requests wait in a bounded queue. Idle connections close after pool_idle_timeout.
// * Name resolution on resolver threads (never on the io thread), bounded by the deadline.
// * The SSRF guard judges every resolved address before connecting; each allowed address is
//   tried in turn.
// * TLS ≥ 1.2 with peer and host-name verification against the system store plus an optional
//   ca_file, and SNI.
// * One deadline per attempt covers resolve, connect, handshake, write and read;
//   connect_timeout also bounds each connect + handshake.
// * Redirects are never followed: a 3xx is returned as a response.
// * Response bodies: the first `kept_body_bytes` are kept, the rest is read and dropped up to
//   `max_body_bytes`, past which the connection is closed (the status still decides).
// * Hop-by-hop headers (Connection, Keep-Alive, Transfer-Encoding, TE, Trailer, Upgrade,
//   Proxy-*), Host and Content-Length are never taken from the caller; the client sets Host,
//   Content-Length and User-Agent itself.
//
// Threading: the client runs on its own io thread. send() may be called from any thread. The
// completion runs on the client's io thread exactly once (unless the client is destroyed
// first) and must not block: an actor's caller wraps it around caf::anon_send.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/delivery.h"
#include "core/error_class.h"
#include "core/net.h"
#include "core/url.h"
#include "http/resolver.h"

namespace fetchrelay::http {

using ::fetchrelay::error_class;  // core/error_class.h

// The request and result types are core's (core/delivery.h): actors use them without Beast.
using ::fetchrelay::outbound_error;
using ::fetchrelay::outbound_request;
using ::fetchrelay::outbound_response;
using ::fetchrelay::outbound_result;
using ::fetchrelay::send_completion;

struct client_options {
  std::chrono::milliseconds connect_timeout{5'000};
  int max_connections_per_origin = 64;
  std::size_t max_queued_per_origin = 100'000;
  std::chrono::milliseconds pool_idle_timeout{4'000};
  std::uint64_t kept_body_bytes = 4 << 10;
  std::uint64_t max_body_bytes = 1 << 20;
  std::optional<std::string> ca_file;
  bool allow_private_networks = false;
  std::vector<cidr> allow_networks;
  std::string user_agent = "fetchrelay";
  /// false: one connection per request ("Connection: close"); for benchmarks.
  bool reuse_connections = true;
  resolver_options dns;
};

struct client_stats {
  std::uint64_t connections_opened = 0;
  std::uint64_t requests = 0;
  std::uint64_t reused = 0;
};

/// Checks that `url` is an absolute http(s) URL the client can use and returns its origin,
/// "scheme://host:port" (lower-case host, explicit port). The message says what is wrong.
using ::fetchrelay::url_origin;  // core/url.h

class client final : public delivery_client {
 public:
  /// Fails (invalid_argument) only if the TLS context cannot be built, e.g. a bad ca_file.
  static result<std::unique_ptr<client>> create(client_options options);
  ~client() override;  // stops the io thread; completions still pending are not called

  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// Sends one request; `timeout` bounds the whole attempt.
  void send(outbound_request request, std::chrono::milliseconds timeout, send_completion done) override;

  client_stats stats() const;

  struct impl;

 private:
  explicit client(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace fetchrelay::http
