#include "actors/destination_actor.h"

namespace fetchrelay::actors {
namespace {

using finished_atom = caf::atom_constant<caf::atom("finished")>;

using self_ptr = caf::stateful_actor<destination_state>*;

void start(self_ptr self, attempt_request req, http::client& client, const wall_clock& clock, relay_metrics* metrics) {
  ++self->state.in_flight;
  if (metrics) metrics->in_flight.fetch_add(1, std::memory_order_relaxed);
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

bool inflight_gate::try_acquire(const caf::actor& waiter) {
  std::lock_guard<std::mutex> lock(mu_);
  if (used_ < cap_) {
    ++used_;
    return true;
  }
  waiters_.push_back(waiter);
  return false;
}

void inflight_gate::release() {
  caf::actor next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (waiters_.empty()) {
      --used_;
      return;
    }
    next = std::move(waiters_.front());
    waiters_.pop_front();
  }
  caf::anon_send(next, gate_atom::value);  // the slot passes on; used_ stays
}

int inflight_gate::used() const {
  std::lock_guard<std::mutex> lock(mu_);
  return used_;
}

caf::behavior destination_actor(self_ptr self, std::string origin, std::shared_ptr<http::client> client,
                                int max_in_flight, std::shared_ptr<inflight_gate> gate,
                                std::shared_ptr<const wall_clock> clock, std::shared_ptr<relay_metrics> metrics) {
  (void)origin;
  // Starts queued attempts while this origin's cap and the global gate allow.
  auto pump = [self, client, max_in_flight, gate, clock, metrics] {
    auto& st = self->state;
    while (!st.queue.empty() && st.in_flight < max_in_flight && !st.waiting_for_gate) {
      if (gate && !gate->try_acquire(caf::actor_cast<caf::actor>(self))) {
        st.waiting_for_gate = true;
        return;
      }
      auto next = std::move(st.queue.front());
      st.queue.pop_front();
      start(self, std::move(next), *client, *clock, metrics.get());
    }
  };
  return {
      [self, pump](deliver_atom, attempt_request& req) {
        self->state.queue.push_back(std::move(req));
        pump();
      },
      [self, client, max_in_flight, gate, clock, metrics, pump](gate_atom) {
        auto& st = self->state;
        st.waiting_for_gate = false;
        if (st.queue.empty() || st.in_flight >= max_in_flight) {
          gate->release();
        } else {
          auto next = std::move(st.queue.front());
          st.queue.pop_front();
          start(self, std::move(next), *client, *clock, metrics.get());
        }
        pump();
      },
      [self, gate, metrics, pump](finished_atom, attempt_result& a, const caf::actor& reply_to) {
        --self->state.in_flight;
        if (gate) gate->release();
        if (metrics) {
          metrics->in_flight.fetch_sub(1, std::memory_order_relaxed);
          metrics->attempts[static_cast<size_t>(classify_attempt(a.status, a.error_class))].fetch_add(1, std::memory_order_relaxed);
          metrics->delivery_latency.observe(a.duration_ms);
        }
        caf::anon_send(reply_to, outcome_atom::value, std::move(a));
        pump();
      },
  };
}

}  // namespace fetchrelay::actors
