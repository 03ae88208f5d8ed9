// The API's HTTP/1.1 server (Boost.Beast on Asio io threads). No Beast or Asio type appears
// in this header: requests and responses are plain values.
//
// Threading: the handler runs on an io thread, on the connection's strand. It must not block.
// It answers through the `responder`, now or later, from any thread (e.g. from an actor).
//
// Limits enforced here: max_connections (503 and close), header_timeout and body_timeout
// (slowloris: the connection is closed), idle_timeout for keep-alive, max_header_size (431), max_body (413).
// Malformed requests answer 400. All error answers are JSON.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/metrics.h"
#include "core/status.h"

namespace fetchrelay::http {

using millis = std::chrono::milliseconds;

struct header_field {
  std::string name;
  std::string value;
};

/// A complete request as received: the body has been read in full.
struct request {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // the raw request-target, undecoded (DESIGN §9 needs it raw)
  std::vector<header_field> headers;
  std::string body;

  /// The first header with this name (case-insensitive), or nullopt.
  std::optional<std::string_view> header(std::string_view name) const;
  /// The target's path, without the query string.
  std::string_view path() const;
};

struct response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<header_field> headers;
  std::string body;

  /// A JSON answer; `body` must already be JSON text.
  static response json(int status, std::string body);
  /// {"error":{"code":code,"message":message}}
  static response error(int status, std::string_view code, std::string_view message);
};

namespace detail {
struct pending_response;
}

/// The single answer to one request. Copyable, so it can travel in an actor message; callable
/// from any thread. The first send() wins; later ones are ignored. If the last copy is
/// destroyed without a send, the client gets a 500 so no request hangs forever.
class responder {
 public:
  responder() = default;
  explicit responder(std::shared_ptr<detail::pending_response> p) : p_(std::move(p)) {}

  void send(response r) const;
  bool valid() const noexcept { return p_ != nullptr; }

 private:
  std::shared_ptr<detail::pending_response> p_;
};

using handler = std::function<void(request&&, responder)>;

struct server_options {
  std::string host = "127.0.0.1";  // an IP literal or "localhost"
  std::uint16_t port = 0;          // 0: any free port
  int io_threads = 1;
  int max_connections = 10000;
  millis header_timeout{10'000};
  millis body_timeout{60'000};
  millis idle_timeout{60'000};
  std::uint64_t max_header_size = 32 << 10;
  std::uint64_t max_body = 1 << 20;
  /// Open connections and requests arriving, for /metrics; may be null.
  std::shared_ptr<relay_metrics> metrics;
};

/// One request read from raw bytes by the server's own parser, limits, framing checks and error
/// answers, as a connection that sent exactly these bytes and then closed would see them
/// (the raw-HTTP fuzz target; tests). Exactly one of `req` and `error` is set, or neither when the
/// bytes end before a request does and a connection would just be closed.
struct parsed_request {
  std::optional<request> req;
  std::optional<response> error;  // the 4xx the server answers
  std::size_t consumed = 0;       // bytes of `bytes` the request took
};
parsed_request parse_request_bytes(std::string_view bytes, const server_options& options);

/// Owns the listening socket, the io threads and every connection.
/// start(), shutdown(), wait() and the destructor may be called from any one thread.
class server {
 public:
  server(server_options options, handler h);
  ~server();  // shuts down at once (no grace) if still running, then joins

  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds, listens and starts the io threads. After an ok status, connections are accepted
  /// and port() is the bound port.
  status start();

  std::uint16_t port() const noexcept;
  /// "127.0.0.1:41234" or "[::1]:41234".
  std::string bound_address() const;

  /// Graceful stop: closes the listening socket, closes idle connections, lets requests in
  /// flight (being received, handled or answered) finish with "Connection: close", and after
  /// `grace` closes whatever is left. Idempotent; a second call with a shorter grace hurries.
  void shutdown(millis grace);

  /// Blocks until shutdown has completed and the io threads have ended.
  void wait();

  /// Open client connections now.
  std::size_t connection_count() const;
  /// Connections whose current request has begun to arrive and is not yet complete (tests wait
  /// on it instead of sleeping).
  std::size_t receiving_count() const;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace fetchrelay::http
