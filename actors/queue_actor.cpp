#include <spdlog/spdlog.h>

#include "actors/queues.h"

namespace fetchrelay::actors {
namespace {

using self_ptr = queue_actor::stateful_pointer<queue_actor_state>;

caf::actor me_of(self_ptr self) { return caf::actor_cast<caf::actor>(self); }

/// Reads from the store: the granted and started prefix (first), or the job after the cursor.
void read(self_ptr self, bool first) {
  auto& st = self->state;
  st.busy = true;
  std::uint32_t limit = first ? max_queue_parallelism + 1 : 1;
  self->send(st.ctx->store, queue_jobs_atom::value, st.q.tenant, st.q.name, first ? std::string() : st.cursor, limit,
             completion<result<std::vector<persistence::queue_entry>>>(
                 [me = me_of(self), first](result<std::vector<persistence::queue_entry>> r) {
                   caf::anon_send(me, queue_next_atom::value, first, std::move(r));
                 }));
}

/// Grants the next job if a slot is free and the last one granted has started.
void pump(self_ptr self) {
  auto& st = self->state;
  if (!st.loaded || st.busy || st.q.paused || st.granted || st.started.size() >= st.q.parallelism) return;
  read(self, false);
}

void on_next(self_ptr self, bool first, const result<std::vector<persistence::queue_entry>>& r) {
  auto& st = self->state;
  st.busy = false;
  if (!r) {
    spdlog::warn("queue {} of tenant {}: cannot read its jobs ({}); trying again", st.q.name, st.q.tenant,
                 r.error().message());
    self->delayed_send(self, std::chrono::seconds(1), queue_kick_atom::value);
    return;
  }
  if (first) {  // after a restart: the granted and started jobs come first, in order
    for (const auto& e : *r) {
      if (e.stage == queue_stage::waiting) break;
      st.started.insert(e.id);
      if (e.stage == queue_stage::granted) st.granted = e.id;
      st.cursor = e.id;
    }
    st.loaded = true;
    return pump(self);
  }
  if (r->empty()) return;  // idle until a job arrives (kick)
  const auto& e = r->front();
  if (e.stage != queue_stage::waiting) {  // not expected: count it and go on
    st.started.insert(e.id);
    st.cursor = e.id;
    return pump(self);
  }
  st.busy = true;
  st.granting = e.id;
  self->send(st.ctx->jobs, queue_grant_atom::value, st.q.tenant, e.id,
             completion<grant_answer>([me = me_of(self), id = e.id](grant_answer a) {
               caf::anon_send(me, queue_granted_atom::value, id, a);
             }));
}

void on_granted(self_ptr self, const std::string& id, grant_answer a) {
  auto& st = self->state;
  st.busy = false;
  st.granting.clear();
  if (a == grant_answer::retry) {  // the store failed: the same job again, later
    st.gone.erase(id);
    self->delayed_send(self, std::chrono::seconds(1), queue_kick_atom::value);
    return;
  }
  st.cursor = id;
  bool released = st.gone.erase(id) > 0;
  bool started = st.started.count(id) > 0;  // its start overtook this answer
  if (a == grant_answer::accepted && !released && !started) {
    st.granted = id;
    st.started.insert(id);
  }
  pump(self);
}

void on_started(self_ptr self, const std::string& id) {
  auto& st = self->state;
  if (st.granted == id) st.granted.reset();
  st.started.insert(id);
  pump(self);
}

void on_released(self_ptr self, const std::string& id) {
  auto& st = self->state;
  if (st.granted == id) st.granted.reset();
  if (!st.started.erase(id) && st.granting == id) st.gone.insert(id);
  pump(self);
}

/// Writes the queue's record (synced), then answers its view.
void write_and_answer(self_ptr self, bool erase, int ok_status, completion<queue_answer> reply) {
  auto& st = self->state;
  persistence::commit_batch b;
  b.queues.push_back({st.q, erase});
  auto store = st.ctx->store;
  self->send(store, commit_atom::value, std::move(b),
             completion<status>([store, q = st.q, ok_status, reply = std::move(reply)](status s) {
               if (!s) return reply(queue_answer{503, std::nullopt, "store_unavailable", s.message()});
               caf::anon_send(store, queue_view_atom::value, q.tenant, q.name,
                              completion<result<std::optional<queue_view>>>(
                                  [q, ok_status, reply](result<std::optional<queue_view>> v) {
                                    queue_view view{q, 0, 0, 0};
                                    if (v && *v) view = **v;
                                    reply(queue_answer{ok_status, view, "", ""});
                                  }));
             }));
}

void on_op(self_ptr self, const queue_command& cmd, completion<queue_answer> reply) {
  auto& st = self->state;
  switch (cmd.op) {
    case queue_op::get:
    case queue_op::put:
      if (cmd.parallelism) st.q.parallelism = *cmd.parallelism;
      if (cmd.paused) st.q.paused = *cmd.paused;
      write_and_answer(self, false, cmd.created ? 201 : 200, std::move(reply));
      break;
    case queue_op::pause:
      st.q.paused = true;
      write_and_answer(self, false, 200, std::move(reply));
      break;
    case queue_op::resume:
      st.q.paused = false;
      write_and_answer(self, false, 200, std::move(reply));
      break;
    case queue_op::erase: {
      // Only an empty queue goes: the store's counts say (a job in flight to it counts too).
      auto store = st.ctx->store;
      caf::actor me = me_of(self);
      self->send(store, queue_view_atom::value, st.q.tenant, st.q.name,
                 completion<result<std::optional<queue_view>>>([me, store, q = st.q, queues = st.ctx->queues,
                                                                reply](result<std::optional<queue_view>> v) {
                   if (!v) return reply(queue_answer{503, std::nullopt, "store_unavailable", v.error().message()});
                   if (*v && ((*v)->waiting > 0 || (*v)->in_progress > 0)) {
                     return reply(queue_answer{409, **v, "queue_not_empty",
                                               "queue " + q.name + " has " + std::to_string((*v)->waiting + (*v)->in_progress) +
                                                   " unfinished jobs; cancel or finish them first"});
                   }
                   persistence::commit_batch b;
                   b.queues.push_back({q, true});
                   caf::anon_send(store, commit_atom::value, std::move(b),
                                  completion<status>([reply, q, queues](status s) {
                                    if (!s) return reply(queue_answer{503, std::nullopt, "store_unavailable", s.message()});
                                    reply(queue_answer{200, queue_view{q, 0, 0, 0}, "", ""});
                                    caf::anon_send(queues, forget_atom::value, q.tenant, q.name);
                                  }));
                 }));
      break;
    }
  }
  pump(self);
}

}  // namespace

queue_actor::behavior_type queue_actor_impl(self_ptr self, queue_state q, std::shared_ptr<const queue_context> ctx) {
  self->state.ctx = std::move(ctx);
  self->state.q = std::move(q);
  read(self, true);
  return {
      [self](queue_kick_atom) { pump(self); },
      [self](queue_started_atom, const std::string& id) { on_started(self, id); },
      [self](queue_released_atom, const std::string& id) { on_released(self, id); },
      [self](queue_op_atom, const queue_command& cmd, completion<queue_answer>& reply) { on_op(self, cmd, std::move(reply)); },
      [self](queue_next_atom, bool first, const result<std::vector<persistence::queue_entry>>& r) { on_next(self, first, r); },
      [self](queue_granted_atom, const std::string& id, grant_answer a) { on_granted(self, id, a); },
      [self](forget_atom) { self->quit(); },
  };
}

}  // namespace fetchrelay::actors
