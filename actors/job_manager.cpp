#include "actors/job_manager.h"
#include "actors/guard.h"

#include <spdlog/spdlog.h>

#include "actors/destination_actor.h"
#include "core/reply_batch.h"
#include "core/job_json.h"
#include "core/log.h"
#include "core/text.h"

namespace fetchrelay::actors {
namespace {

using self_ptr = caf::stateful_actor<manager_state>*;

double unit_random() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

}  // namespace

struct manager_env {
  manager_options options;
  store_actor store;
  std::shared_ptr<delivery_client> client;
  std::shared_ptr<const wall_clock> clock;
  std::shared_ptr<relay_metrics> metrics;
};

namespace {

using env = manager_env;

caf::actor destination_for(self_ptr self, const env& e, const std::string& url) {
  auto origin = url_origin(url);
  std::string key = origin ? *origin : std::string("invalid");
  auto& d = self->state.destinations[key];
  if (d) return d;
  if (e.options.make_destination)
    d = e.options.make_destination(self, key);
  else
    d = self->spawn<caf::linked>(destination_actor,
                                 destination_options{key, e.client, e.options.max_in_flight_per_origin, self->state.gate,
                                                     e.options.pipelines, e.clock, e.metrics, e.options.drain});
  return d;
}

void publish_live(self_ptr self, const env& e) {
  if (e.metrics)
    e.metrics->live_job_actors.store(static_cast<std::int64_t>(self->state.live.size()));
}

void spawn_job(self_ptr self, const env& e, job_state s, job_spec spec,
               std::vector<attempt_record> attempts, bool may_hibernate = true) {
  auto ctx = std::make_shared<job_context>();
  ctx->store = e.store;
  ctx->destination = destination_for(self, e, spec.url);
  ctx->manager = caf::actor_cast<caf::actor>(self);
  ctx->clock = e.clock;
  auto p = e.options.policies.find(s.policy);
  ctx->retry =
      p != e.options.policies.end() ? p->second.retry : e.options.policies.at("default").retry;
  ctx->unit_random = unit_random;
  ctx->metrics = e.metrics;
  ctx->hibernate_after = e.options.hibernate_after;
  ctx->hibernate_at_start = may_hibernate;
  ctx->drain = e.options.drain;
  std::string id = s.id;
  std::string tenant = s.tenant;
  // Not linked: CAF keeps an actor's links in a list that every link and unlink walks, which made
  // each spawn and exit O(live jobs) (W2 of the benchmark collapsed at 150,000 waiting jobs).
  // The manager ends its jobs itself when it goes (stop_jobs).
  auto a = self->spawn(job_actor_impl, std::move(s), std::move(spec), std::move(attempts), ctx);
  self->state.live[id] = {caf::actor_cast<caf::actor>(a), tenant};
  publish_live(self, e);
}

/// Ends every live job actor (they are not linked to the manager): the manager is going.
void stop_jobs(self_ptr self, const caf::error& reason) {
  for (auto& [id, job] : self->state.live) self->send_exit(job.actor, reason);
  self->state.live.clear();
}

void submit(self_ptr self, const env& e, submission sub, completion<submit_answer> reply);

submit_answer conflict_answer(const std::string& id) {
  return {409, id, 0, false, "idempotency_key_conflict",
          "X-Idempotency-Key was first used for job " + id +
              " with another method, URL, forwarded headers or body; use a new key for a new job"};
}

/// Answers a repeat with the job's status now (from the live actor, else from the store), or
/// 409 if it asks for something else (`conflict`). A job that is gone (past retention, or
/// purged) took its key with it: the repeat becomes a new job.
void answer_repeat(self_ptr self, const env& e, submission sub, const std::string& id, bool conflict,
                   completion<submit_answer> reply) {
  caf::actor me = caf::actor_cast<caf::actor>(self);
  auto held = std::make_shared<submission>(std::move(sub));
  completion<result<std::optional<job_view>>> found([me, id, conflict, held, reply](result<std::optional<job_view>> r) {
    if (!r.is_ok()) return reply({503, "", 0, false, "store_unavailable", r.error().message(), 1});
    if (!r.value()) {
      caf::anon_send(me, idem_gone_atom::value, id, std::move(*held), reply);
      return;
    }
    if (conflict) return reply(conflict_answer(id));
    const job_state& s = r.value()->state;
    submit_answer a{202, id, s.run_at_ms, true, "", ""};
    a.status = s.status;
    reply(a);
  });
  if (auto it = self->state.live.find(id); it != self->state.live.end()) {
    caf::anon_send(it->second.actor, read_atom::value, found);
  } else {
    self->send(e.store, read_atom::value, held->tenant, id, found);
  }
}

void submit(self_ptr self, const env& e, submission sub, completion<submit_answer> reply) {
  auto& st = self->state;
  std::int64_t now = e.clock->now_ms();
  st.idem->prune(now);
  std::string idem_key;
  if (!sub.idempotency_key.empty()) {
    idem_key = idempotency_index::key_of(sub.tenant, sub.idempotency_key);
    if (auto* known = st.idem->find(idem_key, now)) {
      bool conflict = idempotency_index::conflicts(known->fingerprint, sub.fingerprint);
      if (known->committed)
        answer_repeat(self, e, std::move(sub), known->id, conflict, std::move(reply));
      else if (conflict)
        reply(conflict_answer(known->id));
      else
        known->waiters.push_back(std::move(reply));  // answered after the first's sync
      return;
    }
    if (!st.idem->known(idem_key) && !sub.idem_checked) {
      // Not in memory: it may have been given before a restart. Ask the store first (once).
      std::string tenant = sub.tenant, key = sub.idempotency_key;
      if (!st.idem->await_lookup(idem_key, std::move(sub), std::move(reply))) return;
      caf::actor me = caf::actor_cast<caf::actor>(self);
      self->send(e.store, idem_atom::value, tenant, key,
                 completion<result<std::optional<idem_hit>>>(
                     [me, idem_key](result<std::optional<idem_hit>> r) {
                       caf::anon_send(me, idem_loaded_atom::value, idem_key, std::move(r));
                     }));
      return;
    }
  }
  if (st.pending.size() >= e.options.max_pending_commits) {
    if (e.metrics) e.metrics->rejected_busy.fetch_add(1, std::memory_order_relaxed);
    reply({503, "", 0, false, "busy",
           std::to_string(st.pending.size()) +
               " submissions are waiting for the store; retry shortly",
           1});
    return;
  }
  auto& count = st.tenant_pending[sub.tenant];
  if (count >= e.options.max_pending_per_tenant) {
    reply({429, "", 0, false, "too_many_pending",
           "this tenant has " + std::to_string(count) +
               " jobs not yet finished (limits.max_pending_per_tenant)",
           5});
    return;
  }
  auto pol = e.options.policies.find(sub.policy);
  if (pol == e.options.policies.end()) pol = e.options.policies.find("default");
  job_state s;
  s.id = "job_" + st.ids->next(now);
  s.tenant = sub.tenant;
  s.status = job_status::scheduled;
  s.method = sub.spec.method;
  s.url = sub.spec.url;
  s.policy = pol->first;
  s.created_at_ms = now;
  s.run_at_ms = std::max(sub.run_at_ms, now);
  s.max_attempts = sub.max_attempts.value_or(pol->second.retry.attempts);
  s.timeout_ms = sub.timeout_ms.value_or(pol->second.timeout_ms);
  s.callback_url = sub.callback_url;
  s.failure_callback_url = sub.failure_callback_url;
  s.parent_id = sub.parent_id;
  s.idempotency_key = sub.idempotency_key;

  persistence::commit_batch b;
  b.sync = true;
  b.jobs.push_back({s, sub.spec, std::nullopt});
  if (!idem_key.empty()) {
    auto expires = now + e.options.idempotency_window.count();
    b.idempotency.push_back({sub.tenant, sub.idempotency_key, {s.id, expires, sub.fingerprint}});
    st.idem->remember(idem_key, {s.id, s.run_at_ms, expires, sub.fingerprint, false, {}});
  }
  ++count;
  std::string id = s.id;
  st.pending[id] = {std::move(s), std::move(sub.spec), std::move(reply), idem_key};
  if (st.outbox_ids.empty()) self->send(self, flush_atom::value);  // after the submissions queued now
  for (auto& j : b.jobs) st.outbox.jobs.push_back(std::move(j));
  for (auto& k : b.idempotency) st.outbox.idempotency.push_back(std::move(k));
  st.outbox_ids.push_back(std::move(id));
}

/// Hands the submissions gathered in this turn to the store as one synced commit.
void flush_submissions(self_ptr self, const env& e) {
  auto& st = self->state;
  if (st.outbox_ids.empty()) return;
  persistence::commit_batch b = std::move(st.outbox);
  st.outbox = {};
  b.sync = true;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  self->send(e.store, commit_atom::value, std::move(b),
             completion<status>([me, ids = std::move(st.outbox_ids)](status r) {
               caf::anon_send(me, committed_atom::value, ids, std::move(r));
             }));
  st.outbox_ids.clear();
}

void on_committed(self_ptr self, const env& e, const std::string& id, const status& r) {
  auto& st = self->state;
  auto it = st.pending.find(id);
  if (it == st.pending.end()) return;
  auto p = std::move(it->second);
  st.pending.erase(it);
  std::vector<completion<submit_answer>> waiters;
  if (!p.idem.empty()) waiters = st.idem->committed(p.idem, r.is_ok());
  if (!r.is_ok()) {
    --st.tenant_pending[p.state.tenant];
    submit_answer fail{
        503, "", 0, false, "store_unavailable", "the job could not be stored: " + r.message(), 1};
    p.reply(fail);
    for (auto& w : waiters) w(fail);
    return;
  }
  submit_answer ok{202, p.state.id, p.state.run_at_ms, false, "", ""};
  p.reply(ok);
  log::event(spdlog::level::debug,
             {{"job_id", p.state.id}, {"tenant", p.state.tenant}, {"origin", log::origin_of(p.state.url)},
              {"policy", p.state.policy}, {"delay_ms", p.state.run_at_ms - p.state.created_at_ms},
              {"parent_id", p.state.parent_id}},
             "job accepted");
  ok.deduplicated = true;
  for (auto& w : waiters) w(ok);
  if (p.state.run_at_ms - e.clock->now_ms() > e.options.hibernate_after.count()) {
    // A long wait starts on disk: the synced snapshot is all the job needs until it is due.
    if (e.metrics) e.metrics->jobs_hibernated.fetch_add(1, std::memory_order_relaxed);
    self->send(st.scheduler, schedule_atom::value, p.state.run_at_ms, p.state.id);
    return;
  }
  spawn_job(self, e, std::move(p.state), std::move(p.spec), {});
}

/// Brings jobs back from their snapshots (they are due, or are to be cancelled).
void activate(self_ptr self, const env& e, const std::vector<std::string>& ids) {
  auto& st = self->state;
  std::vector<std::string> load;
  for (const auto& id : ids) {
    if (st.live.count(id) || st.activating.count(id)) continue;  // already in memory, or on its way
    st.activating[id];
    load.push_back(id);
  }
  if (load.empty()) return;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  self->send(e.store, load_atom::value, load,
             completion<result<std::vector<recovered_job>>>(
                 [me, load](result<std::vector<recovered_job>> r) {
                   caf::anon_send(me, activated_atom::value, load, std::move(r));
                 }));
}

void on_activated(self_ptr self, const env& e, const std::vector<std::string>& ids,
                  result<std::vector<recovered_job>> r) {
  auto& st = self->state;
  if (!r) {
    spdlog::warn("cannot load {} due job(s): {}; the scheduler offers them again", ids.size(),
                 r.error().message());
    for (const auto& id : ids) {
      for (auto& c : st.activating[id]) c.second(cancel_answer::not_found);
      st.activating.erase(id);
    }
    // Still due on disk: the next scan of the due index (at the latest on restart) finds them.
    return;
  }
  for (auto& job : *r) {
    std::string id = job.state.id;
    auto cancels = std::move(st.activating[id]);
    st.activating.erase(id);
    std::vector<completion<cancel_answer>> mine;
    for (auto& [tenant, c] : cancels) {
      if (tenant == job.state.tenant) mine.push_back(std::move(c));
      else c(cancel_answer::not_found);  // another tenant's job
    }
    bool to_cancel = !mine.empty();
    spawn_job(self, e, std::move(job.state), std::move(job.spec), std::move(job.attempts),
              !to_cancel);
    for (auto& c : mine) caf::anon_send(st.live[id].actor, cancel_atom::value, c);
  }
  for (const auto& id : ids) {  // finished or gone meanwhile
    auto it = st.activating.find(id);
    if (it == st.activating.end()) continue;
    for (auto& c : it->second) c.second(cancel_answer::terminal);
    st.activating.erase(it);
  }
}

void on_done(self_ptr self, const env& e, const std::string& id, const job_state& s) {
  auto& st = self->state;
  auto it = st.live.find(id);
  if (it != st.live.end()) {
    --st.tenant_pending[it->second.tenant];
    // After every request forwarded to it so far: the job actor may go.
    caf::anon_send(it->second.actor, forget_atom::value);
    st.live.erase(it);
    publish_live(self, e);
  }
  const std::string& url = s.status == job_status::delivered ? s.callback_url
                           : s.status == job_status::failed  ? s.failure_callback_url
                                                             : std::string();
  if (url.empty()) return;
  submission cb;
  cb.tenant = s.tenant;
  cb.spec = job_spec{"POST", url, {{"Content-Type", "application/json"}}, safe_dump(report_json(s))};
  cb.run_at_ms = e.clock->now_ms();
  cb.policy = s.policy;
  cb.parent_id = s.id;
  submit(self, e, std::move(cb), completion<submit_answer>([id](submit_answer a) {
           if (a.http_status != 202)
             spdlog::warn("callback for {} not scheduled: {}", id, a.message);
         }));
}

/// Runs a failed or cancelled job again with a fresh retry budget (its attempt numbers go on).
void on_retry_loaded(self_ptr self, const env& e, result<std::optional<recovered_job>> r,
                     completion<retry_answer> reply) {
  if (!r) return reply({retry_answer::unavailable, 0, r.error().message()});
  if (!r.value()) return reply({retry_answer::not_found, 0, ""});
  recovered_job job = std::move(*r.value());
  auto& st = self->state;
  job_status old = job.state.status;
  if ((old != job_status::failed && old != job_status::cancelled) || st.live.count(job.state.id) ||
      st.retrying.count(job.state.id)) {
    return reply({retry_answer::not_retryable, 0,
                  "job " + job.state.id + " is " + std::string(to_string(old)) +
                      "; only failed or cancelled jobs can be retried"});
  }
  auto pol = e.options.policies.find(job.state.policy);
  std::uint32_t budget = pol != e.options.policies.end() ? pol->second.retry.attempts : 1;
  job_state& s = job.state;
  s.status = job_status::scheduled;
  s.run_at_ms = e.clock->now_ms();
  s.max_attempts = s.attempts + budget;
  s.finished_at_ms = 0;
  s.defer_reason.clear();
  persistence::commit_batch b;
  b.sync = true;
  b.jobs.push_back({s, std::nullopt, std::nullopt});
  std::string id = s.id;
  ++st.tenant_pending[s.tenant];
  st.retrying[id] = {std::move(job), std::move(reply)};
  caf::actor me = caf::actor_cast<caf::actor>(self);
  self->send(e.store, commit_atom::value, std::move(b), completion<status>([me, id](status c) {
               caf::anon_send(me, committed_atom::value, id, std::move(c));
             }));
}

void on_idem_loaded(self_ptr self, const env& e, const std::string& idem_key,
                    const result<std::optional<idem_hit>>& r) {
  auto& st = self->state;
  auto waiting = st.idem->take_lookup(idem_key);
  if (r.is_ok() && r.value() && r.value()->expires_at_ms > e.clock->now_ms()) {
    const idem_hit& hit = *r.value();
    st.idem->remember(idem_key, {hit.id, hit.run_at_ms, hit.expires_at_ms, hit.fingerprint, true, {}});
    for (auto& [sub, reply] : waiting) {
      bool conflict = idempotency_index::conflicts(hit.fingerprint, sub.fingerprint);
      answer_repeat(self, e, std::move(sub), hit.id, conflict, std::move(reply));
    }
    return;
  }
  if (!r.is_ok()) {
    for (auto& [sub, reply] : waiting)
      reply({503, "", 0, false, "store_unavailable", r.error().message(), 1});
    return;
  }
  // Unknown or expired: the first becomes the job; the others then find it pending in memory.
  for (auto& [sub, reply] : waiting) {
    sub.idem_checked = true;
    submit(self, e, std::move(sub), std::move(reply));
  }
}

}  // namespace

caf::behavior job_manager(caf::stateful_actor<manager_state>* self, manager_options options,
                          store_actor store, std::shared_ptr<delivery_client> client,
                          std::shared_ptr<const wall_clock> clock,
                          std::shared_ptr<relay_metrics> metrics) {
  self->state.ids = std::make_unique<ulid_generator>([] {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return rng();
  });
  for (const auto& [tenant, n] : options.initial_pending) self->state.tenant_pending[tenant] = n;
  self->state.idem = std::make_unique<idempotency_index>(options.max_idempotency_in_memory);
  self->state.gate = std::make_shared<inflight_gate>(options.max_in_flight);
  auto e = std::make_shared<env>(env{std::move(options), std::move(store), std::move(client),
                                     std::move(clock), std::move(metrics)});
  // Kept in the state, not in the handlers: the state goes when the actor quits, so a pending
  // timer that keeps this actor's memory alive does not also keep the store actor alive.
  self->state.env = e;
  if (!e->options.scheduler.metrics) e->options.scheduler.metrics = e->metrics;
  self->state.scheduler = self->spawn<caf::linked>(scheduler_actor, e->options.scheduler, e->store,
                                                   caf::actor_cast<caf::actor>(self), e->clock);
  self->delayed_send(self, e->options.sweep_every, sweep_atom::value);
  self->set_exit_handler([self](caf::exit_msg& m) {
    if (m.reason == caf::exit_reason::normal) return;  // a linked helper ended normally
    stop_jobs(self, m.reason);
    self->quit(m.reason);
  });
  self->set_exception_handler([self](std::exception_ptr&) -> caf::error {
    stop_jobs(self, caf::exit_reason::unhandled_exception);
    return caf::exit_reason::unhandled_exception;
  });
  return {
      guarded("job manager", "idem_gone", [self](idem_gone_atom, const std::string& id, submission& sub,
                                                const completion<submit_answer>& reply) {
        // The job the key named is gone: forget the key in memory; the repeat is a new job.
        auto e = self->state.env;
        self->state.idem->forget(idempotency_index::key_of(sub.tenant, sub.idempotency_key), id);
        sub.idem_checked = true;
        submit(self, *e, std::move(sub), reply);
      }),
      guarded("job manager", "drain", [self](drain_atom) {
        // Stopping (options.drain is set): destinations drop what has not started.
        for (auto& [origin, d] : self->state.destinations) self->send(d, drain_atom::value);
      }),
      guarded("job manager", "sweep", [self](sweep_atom) {
        auto e = self->state.env;
        self->send(e->store, sweep_atom::value);
        self->delayed_send(self, e->options.sweep_every, sweep_atom::value);
      }),
      guarded("job manager", "submit", [self](submit_atom, submission& sub, completion<submit_answer>& reply) {
        auto e = self->state.env;
        submit(self, *e, std::move(sub), std::move(reply));
      }),
      guarded("job manager", "flush", [self](flush_atom) {
        auto e = self->state.env;
        flush_submissions(self, *e);
      }),
      guarded("job manager", "committed", [self](committed_atom, const std::vector<std::string>& ids, const status& r) {
        auto e = self->state.env;
        reply_batch replies;  // the 202s of one group commit leave together
        for (const auto& id : ids) on_committed(self, *e, id, r);
      }),
      guarded("job manager", "committed", [self](committed_atom, const std::string& id, const status& r) {
        auto e = self->state.env;
        auto it = self->state.retrying.find(id);
        if (it == self->state.retrying.end()) return on_committed(self, *e, id, r);
        auto [job, reply] = std::move(it->second);
        self->state.retrying.erase(it);
        if (!r.is_ok()) {
          --self->state.tenant_pending[job.state.tenant];
          return reply({retry_answer::unavailable, 0, r.message()});
        }
        reply({retry_answer::scheduled, job.state.run_at_ms, ""});
        spawn_job(self, *e, std::move(job.state), std::move(job.spec), std::move(job.attempts));
      }),
      guarded("job manager", "retry", [self](retry_atom, const std::string& tenant, const std::string& id,
             const completion<retry_answer>& reply) {
        auto e = self->state.env;
        if (auto it = self->state.live.find(id); it != self->state.live.end()) {
          // Another tenant's job does not exist for this one: 404 before any other answer.
          if (it->second.tenant != tenant) return reply({retry_answer::not_found, 0, ""});
          return reply(
              {retry_answer::not_retryable, 0,
               "job " + id + " is not finished; only failed or cancelled jobs can be retried"});
        }
        caf::actor me = caf::actor_cast<caf::actor>(self);
        self->send(e->store, retry_atom::value, tenant, id,
                   completion<result<std::optional<recovered_job>>>(
                       [me, reply](result<std::optional<recovered_job>> r) {
                         caf::anon_send(me, loaded_atom::value, std::move(r), reply);
                       }));
      }),
      guarded("job manager", "idem_loaded", [self](idem_loaded_atom, const std::string& idem_key,
             const result<std::optional<idem_hit>>& r) {
        auto e = self->state.env;
        on_idem_loaded(self, *e, idem_key, r);
      }),
      guarded("job manager", "loaded", [self](loaded_atom, result<std::optional<recovered_job>>& r,
             const completion<retry_answer>& reply) {
        auto e = self->state.env;
        on_retry_loaded(self, *e, std::move(r), reply);
      }),
      guarded("job manager", "done", [self](done_atom, const std::string& id, const job_state& s) {
        auto e = self->state.env;
        on_done(self, *e, id, s);
      }),
      guarded("job manager", "read", [self](read_atom, const std::string& tenant, const std::string& id,
             const completion<result<std::optional<job_view>>>& reply) {
        auto e = self->state.env;
        auto it = self->state.live.find(id);
        if (it != self->state.live.end()) {
          if (it->second.tenant != tenant) {
            reply(std::optional<job_view>());
            return;
          }
          caf::anon_send(it->second.actor, read_atom::value, reply);
          return;
        }
        self->send(e->store, read_atom::value, tenant, id, reply);
      }),
      guarded("job manager", "cancel", [self](cancel_atom, const std::string& tenant, const std::string& id,
             const completion<cancel_answer>& reply) {
        auto e = self->state.env;
        auto& st = self->state;
        auto it = st.live.find(id);
        if (it != st.live.end() && it->second.tenant == tenant) {
          caf::anon_send(it->second.actor, cancel_atom::value, reply);
          return;
        }
        if (auto a = st.activating.find(id); a != st.activating.end()) {
          // On its way back from the store: its tenant is checked when it arrives.
          a->second.push_back({tenant, reply});
          return;
        }
        // Not live: finished, hibernated or unknown. The store tells which.
        caf::actor me = caf::actor_cast<caf::actor>(self);
        self->send(e->store, read_atom::value, tenant, id,
                   completion<result<std::optional<job_view>>>(
                       [me, tenant, id, reply](result<std::optional<job_view>> r) {
                         if (!r.is_ok() || !r.value()) return reply(cancel_answer::not_found);
                         if (is_terminal(r.value()->state.status))
                           return reply(cancel_answer::terminal);
                         caf::anon_send(me, cancel_found_atom::value, tenant, id, reply);  // hibernated
                       }));
      }),
      guarded("job manager", "cancel_found", [self](cancel_found_atom, const std::string& tenant, const std::string& id,
                                                   const completion<cancel_answer>& reply) {
        auto e = self->state.env;
        // A hibernated job is cancelled like any other: brought back, then told.
        auto& st = self->state;
        if (auto it = st.live.find(id); it != st.live.end()) {
          caf::anon_send(it->second.actor, cancel_atom::value, reply);
          return;
        }
        if (!st.activating.count(id)) activate(self, *e, {id});
        st.activating[id].push_back({tenant, reply});
      }),
      guarded("job manager", "due", [self](due_atom, const std::vector<std::string>& ids) {
        auto e = self->state.env;
        activate(self, *e, ids);
      }),
      guarded("job manager", "activated", [self](activated_atom, const std::vector<std::string>& ids,
             result<std::vector<recovered_job>>& r) {
        auto e = self->state.env;
        on_activated(self, *e, ids, std::move(r));
      }),
      guarded("job manager", "hibernated", [self](hibernated_atom, const std::string& id, std::int64_t due_ms) {
        auto e = self->state.env;
        auto& st = self->state;
        auto it = st.live.find(id);
        if (it == st.live.end()) return;
        caf::anon_send(it->second.actor, forget_atom::value);
        st.live.erase(it);
        publish_live(self, *e);
        self->send(st.scheduler, schedule_atom::value, due_ms, id);
      }),
      guarded("job manager", "list", [self](list_atom, const std::string& tenant, std::optional<job_status> status,
             const std::string& cursor, std::uint32_t limit,
             const completion<result<persistence::job_page>>& reply) {
        auto e = self->state.env;
        self->send(e->store, list_atom::value, tenant, status, cursor, limit, reply);
      }),
  };
}

}  // namespace fetchrelay::actors
