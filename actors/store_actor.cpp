#include "actors/store_actor.h"
#include "actors/guard.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

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

}  // namespace

store_actor::behavior_type store_actor_impl(store_actor::stateful_pointer<store_actor_state> self,
                                            std::shared_ptr<persistence::store> store,
                                            store_actor_options options,
                                            std::shared_ptr<store_actor_stats> stats) {
  pthread_setname_np(pthread_self(), "fr-store");  // a detached actor: its own thread
  if (options.ready) options.ready->store(store->health().is_ok());
  auto publish = [store, options] {
    if (!options.metrics) return;
    auto c = store->counters();
    for (size_t i = 0; i < c.size(); ++i) options.metrics->jobs_by_status[i].store(c[i]);
  };
  publish();
  auto publish_disk = [store, options] {
    if (options.metrics) options.metrics->store_disk_bytes.store(static_cast<std::int64_t>(store->disk_usage_bytes()));
  };
  publish_disk();
  auto flush = [self, store, options, stats, publish] {
    auto& st = self->state;
    st.flush_scheduled = false;
    if (st.pending.empty()) return;
    auto t0 = std::chrono::steady_clock::now();
    status s = store->commit(st.pending);
    if (options.metrics) {
      options.metrics->commit_latency.observe(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      options.metrics->commit_batch.observe(static_cast<double>(st.pending.size()));
      if (!s.is_ok()) options.metrics->store_failures.fetch_add(1, std::memory_order_relaxed);
      else publish();
    }
    if (stats) {
      stats->commits.fetch_add(1, std::memory_order_relaxed);
      stats->batches.fetch_add(st.pending.size(), std::memory_order_relaxed);
    }
    st.pending.clear();
    auto waiters = std::move(st.waiters);
    st.waiters.clear();
    if (!s.is_ok()) {
      if (stats) stats->failures.fetch_add(1, std::memory_order_relaxed);
      spdlog::error("store write failed: {}; answering 503 until it reopens", s.message());
      if (options.ready) options.ready->store(false);
      if (!st.reopen_scheduled) {
        st.reopen_scheduled = true;
        self->delayed_send(self, options.reopen_every, reopen_atom::value);
      }
    }
    for (auto& w : waiters) w(s);
  };
  return {
      guarded("store", "commit", [self, store, options, flush](commit_atom, persistence::commit_batch& batch, completion<status>& done) {
        auto& st = self->state;
        status h = store->health();
        if (!h.is_ok()) {
          done(h);
          return;
        }
        st.pending.push_back(std::move(batch));
        st.waiters.push_back(std::move(done));
        if (st.pending.size() >= options.max_batch) {
          flush();
        } else if (!st.flush_scheduled) {
          st.flush_scheduled = true;
          self->send(self, flush_atom::value);
        }
      }),
      guarded("store", "flush", [flush](flush_atom) { flush(); }),
      guarded("store", "sync", [store, flush](sync_atom, const completion<status>& done) {
        flush();
        done(store->health());
      }),
      guarded("store", "reopen", [self, store, options](reopen_atom) {
        auto& st = self->state;
        st.reopen_scheduled = false;
        if (store->health().is_ok()) return;
        status s = store->reopen();
        if (s.is_ok()) {
          spdlog::info("store reopened at {}", store->location());
          if (options.ready) options.ready->store(true);
          return;
        }
        spdlog::warn("store still failing: {}", s.message());
        st.reopen_scheduled = true;
        self->delayed_send(self, options.reopen_every, reopen_atom::value);
      }),
      guarded("store", "read", [store](read_atom, const std::string& tenant, const std::string& id,
              const completion<result<std::optional<job_view>>>& done) {
        auto j = store->get_job(id);
        if (!j) {
          done(j.error());
          return;
        }
        if (!*j || (*j)->tenant != tenant) {
          done(std::optional<job_view>());
          return;
        }
        auto a = store->get_attempts(id);
        if (!a) {
          done(a.error());
          return;
        }
        done(std::optional<job_view>(job_view{std::move(**j), std::move(*a)}));
      }),
      guarded("store", "retry", [store](retry_atom, const std::string& tenant, const std::string& id,
              const completion<result<std::optional<recovered_job>>>& done) {
        auto j = load_whole(*store, id);
        if (j.is_ok() && j.value() && j.value()->state.tenant != tenant) return done(std::optional<recovered_job>());
        done(std::move(j));
      }),
      guarded("store", "load", [store, options](load_atom, const std::vector<std::string>& ids,
                       const completion<result<std::vector<recovered_job>>>& done) {
        std::vector<recovered_job> out;
        for (const auto& id : ids) {
          auto j = load_whole(*store, id);
          if (!j) return done(j.error());
          if (*j && !is_terminal((*j)->state.status)) out.push_back(std::move(**j));
        }
        if (options.metrics) options.metrics->jobs_activated.fetch_add(out.size(), std::memory_order_relaxed);
        done(std::move(out));
      }),
      guarded("store", "scan", [store](scan_atom, const std::optional<persistence::due_entry>& after, std::int64_t until, std::uint32_t limit,
              const completion<result<std::vector<persistence::due_entry>>>& done) {
        done(store->scan_due(after, until, limit));
      }),
      guarded("store", "sweep", [store, options, publish, publish_disk](sweep_atom) {
        publish_disk();
        if (options.retention.count() <= 0 || !options.clock) return;
        // Bounded per tick, so commits waiting behind the sweep are not held up for long.
        constexpr std::size_t per_write = 1000;
        std::int64_t cutoff = options.clock->now_ms() - options.retention.count();
        for (int i = 0; i < 10 && store->health().is_ok(); ++i) {
          auto n = store->purge_finished(cutoff, per_write);
          if (!n) {
            spdlog::warn("retention sweep failed: {}", n.error().message());
            break;
          }
          if (options.metrics) options.metrics->jobs_purged.fetch_add(*n, std::memory_order_relaxed);
          if (*n < per_write) break;
        }
        publish();
      }),
      guarded("store", "idem", [store](idem_atom, const std::string& tenant, const std::string& key,
              const completion<result<std::optional<idem_hit>>>& done) {
        auto r = store->get_idem(tenant, key);
        if (!r) return done(r.error());
        if (!*r) return done(std::optional<idem_hit>());
        auto j = store->get_job((*r)->id);
        if (!j) return done(j.error());
        std::int64_t run_at = *j ? (*j)->run_at_ms : 0;
        done(std::optional<idem_hit>(idem_hit{(*r)->id, run_at, (*r)->expires_at_ms, (*r)->fingerprint}));
      }),
      guarded("store", "list", [store](list_atom, const std::string& tenant, std::optional<job_status> status, const std::string& cursor,
              std::uint32_t limit, const completion<result<persistence::job_page>>& done) {
        done(store->list_jobs(tenant, status, cursor, limit));
      }),
  };
}

}  // namespace fetchrelay::actors
