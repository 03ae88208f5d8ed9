#include "core/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/version.h"

namespace fetchrelay {

histogram::histogram(std::vector<double> bounds_ms) : bounds_(std::move(bounds_ms)), buckets_(bounds_.size() + 1) {}

void histogram::observe(double ms) {
  size_t i = 0;
  while (i < bounds_.size() && ms > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<std::uint64_t>(ms < 0 ? 0 : ms * 1000), std::memory_order_relaxed);
}

void histogram::render(std::string& out, const std::string& name, const std::string& help, double divisor) const {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  std::uint64_t cumulative = 0;
  char line[256];
  for (size_t i = 0; i < buckets_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    if (i < bounds_.size()) {
      std::snprintf(line, sizeof line, "%s_bucket{le=\"%g\"} %llu\n", name.c_str(), bounds_[i] / divisor,
                    static_cast<unsigned long long>(cumulative));
    } else {
      std::snprintf(line, sizeof line, "%s_bucket{le=\"+Inf\"} %llu\n", name.c_str(),
                    static_cast<unsigned long long>(cumulative));
    }
    out += line;
  }
  std::snprintf(line, sizeof line, "%s_sum %.6f\n%s_count %llu\n", name.c_str(),
                static_cast<double>(sum_us_.load()) / (1000.0 * divisor), name.c_str(),
                static_cast<unsigned long long>(count_.load()));
  out += line;
}

std::vector<std::uint64_t> histogram::counts() const {
  std::vector<std::uint64_t> out;
  out.reserve(buckets_.size());
  for (const auto& b : buckets_) out.push_back(b.load(std::memory_order_relaxed));
  return out;
}

std::optional<double> bucket_quantile(const std::vector<double>& bounds, const std::vector<std::uint64_t>& counts, double q) {
  std::uint64_t total = 0;
  for (auto c : counts) total += c;
  if (total == 0 || bounds.empty()) return std::nullopt;
  auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total) + 0.999999);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    seen += counts[i];
    if (seen >= rank) return bounds[std::min(i, bounds.size() - 1)];
  }
  return bounds.back();
}

metrics_history::snapshot metrics_history::take(std::int64_t minute, const relay_metrics& m) {
  snapshot s;
  s.minute = minute;
  for (std::size_t i = 0; i < m.attempts.size(); ++i) {
    auto n = m.attempts[i].load(std::memory_order_relaxed);  // each counter read once: ok ≤ attempts
    s.attempts += n;
    if (i == static_cast<std::size_t>(attempt_class::s2xx)) s.ok = n;
  }
  s.lateness = m.lateness.counts();
  return s;
}

void metrics_history::sample(std::int64_t now_ms, const relay_metrics& m) {
  std::int64_t minute = now_ms / 60'000;
  std::lock_guard<std::mutex> lock(mu_);
  if (!snaps_.empty() && snaps_.back().minute >= minute) return;
  snaps_.push_back(take(minute, m));
  while (snaps_.size() > kept_minutes) snaps_.pop_front();
}

