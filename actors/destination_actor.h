// The destination actor: one per origin (scheme://host:port). It owns the origin's in-flight
// cap and runs each attempt through the plugin chain (none yet: the plugin issue adds it) and
// the HTTP client. The client's completion comes back as a message (anon_send from the
// client's io thread); the outcome then goes to the job actor that asked.
#pragma once

#include <deque>
#include <memory>

#include "actors/messages.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "http/client.h"

namespace fetchrelay::actors {

struct destination_state {
  int in_flight = 0;
  std::deque<attempt_request> queue;
};

/// (deliver_atom, attempt_request) in; (outcome_atom, attempt_result) out to request.reply_to.
caf::behavior destination_actor(caf::stateful_actor<destination_state>* self, std::string origin,
                                std::shared_ptr<http::client> client, int max_in_flight,
                                std::shared_ptr<const wall_clock> clock, std::shared_ptr<relay_metrics> metrics);

}  // namespace fetchrelay::actors
