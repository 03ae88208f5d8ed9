// Name resolution for outbound delivery that never blocks an io thread.
//
// getaddrinfo blocks and cannot be cut off, so lookups run on a small pool of resolver threads;
// the caller enforces its own deadline and simply ignores an answer that comes too late.
// Concurrent lookups of the same name share one getaddrinfo call. getaddrinfo gives no TTL, so
// answers are cached for a fixed time (failures for a shorter one).
//
// Thread-safety: resolve() may be called from any thread; the callback runs on a resolver
// thread (or inline for a cache hit or an IP literal) and must not block.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/net.h"
#include "core/status.h"

namespace fetchrelay::http {

/// The blocking lookup itself; the default wraps ::getaddrinfo. Tests inject their own to
/// simulate names that do not resolve, slow DNS, or names that map to chosen addresses.
using lookup_fn = std::function<result<std::vector<ip_address>>(const std::string& host)>;

/// ::getaddrinfo (AF_UNSPEC, SOCK_STREAM), addresses in the order the system prefers.
result<std::vector<ip_address>> system_lookup(const std::string& host);

struct resolver_options {
  int threads = 2;
  std::chrono::milliseconds positive_ttl{30'000};
  std::chrono::milliseconds negative_ttl{5'000};
  lookup_fn lookup = system_lookup;
};

class resolver {
 public:
  using callback = std::function<void(result<std::vector<ip_address>>)>;

  explicit resolver(resolver_options options = {});
  ~resolver();  // joins the threads; callbacks of lookups still queued are dropped

  resolver(const resolver&) = delete;
  resolver& operator=(const resolver&) = delete;

  /// Resolves `host` (an IP literal answers at once). Errors: invalid_argument for a name that
  /// does not exist, unavailable for a temporary failure.
  void resolve(const std::string& host, callback cb);

  /// getaddrinfo calls made so far (cache misses), for tests.
  std::size_t lookups() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fetchrelay::http
