// The job manager: admission, ids, idempotency, and the map from id to live job actor
// (DESIGN §1). The API talks to it with anon_send and a completion; it never blocks.
//
// A submission is acknowledged only after its batch is synced by the store actor; then its
// job actor is spawned. When a job ends, the manager forgets it and sends its callback (a
// child job of its own, durable and retried like any job).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <unordered_map>

#include "actors/destination_actor.h"
#include "actors/job_actor.h"
#include "actors/idempotency_index.h"
#include "actors/scheduler.h"
#include "actors/submit.h"
#include "actors/store_actor.h"
#include "core/ulid.h"
#include "core/delivery.h"
#include "core/url.h"

namespace fetchrelay::actors {

using activated_atom = caf::atom_constant<caf::atom("activated")>;
using cancel_found_atom = caf::atom_constant<caf::atom("cancelfnd")>;
using idem_gone_atom = caf::atom_constant<caf::atom("idemgone")>;

/// Makes the destination actor of an origin (tests inject their own target).
using destination_factory = std::function<caf::actor(caf::local_actor* manager, const std::string& origin)>;

struct policy_runtime {
  retry_policy retry;
  std::uint32_t timeout_ms = 15'000;
};

struct manager_options {
  std::map<std::string, policy_runtime> policies;  // holds "default"
  std::int64_t max_pending_per_tenant = 10'000'000;
  /// Unfinished jobs per tenant when the manager starts (persistence::store::pending_by_tenant).
  std::map<std::string, std::int64_t> initial_pending;
  int max_in_flight_per_origin = 64;
  int max_in_flight = 4096;  // all origins together (limits.max_in_flight)
  std::chrono::milliseconds idempotency_window{86'400'000};
  /// Idempotency keys kept in memory at most; older ones are looked up in the store.
  std::size_t max_idempotency_in_memory = 100'000;
  /// Submissions waiting for the store at most; past it POST /v1/fetch answers 503.
  std::size_t max_pending_commits = 50'000;
  std::chrono::milliseconds hibernate_after{30'000};
  /// How often the store is told to sweep finished jobs past retention and report disk use.
  std::chrono::milliseconds sweep_every{60'000};
  scheduler_options scheduler;
  destination_factory make_destination;  // null: destination_actor with the HTTP client
  std::shared_ptr<const pipeline_set> pipelines;  // the plugin chains' makings; may be null
  std::shared_ptr<delivery_drain> drain;          // graceful stop; may be null
};

/// POST /v1/jobs/{id}/retry.
struct retry_answer {
  enum kind { scheduled, not_retryable, not_found, unavailable } result = not_found;
  std::int64_t run_at_ms = 0;
  std::string message;
};

struct manager_env;

struct manager_state {
  std::shared_ptr<manager_env> env;
  struct pending_submission {
    job_state state;
    job_spec spec;
    completion<submit_answer> reply;
    std::string idem;  // key into idem, if any
  };
  struct live_job {
    caf::actor actor;
    std::string tenant;
  };
  std::unique_ptr<ulid_generator> ids;
  std::unordered_map<std::string, live_job> live;
  std::unordered_map<std::string, caf::actor> destinations;
  std::shared_ptr<inflight_gate> gate;
  std::unordered_map<std::string, pending_submission> pending;
  // Submissions not yet handed to the store: one commit (and one answer back) for all that
  // arrived in one turn of the mailbox.
  persistence::commit_batch outbox;
  std::vector<std::string> outbox_ids;
  std::unordered_map<std::string, std::int64_t> tenant_pending;
  std::unique_ptr<idempotency_index> idem;
  caf::actor scheduler;
  // Jobs being brought back from their snapshots, with the cancels waiting for them.
  // Each waiting cancel keeps its tenant: the job's own is known only once it is loaded.
  std::unordered_map<std::string, std::vector<std::pair<std::string, completion<cancel_answer>>>> activating;
  std::unordered_map<std::string, std::pair<recovered_job, completion<retry_answer>>> retrying;
};

caf::behavior job_manager(caf::stateful_actor<manager_state>* self, manager_options options, store_actor store,
                          std::shared_ptr<delivery_client> client, std::shared_ptr<const wall_clock> clock,
                          std::shared_ptr<relay_metrics> metrics);

}  // namespace fetchrelay::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::submission)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::actors::submit_answer>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<fetchrelay::actors::recovered_job>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::actors::retry_answer>)
