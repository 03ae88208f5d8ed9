#include "persistence/store_logic.h"

namespace fetchrelay::persistence {

index_move plan_move(const job_state& s, const std::optional<job_position>& old, queue_stage old_stage) {
  index_move m;
  m.terminal = is_terminal(s.status);
  m.was_pending = old && !is_terminal(old->status);
  // A job waiting for its queue's turn has no due entry: the queue starts it.
  m.new_stage = m.terminal || s.queue.empty() ? queue_stage::none : static_cast<queue_stage>(s.queue_stage);
  m.old_due = m.was_pending && old_stage != queue_stage::waiting;
  m.new_due = !m.terminal && m.new_stage != queue_stage::waiting;
  m.same_due = m.old_due && m.new_due && old->run_at_ms == s.run_at_ms;
  m.status_changed = !old || old->status != s.status;
  return m;
}

void count_stage_move(queue_counts& d, queue_stage from, queue_stage to) {
  auto in_progress = [](queue_stage q) { return q == queue_stage::granted || q == queue_stage::started; };
  if (from == queue_stage::waiting) --d.waiting;
  if (in_progress(from)) --d.started;
  if (to == queue_stage::waiting) ++d.waiting;
  if (in_progress(to)) ++d.started;
}

std::optional<event_type> event_of(const job_write& w, const std::optional<job_position>& old) {
  const job_state& s = w.state;
  bool terminal = is_terminal(s.status);
  if (w.spec) return event_type::created;
  if (old && is_terminal(old->status)) {
    if (!terminal) return event_type::retried;
    if (old->status == s.status) return std::nullopt;  // the same end written again
  }
  if (terminal) {
    if (old && old->status == s.status) return std::nullopt;
    return s.status == job_status::delivered ? event_type::delivered
           : s.status == job_status::failed  ? event_type::failed
                                             : event_type::cancelled;
  }
  if (s.status == job_status::retrying && w.attempt) return event_type::retrying;
  if (s.status == job_status::scheduled && !w.attempt && !s.defer_reason.empty()) return event_type::deferred;
  return std::nullopt;
}

event_record make_event(event_type type, const job_write& w, std::int64_t at_ms) {
  const job_state& s = w.state;
  event_record e;
  e.at_ms = at_ms;
  e.type = type;
  e.job_id = s.id;
  e.url = s.url;
  if (w.attempt) {
    e.attempt = w.attempt->n;
    e.status_code = w.attempt->status_code;
    e.duration_ms = w.attempt->duration_ms;
  }
  if (!is_terminal(s.status)) e.next_at_ms = s.run_at_ms;
  e.detail = type == event_type::deferred                                      ? s.defer_reason
             : type == event_type::created || type == event_type::retried ? std::string()
                                                                            : s.last_error;
  return e;
}

bool listing_passes(const job_filter& f, bool by_tag, const job_state& j) {
  return j.url.starts_with(f.url_prefix) && (!by_tag || !f.status || j.status == *f.status) &&
         (f.schedule.empty() || j.schedule_id == f.schedule) && (f.queue.empty() || j.queue == f.queue) &&
         (f.topic.empty() || j.topic == f.topic) && (!f.qstash_only || !j.qstash.empty());
}

result<job_page> purge_selection(store& s, const std::string& tenant, const job_filter& f, const std::string& cursor) {
  if (f.ids.empty()) return s.list_jobs(tenant, f, cursor, max_list_scan);
  job_page page;
  for (const auto& id : f.ids) {
    auto j = s.get_job(id);
    if (!j) return j.error();
    if (*j && (*j)->tenant == tenant && (!f.status || (*j)->status == *f.status) &&
        (!f.qstash_only || !(*j)->qstash.empty())) {
      page.jobs.push_back(std::move(**j));
    }
  }
  return page;
}

}  // namespace fetchrelay::persistence
