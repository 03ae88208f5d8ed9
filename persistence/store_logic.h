// What every store backend derives the same way from a job write: which indexes move, which
// event it makes, and whether a job passes a listing's filter. Internal to persistence/; each
// backend only says how it writes the result down.
#pragma once

#include <optional>

#include "persistence/store.h"

namespace fetchrelay::persistence {

/// How a job write moves the job's indexes, from what the store held (`old`, and the stage its
/// queue index held) to what the write says.
struct index_move {
  bool terminal = false;     // the new status is terminal
  bool was_pending = false;  // the store held it unfinished
  queue_stage new_stage = queue_stage::none;
  bool old_due = false;      // it had a due entry (at old->run_at_ms)
  bool new_due = false;      // it gets one (at state.run_at_ms)
  bool same_due = false;     // both, at the same time: the entry stays
  bool status_changed = false;  // the listing index and the counters move
};

index_move plan_move(const job_state& s, const std::optional<job_position>& old, queue_stage old_stage);

/// Moves a queue's counts of waiting and in-progress jobs for one job's change of stage.
void count_stage_move(queue_counts& delta, queue_stage from, queue_stage to);

/// The event a job write makes, if any: what changed from `old` (what the store held).
std::optional<event_type> event_of(const job_write& w, const std::optional<job_position>& old);

/// The event record of a write (its sequence number is the backend's to give).
event_record make_event(event_type type, const job_write& w, std::int64_t at_ms);

/// The conditions of `f` checked on each job read (the index walked decides the rest): the URL
/// prefix, where the job came from, QStash only, and the status when walking a tag index.
bool listing_passes(const job_filter& f, bool by_tag, const job_state& j);

/// The jobs purge_jobs looks at: a listing page of the filter from the cursor, or the jobs its
/// id list names that belong to the tenant and pass its status and QStash conditions (whether
/// each is finished is for the caller to check).
result<job_page> purge_selection(store& s, const std::string& tenant, const job_filter& f, const std::string& cursor);

}  // namespace fetchrelay::persistence
