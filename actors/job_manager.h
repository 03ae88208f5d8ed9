// The job manager: admission, ids, idempotency, and the map from id to live job actor
// (DESIGN §1). The API talks to it with anon_send and a completion; it never blocks.
//
// A submission is acknowledged only after its batch is synced by the store actor; then its
// job actor is spawned. When a job ends, the manager forgets it and sends its callback (a
// child job of its own, durable and retried like any job).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "actors/destination_actor.h"
#include "actors/idempotency_index.h"
#include "actors/intake.h"
#include "actors/job_actor.h"
#include "actors/manager_protocol.h"
#include "actors/scheduler.h"
#include "actors/store_actor.h"
#include "core/delivery.h"

namespace fetchrelay::actors {

/// Makes the destination actor of an origin (tests inject their own target).
using destination_factory = std::function<destination_actor(caf::local_actor* manager, const std::string& origin)>;

struct manager_options {
  std::map<std::string, policy_runtime> policies;  // holds "default"
  intake_options intake;
  /// Several relays on PostgreSQL: what this node holds; a job whose shard it does not hold (or
  /// while fenced) starts no attempt here. Null otherwise.
  std::shared_ptr<const persistence::shard_ownership> ownership;
  /// Unfinished jobs per tenant when the manager starts (persistence::store::pending_by_tenant).
  std::map<std::string, std::int64_t> initial_pending;
  int max_in_flight_per_origin = 64;
  int max_in_flight = 4096;  // all origins together (limits.max_in_flight)
  /// Idempotency keys kept in memory at most; older ones are looked up in the store.
  std::size_t max_idempotency_in_memory = 100'000;
  std::chrono::milliseconds hibernate_after{30'000};
  /// How often the store is told to sweep finished jobs past retention and report disk use.
  std::chrono::milliseconds sweep_every{60'000};
  scheduler_options scheduler;
  destination_factory make_destination;  // null: destination_actor_impl with the HTTP client
  std::shared_ptr<const pipeline_set> pipelines;  // the plugin chains' makings; may be null
  std::shared_ptr<delivery_drain> drain;          // graceful stop; may be null
  /// The queue manager (queues.h): told when a waiting job is stored, and by queue jobs when
  /// they start and end; may be null (no queues).
  caf::actor queues;
  /// The QStash signing keys (jobs published through /v2 are signed with them); may be null.
  std::shared_ptr<const qstash::key_ring> qstash_keys;
  /// Per origin and tenant figures for GET /v1/destinations; may be null.
  std::shared_ptr<destination_board> board;
};

struct manager_env;

/// The manager proper is the directory of live jobs: it spawns them, routes reads and cancels
/// to them, and hibernates and activates them. Admission is the intake's, idempotency the index's.
struct manager_state {
  std::shared_ptr<manager_env> env;
  struct live_job {
    job_actor actor;
    std::string tenant;
  };
  std::unordered_map<std::string, live_job> live;
  std::unordered_map<std::string, destination_actor> destinations;
  /// The context every job of one URL authority, policy and start shares (context_key): jobs
  /// differ in nothing else, so one is made per kind, not per job (time and memory a job).
  std::unordered_map<std::string, std::shared_ptr<const job_context>> contexts;
  std::shared_ptr<inflight_gate> gate;
  std::unique_ptr<intake> admission;
  std::unique_ptr<idempotency_index> idem;
  scheduler_actor scheduler;
  // Jobs being brought back from their snapshots, with the commands waiting for them. Each keeps
  // its caller's tenant: the job's own is known only once it is loaded.
  struct waiting_command {
    std::string tenant;
    job_command command;
    completion<command_answer> reply;
  };
  std::unordered_map<std::string, std::vector<waiting_command>> activating;
  std::unordered_map<std::string, std::pair<recovered_job, completion<retry_answer>>> retrying;
  /// Retries of jobs that have ended in memory but whose end is not written yet: run once it is.
  struct retry_request {
    std::string tenant;
    std::int64_t run_at_ms = 0;
    completion<retry_answer> reply;
  };
  std::unordered_map<std::string, std::vector<retry_request>> retry_after_done;
};

manager_actor::behavior_type job_manager(manager_actor::stateful_pointer<manager_state> self, manager_options options,
                                         store_actor store, std::shared_ptr<delivery_client> client,
                                         std::shared_ptr<const wall_clock> clock,
                                         std::shared_ptr<relay_metrics> metrics);

}  // namespace fetchrelay::actors
