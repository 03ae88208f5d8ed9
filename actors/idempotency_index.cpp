#include "actors/idempotency_index.h"

namespace fetchrelay::actors {

idempotency_index::entry* idempotency_index::find(const std::string& key, std::int64_t now) {
  auto it = entries_.find(key);
  return it != entries_.end() && it->second.expires_at_ms > now ? &it->second : nullptr;
}

void idempotency_index::remember(const std::string& key, entry e) {
  order_.emplace_back(key, e.expires_at_ms);
  entries_[key] = std::move(e);
}

std::vector<completion<submit_answer>> idempotency_index::committed(const std::string& key, bool ok) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return {};
  auto waiters = std::move(it->second.waiters);
  it->second.waiters.clear();
  if (ok) it->second.committed = true;
  else entries_.erase(it);
  return waiters;
}

void idempotency_index::forget(const std::string& key, const std::string& id) {
  if (auto it = entries_.find(key); it != entries_.end() && it->second.id == id) entries_.erase(it);
}

void idempotency_index::prune(std::int64_t now) {
  // Each slot is looked at once: one whose first submission is not synced yet goes to the back
  // (it is pruned later, never lost), so this ends even if every entry waits.
  for (std::size_t n = order_.size(); n > 0 && !order_.empty(); --n) {
    auto slot = std::move(order_.front());
    if (slot.second > now && order_.size() <= max_) break;
    order_.pop_front();
    auto it = entries_.find(slot.first);
    if (it == entries_.end() || it->second.expires_at_ms != slot.second) continue;  // a stale slot
    if (!it->second.committed) order_.push_back(std::move(slot));
    else entries_.erase(it);
  }
}

bool idempotency_index::await_lookup(const std::string& key, submission sub, completion<submit_answer> reply) {
  auto& waiting = lookups_[key];
  waiting.emplace_back(std::move(sub), std::move(reply));
  return waiting.size() == 1;
}

std::vector<idempotency_index::pending_repeat> idempotency_index::take_lookup(const std::string& key) {
  auto it = lookups_.find(key);
  if (it == lookups_.end()) return {};
  auto out = std::move(it->second);
  lookups_.erase(it);
  return out;
}

}  // namespace fetchrelay::actors