std::vector<metrics_history::minute> metrics_history::minutes(std::int64_t now_ms, const relay_metrics& m) const {
  std::vector<minute> out;
  std::lock_guard<std::mutex> lock(mu_);
  if (snaps_.empty()) return out;
  snapshot now = take(now_ms / 60'000, m);
  for (std::size_t i = 0; i < snaps_.size(); ++i) {
    const snapshot& a = snaps_[i];
    const snapshot& b = i + 1 < snaps_.size() ? snaps_[i + 1] : now;
    minute row;
    row.at_ms = a.minute * 60'000;
    row.attempts = b.attempts - a.attempts;
    row.delivered = std::min(b.ok - a.ok, row.attempts);
    row.failed = row.attempts - row.delivered;
    std::vector<std::uint64_t> late(a.lateness.size());
    for (std::size_t k = 0; k < late.size() && k < b.lateness.size(); ++k) late[k] = b.lateness[k] - a.lateness[k];
    row.lateness_p99_ms = bucket_quantile(m.lateness.bounds(), late, 0.99);
    out.push_back(row);
  }
  return out;
}

std::string_view to_string(attempt_class c) noexcept {
  switch (c) {
    case attempt_class::s2xx: return "2xx";
    case attempt_class::s3xx: return "3xx";
    case attempt_class::s4xx: return "4xx";
    case attempt_class::s5xx: return "5xx";
    case attempt_class::dns: return "dns";
    case attempt_class::connect: return "connect";
    case attempt_class::tls: return "tls";
    case attempt_class::timeout: return "timeout";
    case attempt_class::reset: return "reset";
    case attempt_class::protocol: return "protocol";
    case attempt_class::blocked: return "blocked";
    case attempt_class::rejected: return "rejected";
    case attempt_class::unusable: return "unusable";
    case attempt_class::count_: break;
  }
  return "other";
}

attempt_class classify_attempt(int status, error_class e) noexcept {
  if (status >= 200 && status < 300) return attempt_class::s2xx;
  if (status >= 300 && status < 400) return attempt_class::s3xx;
  if (status >= 400 && status < 500) return attempt_class::s4xx;
  if (status >= 500) return attempt_class::s5xx;
  switch (e) {
    case error_class::dns: return attempt_class::dns;
    case error_class::connect: return attempt_class::connect;
    case error_class::tls: return attempt_class::tls;
    case error_class::timeout: return attempt_class::timeout;
    case error_class::reset: return attempt_class::reset;
    case error_class::blocked: return attempt_class::blocked;
    case error_class::rejected: return attempt_class::rejected;
    case error_class::unusable: return attempt_class::unusable;
    case error_class::none:
    case error_class::protocol: break;
  }
  return attempt_class::protocol;
}

namespace {
const std::vector<double> latency_ms{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000};

/// A sample value: integers as integers, the rest with enough digits.
std::string number(double v) {
  char buf[64];
  if (std::isfinite(v) && v < 9.0e15 && v > -9.0e15 && v == std::floor(v)) {  // range first: the cast is then defined
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  } else {
    std::snprintf(buf, sizeof buf, "%.6f", v);
  }
  return buf;
}

/// The HELP text as Prometheus escapes it (backslash and newline).
std::string help_text(std::string_view h) {
  std::string out;
  for (char c : h) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

/// Seconds of CPU (user + system) and resident bytes of this process, from /proc/self/stat.
struct proc_stat {
  double cpu_s = 0;
  double rss_bytes = 0;
};

proc_stat read_proc_stat() {
  proc_stat p;
  std::ifstream f("/proc/self/stat");
  std::string line;
  if (!std::getline(f, line)) return p;
  auto close = line.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return p;
  std::istringstream in(line.substr(close + 2));
  std::string field;
  // Fields after the name: 3 state … 14 utime 15 stime … 24 rss (man 5 proc).
  double utime = 0, stime = 0, rss = 0;
  for (int i = 3; i <= 24 && in >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
    if (i == 24) rss = std::stod(field);
  }
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  p.cpu_s = ticks > 0 ? (utime + stime) / ticks : 0;
  p.rss_bytes = rss * static_cast<double>(sysconf(_SC_PAGESIZE));
  return p;
}

std::int64_t open_fds() {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return 0;
  std::int64_t n = 0;
  while (auto* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - 1;  // the directory stream's own descriptor
}

}  // namespace

relay_metrics::relay_metrics()
    : delivery_latency(latency_ms), lateness(latency_ms), commit_latency({0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250}),
      commit_batch({1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}),
      start_time_s_(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()) {
  describe("fetchrelay_deferrals_total", "Attempts deferred (not sent, not counted as attempts), by the plugin that deferred them.");
}

void relay_metrics::describe(const std::string& family, std::string help) {
  std::lock_guard<std::mutex> lock(named_mu_);
  described_[family] = std::move(help);
}

void relay_metrics::add_count(const std::string& family, const std::string& labels, double delta, std::string_view help) {
  std::lock_guard<std::mutex> lock(named_mu_);
  auto& f = named_[family];
  if (f.help.empty()) f.help = help;
  f.samples[labels] += delta;
}

void relay_metrics::set_gauge(const std::string& family, const std::string& labels, std::int64_t value, std::string_view help) {
  std::lock_guard<std::mutex> lock(named_mu_);
  auto& f = named_[family];
  f.gauge = true;
  if (f.help.empty()) f.help = help;
  f.samples[labels] = static_cast<double>(value);
}

std::string relay_metrics::render() const {
  std::string out;
  out += "# HELP fetchrelay_jobs Jobs by status: from the store, except active (attempts in flight now, "
         "which the store still counts as scheduled or retrying).\n# TYPE fetchrelay_jobs gauge\n";
  for (auto s : {job_status::scheduled, job_status::active, job_status::retrying, job_status::delivered,
                 job_status::failed, job_status::cancelled}) {
    auto n = s == job_status::active ? in_flight.load() : jobs_by_status[static_cast<size_t>(s)].load();
    out += "fetchrelay_jobs{status=\"" + std::string(to_string(s)) + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP fetchrelay_attempts_total Delivery attempts by outcome class.\n# TYPE fetchrelay_attempts_total counter\n";
  for (size_t i = 0; i < attempts.size(); ++i) {
    out += "fetchrelay_attempts_total{outcome=\"" + std::string(to_string(static_cast<attempt_class>(i))) + "\"} " +
           std::to_string(attempts[i].load()) + "\n";
  }
  delivery_latency.render(out, "fetchrelay_delivery_latency_seconds", "Duration of delivery attempts.");
  lateness.render(out, "fetchrelay_lateness_seconds", "Attempt start minus the time it was due.");
  commit_latency.render(out, "fetchrelay_store_commit_seconds", "Store writes, fsync included.");
  commit_batch.render(out, "fetchrelay_store_commit_batch_size", "Commit messages per store write.", 1.0);
  auto line = [&out](const char* name, const char* type, const char* help, const std::string& value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + value + "\n";
  };
  line("fetchrelay_live_job_actors", "gauge", "Job actors in memory.", std::to_string(live_job_actors.load()));
  line("fetchrelay_due_index_size", "gauge", "Entries in the in-memory due index.", std::to_string(due_index_size.load()));
  line("fetchrelay_store_failures_total", "counter", "Failed store writes.", std::to_string(store_failures.load()));
  line("fetchrelay_jobs_hibernated_total", "counter", "Times a job left memory to wait on disk.",
       std::to_string(jobs_hibernated.load()));
  line("fetchrelay_jobs_activated_total", "counter", "Times a hibernated job was brought back from its snapshot.",
       std::to_string(jobs_activated.load()));
  line("fetchrelay_jobs_purged_total", "counter", "Terminal jobs deleted by the retention sweep.",
       std::to_string(jobs_purged.load()));
  line("fetchrelay_store_disk_bytes", "gauge", "Bytes the store's files take on disk.", std::to_string(store_disk_bytes.load()));
  line("fetchrelay_submissions_rejected_busy_total", "counter", "Submissions answered 503 because the store was behind.",
       std::to_string(rejected_busy.load()));
  line("fetchrelay_jobs_deferred_total", "counter", "Times a job was deferred by a plugin (no attempt counted).",
       std::to_string(deferrals.load()));
  line("fetchrelay_attempts_in_flight", "gauge", "Delivery attempts in flight, all origins.", std::to_string(in_flight.load()));
  line("fetchrelay_http_connections", "gauge", "API connections open.", std::to_string(http_connections.load()));
  line("fetchrelay_http_requests_receiving", "gauge",
       "API connections whose request has begun to arrive and is not complete (slow uploads show here).",
       std::to_string(http_receiving.load()));
  {
    std::lock_guard<std::mutex> lock(named_mu_);
    for (const auto& [name, f] : named_) {
      auto d = described_.find(name);
      std::string help = d != described_.end() ? d->second : f.help.empty() ? "Named at run time." : f.help;
      out += "# HELP " + name + " " + help_text(help) + "\n# TYPE " + name + (f.gauge ? " gauge\n" : " counter\n");
      for (const auto& [labels, v] : f.samples) {
        out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + number(v) + "\n";
      }
    }
  }
  out += "# HELP fetchrelay_build_info The running build: version and git revision.\n# TYPE fetchrelay_build_info gauge\n";
  out += "fetchrelay_build_info{version=\"" + std::string(version()) + "\",revision=\"" + std::string(git_revision()) + "\"} 1\n";
  auto p = read_proc_stat();
  line("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", number(p.cpu_s));
  line("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", number(p.rss_bytes));
  line("process_open_fds", "gauge", "Number of open file descriptors.", std::to_string(open_fds()));
  line("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", number(start_time_s_));
  return out;
}

}  // namespace fetchrelay
