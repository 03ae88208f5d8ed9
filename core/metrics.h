// Process metrics for GET /metrics, in Prometheus text format. Lock-free updates (atomics) from
// any thread; rendering reads a consistent-enough snapshot.
#pragma once

#include "core/error_class.h"

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/job.h"

namespace fetchrelay {

/// A histogram with fixed upper bounds in milliseconds (plus +Inf).
class histogram {
 public:
  explicit histogram(std::vector<double> bounds_ms);
  void observe(double ms);
  /// Appends the _bucket, _sum and _count lines of `name`; observed values are divided by
  /// `divisor` (1000: milliseconds shown as seconds; 1: plain counts).
  void render(std::string& out, const std::string& name, const std::string& help, double divisor = 1000.0) const;
  /// Observations per bucket (not cumulative), the last one +Inf.
  std::vector<std::uint64_t> counts() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::atomic<std::uint64_t>> buckets_;  // cumulative on render, not here
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_us_{0};
};

/// Outcome classes of delivery attempts.
enum class attempt_class : std::uint8_t {
  s2xx, s3xx, s4xx, s5xx, dns, connect, tls, timeout, reset, protocol, blocked, rejected, unusable, count_
};

std::string_view to_string(attempt_class c) noexcept;
attempt_class classify_attempt(int status, error_class e) noexcept;

struct relay_metrics {
  relay_metrics();

  std::array<std::atomic<std::int64_t>, 7> jobs_by_status{};  // index: job_status value
  std::array<std::atomic<std::uint64_t>, static_cast<size_t>(attempt_class::count_)> attempts{};
  histogram delivery_latency;  // attempt duration
  histogram lateness;          // attempt start minus due time
  histogram commit_latency;    // store write incl. fsync
  histogram commit_batch;      // submissions per store write (a count, not ms)
  std::atomic<std::int64_t> live_job_actors{0};
  std::atomic<std::int64_t> due_index_size{0};
  std::atomic<std::uint64_t> store_failures{0};
  std::atomic<std::uint64_t> jobs_hibernated{0};  // times a job left memory to wait on disk
  std::atomic<std::uint64_t> jobs_activated{0};   // times a job was brought back from its snapshot
  std::atomic<std::uint64_t> jobs_purged{0};      // terminal jobs deleted by the retention sweep
  std::atomic<std::int64_t> store_disk_bytes{0};
  std::atomic<std::uint64_t> rejected_busy{0};     // submissions refused: the store is behind
  std::atomic<std::int64_t> in_flight{0};          // attempts in flight, all origins
  std::atomic<std::int64_t> http_connections{0};   // API connections open
  std::atomic<std::int64_t> http_receiving{0};     // of those, with a request partly received
  std::atomic<std::uint64_t> deferrals{0};         // attempts deferred (not counted as attempts)

  /// Counters and gauges named at run time (by plugins, by deferral reasons). `labels` is the
  /// Prometheus label list without braces (`origin="http://a:80",policy="default"`) or "".
  /// `help` is the family's HELP text unless describe() gave one.
  void add_count(const std::string& family, const std::string& labels, double delta, std::string_view help = {});
  void set_gauge(const std::string& family, const std::string& labels, std::int64_t value, std::string_view help = {});
  /// The HELP text of a family named at run time (a plugin's own words); wins over the default.
  void describe(const std::string& family, std::string help);

  /// The text exposition: every family with HELP and TYPE, then fetchrelay_build_info and the
  /// process_* series (CPU, resident memory, open fds, start time) read from /proc.
  std::string render() const;

 private:
  struct family {
    bool gauge = false;
    std::string help;
    std::map<std::string, double> samples;  // by labels
  };
  mutable std::mutex named_mu_;
  std::map<std::string, family> named_;
  std::map<std::string, std::string> described_;  // family -> HELP given by describe()
  double start_time_s_;                           // process_start_time_seconds
};

/// The upper bound (ms) of the bucket holding quantile q of `counts` over `bounds`; the last
/// bound for +Inf; nullopt without observations.
std::optional<double> bucket_quantile(const std::vector<double>& bounds, const std::vector<std::uint64_t>& counts, double q);

/// Per-minute figures of the last hour for the console's overview (GET /v1/stats), from
/// snapshots of the relay's counters taken at least once a minute (a ticker calls sample()).
class metrics_history {
 public:
  struct minute {
    std::int64_t at_ms = 0;  // the minute's start
    std::uint64_t attempts = 0;
    std::uint64_t delivered = 0;  // attempts answered 2xx
    std::uint64_t failed = 0;     // attempts without a 2xx
    std::optional<double> lateness_p99_ms;
  };
  static constexpr std::size_t kept_minutes = 60;

  /// Records the counters as of `now_ms` if no snapshot of this minute is kept yet.
  void sample(std::int64_t now_ms, const relay_metrics& m);
  /// The kept minutes, oldest first, the current one (so far) last.
  std::vector<minute> minutes(std::int64_t now_ms, const relay_metrics& m) const;

 private:
  struct snapshot {
    std::int64_t minute = 0;
    std::uint64_t attempts = 0, ok = 0;
    std::vector<std::uint64_t> lateness;
  };
  static snapshot take(std::int64_t minute, const relay_metrics& m);
  mutable std::mutex mu_;
  std::deque<snapshot> snaps_;  // one per minute seen, oldest first
};

}  // namespace fetchrelay
