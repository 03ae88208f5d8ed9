#include "actors/job_manager_internal.h"

#include <spdlog/spdlog.h>

#include <random>

#include "actors/guard.h"
#include "core/ascii.h"
#include "core/reply_batch.h"
#include "core/url.h"

namespace fetchrelay::actors {
namespace manager {
namespace {

std::uint64_t random_bits() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

double unit_random() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

}  // namespace

/// The policy `name`, or "default" if there is none of that name.
std::map<std::string, policy_runtime>::const_iterator policy_of(const env& e, const std::string& name) {
  auto p = e.options.policies.find(name);
  return p != e.options.policies.end() ? p : e.options.policies.find("default");
}

// -- the directory of live jobs ---------------------------------------------------------------

namespace {

destination_actor destination_for(self_ptr self, const env& e, const std::string& url) {
  auto origin = url_origin(url);
  std::string key = origin ? *origin : std::string("invalid");
  auto& d = self->state.destinations[key];
  if (d) return d;
  if (e.options.make_destination)
    d = e.options.make_destination(self, key);
  else
    d = self->spawn<caf::linked>(destination_actor_impl,
                                 destination_options{key, e.client, e.options.max_in_flight_per_origin, self->state.gate,
                                                     e.options.pipelines, e.clock, e.metrics, e.options.drain,
                                                     e.options.board ? e.options.board->origin(key) : nullptr});
  return d;
}

void publish_live(self_ptr self, const env& e) {
  if (e.metrics) e.metrics->live_job_actors.store(static_cast<std::int64_t>(self->state.live.size()));
}

/// What a job's context depends on: its URL up to the path (the scheme and authority, as written:
/// two spellings of one origin get two equal contexts), its policy and how it starts.
std::string context_key(const std::string& url, const std::string& policy, bool may_hibernate) {
  std::size_t scheme = url.find("://");
  std::size_t end = url.size();
  if (scheme != std::string::npos) {
    std::size_t path = find_any(std::string_view(url).substr(scheme + 3), "/?#");
    if (path != std::string_view::npos) end = scheme + 3 + path;
  }
  std::string key(url, 0, end);
  key += '\0';
  key += policy;
  key += may_hibernate ? '1' : '0';
  return key;
}

std::shared_ptr<const job_context> context_for(self_ptr self, const env& e, const std::string& url,
                                               const std::string& policy, bool may_hibernate) {
  auto& shared = self->state.contexts[context_key(url, policy, may_hibernate)];
  if (shared) return shared;
  auto ctx = std::make_shared<job_context>();
  ctx->store = e.store;
  ctx->destination = destination_for(self, e, url);
  ctx->manager = me_of(self);
  ctx->clock = e.clock;
  ctx->retry = policy_of(e, policy)->second.retry;
  ctx->unit_random = unit_random;
  ctx->metrics = e.metrics;
  ctx->hibernate_after = e.options.hibernate_after;
  ctx->hibernate_at_start = may_hibernate;
  ctx->drain = e.options.drain;
  ctx->queues = e.options.queues;
  ctx->qstash_keys = e.options.qstash_keys;
  ctx->ownership = e.options.ownership;
  shared = std::move(ctx);
  return shared;
}

}  // namespace

void spawn_job(self_ptr self, const env& e, job_state&& s, job_spec&& spec, std::vector<attempt_record>&& attempts,
               bool may_hibernate) {
  auto ctx = context_for(self, e, spec.url, s.policy, may_hibernate);
  std::string id = s.id;
  std::string tenant = s.tenant;
  // Not linked: CAF keeps an actor's links in a list that every link and unlink walks, which made
  // each spawn and exit O(live jobs) (W2 of the benchmark collapsed at 150,000 waiting jobs).
  // The manager ends its jobs itself when it goes (stop_jobs).
  auto seed = std::make_shared<job_seed>(std::move(s), std::move(spec), std::move(attempts));
  auto a = self->spawn(job_actor_impl, std::move(seed), ctx);
  self->state.live[id] = {a, tenant};
  publish_live(self, e);
}

void forget_job(self_ptr self, const env& e, std::unordered_map<std::string, manager_state::live_job>::iterator it) {
  caf::anon_send(it->second.actor, forget_atom::value);
  self->state.live.erase(it);
  publish_live(self, e);
}

namespace {

/// Ends every live job actor (they are not linked to the manager): the manager is going.
void stop_jobs(self_ptr self, const caf::error& reason) {
  for (auto& [id, job] : self->state.live) self->send_exit(job.actor, reason);
  self->state.live.clear();
}

/// Hands a command to a live job actor.
void tell(const job_actor& job, job_command command, const completion<command_answer>& reply) {
  if (command == job_command::cancel) caf::anon_send(job, cancel_atom::value, reply);
  else if (command == job_command::grant) caf::anon_send(job, queue_grant_atom::value, reply);
  else caf::anon_send(job, run_atom::value, reply);
}

}  // namespace

/// Brings jobs back from their snapshots (they are due, or have commands waiting).
void activate(self_ptr self, const env& e, const std::vector<std::string>& ids) {
  auto& st = self->state;
  std::vector<std::string> load;
  for (const auto& id : ids) {
    if (st.live.count(id) || st.activating.count(id)) continue;  // already in memory, or on its way
    // Several relays: a job of a shard this node no longer holds is its new owner's to run.
    if (e.options.ownership && !e.options.ownership->holds(job_shard(id))) continue;
    st.activating[id];
    load.push_back(id);
  }
  if (load.empty()) return;
  self->send(e.store, load_atom::value, load,
             completion<result<std::vector<recovered_job>>>([me = me_of(self), load](result<std::vector<recovered_job>> r) {
               caf::anon_send(me, activated_atom::value, load, std::move(r));
             }));
}

void on_activated(self_ptr self, const env& e, const std::vector<std::string>& ids,
                  result<std::vector<recovered_job>> r) {
  auto& st = self->state;
  if (!r) {
    spdlog::warn("cannot load {} due job(s): {}; the scheduler offers them again", ids.size(), r.error().message());
    for (const auto& id : ids) {
      for (auto& c : st.activating[id]) c.reply(command_answer::unavailable);
      st.activating.erase(id);
    }
    // Still due on disk: the next scan of the due index (at the latest on restart) finds them.
    return;
  }
  for (auto& job : *r) {
    std::string id = job.state.id;
    auto waiting = std::move(st.activating[id]);
    st.activating.erase(id);
    std::vector<manager_state::waiting_command> mine;
    for (auto& c : waiting) {
      if (c.tenant == job.state.tenant) mine.push_back(std::move(c));
      else c.reply(command_answer::not_found);  // another tenant's job
    }
    // Brought back for a command: it must not go straight back to disk.
    spawn_job(self, e, std::move(job.state), std::move(job.spec), std::move(job.attempts), mine.empty());
    for (auto& c : mine) tell(st.live[id].actor, c.command, c.reply);
  }
  for (const auto& id : ids) {  // finished or gone meanwhile
    auto it = st.activating.find(id);
    if (it == st.activating.end()) continue;
    for (auto& c : it->second) c.reply(command_answer::terminal);
    st.activating.erase(it);
  }
}

// -- reads and commands ------------------------------------------------------------------------

void on_read(self_ptr self, const env& e, const std::string& tenant, const std::string& id,
             const completion<result<std::optional<job_view>>>& reply) {
  auto it = self->state.live.find(id);
  if (it == self->state.live.end()) return self->send(e.store, read_atom::value, tenant, id, reply);
  if (it->second.tenant != tenant) return reply(std::optional<job_view>());
  caf::anon_send(it->second.actor, read_atom::value, reply);
}

/// A cancel or a run-now for job `id` as `tenant`.
void on_command(self_ptr self, const env& e, const std::string& tenant, const std::string& id, job_command command,
                const completion<command_answer>& reply) {
  auto& st = self->state;
  auto it = st.live.find(id);
  if (it != st.live.end() && it->second.tenant == tenant) return tell(it->second.actor, command, reply);
  if (auto a = st.activating.find(id); a != st.activating.end()) {
    // On its way back from the store: its tenant is checked when it arrives.
    a->second.push_back({tenant, command, reply});
    return;
  }
  // Not live: finished, hibernated or unknown. The store tells which.
  self->send(e.store, read_atom::value, tenant, id,
             completion<result<std::optional<job_view>>>(
                 [me = me_of(self), tenant, id, command, reply](result<std::optional<job_view>> r) {
                   if (!r.is_ok()) return reply(command_answer::unavailable);
                   if (!r.value()) return reply(command_answer::not_found);
                   if (is_terminal(r.value()->state.status)) return reply(command_answer::terminal);
                   caf::anon_send(me, command_found_atom::value, tenant, id, command, reply);  // hibernated
                 }));
}

namespace {

/// A hibernated job takes commands like any other: brought back, then told.
void on_command_found(self_ptr self, const env& e, const std::string& tenant, const std::string& id,
                      job_command command, const completion<command_answer>& reply) {
  auto& st = self->state;
  if (auto it = st.live.find(id); it != st.live.end()) return tell(it->second.actor, command, reply);
  if (!st.activating.count(id)) activate(self, e, {id});
  st.activating[id].push_back({tenant, command, reply});
}

void on_hibernated(self_ptr self, const env& e, const std::string& id, std::int64_t due_ms) {
  auto& st = self->state;
  auto it = st.live.find(id);
  if (it == st.live.end()) return;
  forget_job(self, e, it);
  self->send(st.scheduler, schedule_atom::value, due_ms, id);
}

/// Stopping (options.drain is set): destinations drop what has not started.
void drain(self_ptr self) {
  for (auto& [origin, d] : self->state.destinations) self->send(d, drain_atom::value);
}

/// The store sweeps past retention; the next tick is armed.
void sweep(self_ptr self, const env& e) {
  self->send(e.store, sweep_atom::value);
  self->delayed_send(self, e.options.sweep_every, sweep_atom::value);
}

void start(self_ptr self, manager_options options, store_actor store, std::shared_ptr<delivery_client> client,
           std::shared_ptr<const wall_clock> clock, std::shared_ptr<relay_metrics> metrics) {
  auto& st = self->state;
  st.admission = std::make_unique<intake>(options.intake, options.initial_pending, random_bits);
  st.idem = std::make_unique<idempotency_index>(options.max_idempotency_in_memory);
  st.gate = std::make_shared<inflight_gate>(options.max_in_flight);
  // Kept in the state, not in the handlers: the state goes when the actor quits, so a pending
  // timer that keeps this actor's memory alive does not also keep the store actor alive.
  st.env = std::make_shared<env>(
      env{std::move(options), std::move(store), std::move(client), std::move(clock), std::move(metrics)});
  auto& e = *st.env;
  if (!e.options.scheduler.metrics) e.options.scheduler.metrics = e.metrics;
  st.scheduler = self->spawn<caf::linked>(scheduler_actor_impl, e.options.scheduler, e.store, me_of(self), e.clock);
  self->delayed_send(self, e.options.sweep_every, sweep_atom::value);
  self->set_exit_handler([self](caf::exit_msg& m) {
    if (m.reason == caf::exit_reason::normal) return;  // a linked helper ended normally
    stop_jobs(self, m.reason);
    self->quit(m.reason);
  });
  self->set_exception_handler([self](std::exception_ptr&) -> caf::error {
    stop_jobs(self, caf::exit_reason::unhandled_exception);
    return caf::exit_reason::unhandled_exception;
  });
}

}  // namespace
}  // namespace manager

using manager::self_ptr;

manager_actor::behavior_type job_manager(self_ptr self, manager_options options, store_actor store,
                                         std::shared_ptr<delivery_client> client,
                                         std::shared_ptr<const wall_clock> clock,
                                         std::shared_ptr<relay_metrics> metrics) {
  using namespace manager;
  start(self, std::move(options), std::move(store), std::move(client), std::move(clock), std::move(metrics));
  const char* me = "job manager";
  // Each handler takes the env from the state (see start()).
  return {
      guarded(me, "submit", [self](submit_atom, submission& sub, completion<submit_answer>& reply) {
        submit(self, *self->state.env, std::move(sub), std::move(reply));
      }),
      guarded(me, "submit_all", [self](submit_atom, std::vector<submission>& subs, completion<std::vector<submit_answer>>& reply) {
        submit_all(self, *self->state.env, std::move(subs), std::move(reply));
      }),
      guarded(me, "read", [self](read_atom, const std::string& tenant, const std::string& id,
                                 const completion<result<std::optional<job_view>>>& reply) {
        on_read(self, *self->state.env, tenant, id, reply);
      }),
      guarded(me, "list", [self](list_atom, const std::string& tenant, const persistence::job_filter& filter,
                                 const std::string& cursor, std::uint32_t limit,
                                 const completion<result<persistence::job_page>>& reply) {
        self->send(self->state.env->store, list_atom::value, tenant, filter, cursor, limit, reply);  // the store's
      }),
      guarded(me, "purge", [self](purge_atom, const std::string& tenant, const persistence::job_filter& filter,
                                  const std::string& cursor, const completion<result<persistence::purge_page>>& reply) {
        self->send(self->state.env->store, purge_atom::value, tenant, filter, cursor, reply);  // the store's
      }),
      guarded(me, "cancel", [self](cancel_atom, const std::string& tenant, const std::string& id,
                                   const completion<cancel_answer>& reply) {
        on_command(self, *self->state.env, tenant, id, job_command::cancel, reply);
      }),
      guarded(me, "run", [self](run_atom, const std::string& tenant, const std::string& id,
                                const completion<command_answer>& reply) {
        on_command(self, *self->state.env, tenant, id, job_command::run_now, reply);
      }),
      guarded(me, "retry", [self](retry_atom, const std::string& tenant, const std::string& id, std::int64_t run_at,
                                  const completion<retry_answer>& reply) {
        on_retry(self, *self->state.env, tenant, id, run_at, reply);
      }),
      guarded(me, "bulk", [self](bulk_atom, const std::string& tenant, const persistence::job_filter& filter,
                                 const std::string& cursor, bool retry, std::int64_t run_at,
                                 const completion<result<persistence::purge_page>>& reply) {
        on_bulk(self, *self->state.env, tenant, filter, cursor, retry, run_at, reply);
      }),
      guarded(me, "bulk_listed", [self](bulk_atom, bool retry, std::int64_t run_at, result<persistence::job_page>& page,
                                        const completion<result<persistence::purge_page>>& reply) {
        on_bulk_listed(self, *self->state.env, retry, run_at, std::move(page), reply);
      }),
      guarded(me, "bulk_committed", [self](committed_atom, const std::vector<std::string>& ids, const status& r,
                                           const std::string& tenant,
                                           const completion<bulk_part>& done) {
        on_bulk_committed(self, *self->state.env, ids, r, tenant, done);
      }),
      guarded(me, "grant", [self](queue_grant_atom, const std::string& tenant, const std::string& id,
                                  const completion<grant_answer>& reply) {
        on_command(self, *self->state.env, tenant, id, job_command::grant,
                   completion<command_answer>([reply](command_answer a) {
                     reply(a == command_answer::done          ? grant_answer::accepted
                           : a == command_answer::unavailable ? grant_answer::retry
                                                              : grant_answer::gone);
                   }));
      }),
      guarded(me, "retry_checked", [self](retry_atom, const std::string& tenant, const std::string& id, std::int64_t run_at,
                                          const completion<retry_answer>& reply, bool ended) {
        on_retry_checked(self, *self->state.env, tenant, id, run_at, reply, ended);
      }),
      guarded(me, "drain", [self](drain_atom) { drain(self); }),
      guarded(me, "recover", [self](recover_atom) { self->send(self->state.scheduler, recover_atom::value); }),
      guarded(me, "done", [self](done_atom, const std::string& id, const std::shared_ptr<const job_state>& s) {
        on_done(self, *self->state.env, id, s.get());
      }),
      guarded(me, "hibernated", [self](hibernated_atom, const std::string& id, std::int64_t due_ms) {
        on_hibernated(self, *self->state.env, id, due_ms);
      }),
      guarded(me, "due", [self](due_atom, const std::vector<std::string>& ids) { activate(self, *self->state.env, ids); }),
      guarded(me, "sweep", [self](sweep_atom) { sweep(self, *self->state.env); }),
      guarded(me, "flush", [self](flush_atom) { flush_submissions(self, *self->state.env); }),
      guarded(me, "committed", [self](committed_atom, const std::vector<std::string>& ids, const status& r) {
        reply_batch replies;  // the 202s of one group commit leave together
        for (const auto& id : ids) on_committed(self, *self->state.env, id, r);
      }),
      guarded(me, "committed", [self](committed_atom, const std::string& id, const status& r) {
        on_retry_committed(self, *self->state.env, id, r);
      }),
      guarded(me, "idem_loaded", [self](idem_loaded_atom, const std::string& key, const result<std::optional<idem_hit>>& r) {
        on_idem_loaded(self, *self->state.env, key, r);
      }),
      guarded(me, "idem_lost", [self](idem_loaded_atom, std::vector<persistence::idem_write>& lost) {
        on_idem_lost(self, *self->state.env, std::move(lost));
      }),
      guarded(me, "loaded", [self](loaded_atom, result<std::optional<recovered_job>>& r, std::int64_t run_at,
                                   const completion<retry_answer>& reply) {
        on_retry_loaded(self, *self->state.env, std::move(r), run_at, reply);
      }),
      guarded(me, "activated", [self](activated_atom, const std::vector<std::string>& ids, result<std::vector<recovered_job>>& r) {
        on_activated(self, *self->state.env, ids, std::move(r));
      }),
      guarded(me, "command_found", [self](command_found_atom, const std::string& tenant, const std::string& id,
                                          job_command command, const completion<command_answer>& reply) {
        on_command_found(self, *self->state.env, tenant, id, command, reply);
      }),
      guarded(me, "idem_gone", [self](idem_gone_atom, const std::string& id, submission& sub,
                                      const completion<submit_answer>& reply) {
        on_idem_gone(self, *self->state.env, id, std::move(sub), reply);
      }),
  };
}

}  // namespace fetchrelay::actors
