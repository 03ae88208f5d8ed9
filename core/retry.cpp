#include "core/retry.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/time.h"

namespace fetchrelay {

millis backoff_delay(const retry_policy& p, std::uint32_t n) {
  if (n == 0) n = 1;
  if (!p.exponential) {
    if (p.schedule.empty()) return millis(0);
    return p.schedule[std::min<std::size_t>(n - 1, p.schedule.size() - 1)];
  }
  double d = static_cast<double>(p.base.count()) * std::pow(p.factor, static_cast<double>(n - 1));
  if (!(d < static_cast<double>(p.max.count()))) return p.max;  // also catches inf
  return millis(static_cast<std::int64_t>(d));
}

millis apply_jitter(millis d, double jitter, double unit_random) {
  if (jitter <= 0) return d;
  double spread = static_cast<double>(d.count()) * jitter;
  double v = static_cast<double>(d.count()) - spread + 2 * spread * unit_random;
  return millis(std::max<std::int64_t>(0, static_cast<std::int64_t>(std::llround(v))));
}

std::optional<millis> parse_retry_after(std::string_view value, std::int64_t now_ms) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (value.front() >= '0' && value.front() <= '9') {
    std::uint64_t secs = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
    if (ptr != value.data() + value.size()) return std::nullopt;
    if (ec == std::errc::result_out_of_range || secs > 86'400) return max_retry_after;
    if (ec != std::errc()) return std::nullopt;
    return millis(static_cast<std::int64_t>(secs) * 1000);
  }
  auto at_ms = parse_http_date(value);  // "Sun, 06 Nov 1994 08:49:37 GMT"
  if (!at_ms) return std::nullopt;
  std::int64_t delta = *at_ms - now_ms;
  if (delta <= 0) return millis(0);
  return std::min(millis(delta), max_retry_after);
}

classification classify(const retry_policy& p, const attempt_outcome& o) {
  if (o.permanent_error) return {attempt_verdict::fail, "not retried: the attempt cannot succeed"};
  if (o.status >= 200 && o.status < 300) return {attempt_verdict::delivered, ""};
  if (o.status != 0) {
    if (std::find(p.non_retryable.begin(), p.non_retryable.end(), o.status) != p.non_retryable.end()) {
      return {attempt_verdict::fail, "status " + std::to_string(o.status) + " is not retried (policy non_retryable)"};
    }
    if (o.no_retry_header) {
      return {attempt_verdict::fail, "the target answered X-Fetch-No-Retry: true"};
    }
  }
  return {attempt_verdict::retry, ""};
}

}  // namespace fetchrelay
