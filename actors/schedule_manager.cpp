#include <spdlog/spdlog.h>

#include "actors/guard.h"
#include "actors/schedules.h"

namespace fetchrelay::actors {
namespace {

using self_ptr = schedules_actor::stateful_pointer<schedules_state>;

/// Schedules brought back per tick at most (the rest come with the next ticks).
constexpr std::uint32_t scan_limit = 1'000;

std::string key_of(const std::string& tenant, const std::string& id) {
  std::string k = tenant;
  k.push_back('\0');
  k += id;
  return k;
}

schedule_actor spawn_schedule(self_ptr self, schedule_state s, bool keep) {
  std::string key = key_of(s.tenant, s.id);
  auto a = self->spawn(schedule_actor_impl, std::move(s), std::shared_ptr<const schedule_context>(self->state.ctx), keep);
  self->state.live[key] = a;
  return a;
}

/// Reads the schedule from the store to bring it back; `ops` wait for it.
void load(self_ptr self, const std::string& tenant, const std::string& id) {
  self->send(self->state.ctx->store, sched_get_atom::value, tenant, id,
             completion<result<std::optional<schedule_state>>>(
                 [me = caf::actor_cast<caf::actor>(self), tenant, id](result<std::optional<schedule_state>> r) {
                   caf::anon_send(me, sched_loaded_atom::value, tenant, id, std::move(r));
                 }));
}

void route(self_ptr self, const std::string& tenant, const std::string& id, schedule_command cmd,
           completion<schedule_answer> reply) {
  auto& st = self->state;
  std::string key = key_of(tenant, id);
  if (auto it = st.live.find(key); it != st.live.end()) {
    self->send(it->second, sched_atom::value, std::move(cmd), std::move(reply));
    return;
  }
  auto [it, fresh] = st.loading.try_emplace(key);
  it->second.emplace_back(std::move(cmd), std::move(reply));
  if (fresh) load(self, tenant, id);
}

void on_loaded(self_ptr self, const std::string& tenant, const std::string& id,
               result<std::optional<schedule_state>> r) {
  auto& st = self->state;
  std::string key = key_of(tenant, id);
  std::vector<std::pair<schedule_command, completion<schedule_answer>>> ops;
  if (auto it = st.loading.find(key); it != st.loading.end()) {
    ops = std::move(it->second);
    st.loading.erase(it);
  }
  if (st.live.count(key)) {  // brought back meanwhile: the live one answers
    for (auto& [cmd, reply] : ops) self->send(st.live[key], sched_atom::value, std::move(cmd), std::move(reply));
    return;
  }
  if (!r) {
    spdlog::warn("schedule {} of tenant {} cannot be read: {}", id, tenant, r.error().message());
    for (auto& [cmd, reply] : ops) reply(schedule_answer{503, std::nullopt, "", "store_unavailable", r.error().message()});
    return;
  }
  std::optional<schedule_actor> actor;
  if (*r) actor = spawn_schedule(self, std::move(**r), !ops.empty());
  for (auto& [cmd, reply] : ops) {
    if (!actor && cmd.op == schedule_op::put) {  // a new schedule
      schedule_state s = *cmd.definition;
      s.created_at_ms = st.ctx->clock->now_ms();
      actor = spawn_schedule(self, std::move(s), true);
      cmd.created = true;
    }
    if (!actor) {
      reply(schedule_answer{404, std::nullopt, "", "schedule_not_found", "no schedule " + id + " for this API key"});
      continue;
    }
    self->send(*actor, sched_atom::value, std::move(cmd), std::move(reply));
  }
}

/// An actor that parked or was deleted leaves the directory, then quits.
void forget(self_ptr self, const std::string& tenant, const std::string& id) {
  auto& st = self->state;
  auto it = st.live.find(key_of(tenant, id));
  if (it == st.live.end()) return;
  self->send(it->second, forget_atom::value);
  st.live.erase(it);
}

/// Reads the next page of the schedule due index (up to half of hibernate_after from now).
void scan(self_ptr self) {
  auto& st = self->state;
  st.scanning = true;
  std::int64_t until = st.ctx->clock->now_ms() + st.ctx->options.hibernate_after.count() / 2;
  self->send(st.ctx->store, sched_scan_atom::value, st.scan_after, until, scan_limit,
             completion<result<std::vector<persistence::schedule_due>>>(
                 [me = caf::actor_cast<caf::actor>(self)](result<std::vector<persistence::schedule_due>> r) {
                   caf::anon_send(me, sched_due_atom::value, std::move(r));
                 }));
}

void tick(self_ptr self) {
  self->delayed_send(self, self->state.ctx->options.tick_every, tick_atom::value);
  if (!self->state.scanning) scan(self);
}

void on_due(self_ptr self, const result<std::vector<persistence::schedule_due>>& r) {
  auto& st = self->state;
  st.scanning = false;
  if (!r) {
    spdlog::warn("schedule scan failed: {}", r.error().message());
    st.scan_after.reset();
    return;
  }
  for (const auto& d : *r) {
    std::string key = key_of(d.tenant, d.id);
    if (st.live.count(key) || st.loading.count(key)) continue;
    st.loading[key];
    load(self, d.tenant, d.id);
  }
  // A full page: the rest of the window at once (live schedules fill pages too); else from the
  // start at the next tick.
  if (r->size() == scan_limit) {
    st.scan_after = r->back();
    scan(self);
  } else {
    st.scan_after.reset();
  }
}

}  // namespace

schedules_actor::behavior_type schedule_manager(self_ptr self, schedules_options options, manager_actor jobs,
                                                store_actor store, std::shared_ptr<const wall_clock> clock) {
  self->state.ctx = std::make_shared<schedule_context>(
      schedule_context{options, std::move(jobs), std::move(store), caf::actor_cast<schedules_actor>(self), std::move(clock)});
  self->send(self, tick_atom::value);  // at once: the fires missed while the relay was down
  // Schedule actors are not linked (see the job manager): each is told when this one goes.
  self->set_exit_handler([self](caf::exit_msg& m) {
    for (auto& [key, a] : self->state.live) self->send_exit(a, m.reason);
    self->state.live.clear();
    self->quit(m.reason);
  });
  const char* me = "schedules";
  return {
      guarded(me, "op", [self](sched_atom, const std::string& tenant, const std::string& id, schedule_command& cmd,
                               completion<schedule_answer>& reply) {
        route(self, tenant, id, std::move(cmd), std::move(reply));
      }),
      guarded(me, "hibernated",
              [self](hibernated_atom, const std::string& tenant, const std::string& id) { forget(self, tenant, id); }),
      guarded(me, "forget", [self](forget_atom, const std::string& tenant, const std::string& id) { forget(self, tenant, id); }),
      guarded(me, "loaded", [self](sched_loaded_atom, const std::string& tenant, const std::string& id,
                                   result<std::optional<schedule_state>>& r) { on_loaded(self, tenant, id, std::move(r)); }),
      guarded(me, "tick", [self](tick_atom) { tick(self); }),
      guarded(me, "due", [self](sched_due_atom, const result<std::vector<persistence::schedule_due>>& r) { on_due(self, r); }),
  };
}

}  // namespace fetchrelay::actors
