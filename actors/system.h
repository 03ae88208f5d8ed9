// Setting up the CAF actor system from the relay's config, and the health actor.
#pragma once

#include <caf/all.hpp>
#include <chrono>

#include "actors/messages.h"
#include "core/clock.h"
#include "core/metrics.h"

namespace fetchrelay::actors {

struct system_options {
  int worker_threads = 2;
  /// Run on caf::scheduler::test_coordinator with a simulated clock (tests only).
  bool deterministic = false;
};

/// Applies the options with cfg.set(...) (never cfg.parse, which reads caf-application.ini).
void configure(caf::actor_system_config& cfg, const system_options& options);

/// Answers (ping_atom, completion<health_report>) with the version and the uptime measured
/// from `started`. Liveness through an actor: if the scheduler is wedged, /healthz hangs.
using health_actor = caf::typed_actor<
    caf::reacts_to<ping_atom, completion<health_report>>>;

health_actor::behavior_type health(health_actor::pointer self,
                                   std::chrono::steady_clock::time_point started);

/// (sample_atom): self, periodic: the per-minute history of the console's overview.
using sample_atom = caf::atom_constant<caf::atom("sample")>;
using sampler_actor = caf::typed_actor<caf::reacts_to<sample_atom>>;

/// Feeds `history` a snapshot of `metrics` now and every `every` (GET /v1/stats' minutes).
sampler_actor::behavior_type metrics_sampler(sampler_actor::pointer self, std::shared_ptr<metrics_history> history,
                                             std::shared_ptr<const relay_metrics> metrics,
                                             std::shared_ptr<const wall_clock> clock, std::chrono::milliseconds every);

}  // namespace fetchrelay::actors
