// The job actor: one per live job (DESIGN §1, §3). It owns the job's state machine, its delay
// and backoff timer and its retry state; it snapshots through the store actor on every
// transition and hands each attempt to the destination actor of its origin.
//
//   scheduled --wake--> active --outcome--> delivered | failed
//                         |                  retrying --wake--> active ...
//   any non-terminal --cancel--> cancelled
//
// Timers are CAF delayed messages, which cannot be cancelled: each carries the generation it
// was armed in, and a stale one is ignored. Outcomes carry the generation of their attempt.
// When the job is terminal and its final snapshot is synced, the actor tells the manager
// (done_atom, id, final state: null when the job has no callback to make) and keeps answering
// reads and cancels (409) until the manager, which has then forgotten it, sends forget_atom: no
// request the manager forwards is lost.
//
// Hibernation (DESIGN §1): when the next run is more than `hibernate_after` away, the actor
// makes sure its snapshot and due time are synced, tells the manager (hibernated_atom, id,
// due_ms) and parks: it still answers reads, hands cancels back to the manager (which brings
// the job back from its snapshot to cancel it), and quits on forget_atom.
#pragma once

#include <memory>

#include "actors/destination_actor.h"
#include "actors/manager_protocol.h"
#include "actors/messages.h"
#include "actors/queue_protocol.h"
#include "actors/store_actor.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/qstash.h"
#include "core/retry.h"
#include "persistence/cluster.h"

namespace fetchrelay::actors {

/// (queue_granted_atom_job, status, reply): self, the write of a queue's grant answered.
using queue_granted_atom_job = caf::atom_constant<caf::atom("jgranted")>;
/// (hibernate_atom, generation, status): self, the snapshot to park on is synced (or not).
using hibernate_atom = caf::atom_constant<caf::atom("hibernate")>;

using job_actor = caf::typed_actor<
    // Self: the delay or backoff timer of this generation fired (stale if older).
    caf::reacts_to<wake_atom, std::uint64_t>,
    // The destination actor: what happened to the attempt (its generation inside).
    caf::reacts_to<outcome_atom, attempt_result>,
    // The manager: cancel; reply cancelled, or terminal if it has ended.
    caf::reacts_to<cancel_atom, completion<cancel_answer>>,
    // The manager: attempt now (POST /v1/jobs/{id}/run); reply started (also if an attempt is
    // in flight already), or terminal.
    caf::reacts_to<run_atom, completion<command_answer>>,
    // The manager, for the job's queue: its turn; reply done once written granted, or terminal.
    caf::reacts_to<queue_grant_atom, completion<command_answer>>,
    // Self: the write of the grant answered.
    caf::reacts_to<queue_granted_atom_job, status, completion<command_answer>>,
    // The manager: the job as it is now.
    caf::reacts_to<read_atom, completion<result<std::optional<job_view>>>>,
    // Self: the terminal snapshot failed to commit; it is tried again.
    caf::reacts_to<committed_atom, status>,
    caf::reacts_to<hibernate_atom, std::uint64_t, status>,
    // The manager, after it forgot this job: every request it forwarded has arrived; quit.
    caf::reacts_to<forget_atom>>;

/// What a job actor needs besides its own state.
struct job_context {
  store_actor store;
  destination_actor destination;  // the attempts go there
  manager_actor manager;          // done, hibernated, and cancels handed back
  std::shared_ptr<const wall_clock> clock;
  retry_policy retry;
  std::function<double()> unit_random;  // [0, 1), for jitter
  std::shared_ptr<relay_metrics> metrics;  // may be null
  /// Waits longer than this are spent on disk, not in memory.
  std::chrono::milliseconds hibernate_after = std::chrono::milliseconds::max();
  /// False for a job brought back to be cancelled: it must not go straight back to disk.
  bool hibernate_at_start = true;
  /// Graceful stop: no attempt starts once draining; may be null.
  std::shared_ptr<delivery_drain> drain;
  /// The queue manager (a queue job tells it when it starts and ends); may be null.
  caf::actor queues;
  /// The QStash signing keys, for jobs published through /v2; may be null (no /v2).
  std::shared_ptr<const qstash::key_ring> qstash_keys;
  /// Several relays on PostgreSQL: no attempt starts unless this node holds the job's shard and
  /// is not fenced; null otherwise.
  std::shared_ptr<const persistence::shard_ownership> ownership;
};

struct job_actor_state {
  std::shared_ptr<const job_context> ctx;
  job_state s;
  job_spec spec;
  std::vector<attempt_record> attempts;
  std::uint64_t generation = 0;
  bool finishing = false;  // the terminal snapshot is being synced
  bool parked = false;     // hibernated: waiting for forget_atom
  /// A granted or started queue job's hold on its queue slot (queue_protocol.h); null otherwise.
  std::shared_ptr<queue_latch> latch;
  bool grant_pending = false;  // the queue's grant is being written: no attempt until it is
  /// Several relays: the epoch of the job's shard when the actor came to life (-1 otherwise).
  std::int64_t shard_epoch = -1;
};

/// What a job actor starts from; `attempts` are those already recorded (a recovered job).
/// Handed over behind one pointer: spawn moves its arguments several times, and a job_state is
/// large.
struct job_seed {
  job_state state;
  job_spec spec;
  std::vector<attempt_record> attempts;
};

job_actor::behavior_type job_actor_impl(job_actor::stateful_pointer<job_actor_state> self,
                                        std::shared_ptr<job_seed> seed, std::shared_ptr<const job_context> ctx);

}  // namespace fetchrelay::actors
