// What delivery needs from an HTTP client, without the client: the request and result types and
// the interface the destination actors send through. `http::client` (Beast) implements it;
// `app/relay.cpp` hands it to the job manager, so `actors/` depends on nothing in `http/`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error_class.h"
#include "core/job.h"  // header_pair

namespace fetchrelay {

struct outbound_request {
  std::string method = "POST";
  std::string url;  // absolute http:// or https:// URL (core/url.h)
  std::vector<header_pair> headers;
  std::string body;
  std::string user_agent;  // "" = the client's own; QStash deliveries say Upstash-QStash
};

struct outbound_response {
  int status = 0;
  std::vector<header_pair> headers;
  std::string body;              // the first kept_body_bytes bytes
  std::uint64_t body_bytes = 0;  // bytes received in all (stops at max_body_bytes)
  bool body_truncated = false;   // more than kept_body_bytes arrived
  bool body_over_limit = false;  // max_body_bytes was passed: the connection was closed
  bool reused_connection = false;

  std::optional<std::string_view> header(std::string_view name) const;
};

struct outbound_error {
  error_class kind;
  std::string message;
};

/// Exactly one of response or error is set.
struct outbound_result {
  std::optional<outbound_response> response;
  std::optional<outbound_error> error;
};

using send_completion = std::function<void(outbound_result)>;

/// Sends delivery attempts. send() may be called from any thread; the completion runs exactly
/// once (unless the client is destroyed first), on the client's own thread, and must not block.
class delivery_client {
 public:
  virtual ~delivery_client() = default;
  /// `timeout` bounds the whole attempt.
  virtual void send(outbound_request request, std::chrono::milliseconds timeout, send_completion done) = 0;
};

}  // namespace fetchrelay
