// Built-in plugin `rate_limit` (DESIGN §5): GCRA with `rate` and `burst`, plus `max_in_flight`,
// for one policy at one origin.
//
// Over any window of t seconds the target sees at most burst + rate·t attempts. An attempt over
// the limit is deferred to the exact time GCRA gives it, and that slot is reserved for its job,
// so deferred jobs come back staggered, not together. A job coming back late (or early) is
// checked again against the attempts actually sent, so the bound holds for what was sent. A
// 429 with Retry-After pauses the origin until then.
//
// Several relays on one database (`scope: cluster`, the default): the relay paces its own
// attempts as above, and each one also needs a token of the bucket every relay shares (the host's
// take_tokens); without one it goes back behind the others. Tokens are leased for a second, so
// the cluster's bound is burst + rate·(t + 1 s). `scope: node` instead splits the rate and the
// burst evenly between the relays alive. Alone (no shared bucket) both are the single-node limit.
//
// Times are kept in microseconds; the host clock is in milliseconds.
#include <algorithm>
#include <fetchrelay/plugin.hpp>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <unordered_map>

namespace {

using fetchrelay::sdk::verdict;

class rate_limit final : public fetchrelay::sdk::plugin {
 public:
  rate_limit(const fetchrelay::sdk::host& host, std::string_view config) : host_(host) {
    host_.describe("deferred", "Attempts the rate limit deferred to a later slot.");
    host_.describe("deferred_in_flight", "Attempts deferred because max_in_flight attempts were in flight.");
    host_.describe("wait", "Seconds of waiting the rate limit imposed on deferred attempts.");
    host_.describe("paused", "Times the target answered 429 with Retry-After and sending paused until then.");
    auto c = nlohmann::json::parse(config);
    rate_text_ = c.at("rate").get<std::string>();
    auto slash = rate_text_.find('/');
    std::int64_t n = 0;
    std::int64_t per_us = 0;
    if (slash != std::string::npos && slash > 0) {
      for (std::size_t i = 0; i < slash; ++i) {
        char ch = rate_text_[i];
        if (ch < '0' || ch > '9' || n > 1'000'000'000) { n = 0; break; }
        n = n * 10 + (ch - '0');
      }
      std::string unit = rate_text_.substr(slash + 1);
      per_us = unit == "s" ? 1'000'000 : unit == "m" ? 60'000'000 : unit == "h" ? 3'600'000'000LL : 0;
    }
    if (n <= 0 || per_us == 0) {
      throw std::runtime_error("rate: expected <count>/s, /m or /h with a count ≥ 1, got \"" + rate_text_ + "\"");
    }
    rate_per_s_ = static_cast<double>(n) * 1e6 / static_cast<double>(per_us);
    base_interval_us_ = std::max<std::int64_t>(1, per_us / n);
    burst_ = c.at("burst").get<std::int64_t>();
    max_in_flight_ = c.at("max_in_flight").get<int>();
    cluster_ = c.value("scope", "cluster") == "cluster";
    host_.describe("deferred_cluster", "Attempts deferred for want of a token of the bucket the relays share.");
    split(1);
  }

  verdict on_attempt(fetchrelay::sdk::attempt& a) override {
    std::int64_t now = host_.now_ms() * 1000;
    if (!cluster_) split(host_.relay_count());
    if (max_in_flight_ > 0 && in_flight_ >= max_in_flight_) {
      host_.count("deferred_in_flight");
      return defer_until(now + std::max<std::int64_t>(interval_us_, 10'000),
                         "rate_limit: " + std::to_string(max_in_flight_) + " attempts in flight (max_in_flight)");
    }
    std::string id(a.job_id());
    bool reserved = false;
    if (auto r = reservations_.find(id); r != reservations_.end()) {
      reserved = true;
      reservations_.erase(r);
    }
    bool sendable = now >= sent_tat_ - tolerance_us_;
    if ((reserved ? sendable : sendable && now >= reserved_tat_ - tolerance_us_) && cluster_ &&
        host_.take_tokens(1, rate_per_s_, burst_) == 0) {
      // Paced here but no shared token at hand: the try used this slot, and the job waits for the
      // next free one behind the others (so the tries stay at the rate, however long tokens lack),
      // and at least as long as the host takes to lease more.
      sent_tat_ = std::max(sent_tat_, now) + interval_us_;
      std::int64_t base = std::max({reserved_tat_, sent_tat_, now});
      std::int64_t slot = std::max(base - tolerance_us_, now + std::max<std::int64_t>(interval_us_, 20'000));
      reserved_tat_ = base + interval_us_;
      if (reservations_.size() > 100'000) prune(now);
      reservations_[id] = slot;
      host_.count("deferred_cluster");
      return defer_until(slot, "rate_limit: waiting for a token shared by the relays (" + rate_text_ + ")");
    }
    if (reserved ? sendable : sendable && now >= reserved_tat_ - tolerance_us_) {
      sent_tat_ = std::max(sent_tat_, now) + interval_us_;
      if (!reserved) reserved_tat_ = std::max(reserved_tat_, now) + interval_us_;
      ++in_flight_;
      return verdict::proceed();
    }
    std::int64_t slot;
    if (reserved) {
      slot = sent_tat_ - tolerance_us_;  // came back before the send it waited for: just after it
    } else {
      std::int64_t base = std::max({reserved_tat_, sent_tat_, now});
      slot = std::max(base - tolerance_us_, now);
      reserved_tat_ = base + interval_us_;
    }
    if (reservations_.size() > 100'000) prune(now);
    reservations_[id] = slot;
    host_.count("deferred");
    host_.count_seconds("wait", static_cast<double>(slot - now) / 1e6);
    return defer_until(slot, "rate_limit: over " + rate_text_);
  }

  void on_outcome(const fetchrelay::sdk::attempt&, const fetchrelay::sdk::outcome& o) override {
    --in_flight_;
    if (o.status == 429 && o.retry_after_ms) {
      // The target asked for a pause: nothing is sent before then, and what waits is staggered after.
      std::int64_t until = *o.retry_after_ms * 1000 + tolerance_us_;
      sent_tat_ = std::max(sent_tat_, until);
      reserved_tat_ = std::max(reserved_tat_, until);
      if (cluster_) host_.pause_tokens(*o.retry_after_ms);  // every relay holds back until then
      host_.count("paused");
    }
  }

 private:
  verdict defer_until(std::int64_t us, std::string reason) {
    return verdict::defer((us + 999) / 1000, std::move(reason));  // never before the slot
  }

  /// This relay's part of the rate and burst when `relays` share them evenly (scope: node).
  void split(int relays) {
    if (relays == relays_ && interval_us_ != 0) return;
    relays_ = std::max(1, relays);
    interval_us_ = base_interval_us_ * relays_;
    tolerance_us_ = ((burst_ + relays_ - 1) / relays_ - 1) * interval_us_;
  }

  /// Forgets reservations of jobs that never came back (cancelled, or deferred elsewhere).
  void prune(std::int64_t now) {
    std::erase_if(reservations_, [now](const auto& kv) { return kv.second < now - 60'000'000; });
  }

  fetchrelay::sdk::host host_;
  std::string rate_text_;
  double rate_per_s_ = 0;
  std::int64_t base_interval_us_ = 0;  // 1 / rate
  std::int64_t burst_ = 1;
  bool cluster_ = true;  // scope: cluster (a shared bucket, when the host has one)
  int relays_ = 0;       // scope: node: the relays sharing the rate
  std::int64_t interval_us_ = 0;   // T = 1 / (this relay's part of the rate)
  std::int64_t tolerance_us_ = 0;  // (burst - 1) · T
  int max_in_flight_ = 0;
  int in_flight_ = 0;
  std::int64_t sent_tat_ = 0;      // GCRA over attempts sent
  std::int64_t reserved_tat_ = 0;  // GCRA over slots handed out (sent or reserved)
  std::unordered_map<std::string, std::int64_t> reservations_;  // job id -> its slot
};

}  // namespace

FETCHRELAY_PLUGIN(rate_limit, "rate_limit", R"({
  "type": "object", "additionalProperties": false, "required": ["rate"],
  "properties": {
    "rate": {"type": "string", "description": "Attempts per second, minute or hour: 50/s, 1000/m, 10/h."},
    "burst": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 1,
              "description": "Attempts allowed at once before the rate applies."},
    "max_in_flight": {"type": "integer", "minimum": 0, "maximum": 1000000, "default": 0,
                      "description": "Concurrent attempts for this policy at this origin, per relay; 0: no limit."},
    "scope": {"type": "string", "enum": ["cluster", "node"], "default": "cluster",
              "description": "Several relays on one database: cluster shares one bucket between them (a second of slack); node splits rate and burst evenly between the relays alive."}
  }
})")
