#include "core/destinations.h"

#include <algorithm>

namespace fetchrelay {
namespace {

constexpr std::int64_t minute_ms = 60'000;

std::string breaker_state(std::int64_t v) {
  switch (v) {
    case 0: return "closed";
    case 1: return "open";
    case 2: return "half_open";
    default: return "unknown";
  }
}

}  // namespace

origin_stats::bucket& origin_stats::tenant_stats::at(std::int64_t now_ms) {
  std::int64_t minute = now_ms / minute_ms;
  bucket& b = ring[static_cast<std::size_t>(minute % static_cast<std::int64_t>(ring.size()))];
  if (b.minute != minute) b = bucket{minute};
  return b;
}

void origin_stats::started(const std::string& tenant, std::int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& t = tenants_[tenant];
  ++t.in_flight;
  t.last_attempt_ms = now_ms;
}

void origin_stats::finished(const std::string& tenant, bool ok, std::string_view error, std::int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& t = tenants_[tenant];
  if (t.in_flight > 0) --t.in_flight;
  auto& b = t.at(now_ms);
  ++b.attempts;
  ++t.attempts_total;
  if (!ok) {
    ++b.failures;
    ++t.failures_total;
    t.last_error.assign(error.substr(0, 300));
    t.last_error_ms = now_ms;
  }
}

void origin_stats::deferred(const std::string& tenant, std::string_view plugin, std::int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& b = tenants_[tenant].at(now_ms);
  ++b.deferrals;
  if (plugin == "rate_limit") ++b.rate_limit_waits;
}

void origin_stats::plugin_gauge(const std::string& policy, std::string_view name, std::int64_t value) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& g = gauges_[policy];
  if (auto it = g.find(name); it != g.end()) it->second = value;
  else g.emplace(std::string(name), value);
}

bool origin_stats::view(const std::string& tenant, std::int64_t now_ms, destination_view& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tenants_.find(tenant);
  if (it == tenants_.end()) return false;
  const tenant_stats& t = it->second;
  out = destination_view{};
  out.origin = origin_;
  out.in_flight = t.in_flight;
  std::int64_t oldest = now_ms / minute_ms - window_minutes;
  for (const auto& b : t.ring) {
    if (b.minute < oldest || b.minute > now_ms / minute_ms) continue;
    out.attempts_recent += b.attempts;
    out.failures_recent += b.failures;
    out.deferrals_recent += b.deferrals;
    out.rate_limit_waits_recent += b.rate_limit_waits;
  }
  out.attempts_total = t.attempts_total;
  out.failures_total = t.failures_total;
  out.last_attempt_ms = t.last_attempt_ms;
  out.last_error = t.last_error;
  out.last_error_ms = t.last_error_ms;
  for (const auto& [policy, g] : gauges_) {
    if (auto s = g.find("circuit_breaker_state"); s != g.end()) out.breakers[policy] = breaker_state(s->second);
  }
  return true;
}

std::shared_ptr<origin_stats> destination_board::origin(const std::string& origin) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = origins_[origin];
  if (!slot) slot = std::make_shared<origin_stats>(origin);
  return slot;
}

std::vector<destination_view> destination_board::view(const std::string& tenant, std::int64_t now_ms,
                                                       const std::string& cursor, std::size_t limit, bool& more) const {
  std::vector<std::shared_ptr<origin_stats>> after;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = origins_.upper_bound(cursor); it != origins_.end(); ++it) after.push_back(it->second);
  }
  std::vector<destination_view> out;
  more = false;
  for (const auto& o : after) {
    destination_view v;
    if (!o->view(tenant, now_ms, v)) continue;
    if (out.size() == limit) {
      more = true;
      break;
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace fetchrelay
