// The job manager's parts, shared between its files (not for use outside actors/job_manager*):
// job_manager.cpp is the directory of live jobs (spawn, reads, cancels, hibernate and activate)
// and the behaviour; job_manager_submit.cpp takes submissions (idempotency, intake, the commit
// answers), callbacks and runs again.
#pragma once

#include <map>
#include <string>

#include "actors/job_manager.h"

namespace fetchrelay::actors {

struct manager_env {
  manager_options options;
  store_actor store;
  std::shared_ptr<delivery_client> client;
  std::shared_ptr<const wall_clock> clock;
  std::shared_ptr<relay_metrics> metrics;
};

namespace manager {

using self_ptr = manager_actor::stateful_pointer<manager_state>;
using env = manager_env;

inline manager_actor me_of(self_ptr self) { return caf::actor_cast<manager_actor>(self); }

/// The policy `name`, or "default" if there is none of that name.
std::map<std::string, policy_runtime>::const_iterator policy_of(const env& e, const std::string& name);

// job_manager.cpp: the directory of live jobs.
void spawn_job(self_ptr self, const env& e, job_state&& s, job_spec&& spec, std::vector<attempt_record>&& attempts,
               bool may_hibernate = true);
/// The job leaves the directory; it quits once the requests forwarded to it so far are handled.
void forget_job(self_ptr self, const env& e, std::unordered_map<std::string, manager_state::live_job>::iterator it);

/// Brings jobs back from their snapshots (due, run again, or with commands waiting).
void activate(self_ptr self, const env& e, const std::vector<std::string>& ids);
void on_activated(self_ptr self, const env& e, const std::vector<std::string>& ids, result<std::vector<recovered_job>> r);
void on_read(self_ptr self, const env& e, const std::string& tenant, const std::string& id,
             const completion<result<std::optional<job_view>>>& reply);
/// A cancel or a run-now for job `id` as `tenant`: to the live actor, or brought back first.
void on_command(self_ptr self, const env& e, const std::string& tenant, const std::string& id, job_command command,
                const completion<command_answer>& reply);

// job_manager_bulk.cpp: POST /v1/jobs/retry and /cancel.
/// One page (max_list_scan index entries) of the tenant's jobs that pass `filter`, from `cursor`:
/// run again (`retry`: failed and cancelled ones, with a fresh budget, at run_at_ms or now) or
/// cancelled (unfinished ones); reply how many and the cursor to go on from.
void on_bulk(self_ptr self, const env& e, const std::string& tenant, const persistence::job_filter& filter,
             const std::string& cursor, bool retry, std::int64_t run_at_ms, completion<result<persistence::purge_page>> reply);
void on_bulk_listed(self_ptr self, const env& e, bool retry, std::int64_t run_at_ms, result<persistence::job_page> page,
                    completion<result<persistence::purge_page>> reply);
/// A bulk retry's commit answered: tell `done` how many ran again (or the error), and bring them
/// back (or undo their quota count).
void on_bulk_committed(self_ptr self, const env& e, const std::vector<std::string>& ids, const status& r,
                       const std::string& tenant, const completion<bulk_part>& done);

// job_manager_submit.cpp: submissions, their commits, callbacks, runs again.
void submit(self_ptr self, const env& e, submission&& sub, completion<submit_answer> reply);
void submit_all(self_ptr self, const env& e, std::vector<submission> subs, completion<std::vector<submit_answer>> reply);
/// Hands the submissions gathered in this turn to the store as one synced commit.
void flush_submissions(self_ptr self, const env& e);
void on_committed(self_ptr self, const env& e, const std::string& id, const status& r);
void on_idem_loaded(self_ptr self, const env& e, const std::string& idem_key, const result<std::optional<idem_hit>>& r);
/// Several relays: these keys of the last batch were held by another relay's job; their
/// submissions were not written and are answered with that job instead.
void on_idem_lost(self_ptr self, const env& e, std::vector<persistence::idem_write> lost);
/// The job a key named is gone: the key is forgotten in memory; the repeat is a new job.
void on_idem_gone(self_ptr self, const env& e, const std::string& id, submission sub, completion<submit_answer> reply);
/// A job's terminal snapshot is synced: it leaves the directory and its callback is submitted.
/// `s`: the final snapshot if the job has a callback to make, else null.
void on_done(self_ptr self, const env& e, const std::string& id, const job_state* s);
void on_retry(self_ptr self, const env& e, const std::string& tenant, const std::string& id, std::int64_t run_at_ms,
              completion<retry_answer> reply);
/// A retry of a live job: `ended` if that job has ended (its end being written): then it waits for it.
void on_retry_checked(self_ptr self, const env& e, const std::string& tenant, const std::string& id,
                      std::int64_t run_at_ms, completion<retry_answer> reply, bool ended);
/// Runs a failed or cancelled job again with a fresh retry budget (its attempt numbers go on).
void on_retry_loaded(self_ptr self, const env& e, result<std::optional<recovered_job>> r, std::int64_t run_at_ms,
                     completion<retry_answer> reply);
void on_retry_committed(self_ptr self, const env& e, const std::string& id, const status& r);

}  // namespace manager
}  // namespace fetchrelay::actors
