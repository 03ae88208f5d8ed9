#include "actors/destination_actor.h"

namespace fetchrelay::actors {
namespace {

using finished_atom = caf::atom_constant<caf::atom("finished")>;

void start(caf::stateful_actor<destination_state>* self, attempt_request req, http::client& client,
           const wall_clock& clock) {
  ++self->state.in_flight;
  http::outbound_request out;
  out.method = req.method;
  out.url = req.url;
  for (auto& h : req.headers) out.headers.push_back({std::move(h.name), std::move(h.value)});
  out.body = std::move(req.body);
  caf::actor me = caf::actor_cast<caf::actor>(self);
  std::int64_t started = clock.now_ms();
  auto t0 = std::chrono::steady_clock::now();
  client.send(std::move(out), req.timeout,
              [me, reply_to = req.reply_to, gen = req.generation, started, t0](http::outbound_result r) {
                attempt_result a;
                a.generation = gen;
                a.started_at_ms = started;
                a.duration_ms = static_cast<std::uint32_t>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
                if (r.response) {
                  a.status = r.response->status;
                  for (auto& h : r.response->headers) a.headers.push_back({std::move(h.name), std::move(h.value)});
                  a.body = std::move(r.response->body);
                } else if (r.error) {
                  a.error_class = std::string(http::to_string(r.error->kind));
                  a.error = std::move(r.error->message);
                }
                caf::anon_send(me, finished_atom::value, std::move(a), reply_to);
              });
}

}  // namespace

caf::behavior destination_actor(caf::stateful_actor<destination_state>* self, std::string origin,
                                std::shared_ptr<http::client> client, int max_in_flight,
                                std::shared_ptr<const wall_clock> clock, std::shared_ptr<relay_metrics> metrics) {
  (void)origin;
  return {
      [self, client, max_in_flight, clock](deliver_atom, attempt_request& req) {
        if (self->state.in_flight < max_in_flight) {
          start(self, std::move(req), *client, *clock);
        } else {
          self->state.queue.push_back(std::move(req));
        }
      },
      [self, client, clock, metrics](finished_atom, attempt_result& a, const caf::actor& reply_to) {
        --self->state.in_flight;
        if (metrics) {
          metrics->attempts[static_cast<size_t>(classify_attempt(a.status, a.error_class))].fetch_add(1, std::memory_order_relaxed);
          metrics->delivery_latency.observe(a.duration_ms);
        }
        caf::anon_send(reply_to, outcome_atom::value, std::move(a));
        if (!self->state.queue.empty()) {
          auto next = std::move(self->state.queue.front());
          self->state.queue.pop_front();
          start(self, std::move(next), *client, *clock);
        }
      },
  };
}

}  // namespace fetchrelay::actors
