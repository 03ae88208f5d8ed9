#include <spdlog/spdlog.h>

#include "actors/guard.h"
#include "actors/queues.h"

namespace fetchrelay::actors {
namespace {

using self_ptr = queues_actor::stateful_pointer<queues_state>;

std::string key_of(const std::string& tenant, const std::string& name) {
  std::string k = tenant;
  k.push_back('\0');
  k += name;
  return k;
}

queue_actor spawn_queue(self_ptr self, queue_state q) {
  std::string key = key_of(q.tenant, q.name);
  auto a = self->spawn(queue_actor_impl, std::move(q), std::shared_ptr<const queue_context>(self->state.ctx));
  self->state.live[key] = a;
  return a;
}

/// Hands `p` to the queue's actor, bringing it to life from the store first if need be.
void route(self_ptr self, const std::string& tenant, const std::string& name, queue_pending p) {
  auto& st = self->state;
  std::string key = key_of(tenant, name);
  if (auto it = st.live.find(key); it != st.live.end()) return p.deliver(it->second, false);
  auto [it, fresh] = st.loading.try_emplace(key);
  it->second.push_back(std::move(p));
  if (!fresh) return;
  self->send(st.ctx->store, queue_get_atom::value, tenant, name,
             completion<result<std::optional<queue_state>>>(
                 [me = caf::actor_cast<caf::actor>(self), tenant, name](result<std::optional<queue_state>> r) {
                   caf::anon_send(me, queue_loaded_atom::value, tenant, name, std::move(r));
                 }));
}

void on_loaded(self_ptr self, const std::string& tenant, const std::string& name, result<std::optional<queue_state>> r) {
  auto& st = self->state;
  std::string key = key_of(tenant, name);
  auto waiting = std::move(st.loading[key]);
  st.loading.erase(key);
  if (!r) {
    spdlog::warn("queue {} of tenant {} cannot be read: {}", name, tenant, r.error().message());
    for (auto& p : waiting) {
      if (p.refuse) p.refuse();
    }
    return;
  }
  std::optional<queue_actor> actor;
  if (auto it = st.live.find(key); it != st.live.end()) actor = it->second;
  for (auto& p : waiting) {
    bool created = false;
    if (!actor && (*r || p.creates)) {
      created = !*r;
      queue_state q = *r ? **r : queue_state{tenant, name, 1, false, st.ctx->clock->now_ms()};
      if (!*r && !p.writes) {  // named by X-Queue for the first time: stored with parallelism 1
        persistence::commit_batch b;
        b.queues.push_back({q, false});
        self->send(st.ctx->store, commit_atom::value, std::move(b), completion<status>());
      }
      actor = spawn_queue(self, std::move(q));
    }
    if (actor) p.deliver(*actor, created);
    else if (p.refuse) p.refuse();
  }
}

}  // namespace

queues_actor::behavior_type queue_manager(self_ptr self, store_actor store, std::shared_ptr<const wall_clock> clock) {
  self->state.ctx = std::make_shared<queue_context>(
      queue_context{std::move(store), manager_actor(), caf::actor_cast<queues_actor>(self), std::move(clock)});
  self->set_exit_handler([self](caf::exit_msg& m) {
    for (auto& [key, a] : self->state.live) self->send_exit(a, m.reason);
    self->state.live.clear();
    self->quit(m.reason);
  });
  const char* me = "queues";
  return {
      guarded(me, "init", [self](init_atom, const manager_actor& jobs) {
        self->state.ctx->jobs = jobs;
        // After a restart nothing kicks a queue: every queue with unfinished jobs is woken.
        self->send(self->state.ctx->store, queue_active_atom::value,
                   completion<std::vector<std::pair<std::string, std::string>>>(
                       [me = caf::actor_cast<caf::actor>(self)](std::vector<std::pair<std::string, std::string>> all) {
                         caf::anon_send(me, queue_active_atom::value, std::move(all));
                       }));
      }),
      guarded(me, "active", [self](queue_active_atom, const std::vector<std::pair<std::string, std::string>>& all) {
        for (const auto& [tenant, name] : all) {
          route(self, tenant, name, {[](const queue_actor& a, bool) { caf::anon_send(a, queue_kick_atom::value); }, nullptr, true});
        }
      }),
      guarded(me, "kick", [self](queue_kick_atom, const std::string& tenant, const std::string& name) {
        route(self, tenant, name, {[](const queue_actor& a, bool) { caf::anon_send(a, queue_kick_atom::value); }, nullptr, true});
      }),
      guarded(me, "started", [self](queue_started_atom, const std::string& tenant, const std::string& name, const std::string& id) {
        route(self, tenant, name, {[id](const queue_actor& a, bool) { caf::anon_send(a, queue_started_atom::value, id); }, nullptr, true});
      }),
      guarded(me, "released", [self](queue_released_atom, const std::string& tenant, const std::string& name, const std::string& id) {
        route(self, tenant, name, {[id](const queue_actor& a, bool) { caf::anon_send(a, queue_released_atom::value, id); }, nullptr, false});
      }),
      guarded(me, "op", [self](queue_op_atom, const std::string& tenant, const std::string& name, queue_command& cmd,
                               completion<queue_answer>& reply) {
        bool creates = cmd.op == queue_op::put;
        route(self, tenant, name,
              {[cmd, reply](const queue_actor& a, bool created) mutable {
                 cmd.created = created;
                 caf::anon_send(a, queue_op_atom::value, cmd, reply);
               },
               [reply, name] { reply(queue_answer{404, std::nullopt, "queue_not_found", "no queue " + name + " for this API key"}); },
               creates, creates});
      }),
      guarded(me, "loaded", [self](queue_loaded_atom, const std::string& tenant, const std::string& name,
                                   result<std::optional<queue_state>>& r) { on_loaded(self, tenant, name, std::move(r)); }),
      guarded(me, "forget", [self](forget_atom, const std::string& tenant, const std::string& name) {
        auto& live = self->state.live;
        if (auto it = live.find(key_of(tenant, name)); it != live.end()) {
          self->send(it->second, forget_atom::value);
          live.erase(it);
        }
      }),
  };
}

}  // namespace fetchrelay::actors
