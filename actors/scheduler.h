// The scheduler: the compact due-index of hibernated jobs (DESIGN §1, §4).
//
// A job that waits longer than delivery.hibernate_after leaves memory; its snapshot and its
// due/ key are on disk. The scheduler keeps (due_ms, 16-byte id) pairs, 24 bytes each, in a
// binary min-heap, for the jobs due within `horizon` only, and refills it from the store's due/
// keys as time moves on. When an entry is due it asks the manager to activate the job.
//
// What has been loaded is described by a cursor: every due/ key up to it (in key order) is in
// the heap, was handed out, or belongs to a live job. A job scheduled at or before the cursor
// goes straight into the heap; one after it stays on disk until a scan reaches it. So memory is
// bounded by the horizon (and by `max_entries`), never by the number of pending jobs.
//
// Entries may repeat (a scan and a hibernation can both bring a job in) and may be stale (the
// job was cancelled): the manager activates a job only if it is neither live nor finished.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "actors/manager_protocol.h"
#include "actors/store_actor.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/ulid.h"

namespace fetchrelay::actors {

/// (schedule_atom, due_ms, id): a job was stored with this due time and is not live.
using schedule_atom = caf::atom_constant<caf::atom("schedule")>;
/// (scanned_atom, until_ms, limit, entries): self, the store's answer to a scan of due keys.
using scanned_atom = caf::atom_constant<caf::atom("scanned")>;
/// (timer_atom, generation): self, the wake timer of the earliest entry (stale if older).
using timer_atom = caf::atom_constant<caf::atom("timer")>;
/// (refill_atom): self, periodic: load the next part of the horizon.
using refill_atom = caf::atom_constant<caf::atom("refill")>;
/// (rescan_atom): self, after a failed scan: start again from the cursor.
using rescan_atom = caf::atom_constant<caf::atom("rescan")>;

/// Due jobs go to the manager as (due_atom, ids); manager_protocol.h.
using scheduler_actor = caf::typed_actor<
    // The manager: a job was stored with this due time and is not live (hibernated, or new and far off).
    caf::reacts_to<schedule_atom, std::int64_t, std::string>,
    caf::reacts_to<scanned_atom, std::int64_t, std::uint32_t, result<std::vector<persistence::due_entry>>>,
    caf::reacts_to<timer_atom, std::uint64_t>,
    caf::reacts_to<refill_atom>,
    caf::reacts_to<rescan_atom>,
    // The manager: shards were taken; everything due is scanned again from the start.
    caf::reacts_to<recover_atom>>;

struct scheduler_options {
  std::chrono::milliseconds horizon{600'000};
  std::size_t max_entries = 1'000'000;  // 24 MB of heap at most
  std::uint32_t page = 10'000;          // due keys per store scan
  std::size_t wake_batch = 1'000;       // ids per due_atom message
  /// Set once the first horizon is loaded (for /readyz); may be null.
  std::shared_ptr<std::atomic<bool>> loaded;
  std::shared_ptr<relay_metrics> metrics;  // due_index_size; may be null
};

struct due_slot {
  std::int64_t due_ms = 0;
  job_id_bytes id{};
  auto operator<=>(const due_slot&) const = default;
};

struct scheduler_env;

struct scheduler_state {
  std::shared_ptr<scheduler_env> env;
  std::vector<due_slot> heap;  // std::push_heap with greater<>: the earliest on top
  due_slot cursor{};           // loaded through here, inclusive
  bool scanning = false;
  bool recover_after_scan = false;  // shards were taken during a scan: start again once it is in
  std::vector<due_slot> arrived_while_scanning;
  std::uint64_t timer_generation = 0;
  std::int64_t timer_at_ms = 0;  // when the armed wake timer fires; 0: none armed
};

scheduler_actor::behavior_type scheduler_actor_impl(scheduler_actor::stateful_pointer<scheduler_state> self,
                                                   scheduler_options options, store_actor store,
                                                   manager_actor manager, std::shared_ptr<const wall_clock> clock);

}  // namespace fetchrelay::actors
