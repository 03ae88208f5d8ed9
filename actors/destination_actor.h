// The destination actor: one per origin (scheme://host:port). It owns the origin's in-flight
// cap and one plugin chain per policy that has jobs to the origin (DESIGN §1), and runs each
// attempt through that chain and the HTTP client. A plugin that defers or rejects stops the
// attempt before it is sent; the job actor gets a deferred or rejected outcome. The client's completion comes back as a message (anon_send from the
// client's io thread); the outcome then goes to the job actor that asked.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "actors/messages.h"
#include "core/clock.h"
#include "core/destinations.h"
#include "core/metrics.h"
#include "core/delivery.h"
#include "plugins/host/plugin_host.h"

namespace fetchrelay::actors {

/// (gate_atom): a slot of the global in-flight cap, handed to a destination that waited for it.
using gate_atom = caf::atom_constant<caf::atom("gate")>;
/// (finished_atom, result, reply_to, ticket): an attempt ended (from the client's io thread).
using finished_atom = caf::atom_constant<caf::atom("finished")>;

using destination_actor = caf::typed_actor<
    // A job actor: run this attempt; (outcome_atom, attempt_result) goes to request.reply_to.
    caf::reacts_to<deliver_atom, attempt_request>,
    // The manager, stopping: drop the queued attempts that have not started (they stay due).
    caf::reacts_to<drain_atom>,
    // The inflight gate: a slot of the global cap is this destination's now.
    caf::reacts_to<gate_atom>,
    // The delivery client's completion, sent from its io thread; ticket 0: no plugin chain.
    caf::reacts_to<finished_atom, attempt_result, caf::actor, std::uint64_t>>;

/// The global in-flight cap (limits.max_in_flight), shared by every destination actor, so one
/// dead origin cannot take all delivery capacity and all origins together stay bounded. An
/// attempt holds a slot; a destination that finds none waits in line (once) and is handed the
/// next slot freed, in order. Thread-safe.
class inflight_gate {
 public:
  explicit inflight_gate(int cap) : cap_(cap) {}
  /// True: a slot is taken. False: `waiter` is in line and will get gate_atom with a slot.
  bool try_acquire(const destination_actor& waiter);
  /// Frees a slot, or hands it to the first in line.
  void release();
  int used() const;

 private:
  mutable std::mutex mu_;
  int cap_;
  int used_ = 0;
  std::deque<destination_actor> waiters_;
};

/// What destinations build their chains from: the loaded plugins, each policy's pipeline
/// (policies without plugins are absent) and the host services plugins use.
struct pipeline_set {
  std::shared_ptr<const plugins::registry> registry;
  std::map<std::string, std::vector<config::plugin_step>> steps;
  plugins::services services;
};

struct destination_state {
  int in_flight = 0;
  bool waiting_for_gate = false;
  std::deque<attempt_request> queue;
  // Chains by policy, made on first use; a policy whose chain could not be made maps to null
  // and its error.
  std::map<std::string, std::unique_ptr<plugins::chain>> chains;
  std::map<std::string, std::string> chain_errors;
  // Attempts in flight that went through a chain: on_outcome needs them back.
  struct chained {
    plugins::chain* chain = nullptr;
    std::size_t proceeded = 0;
    plugins::attempt_data data;
  };
  std::uint64_t next_ticket = 1;
  std::unordered_map<std::uint64_t, chained> chained_in_flight;
};

struct destination_options {
  std::string origin;
  std::shared_ptr<delivery_client> client;
  int max_in_flight = 64;                     // this origin's cap
  std::shared_ptr<inflight_gate> gate;        // the global cap; may be null
  std::shared_ptr<const pipeline_set> pipelines; // may be null: no plugins
  std::shared_ptr<const wall_clock> clock;
  std::shared_ptr<relay_metrics> metrics;     // may be null
  std::shared_ptr<delivery_drain> drain;      // may be null
  std::shared_ptr<origin_stats> stats;        // this origin on the destinations board; may be null
};

destination_actor::behavior_type destination_actor_impl(destination_actor::stateful_pointer<destination_state> self,
                                                       destination_options options);

}  // namespace fetchrelay::actors
