// The store actor: the only writer to the job store. Spawn it detached in production (it
// blocks on fsync); the spawn mode is the caller's, so tests can run it on the test coordinator.
//
// Group commit: a commit is not written at once; the actor queues it and sends itself a flush.
// Commits that arrive before that flush is handled (in particular all that arrived while the
// previous write was blocked on fsync) go into the same write. So a batch is committed as soon
// as the previous commit finishes, with everything that arrived meanwhile, capped by
// `max_batch` (DESIGN §1: caps are limits, not waits).
//
// After a failed write every queued and later commit is answered unavailable, `ready` turns
// false, and the actor tries to reopen the store every `reopen_every` until it succeeds.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>

#include "actors/messages.h"
#include "actors/queue_protocol.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "persistence/store.h"

namespace fetchrelay::actors {

using store_actor = caf::typed_actor<
    // Manager (submissions, runs again) and job actors (snapshots): write with the next group
    // commit; answer its status once written (and synced if the batch asks).
    caf::reacts_to<commit_atom, persistence::commit_batch, completion<status>>,
    // Self: write what is queued now.
    caf::reacts_to<flush_atom>,
    // Self, after a failed write: try to open the store again.
    caf::reacts_to<reopen_atom>,
    // Manager: the job as tenant sees it (nullopt: none of this tenant's).
    caf::reacts_to<read_atom, std::string, std::string, completion<result<std::optional<job_view>>>>,
    // Manager: one page of the tenant's jobs, newest first.
    caf::reacts_to<list_atom, std::string, persistence::job_filter, std::string, std::uint32_t,
                   completion<result<persistence::job_page>>>,
    // Manager (DELETE /v1/jobs): delete the tenant's finished jobs that pass the filter, from a cursor.
    caf::reacts_to<purge_atom, std::string, persistence::job_filter, std::string, completion<result<persistence::purge_page>>>,
    // API: one page of the tenant's events (GET /v1/events), ascending.
    caf::reacts_to<events_atom, std::string, persistence::event_filter, std::string, std::uint32_t,
                   completion<result<persistence::event_page>>>,
    // Schedules: one schedule (tenant, id), or nullopt.
    caf::reacts_to<sched_get_atom, std::string, std::string, completion<result<std::optional<schedule_state>>>>,
    // API: one page of the tenant's schedules in id order, after a cursor.
    caf::reacts_to<sched_list_atom, std::string, std::string, std::uint32_t, completion<result<persistence::schedule_page>>>,
    // Schedules: those not paused due up to a time, after an entry (nullopt: from the start), in
    // fire order, at most a limit.
    caf::reacts_to<sched_scan_atom, std::optional<persistence::schedule_due>, std::int64_t, std::uint32_t,
                   completion<result<std::vector<persistence::schedule_due>>>>,
    // API and schedules: one topic (tenant, name), or nullopt.
    caf::reacts_to<topic_get_atom, std::string, std::string, completion<result<std::optional<topic_state>>>>,
    // API: one page of the tenant's topics in name order, after a cursor.
    caf::reacts_to<topic_list_atom, std::string, std::string, std::uint32_t, completion<result<persistence::topic_page>>>,
    // Queues: one queue's record; its view (counts, oldest waiting) for the API; a page of the
    // tenant's queues with their views; the queue's unfinished jobs after an id; the queues that
    // have unfinished jobs (at start-up).
    caf::reacts_to<queue_get_atom, std::string, std::string, completion<result<std::optional<queue_state>>>>,
    caf::reacts_to<queue_view_atom, std::string, std::string, completion<result<std::optional<queue_view>>>>,
    caf::reacts_to<queue_list_atom, std::string, std::string, std::uint32_t, completion<result<queue_view_page>>>,
    caf::reacts_to<queue_jobs_atom, std::string, std::string, std::string, std::uint32_t,
                   completion<result<std::vector<persistence::queue_entry>>>>,
    caf::reacts_to<queue_active_atom, completion<std::vector<std::pair<std::string, std::string>>>>,
    // Manager (POST /retry): the whole job, if it is this tenant's.
    caf::reacts_to<retry_atom, std::string, std::string, completion<result<std::optional<recovered_job>>>>,
    // Manager: an idempotency key given before (tenant, key), with its job's run time.
    caf::reacts_to<idem_atom, std::string, std::string, completion<result<std::optional<idem_hit>>>>,
    // Scheduler: due entries after a cursor up to a time, at most a limit.
    caf::reacts_to<scan_atom, std::optional<persistence::due_entry>, std::int64_t, std::uint32_t,
                   completion<result<std::vector<persistence::due_entry>>>>,
    // Manager: the unfinished jobs among these ids, whole, to bring them back to life.
    caf::reacts_to<load_atom, std::vector<std::string>, completion<result<std::vector<recovered_job>>>>,
    // Manager's periodic tick: retention sweep and disk use.
    caf::reacts_to<sweep_atom>,
    // Relay when stopping: a barrier; writes every commit that arrived before it, then answers.
    caf::reacts_to<sync_atom, completion<status>>>;

struct store_actor_options {
  std::size_t max_batch = 1000;
  std::chrono::milliseconds reopen_every{1000};
  /// Set while the store accepts writes (for /readyz); may be null.
  std::shared_ptr<std::atomic<bool>> ready;
  /// Commit latency, batch sizes, jobs by status, disk use; may be null.
  std::shared_ptr<relay_metrics> metrics;
  /// Retention sweep (DESIGN §3): on each (sweep_atom), terminal jobs that finished more than
  /// `retention` ago are deleted, and events older than that. A zero `retention` or a null clock turns it off. The ticks come
  /// from the manager: a detached actor must not keep timers of its own, since a pending
  /// delayed message keeps it (and the actor system's shutdown) alive until it fires.
  std::chrono::milliseconds retention{0};
  /// Also the time stamped on a commit that comes without one (the time of its events).
  std::shared_ptr<const wall_clock> clock;
};

struct store_actor_stats {
  std::atomic<std::uint64_t> commits{0};    // writes to the store
  std::atomic<std::uint64_t> batches{0};    // commit messages they carried
  std::atomic<std::uint64_t> failures{0};
};

/// `read` answers the job with `id` if its tenant is `tenant` (else nullopt: another tenant's
/// id answers 404). `load` answers the jobs among `ids` that exist and are not finished, whole
/// (state, request, attempts), to bring them back to life; `scan` reads due keys
/// (persistence::store::scan_due). `stats` may be null.
store_actor::behavior_type store_actor_impl(store_actor::stateful_pointer<struct store_actor_state> self,
                                            std::shared_ptr<persistence::store> store,
                                            store_actor_options options,
                                            std::shared_ptr<store_actor_stats> stats);

struct store_actor_state {
  std::vector<persistence::commit_batch> pending;
  std::vector<completion<status>> waiters;
  bool flush_scheduled = false;
  bool reopen_scheduled = false;
};

}  // namespace fetchrelay::actors
