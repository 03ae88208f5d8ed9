// Queues (issue 13): one actor per active queue, and the queue manager that routes to them.
// The order and the counts live in the store (queue_protocol.h); a queue actor keeps only where
// it is: the jobs granted or started and not yet released, and the last one granted.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/manager_protocol.h"
#include "actors/queue_protocol.h"
#include "actors/store_actor.h"
#include "core/clock.h"

namespace fetchrelay::actors {

/// (queue_next_atom, entries): self, the next job after the cursor, read from the store.
using queue_next_atom = caf::atom_constant<caf::atom("qnext")>;
/// (queue_granted_atom, id, answer): self, the job manager's answer to a grant.
using queue_granted_atom = caf::atom_constant<caf::atom("qgranted")>;
/// (queue_loaded_atom, tenant, name, record): self, a queue's record read to bring it to life.
using queue_loaded_atom = caf::atom_constant<caf::atom("qloaded")>;

using queue_actor = caf::typed_actor<
    caf::reacts_to<queue_kick_atom>,
    caf::reacts_to<queue_started_atom, std::string>,
    caf::reacts_to<queue_released_atom, std::string>,
    caf::reacts_to<queue_op_atom, queue_command, completion<queue_answer>>,
    // Self: the store's answer to the first read (the granted and started prefix) ...
    caf::reacts_to<queue_next_atom, bool, result<std::vector<persistence::queue_entry>>>,
    // ... and the job manager's answer to a grant.
    caf::reacts_to<queue_granted_atom, std::string, grant_answer>,
    caf::reacts_to<forget_atom>>;

using queues_actor = caf::typed_actor<
    // Relay, once the job manager is spawned.
    caf::reacts_to<init_atom, manager_actor>,
    // Job manager: a waiting job was stored in the queue (created with parallelism 1 if new).
    caf::reacts_to<queue_kick_atom, std::string, std::string>,
    // Job actors: a granted job started (synced); a job's last attempt ended after it finished.
    caf::reacts_to<queue_started_atom, std::string, std::string, std::string>,
    caf::reacts_to<queue_released_atom, std::string, std::string, std::string>,
    // API: PUT, pause, resume, DELETE (GET is the store's).
    caf::reacts_to<queue_op_atom, std::string, std::string, queue_command, completion<queue_answer>>,
    // Self: a queue's record read to bring its actor to life; the queues with unfinished jobs.
    caf::reacts_to<queue_loaded_atom, std::string, std::string, result<std::optional<queue_state>>>,
    caf::reacts_to<queue_active_atom, std::vector<std::pair<std::string, std::string>>>,
    // A deleted queue's actor: forget it.
    caf::reacts_to<forget_atom, std::string, std::string>>;

struct queue_context {
  store_actor store;
  manager_actor jobs;
  queues_actor queues;
  std::shared_ptr<const wall_clock> clock;
};

struct queue_actor_state {
  std::shared_ptr<const queue_context> ctx;
  queue_state q;
  std::set<std::string> started;    // granted or started, not yet released
  std::optional<std::string> granted;  // granted and not yet started: the next waits for it
  std::string cursor;               // the last job granted ("": none yet)
  bool loaded = false;              // the first read is in
  bool busy = false;                // a read or a grant is out
  std::string granting;             // the job a grant is out for
  std::set<std::string> gone;       // released before its grant was answered
};

queue_actor::behavior_type queue_actor_impl(queue_actor::stateful_pointer<queue_actor_state> self, queue_state q,
                                            std::shared_ptr<const queue_context> ctx);

/// A message waiting for a queue's actor to come to life.
struct queue_pending {
  std::function<void(const queue_actor&, bool created)> deliver;  // created: this message made the queue
  std::function<void()> refuse;  // the queue does not exist
  bool creates = false;          // creates the queue if it does not exist
  bool writes = false;           // writes the queue's record itself (PUT): no default record first
};

struct queues_state {
  std::shared_ptr<queue_context> ctx;
  std::unordered_map<std::string, queue_actor> live;  // by tenant "\0" name
  std::unordered_map<std::string, std::vector<queue_pending>> loading;
};

queues_actor::behavior_type queue_manager(queues_actor::stateful_pointer<queues_state> self, store_actor store,
                                          std::shared_ptr<const wall_clock> clock);

}  // namespace fetchrelay::actors
