// The destinations board: what GET /v1/destinations shows. Per origin (scheme://host:port) and
// per tenant that sent to it: attempts in flight, the recent error rate, plugin deferrals
// (rate-limit waits among them), the last error; per origin and policy, the gauges its plugins
// set (a circuit breaker's state). Destination actors write it, the API reads it; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace fetchrelay {

/// One origin as one tenant sees it.
struct destination_view {
  std::string origin;
  std::int64_t in_flight = 0;
  // Over the last window_minutes whole minutes and the current one.
  std::uint64_t attempts_recent = 0;
  std::uint64_t failures_recent = 0;   // no 2xx: an error, a timeout or a status other than 2xx
  std::uint64_t deferrals_recent = 0;  // attempts a plugin put off (not attempts)
  std::uint64_t rate_limit_waits_recent = 0;  // of those, by rate_limit
  std::uint64_t attempts_total = 0;
  std::uint64_t failures_total = 0;
  std::int64_t last_attempt_ms = 0;
  std::string last_error;  // the last failure: "<status>" or "<class>: <message>"
  std::int64_t last_error_ms = 0;
  /// The circuit breaker's state by policy: "closed", "open" or "half_open" (absent: no breaker).
  std::map<std::string, std::string> breakers;
};

/// One origin's figures; a destination actor holds it and writes to it without a map lookup.
class origin_stats {
 public:
  explicit origin_stats(std::string origin) : origin_(std::move(origin)) {}
  const std::string& origin() const { return origin_; }

  void started(const std::string& tenant, std::int64_t now_ms);
  /// An attempt came back (ok: a 2xx); `error` describes a failure.
  void finished(const std::string& tenant, bool ok, std::string_view error, std::int64_t now_ms);
  /// A plugin deferred an attempt (no attempt was made).
  void deferred(const std::string& tenant, std::string_view plugin, std::int64_t now_ms);
  /// A plugin's gauge (`<plugin>_<name>`, e.g. circuit_breaker_state) for `policy`.
  void plugin_gauge(const std::string& policy, std::string_view name, std::int64_t value);

  /// The tenant's view; false if the tenant never sent here.
  bool view(const std::string& tenant, std::int64_t now_ms, destination_view& out) const;

  static constexpr int window_minutes = 5;

 private:
  struct bucket {
    std::int64_t minute = -1;
    std::uint64_t attempts = 0, failures = 0, deferrals = 0, rate_limit_waits = 0;
  };
  struct tenant_stats {
    std::int64_t in_flight = 0;
    std::array<bucket, window_minutes + 1> ring{};
    std::uint64_t attempts_total = 0, failures_total = 0;
    std::int64_t last_attempt_ms = 0, last_error_ms = 0;
    std::string last_error;
    bucket& at(std::int64_t now_ms);
  };
  const std::string origin_;
  mutable std::mutex mu_;
  std::map<std::string, tenant_stats> tenants_;
  std::map<std::string, std::map<std::string, std::int64_t, std::less<>>> gauges_;  // policy -> name -> value
};

/// One entry per origin sent to since start: as many as the job manager's destination actors,
/// which live as long (a few hundred bytes each, beside the actor's own).
class destination_board {
 public:
  /// The origin's figures, made on first use.
  std::shared_ptr<origin_stats> origin(const std::string& origin);
  /// The tenant's origins in origin order, after `cursor` ("" from the start), at most `limit`;
  /// `more` tells whether others follow.
  std::vector<destination_view> view(const std::string& tenant, std::int64_t now_ms, const std::string& cursor,
                                     std::size_t limit, bool& more) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<origin_stats>> origins_;
};

}  // namespace fetchrelay
