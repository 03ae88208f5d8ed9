#include <spdlog/spdlog.h>

#include "actors/schedules.h"

namespace fetchrelay::actors {
namespace {

using self_ptr = schedule_actor::stateful_pointer<schedule_actor_state>;

/// At most this many missed fire times are stepped over to find the last one (a seconds cron
/// down for a day is 86,400); past it the catch-up carries the last one reached.
constexpr int max_catch_up_steps = 1'000'000;

caf::actor me_of(self_ptr self) { return caf::actor_cast<caf::actor>(self); }

/// Writes the schedule as it is now (synced); `done` also hears the outcome.
void commit(self_ptr self, bool erase, std::function<void(const status&)> done) {
  auto& st = self->state;
  persistence::commit_batch b;
  b.schedules.push_back({st.s, erase});
  ++st.unsynced;
  self->send(st.ctx->store, commit_atom::value, std::move(b),
             completion<status>([me = me_of(self), done = std::move(done)](status s) {
               if (done) done(s);
               caf::anon_send(me, committed_atom::value, std::move(s));
             }));
}

/// Replies with the schedule once it is written (200, or 201 for a new one), or 503.
void commit_and_reply(self_ptr self, int ok_status, completion<schedule_answer> reply) {
  commit(self, false, [reply = std::move(reply), ok_status, s = self->state.s](const status& r) {
    if (r.is_ok()) return reply(schedule_answer{ok_status, s, "", "", ""});
    reply(schedule_answer{503, std::nullopt, "", "store_unavailable", r.message()});
  });
}

void handle(self_ptr self, schedule_command cmd, completion<schedule_answer> reply);

/// The next fire armed, or the actor parked when it is far off (or paused) and all is written.
void settle(self_ptr self) {
  auto& st = self->state;
  const auto& ctx = *st.ctx;
  auto gen = ++st.generation;
  if (st.firing || st.parked) return;
  while (!st.held.empty()) {  // operations that waited for a fire, in their order
    auto [cmd, reply] = std::move(st.held.front());
    st.held.pop_front();
    handle(self, std::move(cmd), std::move(reply));  // after a delete: 404
    if (st.firing) return;
  }
  if (st.erased) return;
  gen = ++st.generation;
  std::int64_t now = ctx.clock->now_ms();
  bool far = st.s.paused || st.s.next_run_at_ms == 0 || st.s.next_run_at_ms - now > ctx.options.hibernate_after.count();
  if (!far) {
    // A fire the job manager refused is tried again no sooner than retry_at_ms.
    std::int64_t delay = std::max(st.s.next_run_at_ms, st.retry_at_ms) - now;
    if (delay <= 0) self->send(self, fire_atom::value, gen);
    else self->delayed_send(self, std::chrono::milliseconds(delay), fire_atom::value, gen);
    return;
  }
  if (st.keep || st.unsynced > 0 || st.write_failed) return;  // the next answer settles again
  st.parked = true;
  caf::anon_send(ctx.schedules, hibernated_atom::value, st.s.tenant, st.s.id);
}

/// Fires: the timetable's due fire (the last one missed, if several were), or a trigger now
/// (the timetable unchanged). The job and the schedule after the fire are committed together.
void fire(self_ptr self, bool trigger, completion<schedule_answer> reply) {
  auto& st = self->state;
  const auto& ctx = *st.ctx;
  std::int64_t now = ctx.clock->now_ms();
  std::int64_t at = now;
  std::int64_t next = st.s.next_run_at_ms;
  if (!trigger) {
    at = st.s.next_run_at_ms;
    for (int i = 0; i < max_catch_up_steps && st.cron; ++i) {
      auto n = next_fire(*st.cron, at);
      if (!n || *n > now) break;
      at = *n;
    }
    next = st.cron ? next_fire(*st.cron, std::max(now, at)).value_or(0) : 0;
  }
  submission sub = submission_of(st.s.tenant, st.s.request, now);
  sub.schedule_id = st.s.id;
  sub.fire_time_ms = at;
  sub.idempotency_key = "fetchrelay:schedule:" + st.s.id + ":" + std::to_string(at);
  st.after = st.s;
  st.after.last_run_at_ms = at;
  st.after.next_run_at_ms = next;
  sub.schedule_after = st.after;
  st.firing = true;
  ++st.generation;  // the armed timer, if any, is stale
  if (!st.s.request.topic.empty()) {  // one job per endpoint: the topic first
    st.fire_sub = std::move(sub);
    self->send(ctx.store, topic_get_atom::value, st.s.tenant, st.s.request.topic,
               completion<result<std::optional<topic_state>>>(
                   [me = me_of(self), reply = std::move(reply)](result<std::optional<topic_state>> r) {
                     caf::anon_send(me, topic_loaded_atom::value, std::move(r), reply);
                   }));
    return;
  }
  self->send(ctx.jobs, submit_atom::value, std::move(sub),
             completion<submit_answer>([me = me_of(self), reply = std::move(reply)](submit_answer a) {
               caf::anon_send(me, fired_atom::value, std::uint64_t{0}, std::move(a), reply);
             }));
}

/// A fire to a topic: one submission per endpoint, the first carrying the schedule after it. A
/// topic that is gone makes no job; the timetable goes on (a trigger hears 400 unknown_topic).
void on_topic_loaded(self_ptr self, const result<std::optional<topic_state>>& r, const completion<schedule_answer>& reply) {
  auto& st = self->state;
  const auto& ctx = *st.ctx;
  if (!r || !*r || (*r)->endpoints.empty()) {
    submit_answer a{r ? 400 : 503, "", 0, false, r ? "unknown_topic" : "store_unavailable",
                    r ? "the schedule's topic " + st.s.request.topic + " does not exist" : r.error().message(), 1};
    if (r) {  // not retried: advance the timetable as if fired
      spdlog::warn("schedule {} of tenant {}: topic {} does not exist; no job made", st.s.id, st.s.tenant,
                   st.s.request.topic);
      st.firing = false;
      st.s.next_run_at_ms = st.after.next_run_at_ms;
      commit(self, false, nullptr);
      if (reply) reply(schedule_answer{400, std::nullopt, "", a.error_code, a.message});
      return settle(self);
    }
    caf::anon_send(me_of(self), fired_atom::value, std::uint64_t{0}, std::move(a), reply);
    return;
  }
  std::function<std::string(const std::string&)> policy_of;
  if (st.fire_sub.policy == "default") policy_of = ctx.options.policy_of_url;
  auto subs = expand_topic(st.fire_sub, **r, policy_of);
  for (auto& sub : subs) sub.schedule_after.reset();
  subs.front().schedule_after = std::move(st.fire_sub.schedule_after);  // written with the first job
  self->send(ctx.jobs, submit_atom::value, std::move(subs),
             completion<std::vector<submit_answer>>([me = me_of(self), reply](std::vector<submit_answer> all) {
               submit_answer a = all.front();
               for (const auto& x : all) {
                 if (x.http_status != 202) a = x;
               }
               caf::anon_send(me, fired_atom::value, std::uint64_t{0}, std::move(a), reply);
             }));
}

void on_fired(self_ptr self, const submit_answer& a, const completion<schedule_answer>& reply) {
  auto& st = self->state;
  st.firing = false;
  if (a.http_status == 202) {
    st.retry_at_ms = 0;
    st.s = st.after;
    st.s.last_job_id = a.id;
    // A repeat of a fire already made (its key known) wrote no schedule: write it now.
    if (a.deduplicated) commit(self, false, nullptr);
    if (reply) reply(schedule_answer{202, st.s, a.id, "", ""});
    return settle(self);
  }
  if (reply) {  // a trigger: its caller hears why
    reply(schedule_answer{a.http_status, st.s, "", a.error_code, a.message});
    return settle(self);
  }
  spdlog::warn("schedule {} of tenant {}: fire refused ({}: {}); trying again", st.s.id, st.s.tenant, a.error_code,
               a.message);
  st.retry_at_ms = st.ctx->clock->now_ms() + st.ctx->options.retry_fire_after.count();
  settle(self);  // the operations held meanwhile are answered; the fire is armed for retry_at_ms
}

void handle(self_ptr self, schedule_command cmd, completion<schedule_answer> reply) {
  auto& st = self->state;
  const auto& ctx = *st.ctx;
  if (st.parked) {  // the manager has forgotten this actor, or is about to
    caf::anon_send(ctx.schedules, sched_atom::value, st.s.tenant, st.s.id, std::move(cmd), std::move(reply));
    return;
  }
  if (st.erased) {
    return reply(schedule_answer{404, std::nullopt, "", "schedule_not_found", "no schedule " + st.s.id});
  }
  if (st.firing) {
    st.held.emplace_back(std::move(cmd), std::move(reply));
    return;
  }
  st.keep = false;
  std::int64_t now = ctx.clock->now_ms();
  switch (cmd.op) {
    case schedule_op::get:
      reply(schedule_answer{200, st.s, "", "", ""});
      break;
    case schedule_op::put: {
      const schedule_state& d = *cmd.definition;
      st.s.cron = d.cron;
      st.s.request = d.request;
      st.s.paused = false;
      auto parsed = parse_cron(st.s.cron);
      st.cron.reset();
      if (auto* c = std::get_if<cron_schedule>(&parsed)) st.cron = std::move(*c);
      st.s.next_run_at_ms = st.cron ? next_fire(*st.cron, now).value_or(0) : 0;
      commit_and_reply(self, cmd.created ? 201 : 200, std::move(reply));
      break;
    }
    case schedule_op::pause:
      st.s.paused = true;
      commit_and_reply(self, 200, std::move(reply));
      break;
    case schedule_op::resume:
      if (st.s.paused) {  // no catch-up: the next fire is the next one from now
        st.s.paused = false;
        st.s.next_run_at_ms = st.cron ? next_fire(*st.cron, now).value_or(0) : 0;
      }
      commit_and_reply(self, 200, std::move(reply));
      break;
    case schedule_op::trigger:
      return fire(self, true, std::move(reply));
    case schedule_op::erase:
      st.erased = true;
      commit(self, true, [reply = std::move(reply), s = st.s](const status& r) {
        if (r.is_ok()) return reply(schedule_answer{200, s, "", "", ""});
        reply(schedule_answer{503, std::nullopt, "", "store_unavailable", r.message()});
      });
      return;
  }
  settle(self);
}

}  // namespace

schedule_actor::behavior_type schedule_actor_impl(self_ptr self, schedule_state state,
                                                  std::shared_ptr<const schedule_context> ctx, bool keep) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.s = std::move(state);
  st.keep = keep;
  auto parsed = parse_cron(st.s.cron);
  if (auto* c = std::get_if<cron_schedule>(&parsed)) st.cron = std::move(*c);
  else spdlog::error("schedule {} of tenant {} has a cron that no longer parses: {}", st.s.id, st.s.tenant, st.s.cron);
  settle(self);
  return {
      [self](sched_atom, schedule_command& cmd, completion<schedule_answer>& reply) {
        handle(self, std::move(cmd), std::move(reply));
      },
      [self](fire_atom, std::uint64_t gen) {
        auto& st = self->state;
        if (gen != st.generation || st.firing || st.parked || st.erased || st.s.paused || st.s.next_run_at_ms == 0) return;
        fire(self, false, completion<schedule_answer>());
      },
      [self](fired_atom, std::uint64_t, const submit_answer& a, const completion<schedule_answer>& reply) {
        on_fired(self, a, reply);
      },
      [self](topic_loaded_atom, const result<std::optional<topic_state>>& r, const completion<schedule_answer>& reply) {
        on_topic_loaded(self, r, reply);
      },
      [self](committed_atom, const status& s) {
        auto& st = self->state;
        --st.unsynced;
        st.write_failed = !s.is_ok();
        if (!s.is_ok()) {
          spdlog::warn("schedule {} of tenant {} not written: {}", st.s.id, st.s.tenant, s.message());
          if (st.erased) st.erased = false;  // still stored: it goes on
          return settle(self);
        }
        if (st.erased) {
          caf::anon_send(st.ctx->schedules, forget_atom::value, st.s.tenant, st.s.id);
          return;
        }
        if (st.unsynced == 0 && !st.firing) settle(self);
      },
      [self](forget_atom) { self->quit(); },
  };
}

std::int64_t next_fire_or_zero(const std::string& cron, std::int64_t after_ms) {
  auto parsed = parse_cron(cron);
  auto* c = std::get_if<cron_schedule>(&parsed);
  return c ? next_fire(*c, after_ms).value_or(0) : 0;
}

}  // namespace fetchrelay::actors
