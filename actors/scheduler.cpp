#include "actors/scheduler.h"
#include "actors/guard.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>

namespace fetchrelay::actors {
namespace {

using self_ptr = scheduler_actor::stateful_pointer<scheduler_state>;

}  // namespace

struct scheduler_env {
  scheduler_options options;
  store_actor store;
  manager_actor manager;
  std::shared_ptr<const wall_clock> clock;
};

namespace {

using env = scheduler_env;

due_slot max_slot_at(std::int64_t ms) {
  due_slot s{ms, {}};
  s.id.fill(0xff);
  return s;
}

/// The slot just before `s` in key order.
due_slot predecessor(due_slot s) {
  for (int i = 15; i >= 0; --i) {
    if (s.id[i]-- != 0) return s;
  }
  return max_slot_at(s.due_ms - 1);
}

void publish_size(self_ptr self, const env& e) {
  if (e.options.metrics)
    e.options.metrics->due_index_size.store(static_cast<std::int64_t>(self->state.heap.size()));
}

/// Adds an entry known to be at or before the cursor. A full heap gives the entry back to the
/// store: the cursor moves before it, so a later scan brings it in again.
void push(self_ptr self, const env& e, const due_slot& s) {
  auto& st = self->state;
  if (st.heap.size() >= e.options.max_entries) {
    st.cursor = std::min(st.cursor, predecessor(s));
    return;
  }
  st.heap.push_back(s);
  std::push_heap(st.heap.begin(), st.heap.end(), std::greater<>());
}

/// Reads the next due keys up to now + horizon. Unless `now`, only once the loaded part of the
/// horizon is half used up, so waking jobs does not cost a scan each.
void scan(self_ptr self, const env& e, bool now) {
  auto& st = self->state;
  std::int64_t t = e.clock->now_ms();
  std::int64_t until = t + e.options.horizon.count();
  if (st.scanning || st.heap.size() >= e.options.max_entries || st.cursor >= max_slot_at(until))
    return;
  if (!now && st.cursor.due_ms >= t + e.options.horizon.count() / 2) return;
  st.scanning = true;
  auto limit = static_cast<std::uint32_t>(
      std::min<std::size_t>(e.options.page, e.options.max_entries - st.heap.size()));
  std::optional<persistence::due_entry> after;
  if (st.cursor != due_slot{})
    after = persistence::due_entry{st.cursor.due_ms, unpack_job_id(st.cursor.id)};
  caf::actor me = caf::actor_cast<caf::actor>(self);
  self->send(e.store, scan_atom::value, after, until, limit,
             completion<result<std::vector<persistence::due_entry>>>(
                 [me, until, limit](result<std::vector<persistence::due_entry>> r) {
                   caf::anon_send(me, scanned_atom::value, until, limit, std::move(r));
                 }));
}

/// Hands every due entry to the manager, then arms the timer for the next one.
void wake_due(self_ptr self, const env& e) {
  auto& st = self->state;
  std::int64_t now = e.clock->now_ms();
  std::vector<std::string> ids;
  while (!st.heap.empty() && st.heap.front().due_ms <= now) {
    ids.push_back(unpack_job_id(st.heap.front().id));
    std::pop_heap(st.heap.begin(), st.heap.end(), std::greater<>());
    st.heap.pop_back();
    if (ids.size() >= e.options.wake_batch) {
      self->send(e.manager, due_atom::value, std::move(ids));
      ids.clear();
    }
  }
  if (!ids.empty()) self->send(e.manager, due_atom::value, std::move(ids));
  publish_size(self, e);
  if (st.heap.empty()) return;
  std::int64_t next = st.heap.front().due_ms;
  if (st.timer_at_ms != 0 && st.timer_at_ms <= next) return;  // an earlier timer will do
  st.timer_at_ms = next;
  auto gen = ++st.timer_generation;
  self->delayed_send(self, std::chrono::milliseconds(std::max<std::int64_t>(0, next - now)),
                     timer_atom::value, gen);
}

void on_scanned(self_ptr self, const env& e, std::int64_t until, std::uint32_t limit,
                const result<std::vector<persistence::due_entry>>& r) {
  auto& st = self->state;
  st.scanning = false;
  if (!r) {
    spdlog::warn("scheduler: cannot read due jobs ({}); trying again", r.error().message());
    self->delayed_send(self, std::chrono::seconds(1), rescan_atom::value);
    return;
  }
  for (const auto& d : *r) {
    due_slot s{d.due_ms, {}};
    if (!pack_job_id(d.id, s.id)) {
      spdlog::error("scheduler: due key with a malformed job id ignored");
      continue;
    }
    st.heap.push_back(s);
    std::push_heap(st.heap.begin(), st.heap.end(), std::greater<>());
  }
  if (st.recover_after_scan) {
    st.recover_after_scan = false;
    st.cursor = due_slot{};
    scan(self, e, true);
    return;
  }
  bool full_page = r->size() >= limit;
  st.cursor = full_page ? due_slot{r->back().due_ms, {}} : max_slot_at(until);
  if (full_page) pack_job_id(r->back().id, st.cursor.id);
  auto arrived = std::move(st.arrived_while_scanning);
  st.arrived_while_scanning.clear();
  for (const auto& s : arrived) {
    if (s <= st.cursor) push(self, e, s);
  }
  if (full_page && st.heap.size() < e.options.max_entries) {
    scan(self, e, true);  // more within the horizon
  } else if (e.options.loaded && !e.options.loaded->load()) {
    spdlog::info("scheduler: {} job(s) due within {} s loaded", st.heap.size(),
                 e.options.horizon.count() / 1000);
    e.options.loaded->store(true);
  }
  wake_due(self, e);
}

}  // namespace

scheduler_actor::behavior_type scheduler_actor_impl(self_ptr self, scheduler_options options, store_actor store,
                                                   manager_actor manager, std::shared_ptr<const wall_clock> clock) {
  auto e = std::make_shared<env>(
      env{std::move(options), std::move(store), std::move(manager), std::move(clock)});
  self->state.env = e;  // in the state: it goes when the actor quits (see job_manager.cpp)
  scan(self, *e, true);
  // Refill well before the loaded part of the horizon runs out.
  auto refill_every =
      std::max<std::chrono::milliseconds>(e->options.horizon / 4, std::chrono::milliseconds(1));
  self->delayed_send(self, refill_every, refill_atom::value);
  return {
      guarded("scheduler", "schedule", [self](schedule_atom, std::int64_t due_ms, const std::string& id) {
        auto e = self->state.env;
        auto& st = self->state;
        due_slot s{due_ms, {}};
        if (!pack_job_id(id, s.id)) return;
        if (s <= st.cursor) {
          push(self, *e, s);
          wake_due(self, *e);
        } else if (st.scanning) {
          st.arrived_while_scanning.push_back(s);  // the scan in flight may or may not see it
        }
        // Otherwise a later scan reads it from the store.
      }),
      guarded("scheduler", "scanned", [self](scanned_atom, std::int64_t until, std::uint32_t limit,
             const result<std::vector<persistence::due_entry>>& r) {
        auto e = self->state.env;
        on_scanned(self, *e, until, limit, r);
      }),
      guarded("scheduler", "timer", [self](timer_atom, std::uint64_t gen) {
        auto e = self->state.env;
        if (gen != self->state.timer_generation) return;
        self->state.timer_at_ms = 0;
        wake_due(self, *e);
        scan(self, *e, false);
      }),
      guarded("scheduler", "rescan", [self](rescan_atom) {
        auto e = self->state.env;
        scan(self, *e, true);
      }),
      guarded("scheduler", "recover", [self](recover_atom) {
        // Entries may repeat: the manager activates only jobs neither live nor finished.
        auto e = self->state.env;
        if (self->state.scanning) {
          self->state.recover_after_scan = true;  // the scan in flight would move the cursor on
          return;
        }
        self->state.cursor = due_slot{};
        scan(self, *e, true);
      }),
      guarded("scheduler", "refill", [self, refill_every](refill_atom) {
        auto e = self->state.env;
        scan(self, *e, false);
        wake_due(self, *e);
        self->delayed_send(self, refill_every, refill_atom::value);
      }),
  };
}

}  // namespace fetchrelay::actors
