// Queues (issue 13): the messages between jobs, the job manager and the queue actors.
//
// A job submitted with X-Queue is stored `waiting` (queue_stage 1): it has no due entry, so
// nothing runs it until its queue does. The queue actor grants jobs one at a time in submission
// order: a granted job is written `granted` (2, now with a due entry: it runs when due, hibernates
// and retries as any job), and at its first attempt `started` (3), synced, before it tells its
// queue. The next job is granted only once the previous one has started and fewer than
// `parallelism` jobs are granted or started. So with parallelism 1, job n+1 is never attempted
// before job n is terminal, and after a kill -9 the store holds the same order: the granted and
// started jobs are a prefix of the queue's unfinished jobs, with at most one granted.
//
// A job leaves its queue's count when it is terminal (synced) and no attempt of it is in flight
// (queue_latch below), so a cancelled job frees its slot only when its attempt has ended.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "actors/messages.h"
#include "persistence/store.h"
#include "core/queue.h"

namespace fetchrelay::actors {

/// (queue_kick_atom, tenant, queue): a waiting job was stored in the queue (the job manager).
using queue_kick_atom = caf::atom_constant<caf::atom("qkick")>;
/// (queue_started_atom, tenant, queue, id): a granted job made its first attempt (synced).
using queue_started_atom = caf::atom_constant<caf::atom("qstarted")>;
/// (queue_released_atom, tenant, queue, id): a job of the queue is terminal, its attempts ended.
using queue_released_atom = caf::atom_constant<caf::atom("qreleased")>;
/// (queue_grant_atom, tenant, id, reply): the queue's turn for this job (to the job manager).
using queue_grant_atom = caf::atom_constant<caf::atom("qgrant")>;
/// (queue_op_atom, …): an API operation on a queue.
using queue_op_atom = caf::atom_constant<caf::atom("qop")>;
/// Store reads for queues (store_actor.h).
using queue_get_atom = caf::atom_constant<caf::atom("qget")>;
using queue_view_atom = caf::atom_constant<caf::atom("qview")>;
using queue_list_atom = caf::atom_constant<caf::atom("qlist")>;
using queue_jobs_atom = caf::atom_constant<caf::atom("qjobs")>;
using queue_active_atom = caf::atom_constant<caf::atom("qactive")>;
/// (init_atom, manager): the queue manager learns the job manager (spawned after it).
using init_atom = caf::atom_constant<caf::atom("init")>;

/// What a granted job answers its queue: written granted; finished or no such job; or the store
/// failed (the queue asks again later, keeping its place).
enum class grant_answer { accepted, gone, retry };

/// What the API asks of one queue.
enum class queue_op { get, put, pause, resume, erase };

struct queue_command {
  queue_op op = queue_op::get;
  std::optional<std::uint32_t> parallelism;  // put
  std::optional<bool> paused;                // put
  bool created = false;                      // put: the queue is new (201)
};

/// A queue as GET /v1/queues/{name} shows it.
struct queue_view {
  queue_state q;
  std::int64_t waiting = 0;
  std::int64_t in_progress = 0;
  std::int64_t oldest_waiting_age_ms = 0;
};

struct queue_view_page {
  std::vector<queue_view> queues;  // by name
  std::string next_cursor;
};

struct queue_answer {
  int http_status = 200;  // 200, 201 (created by put), 404, 409 (not empty), 503
  std::optional<queue_view> view;
  std::string error_code;
  std::string message;
};

/// Held by a queue job while it is live and by each of its attempts in flight; when the last
/// holder goes and the job is terminal (synced), the job leaves its queue's count.
struct queue_latch {
  std::atomic<bool> terminal{false};
  caf::actor queues;
  std::string tenant;
  std::string queue;
  std::string id;
  ~queue_latch() {
    if (terminal.load() && queues) caf::anon_send(queues, queue_released_atom::value, tenant, queue, id);
  }
};

}  // namespace fetchrelay::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::queue_command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::result<std::optional<fetchrelay::actors::queue_view>>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::result<fetchrelay::actors::queue_view_page>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::result<std::optional<fetchrelay::queue_state>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::result<std::optional<fetchrelay::queue_state>>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::result<std::vector<fetchrelay::persistence::queue_entry>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::result<std::vector<fetchrelay::persistence::queue_entry>>>)
namespace fetchrelay::actors {
using queue_names = std::vector<std::pair<std::string, std::string>>;  // (tenant, name)
}
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::queue_names)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::actors::queue_names>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::actors::queue_answer>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::actors::grant_answer>)
