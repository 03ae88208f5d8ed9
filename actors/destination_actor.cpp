#include "actors/destination_actor.h"
#include "actors/guard.h"

#include <spdlog/spdlog.h>

#include "core/ascii.h"
#include "core/log.h"
#include "core/qstash.h"
#include "core/retry.h"

namespace fetchrelay::actors {
namespace {

using self_ptr = destination_actor::stateful_pointer<destination_state>;
using opts_ptr = std::shared_ptr<const destination_options>;

/// The chain for `policy` at this origin, made on first use; null if the policy has no plugins
/// (or its chain could not be made: then `error` says why).
plugins::chain* chain_for(self_ptr self, const destination_options& o, const std::string& policy, std::string& error) {
  auto& st = self->state;
  if (!o.pipelines) return nullptr;
  if (auto e = st.chain_errors.find(policy); e != st.chain_errors.end()) {
    error = e->second;
    return nullptr;
  }
  if (auto c = st.chains.find(policy); c != st.chains.end()) return c->second.get();
  auto steps = o.pipelines->steps.find(policy);
  if (steps == o.pipelines->steps.end() || steps->second.empty()) {
    st.chains[policy] = nullptr;
    return nullptr;
  }
  plugins::services svc = o.pipelines->services;
  svc.labels = "origin=\"" + o.origin + "\",policy=\"" + policy + "\"";
  if (o.stats) {
    svc.on_gauge = [stats = o.stats, policy](std::string_view name, std::int64_t v) { stats->plugin_gauge(policy, name, v); };
  }
  auto made = plugins::chain::create(*o.pipelines->registry, policy, steps->second, svc);
  if (!made) {
    spdlog::error("{}: {}", o.origin, made.error().message());
    st.chain_errors[policy] = error = made.error().message();
    return nullptr;
  }
  return (st.chains[policy] = std::move(made.value())).get();
}

void reply_not_sent(const attempt_request& req, const plugins::chain::verdict& v, const wall_clock& clock) {
  attempt_result a;
  a.generation = req.generation;
  a.started_at_ms = clock.now_ms();
  a.token = req.token;
  if (v.kind == FR_DEFER) {
    a.deferred = true;
    a.defer_until_ms = v.defer_until_ms;
    a.defer_reason = v.reason;
  } else {
    a.kind = error_class::rejected;
    a.error = v.reason;
  }
  caf::anon_send(req.reply_to, outcome_atom::value, std::move(a));
}

/// Runs the attempt through chain `c`. False if a plugin stopped it (the job actor is told);
/// true with `ticket` set to find the chain again when the outcome comes.
bool run_chain(self_ptr self, const destination_options& o, plugins::chain* c, attempt_request& req,
               std::uint64_t& ticket) {
  auto& st = self->state;
  plugins::attempt_data d{std::move(req.method), std::move(req.url),   std::move(req.job_id), req.tenant,
                          req.policy,            req.attempt,          std::move(req.headers), std::move(req.body)};
  auto v = c->on_attempt(d);
  log::event(spdlog::level::debug,
             {{"job_id", d.job_id}, {"attempt", req.attempt}, {"policy", req.policy},
              {"decision", v.kind == FR_PROCEED ? "proceed" : v.kind == FR_DEFER ? "defer" : "reject"},
              {"plugin", v.by}, {"reason", v.reason}},
             "plugin chain decided");
  if (v.kind != FR_PROCEED) {
    c->on_outcome(d, {0, v.kind == FR_DEFER ? "deferred" : "rejected", -1, 0}, v.proceeded);
    if (o.metrics && v.kind == FR_REJECT) {
      o.metrics->attempts[static_cast<size_t>(attempt_class::rejected)].fetch_add(1, std::memory_order_relaxed);
    } else if (o.metrics) {
      o.metrics->add_count("fetchrelay_deferrals_total", "plugin=\"" + v.by + "\"", 1);
    }
    if (o.stats && v.kind == FR_DEFER) o.stats->deferred(req.tenant, v.by, o.clock->now_ms());
    req.job_id = std::move(d.job_id);
    reply_not_sent(req, v, *o.clock);
    return false;
  }
  // The plugins may have changed headers and body; on_outcome sees what was sent.
  req.method = d.method;
  req.url = d.url;
  req.headers = d.headers;
  req.body = d.body;
  ticket = st.next_ticket++;
  st.chained_in_flight[ticket] = {c, v.proceeded, std::move(d)};
  return true;
}

/// Runs the attempt through its chain and sends it. False if a plugin stopped it (the job
/// actor has its answer then; no slot is held).
bool start(self_ptr self, const destination_options& o, attempt_request req) {
  auto& st = self->state;
  std::uint64_t ticket = 0;
  std::string chain_error;
  plugins::chain* c = chain_for(self, o, req.policy, chain_error);
  if (!chain_error.empty()) {
    reply_not_sent(req, {FR_REJECT, 0, "the plugin pipeline cannot be set up: " + chain_error, 0}, *o.clock);
    if (o.metrics) o.metrics->attempts[static_cast<size_t>(attempt_class::rejected)].fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (c && !run_chain(self, o, c, req, ticket)) return false;
  ++st.in_flight;
  if (o.metrics) o.metrics->in_flight.fetch_add(1, std::memory_order_relaxed);
  outbound_request out;
  out.method = std::move(req.method);
  out.url = std::move(req.url);
  out.headers = std::move(req.headers);
  out.body = std::move(req.body);
  if (!req.qstash_key.empty()) {
    out.user_agent = "Upstash-QStash";
    out.headers.push_back({"Upstash-Signature", qstash::sign(req.qstash_key, {out.url, out.body, o.clock->now_ms() / 1000,
                                                                               qstash::new_jti()})});
  }
  auto me = caf::actor_cast<destination_actor>(self);
  std::int64_t started = o.clock->now_ms();
  auto t0 = std::chrono::steady_clock::now();
  if (o.stats) o.stats->started(req.tenant, started);
  o.client->send(std::move(out), req.timeout,
                 [me, reply_to = req.reply_to, gen = req.generation, started, t0, ticket,
                  token = std::move(req.token), stats = o.stats, tenant = std::move(req.tenant)](outbound_result r) {
                   attempt_result a;
                   a.generation = gen;
                   a.token = token;
                   a.started_at_ms = started;
                   a.duration_ms = static_cast<std::uint32_t>(
                       std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
                   if (r.response) {
                     a.status = r.response->status;
                     a.headers = std::move(r.response->headers);
                     a.body = std::move(r.response->body);
                   } else if (r.error) {
                     a.kind = r.error->kind;
                     a.error = std::move(r.error->message);
                   }
                   if (stats) {
                     bool ok = a.status >= 200 && a.status < 300;
                     stats->finished(tenant, ok,
                                     ok ? std::string() : a.status ? std::to_string(a.status) : std::string(to_string(a.kind)) + ": " + a.error,
                                     started + a.duration_ms);
                   }
                   caf::anon_send(me, finished_atom::value, std::move(a), reply_to, ticket);
                 });
  return true;
}

/// on_outcome for an attempt that went through a chain.
void report_outcome(self_ptr self, const destination_options& o, std::uint64_t ticket, const attempt_result& a) {
  auto& st = self->state;
  auto it = st.chained_in_flight.find(ticket);
  if (it == st.chained_in_flight.end()) return;
  plugins::outcome_data od{a.status, std::string(to_string(a.kind)), -1, a.duration_ms};
  for (const auto& h : a.headers) {
    if (iequals(h.name, "Retry-After")) {
      std::int64_t now = o.clock->now_ms();
      if (auto ms = parse_retry_after(h.value, now)) od.retry_after_ms = now + ms->count();
    }
  }
  it->second.chain->on_outcome(it->second.data, od, it->second.proceeded);
  st.chained_in_flight.erase(it);
}

}  // namespace

bool inflight_gate::try_acquire(const destination_actor& waiter) {
  std::lock_guard<std::mutex> lock(mu_);
  if (used_ < cap_) {
    ++used_;
    return true;
  }
  waiters_.push_back(waiter);
  return false;
}

void inflight_gate::release() {
  destination_actor next;
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

destination_actor::behavior_type destination_actor_impl(self_ptr self, destination_options options) {
  auto o = std::make_shared<const destination_options>(std::move(options));
  // Starts queued attempts while this origin's cap and the global gate allow.
  auto pump = [self, o] {
    auto& st = self->state;
    while (!st.queue.empty() && st.in_flight < o->max_in_flight && !st.waiting_for_gate) {
      if (o->gate && !o->gate->try_acquire(caf::actor_cast<destination_actor>(self))) {
        st.waiting_for_gate = true;
        return;
      }
      auto next = std::move(st.queue.front());
      st.queue.pop_front();
      if (!start(self, *o, std::move(next)) && o->gate) o->gate->release();
    }
  };
  return {
      guarded("destination", "deliver", [self, o, pump](deliver_atom, attempt_request& req) {
        if (o->drain && o->drain->draining.load(std::memory_order_acquire)) return;  // stays due
        self->state.queue.push_back(std::move(req));
        pump();
      }),
      guarded("destination", "drain", [self](drain_atom) {
        // Stopping: what has not started stays due in the store (its token goes with it).
        self->state.queue.clear();
      }),
      guarded("destination", "gate", [self, o, pump](gate_atom) {
        // A slot handed over by the gate: use it for the next queued attempt, or give it back.
        auto& st = self->state;
        st.waiting_for_gate = false;
        bool used = false;
        while (!used && !st.queue.empty() && st.in_flight < o->max_in_flight) {
          auto next = std::move(st.queue.front());
          st.queue.pop_front();
          used = start(self, *o, std::move(next));
        }
        if (!used) o->gate->release();
        pump();
      }),
      guarded("destination", "finished", [self, o, pump](finished_atom, attempt_result& a, const caf::actor& reply_to, std::uint64_t ticket) {
        --self->state.in_flight;
        if (o->gate) o->gate->release();
        if (ticket != 0) report_outcome(self, *o, ticket, a);
        if (o->metrics) {
          o->metrics->in_flight.fetch_sub(1, std::memory_order_relaxed);
          o->metrics->attempts[static_cast<size_t>(classify_attempt(a.status, a.kind))].fetch_add(1, std::memory_order_relaxed);
          o->metrics->delivery_latency.observe(a.duration_ms);
        }
        caf::anon_send(reply_to, outcome_atom::value, std::move(a));
        pump();
      }),
  };
}

}  // namespace fetchrelay::actors
