#include "actors/store_actor.h"
#include "actors/guard.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include "core/ulid.h"

namespace fetchrelay::actors {
namespace {

/// The whole job (state, request and attempts), to run it again; nullopt if there is none.
result<std::optional<recovered_job>> load_whole(persistence::store& store, const std::string& id) {
  auto j = store.get_job(id);
  if (!j) return j.error();
  if (!*j) return std::optional<recovered_job>();
  auto spec = store.get_spec(id);
  if (!spec) return spec.error();
  if (!*spec) return data_loss("job " + id + " has no stored request");
  auto attempts = store.get_attempts(id);
  if (!attempts) return attempts.error();
  return std::optional<recovered_job>(recovered_job{std::move(**j), std::move(**spec), std::move(*attempts)});
}

using self_ptr = store_actor::stateful_pointer<store_actor_state>;

struct env {
  std::shared_ptr<persistence::store> store;
  store_actor_options options;
  std::shared_ptr<store_actor_stats> stats;
};

/// Jobs by status into the metrics, as of the last commit.
void publish(const env& e) {
  if (!e.options.metrics) return;
  auto c = e.store->counters();
  for (size_t i = 0; i < c.size(); ++i) e.options.metrics->jobs_by_status[i].store(c[i]);
}

void publish_disk(const env& e) {
  if (e.options.metrics)
    e.options.metrics->store_disk_bytes.store(static_cast<std::int64_t>(e.store->disk_usage_bytes()));
}

void count_commit(const env& e, std::size_t batches, std::chrono::steady_clock::time_point t0, const status& s) {
  if (e.options.metrics) {
    e.options.metrics->commit_latency.observe(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    e.options.metrics->commit_batch.observe(static_cast<double>(batches));
    if (!s.is_ok()) e.options.metrics->store_failures.fetch_add(1, std::memory_order_relaxed);
    else publish(e);
  }
  if (e.stats) {
    e.stats->commits.fetch_add(1, std::memory_order_relaxed);
    e.stats->batches.fetch_add(batches, std::memory_order_relaxed);
    if (!s.is_ok()) e.stats->failures.fetch_add(1, std::memory_order_relaxed);
  }
}

/// Writes every queued commit as one, then answers each.
void flush(self_ptr self, const env& e) {
  auto& st = self->state;
  st.flush_scheduled = false;
  if (st.pending.empty()) return;
  auto t0 = std::chrono::steady_clock::now();
  status s = e.store->commit(st.pending);
  count_commit(e, st.pending.size(), t0, s);
  st.pending.clear();
  auto waiters = std::move(st.waiters);
  st.waiters.clear();
  if (s.is_ok()) {
    if (e.options.ready) e.options.ready->store(true);  // the store may have healed on a read
  } else if (e.store->health().is_ok()) {
    // Refused, not failed (a node that lost a shard's lease): the store is fine, only this
    // write was not made.
    spdlog::warn("store refused a write: {}", s.message());
  } else if (!s.is_ok()) {
    spdlog::error("store write failed: {}; answering 503 until it reopens", s.message());
    if (e.options.ready) e.options.ready->store(false);
    if (!st.reopen_scheduled) {
      st.reopen_scheduled = true;
      self->delayed_send(self, e.options.reopen_every, reopen_atom::value);
    }
  }
  for (auto& w : waiters) w(s);
}

void on_commit(self_ptr self, const env& e, persistence::commit_batch& batch, completion<status>& done) {
  auto& st = self->state;
  if (status h = e.store->health(); !h.is_ok()) {
    // A store can also fail on a read (a lost database connection), which schedules nothing:
    // the first write after it tries to reopen at once, then every reopen_every.
    if (st.reopen_scheduled) return done(h);
    if (status r = e.store->reopen(); !r.is_ok()) {
      st.reopen_scheduled = true;
      if (e.options.ready) e.options.ready->store(false);
      self->delayed_send(self, e.options.reopen_every, reopen_atom::value);
      return done(h);
    }
    spdlog::info("store reopened at {}", e.store->location());
    if (e.options.ready) e.options.ready->store(true);
  }
  if (batch.at_ms == 0 && e.options.clock) batch.at_ms = e.options.clock->now_ms();
  st.pending.push_back(std::move(batch));
  st.waiters.push_back(std::move(done));
  if (st.pending.size() >= e.options.max_batch) {
    flush(self, e);
  } else if (!st.flush_scheduled) {
    st.flush_scheduled = true;
    self->send(self, flush_atom::value);
  }
}

void on_reopen(self_ptr self, const env& e) {
  auto& st = self->state;
  st.reopen_scheduled = false;
  if (e.store->health().is_ok()) {  // healed meanwhile (a read connected again)
    if (e.options.ready) e.options.ready->store(true);
    return;
  }
  status s = e.store->reopen();
  if (s.is_ok()) {
    spdlog::info("store reopened at {}", e.store->location());
    if (e.options.ready) e.options.ready->store(true);
    return;
  }
  spdlog::warn("store still failing: {}", s.message());
  st.reopen_scheduled = true;
  self->delayed_send(self, e.options.reopen_every, reopen_atom::value);
}

result<std::optional<job_view>> read_view(persistence::store& store, const std::string& tenant, const std::string& id) {
  auto j = store.get_job(id);
  if (!j) return j.error();
  if (!*j || (*j)->tenant != tenant) return std::optional<job_view>();
  auto a = store.get_attempts(id);
  if (!a) return a.error();
  auto spec = store.get_spec(id);
  if (!spec) return spec.error();
  return std::optional<job_view>(job_view{std::move(**j), std::move(*a), std::move(*spec)});
}

/// The unfinished jobs among `ids`, whole.
result<std::vector<recovered_job>> load_unfinished(const env& e, const std::vector<std::string>& ids) {
  std::vector<recovered_job> out;
  for (const auto& id : ids) {
    auto j = load_whole(*e.store, id);
    if (!j) return j.error();
    if (*j && !is_terminal((*j)->state.status)) out.push_back(std::move(**j));
  }
  if (e.options.metrics) e.options.metrics->jobs_activated.fetch_add(out.size(), std::memory_order_relaxed);
  return out;
}

void on_sweep(const env& e) {
  publish_disk(e);
  if (e.options.retention.count() <= 0 || !e.options.clock) return;
  // Bounded per tick, so commits waiting behind the sweep are not held up for long.
  constexpr std::size_t per_write = 1000;
  std::int64_t cutoff = e.options.clock->now_ms() - e.options.retention.count();
  for (int i = 0; i < 10 && e.store->health().is_ok(); ++i) {
    auto n = e.store->purge_finished(cutoff, per_write);
    if (!n) {
      spdlog::warn("retention sweep failed: {}", n.error().message());
      break;
    }
    if (e.options.metrics) e.options.metrics->jobs_purged.fetch_add(*n, std::memory_order_relaxed);
    if (*n < per_write) break;
  }
  for (int i = 0; i < 10 && e.store->health().is_ok(); ++i) {
    auto n = e.store->purge_events(cutoff, per_write);
    if (!n) {
      spdlog::warn("event retention sweep failed: {}", n.error().message());
      break;
    }
    if (*n < per_write) break;
  }
  publish(e);
}

result<std::optional<idem_hit>> find_idem(persistence::store& store, const std::string& tenant, const std::string& key) {
  auto r = store.get_idem(tenant, key);
  if (!r) return r.error();
  if (!*r) return std::optional<idem_hit>();
  auto j = store.get_job((*r)->id);
  if (!j) return j.error();
  std::int64_t run_at = *j ? (*j)->run_at_ms : 0;
  return std::optional<idem_hit>(idem_hit{(*r)->id, run_at, (*r)->expires_at_ms, (*r)->fingerprint});
}

/// A queue with its counts and the age of its oldest waiting job.
result<queue_view> view_of(const env& e, queue_state q) {
  queue_view v;
  auto c = e.store->queue_count(q.tenant, q.name);
  v.waiting = c.waiting;
  v.in_progress = c.started;
  if (c.waiting > 0) {  // the first waiting job comes after the granted and started ones
    auto first = e.store->queue_jobs(q.tenant, q.name, "", static_cast<std::size_t>(c.started) + 1);
    if (!first) return first.error();
    for (const auto& j : *first) {
      if (j.stage != queue_stage::waiting) continue;
      std::int64_t now = e.options.clock ? e.options.clock->now_ms() : 0;
      v.oldest_waiting_age_ms = std::max<std::int64_t>(0, now - job_id_time(j.id));
      break;
    }
  }
  v.q = std::move(q);
  return v;
}

result<std::optional<queue_view>> queue_view_of(const env& e, const std::string& tenant, const std::string& name) {
  auto q = e.store->get_queue(tenant, name);
  if (!q) return q.error();
  if (!*q) return std::optional<queue_view>();
  auto v = view_of(e, std::move(**q));
  if (!v) return v.error();
  return std::optional<queue_view>(std::move(*v));
}

result<queue_view_page> queue_page_of(const env& e, const std::string& tenant, const std::string& cursor,
                                      std::uint32_t limit) {
  auto page = e.store->list_queues(tenant, cursor, limit);
  if (!page) return page.error();
  queue_view_page out;
  for (auto& q : page->queues) {
    auto v = view_of(e, std::move(q));
    if (!v) return v.error();
    out.queues.push_back(std::move(*v));
  }
  out.next_cursor = page->next_cursor;
  return out;
}

}  // namespace

store_actor::behavior_type store_actor_impl(self_ptr self, std::shared_ptr<persistence::store> store,
                                            store_actor_options options, std::shared_ptr<store_actor_stats> stats) {
  pthread_setname_np(pthread_self(), "fr-store");  // a detached actor: its own thread
  if (options.ready) options.ready->store(store->health().is_ok());
  auto e = std::make_shared<const env>(env{std::move(store), std::move(options), std::move(stats)});
  publish(*e);
  publish_disk(*e);
  return {
      guarded("store", "commit", [self, e](commit_atom, persistence::commit_batch& batch, completion<status>& done) {
        on_commit(self, *e, batch, done);
      }),
      guarded("store", "flush", [self, e](flush_atom) { flush(self, *e); }),
      guarded("store", "sync", [self, e](sync_atom, const completion<status>& done) {
        flush(self, *e);
        done(e->store->health());
      }),
      guarded("store", "reopen", [self, e](reopen_atom) { on_reopen(self, *e); }),
      guarded("store", "read", [e](read_atom, const std::string& tenant, const std::string& id,
                                   const completion<result<std::optional<job_view>>>& done) {
        done(read_view(*e->store, tenant, id));
      }),
      guarded("store", "retry", [e](retry_atom, const std::string& tenant, const std::string& id,
                                    const completion<result<std::optional<recovered_job>>>& done) {
        auto j = load_whole(*e->store, id);
        if (j.is_ok() && j.value() && j.value()->state.tenant != tenant) return done(std::optional<recovered_job>());
        done(std::move(j));
      }),
      guarded("store", "load", [e](load_atom, const std::vector<std::string>& ids,
                                   const completion<result<std::vector<recovered_job>>>& done) {
        done(load_unfinished(*e, ids));
      }),
      guarded("store", "scan", [e](scan_atom, const std::optional<persistence::due_entry>& after, std::int64_t until,
                                   std::uint32_t limit, const completion<result<std::vector<persistence::due_entry>>>& done) {
        done(e->store->scan_due(after, until, limit));
      }),
      guarded("store", "sweep", [e](sweep_atom) { on_sweep(*e); }),
      guarded("store", "purge", [e](purge_atom, const std::string& tenant, const persistence::job_filter& filter,
                                    const std::string& cursor, const completion<result<persistence::purge_page>>& done) {
        auto r = e->store->purge_jobs(tenant, filter, cursor);
        if (r) publish(*e);
        done(std::move(r));
      }),
      guarded("store", "idem", [e](idem_atom, const std::string& tenant, const std::string& key,
                                   const completion<result<std::optional<idem_hit>>>& done) {
        done(find_idem(*e->store, tenant, key));
      }),
      guarded("store", "events", [e](events_atom, const std::string& tenant, const persistence::event_filter& filter,
                                     const std::string& cursor, std::uint32_t limit,
                                     const completion<result<persistence::event_page>>& done) {
        done(e->store->list_events(tenant, filter, cursor, limit));
      }),
      guarded("store", "schedget", [e](sched_get_atom, const std::string& tenant, const std::string& id,
                                       const completion<result<std::optional<schedule_state>>>& done) {
        done(e->store->get_schedule(tenant, id));
      }),
      guarded("store", "schedlist", [e](sched_list_atom, const std::string& tenant, const std::string& cursor,
                                        std::uint32_t limit, const completion<result<persistence::schedule_page>>& done) {
        done(e->store->list_schedules(tenant, cursor, limit));
      }),
      guarded("store", "schedscan", [e](sched_scan_atom, const std::optional<persistence::schedule_due>& after,
                                        std::int64_t until, std::uint32_t limit,
                                        const completion<result<std::vector<persistence::schedule_due>>>& done) {
        done(e->store->scan_schedules_due(after, until, limit));
      }),
      guarded("store", "topicget", [e](topic_get_atom, const std::string& tenant, const std::string& name,
                                       const completion<result<std::optional<topic_state>>>& done) {
        done(e->store->get_topic(tenant, name));
      }),
      guarded("store", "topiclist", [e](topic_list_atom, const std::string& tenant, const std::string& cursor,
                                        std::uint32_t limit, const completion<result<persistence::topic_page>>& done) {
        done(e->store->list_topics(tenant, cursor, limit));
      }),
      guarded("store", "qget", [e](queue_get_atom, const std::string& tenant, const std::string& name,
                                   const completion<result<std::optional<queue_state>>>& done) {
        done(e->store->get_queue(tenant, name));
      }),
      guarded("store", "qview", [e](queue_view_atom, const std::string& tenant, const std::string& name,
                                    const completion<result<std::optional<queue_view>>>& done) {
        done(queue_view_of(*e, tenant, name));
      }),
      guarded("store", "qlist", [e](queue_list_atom, const std::string& tenant, const std::string& cursor,
                                    std::uint32_t limit, const completion<result<queue_view_page>>& done) {
        done(queue_page_of(*e, tenant, cursor, limit));
      }),
      guarded("store", "qjobs", [e](queue_jobs_atom, const std::string& tenant, const std::string& name,
                                    const std::string& after, std::uint32_t limit,
                                    const completion<result<std::vector<persistence::queue_entry>>>& done) {
        done(e->store->queue_jobs(tenant, name, after, limit));
      }),
      guarded("store", "qactive", [e](queue_active_atom, const completion<std::vector<std::pair<std::string, std::string>>>& done) {
        done(e->store->active_queues());
      }),
      guarded("store", "list", [e](list_atom, const std::string& tenant, const persistence::job_filter& filter,
                                   const std::string& cursor, std::uint32_t limit,
                                   const completion<result<persistence::job_page>>& done) {
        done(e->store->list_jobs(tenant, filter, cursor, limit));
      }),
  };
}

}  // namespace fetchrelay::actors
