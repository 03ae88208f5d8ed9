// The job manager's protocol: every message it takes, who sends it and what comes back.
//
// Answers go back through a completion<T> carried in the message (messages.h), never as a CAF
// response: the API sends from io threads and must not wait, and a completion costs no timer.
// Messages marked "self" are the manager's own continuations (a store answer brought back into
// the actor), listed because a typed actor must declare everything it handles.
#pragma once

#include "actors/messages.h"
#include "actors/queue_protocol.h"
#include "actors/submit.h"

namespace fetchrelay::actors {

/// (due_atom, ids): the scheduler says these hibernated jobs are due.
using due_atom = caf::atom_constant<caf::atom("due")>;
/// (hibernated_atom, id, due_ms): a job actor has its snapshot synced and leaves memory.
using hibernated_atom = caf::atom_constant<caf::atom("hibernated")>;
/// (activated_atom, ids, jobs): self, the store's answer to loading due or cancelled jobs.
using activated_atom = caf::atom_constant<caf::atom("activated")>;
/// (command_found_atom, tenant, id, command, reply): self, a command to a job found hibernated
/// in the store.
using command_found_atom = caf::atom_constant<caf::atom("cmdfound")>;
/// (idem_gone_atom, id, submission, reply): self, a repeat whose key's job is gone.
using idem_gone_atom = caf::atom_constant<caf::atom("idemgone")>;

/// (bulk_atom, tenant, filter, cursor, retry, run_at, reply): POST /v1/jobs/retry (retry) and
/// /cancel (not); (bulk_atom, retry, run_at, page, reply): self, the page of jobs to act on.
using bulk_atom = caf::atom_constant<caf::atom("bulk")>;

/// POST /v1/jobs/{id}/retry.
struct retry_answer {
  enum kind { scheduled, not_retryable, not_found, unavailable } result = not_found;
  std::int64_t run_at_ms = 0;
  std::string message;
};

}  // namespace fetchrelay::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::submission)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<fetchrelay::actors::submission>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<std::vector<fetchrelay::actors::submit_answer>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::actors::submit_answer>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<fetchrelay::actors::recovered_job>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::actors::retry_answer>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::result<fetchrelay::persistence::job_page>)
namespace fetchrelay::actors {
using bulk_part = std::pair<std::size_t, std::optional<status>>;  // jobs run again, or the error
}
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::actors::bulk_part>)

namespace fetchrelay::actors {

using manager_actor = caf::typed_actor<
    // API: POST /v1/fetch; reply 202 once synced (or 409/429/503). Also the manager's callbacks.
    caf::reacts_to<submit_atom, submission, completion<submit_answer>>,
    // API (a topic submission) and schedules (a topic's fire): one job per submission, in one
    // commit when no idempotency key needs a store look-up; reply once every one is answered,
    // in order.
    caf::reacts_to<submit_atom, std::vector<submission>, completion<std::vector<submit_answer>>>,
    // API: GET /v1/jobs/{id} as tenant; reply the job, or nullopt for none of this tenant's.
    caf::reacts_to<read_atom, std::string, std::string, completion<result<std::optional<job_view>>>>,
    // API: GET /v1/jobs; reply one page, newest first (the store answers).
    caf::reacts_to<list_atom, std::string, persistence::job_filter, std::string, std::uint32_t,
                   completion<result<persistence::job_page>>>,
    // API: DELETE /v1/jobs (purge finished jobs by filter, from a cursor); the store answers.
    caf::reacts_to<purge_atom, std::string, persistence::job_filter, std::string,
                   completion<result<persistence::purge_page>>>,
    // API, and a parked job actor handing one back: DELETE /v1/jobs/{id} as tenant.
    caf::reacts_to<cancel_atom, std::string, std::string, completion<cancel_answer>>,
    // API, and a parked job actor handing one back: POST /v1/jobs/{id}/run as tenant.
    caf::reacts_to<run_atom, std::string, std::string, completion<command_answer>>,
    // API: POST /v1/jobs/{id}/retry as tenant, to run at run_at_ms (or now, if earlier); reply
    // scheduled, not_retryable, not_found or unavailable.
    caf::reacts_to<retry_atom, std::string, std::string, std::int64_t, completion<retry_answer>>,
    // Self: a retry of a live job, with whether that job has ended (its end being written).
    caf::reacts_to<retry_atom, std::string, std::string, std::int64_t, completion<retry_answer>, bool>,
    // API: POST /v1/jobs/retry (true) or /cancel (false) for one page of a filter; reply the count
    // and the cursor to go on from.
    caf::reacts_to<bulk_atom, std::string, persistence::job_filter, std::string, bool, std::int64_t,
                   completion<result<persistence::purge_page>>>,
    // Self: the page of jobs a bulk operation acts on.
    caf::reacts_to<bulk_atom, bool, std::int64_t, result<persistence::job_page>, completion<result<persistence::purge_page>>>,
    // Self: the store's answer to a bulk retry's commit (the ids run again).
    caf::reacts_to<committed_atom, std::vector<std::string>, status, std::string,
                   completion<bulk_part>>,
    // A queue: its turn for job id of tenant; reply accepted once the job is written granted, or
    // gone (finished, or no such job).
    caf::reacts_to<queue_grant_atom, std::string, std::string, completion<grant_answer>>,
    // The relay when stopping: destinations drop what has not started.
    caf::reacts_to<drain_atom>,
    // The relay: this node took shards; the scheduler scans from the start again.
    caf::reacts_to<recover_atom>,
    // A job actor: its terminal snapshot is synced; forget it and send its callback (the snapshot,
    // null when the job has no callback URL: most jobs, and a copy of a snapshot is not free).
    caf::reacts_to<done_atom, std::string, std::shared_ptr<const job_state>>,
    // A job actor: (id, due_ms), parked on disk; the scheduler takes it over.
    caf::reacts_to<hibernated_atom, std::string, std::int64_t>,
    // The scheduler: these ids are due; bring them back from the store.
    caf::reacts_to<due_atom, std::vector<std::string>>,
    // Self: a timer tick; the store sweeps past retention and the tick is armed again.
    caf::reacts_to<sweep_atom>,
    // Self: the submissions of this mailbox turn go to the store as one commit.
    caf::reacts_to<flush_atom>,
    // Self: the store's answer to a batch of submissions (ids) ...
    caf::reacts_to<committed_atom, std::vector<std::string>, status>,
    // ... and to one job run again (POST /retry) or a callback (id).
    caf::reacts_to<committed_atom, std::string, status>,
    // Self: the store's answer to an idempotency key looked up (tenant-qualified key).
    caf::reacts_to<idem_loaded_atom, std::string, result<std::optional<idem_hit>>>,
    // Self: keys of a batch of submissions that another relay's commit held first (several
    // relays); sent before that batch's committed_atom.
    caf::reacts_to<idem_loaded_atom, std::vector<persistence::idem_write>>,
    // Self: the job a retry asked for, read from the store.
    caf::reacts_to<loaded_atom, result<std::optional<recovered_job>>, std::int64_t, completion<retry_answer>>,
    caf::reacts_to<activated_atom, std::vector<std::string>, result<std::vector<recovered_job>>>,
    caf::reacts_to<command_found_atom, std::string, std::string, job_command, completion<command_answer>>,
    caf::reacts_to<idem_gone_atom, std::string, submission, completion<submit_answer>>>;

}  // namespace fetchrelay::actors
