// The destination actor: one per origin (scheme://host:port). It owns the origin's in-flight
// cap and runs each attempt through the plugin chain (none yet: the plugin issue adds it) and
// the HTTP client. The client's completion comes back as a message (anon_send from the
// client's io thread); the outcome then goes to the job actor that asked.
#pragma once

#include <deque>
#include <memory>
#include <mutex>

#include "actors/messages.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "http/client.h"

namespace fetchrelay::actors {

/// (gate_atom): a slot of the global in-flight cap, handed to a destination that waited for it.
using gate_atom = caf::atom_constant<caf::atom("gate")>;

/// The global in-flight cap (limits.max_in_flight), shared by every destination actor, so one
/// dead origin cannot take all delivery capacity and all origins together stay bounded. An
/// attempt holds a slot; a destination that finds none waits in line (once) and is handed the
/// next slot freed, in order. Thread-safe.
class inflight_gate {
 public:
  explicit inflight_gate(int cap) : cap_(cap) {}
  /// True: a slot is taken. False: `waiter` is in line and will get gate_atom with a slot.
  bool try_acquire(const caf::actor& waiter);
  /// Frees a slot, or hands it to the first in line.
  void release();
  int used() const;

 private:
  mutable std::mutex mu_;
  int cap_;
  int used_ = 0;
  std::deque<caf::actor> waiters_;
};

struct destination_state {
  int in_flight = 0;
  bool waiting_for_gate = false;
  std::deque<attempt_request> queue;
};

/// (deliver_atom, attempt_request) in; (outcome_atom, attempt_result) out to request.reply_to.
/// `gate` may be null (no global cap).
caf::behavior destination_actor(caf::stateful_actor<destination_state>* self, std::string origin,
                                std::shared_ptr<http::client> client, int max_in_flight,
                                std::shared_ptr<inflight_gate> gate, std::shared_ptr<const wall_clock> clock,
                                std::shared_ptr<relay_metrics> metrics);

}  // namespace fetchrelay::actors
