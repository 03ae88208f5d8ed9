// Built-in plugin `circuit_breaker` (DESIGN §5), for one policy at one origin.
//
//   closed ──(consecutive_failures in a row, or failure_ratio over ≥ min_requests in window)──► open
//   open ──(open_for elapsed)──► half-open: half_open_probes attempts go through
//   half-open ──probe succeeds──► closed        half-open ──probe fails──► open, open_for doubled
//                                               (up to max_open_for), with jitter
//
// Only network errors, timeouts, 5xx and 429 count as failures. Gauge
// fetchrelay_plugin_circuit_breaker_state{origin,policy}: 0 closed, 1 open, 2 half-open. While it is open (or half-open
// with its probes out) attempts are deferred, so no attempt is counted and no job fails.
#include <algorithm>
#include <deque>
#include <fetchrelay/plugin.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

namespace {

using fetchrelay::sdk::verdict;

std::int64_t duration(const nlohmann::json& c, const char* key) {
  auto text = c.at(key).get<std::string>();
  auto ms = fetchrelay::sdk::parse_duration_ms(text);
  if (!ms || *ms <= 0) throw std::runtime_error(std::string(key) + ": expected a duration such as 30s, got \"" + text + "\"");
  return *ms;
}

class circuit_breaker final : public fetchrelay::sdk::plugin {
 public:
  circuit_breaker(const fetchrelay::sdk::host& host, std::string_view config) : host_(host) {
    host_.describe("state", "Breaker state: 0 closed, 1 open, 2 half-open.");
    host_.describe("opened", "Times the breaker opened.");
    host_.describe("half_opened", "Times the breaker let probes through (half-open).");
    host_.describe("closed", "Times the breaker closed again after a successful probe.");
    host_.describe("deferred", "Attempts deferred while the breaker was open.");
    auto c = nlohmann::json::parse(config);
    consecutive_limit_ = c.at("consecutive_failures").get<int>();
    failure_ratio_ = c.at("failure_ratio").get<double>();
    min_requests_ = c.at("min_requests").get<int>();
    window_ms_ = duration(c, "window");
    open_for_ms_ = duration(c, "open_for");
    max_open_for_ms_ = duration(c, "max_open_for");
    probes_ = c.at("half_open_probes").get<int>();
    jitter_ = c.at("jitter").get<double>();
    if (max_open_for_ms_ < open_for_ms_) throw std::runtime_error("max_open_for: shorter than open_for");
    host_.gauge("state", 0);
  }

  verdict on_attempt(fetchrelay::sdk::attempt& a) override {
    std::int64_t now = host_.now_ms();
    if (state_ == state::open) {
      if (now < open_until_ms_) return wait(open_until_ms_, "circuit_breaker: open");
      state_ = state::half_open;
      probes_out_ = 0;
      host_.count("half_opened");
      host_.gauge("state", 2);
    }
    if (state_ == state::half_open) {
      if (probes_out_ >= probes_) {
        return wait(now + std::min<std::int64_t>(current_open_ms_, 1000), "circuit_breaker: half-open, probing");
      }
      ++probes_out_;
      probe_ids_.insert(std::string(a.job_id()));
    }
    return verdict::proceed();
  }

  void on_outcome(const fetchrelay::sdk::attempt& a, const fetchrelay::sdk::outcome& o) override {
    std::int64_t now = host_.now_ms();
    bool probe = probe_ids_.erase(std::string(a.job_id())) > 0;
    if (probe) --probes_out_;
    if (o.not_sent()) return;
    bool failed = o.target_failure();
    if (probe && state_ == state::half_open) {
      if (failed) trip(now);
      else close();
      return;
    }
    if (state_ != state::closed) return;  // an attempt that was in flight when it tripped
    window_.push_back({now, failed});
    window_failures_ += failed ? 1 : 0;
    while (!window_.empty() && window_.front().first <= now - window_ms_) {
      window_failures_ -= window_.front().second ? 1 : 0;
      window_.pop_front();
    }
    consecutive_ = failed ? consecutive_ + 1 : 0;
    // A running count: counting the window on every outcome cost 10 % of the relay's CPU at
    // 10,000 attempts/s (a 30 s window holds 300,000 outcomes).
    bool ratio = static_cast<int>(window_.size()) >= min_requests_ &&
                 static_cast<double>(window_failures_) >= failure_ratio_ * static_cast<double>(window_.size());
    if (consecutive_ >= consecutive_limit_ || (failed && ratio)) trip(now);
  }

 private:
  enum class state { closed, open, half_open };

  /// Defers to `until`, spread by up to 10 % of the open time so waiting jobs do not return at once.
  verdict wait(std::int64_t until, const char* reason) {
    host_.count("deferred");
    auto spread = static_cast<std::int64_t>(host_.random_unit() * 0.1 * static_cast<double>(current_open_ms_));
    return verdict::defer(until + spread, reason);
  }

  void trip(std::int64_t now) {
    current_open_ms_ = state_ == state::half_open ? std::min(current_open_ms_ * 2, max_open_for_ms_) : open_for_ms_;
    double factor = 1.0 + jitter_ * (2.0 * host_.random_unit() - 1.0);
    open_until_ms_ = now + static_cast<std::int64_t>(static_cast<double>(current_open_ms_) * factor);
    state_ = state::open;
    host_.gauge("state", 1);
    window_.clear();
    window_failures_ = 0;
    consecutive_ = 0;
    host_.count("opened");
    host_.log(FR_LOG_WARN, "circuit open for " + std::to_string(open_until_ms_ - now) + " ms");
  }

  void close() {
    state_ = state::closed;
    host_.gauge("state", 0);
    current_open_ms_ = open_for_ms_;
    host_.count("closed");
    host_.log(FR_LOG_INFO, "circuit closed");
  }

  fetchrelay::sdk::host host_;
  int consecutive_limit_ = 5;
  double failure_ratio_ = 0.5;
  int min_requests_ = 20;
  std::int64_t window_ms_ = 30'000;
  std::int64_t open_for_ms_ = 30'000;
  std::int64_t max_open_for_ms_ = 300'000;
  int probes_ = 1;
  double jitter_ = 0.1;

  state state_ = state::closed;
  int consecutive_ = 0;
  std::deque<std::pair<std::int64_t, bool>> window_;  // (time, failed) of recent outcomes
  std::int64_t window_failures_ = 0;                   // how many of them failed
  std::int64_t current_open_ms_ = 30'000;
  std::int64_t open_until_ms_ = 0;
  int probes_out_ = 0;
  std::set<std::string> probe_ids_;
};

}  // namespace

FETCHRELAY_PLUGIN(circuit_breaker, "circuit_breaker", R"({
  "type": "object", "additionalProperties": false,
  "properties": {
    "consecutive_failures": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 5,
                             "description": "Failures in a row that open the circuit."},
    "failure_ratio": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5,
                      "description": "Share of failures within window that opens it (with min_requests)."},
    "min_requests": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 20,
                     "description": "Outcomes within window before failure_ratio applies."},
    "window": {"type": "string", "format": "duration", "default": "30s", "description": "The failure_ratio window."},
    "open_for": {"type": "string", "format": "duration", "default": "30s", "description": "First open period."},
    "max_open_for": {"type": "string", "format": "duration", "default": "5m",
                     "description": "Longest open period; it doubles on each trip from half-open."},
    "half_open_probes": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1,
                         "description": "Attempts let through when half-open."},
    "jitter": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.1,
               "description": "Open periods vary by ± this fraction."}
  }
})")
