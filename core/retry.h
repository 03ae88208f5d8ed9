// Retry policy arithmetic and outcome classification (DESIGN §3). Pure: the caller passes the
// random draw and the clock reading.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/units.h"

namespace fetchrelay {

/// A policy's retries. The initial values are the defaults of a policy in the config (the
/// config test checks them against the schema's).
struct retry_policy {
  std::uint32_t attempts = 10;  // every attempt, the first included
  bool exponential = false;
  /// Wait before retry 1, 2, ...; the last repeats (not exponential).
  std::vector<millis> schedule{millis(5'000),      millis(300'000),    millis(1'800'000),   // 5s 5m 30m
                               millis(7'200'000),  millis(18'000'000), millis(36'000'000),  // 2h 5h 10h
                               millis(50'400'000), millis(72'000'000), millis(86'400'000)}; // 14h 20h 24h
  millis base{1'000};
  double factor = 2.0;
  millis max{3'600'000};
  double jitter = 0.2;             // fraction of each wait, 0..1
  std::vector<int> non_retryable{410};
  bool operator==(const retry_policy&) const = default;
};

/// The wait before retry `n` (1-based: retry 1 follows attempt 1), before jitter.
millis backoff_delay(const retry_policy& p, std::uint32_t n);

/// `d` spread uniformly over [d·(1−jitter), d·(1+jitter)]; `unit_random` is in [0, 1).
millis apply_jitter(millis d, double jitter, double unit_random);

/// The longest Retry-After honoured (DESIGN §3).
inline constexpr millis max_retry_after{24LL * 3'600'000};

/// Retry-After as delta-seconds or an HTTP-date, relative to now_ms, capped at 24 h; nullopt if
/// it cannot be parsed. A date in the past gives 0.
std::optional<millis> parse_retry_after(std::string_view value, std::int64_t now_ms);

/// What one attempt's outcome means for the job.
enum class attempt_verdict { delivered, retry, fail };

struct attempt_outcome {
  int status = 0;                 // HTTP status, 0 if there was no response
  bool permanent_error = false;   // the SSRF guard blocked it or the URL cannot be used
  bool no_retry_header = false;   // X-Fetch-No-Retry: true
  std::optional<millis> retry_after;  // from a 429 or 503
};

struct classification {
  attempt_verdict verdict;
  std::string reason;  // for fail: why the job stops now
};

/// 2xx delivers; a permanent error, a status in non_retryable or X-Fetch-No-Retry fails at once;
/// anything else (network errors, timeouts, 3xx, 4xx, 5xx, 429) retries. Attempts are not
/// counted here.
classification classify(const retry_policy& p, const attempt_outcome& o);

}  // namespace fetchrelay
