// POST /v1/jobs/retry and /v1/jobs/cancel: one page of a filter at a time, so a million failed
// jobs never hold one request (or the manager) for minutes.
#include <spdlog/spdlog.h>

#include <mutex>
#include <optional>

#include "actors/job_manager_internal.h"

namespace fetchrelay::actors::manager {

void on_bulk(self_ptr self, const env& e, const std::string& tenant, const persistence::job_filter& filter,
             const std::string& cursor, bool retry, std::int64_t run_at_ms, completion<result<persistence::purge_page>> reply) {
  self->send(e.store, list_atom::value, tenant, filter, cursor, static_cast<std::uint32_t>(persistence::max_list_scan),
             completion<result<persistence::job_page>>([me = me_of(self), retry, run_at_ms, reply](result<persistence::job_page> p) {
               caf::anon_send(me, bulk_atom::value, retry, run_at_ms, std::move(p), reply);
             }));
}

namespace {

/// Cancels each unfinished job of the page as DELETE /v1/jobs/{id} does; replies once all answered.
void cancel_page(self_ptr self, const env& e, const persistence::job_page& page,
                 completion<result<persistence::purge_page>> reply) {
  struct gather {
    std::mutex m;
    std::size_t left = 0;
    std::size_t cancelled = 0;
    std::string next_cursor;
    completion<result<persistence::purge_page>> reply;
  };
  auto g = std::make_shared<gather>();
  g->next_cursor = page.next_cursor;
  g->reply = std::move(reply);
  std::vector<const job_state*> todo;
  for (const auto& j : page.jobs) {
    if (!is_terminal(j.status)) todo.push_back(&j);
  }
  g->left = todo.size();
  if (todo.empty()) return g->reply(persistence::purge_page{0, page.next_cursor});
  for (const job_state* j : todo) {
    on_command(self, e, j->tenant, j->id, job_command::cancel, completion<command_answer>([g](command_answer a) {
                 std::unique_lock lock(g->m);
                 if (a == command_answer::cancelled) ++g->cancelled;
                 if (--g->left > 0) return;
                 persistence::purge_page out{g->cancelled, g->next_cursor};
                 lock.unlock();
                 g->reply(out);
               }));
  }
}

/// A bulk retry's answer: the jobs run again, once every part has answered.
struct retry_gather {
  std::mutex m;
  std::size_t parts = 1;  // the commit of the jobs not in memory, and one per job in memory
  std::size_t count = 0;
  std::optional<status> failed;
  std::string next_cursor;
  completion<result<persistence::purge_page>> reply;

  void part_done(std::size_t ran, const std::optional<status>& error) {
    std::unique_lock lock(m);
    count += ran;
    if (error && !failed) failed = error;
    if (--parts > 0) return;
    lock.unlock();
    if (failed && count == 0) return reply(*failed);
    reply(persistence::purge_page{count, next_cursor});
  }
};

/// Runs each failed or cancelled job of the page again (as POST /v1/jobs/{id}/retry): those not
/// in memory in one synced commit, then brought back like due jobs; one still in memory (its end
/// being written, or run again meanwhile) through the single retry, which checks and waits.
void retry_page(self_ptr self, const env& e, std::int64_t run_at_ms, const persistence::job_page& page,
                completion<result<persistence::purge_page>> reply) {
  auto& st = self->state;
  auto g = std::make_shared<retry_gather>();
  g->next_cursor = page.next_cursor;
  g->reply = std::move(reply);
  persistence::commit_batch b;
  b.sync = true;
  std::vector<std::string> ids;
  std::vector<const job_state*> in_memory;
  std::int64_t now = e.clock->now_ms();
  for (job_state s : page.jobs) {
    if ((s.status != job_status::failed && s.status != job_status::cancelled) || st.retrying.count(s.id)) continue;
    if (auto it = st.live.find(s.id); it != st.live.end()) {
      for (const auto& j : page.jobs) {
        if (j.id == s.id) in_memory.push_back(&j);
      }
      continue;
    }
    auto pol = policy_of(e, s.policy);
    s.status = job_status::scheduled;
    s.run_at_ms = std::max(run_at_ms, now);
    s.max_attempts = s.attempts + pol->second.retry.attempts;
    s.finished_at_ms = 0;
    s.defer_reason.clear();
    s.queue_stage = 0;  // run again outside its queue's order
    st.admission->job_started(s.tenant);
    ids.push_back(s.id);
    b.jobs.push_back({std::move(s), std::nullopt, std::nullopt});
  }
  g->parts += in_memory.size();
  for (const job_state* j : in_memory) {
    on_retry(self, e, j->tenant, j->id, run_at_ms, completion<retry_answer>([g](retry_answer a) {
               g->part_done(a.result == retry_answer::scheduled ? 1 : 0, std::nullopt);
             }));
  }
  if (ids.empty()) return g->part_done(0, std::nullopt);
  self->send(e.store, commit_atom::value, std::move(b),
             completion<status>([me = me_of(self), ids, tenant = page.jobs.front().tenant, g](status r) {
               caf::anon_send(me, committed_atom::value, ids, std::move(r), tenant,
                              completion<bulk_part>(
                                  [g](bulk_part done) {
                                    g->part_done(done.first, done.second);
                                  }));
             }));
}

}  // namespace

void on_bulk_listed(self_ptr self, const env& e, bool retry, std::int64_t run_at_ms, result<persistence::job_page> page,
                    completion<result<persistence::purge_page>> reply) {
  if (!page) return reply(page.error());
  if (retry) return retry_page(self, e, run_at_ms, *page, std::move(reply));
  cancel_page(self, e, *page, std::move(reply));
}

void on_bulk_committed(self_ptr self, const env& e, const std::vector<std::string>& ids, const status& r,
                       const std::string& tenant, const completion<bulk_part>& done) {
  if (!r.is_ok()) {
    // Not run again: the quota counts them no longer. The jobs are as they were on disk.
    for (std::size_t i = 0; i < ids.size(); ++i) self->state.admission->job_ended(tenant);
    spdlog::warn("bulk retry of {} job(s) not stored: {}", ids.size(), r.message());
    return done({0, r});
  }
  done({ids.size(), std::nullopt});
  // Due now or later: brought back as due jobs are (a far one parks again at once).
  activate(self, e, ids);
}

}  // namespace fetchrelay::actors::manager
