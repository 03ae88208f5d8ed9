#include "actors/job_manager_internal.h"

#include <spdlog/spdlog.h>

#include <mutex>

#include "core/job_json.h"
#include "core/log.h"
#include "core/qstash.h"
#include "core/text.h"

namespace fetchrelay::actors::manager {
namespace {

submit_answer conflict_answer(const std::string& id) {
  return {409, id, 0, false, "idempotency_key_conflict",
          "X-Idempotency-Key was first used for job " + id +
              " with another method, URL, forwarded headers or body; use a new key for a new job"};
}

/// Answers a repeat with the job's status now (from the live actor, else from the store), or
/// 409 if it asks for something else (`conflict`). A job that is gone (past retention, or
/// purged) took its key with it: the repeat becomes a new job.
void answer_repeat(self_ptr self, const env& e, submission sub, const std::string& id, bool conflict,
                   completion<submit_answer> reply) {
  auto held = std::make_shared<submission>(std::move(sub));
  completion<result<std::optional<job_view>>> found(
      [me = me_of(self), id, conflict, held, reply](result<std::optional<job_view>> r) {
        if (!r.is_ok()) return reply({503, "", 0, false, "store_unavailable", r.error().message(), 1});
        if (!r.value()) return caf::anon_send(me, idem_gone_atom::value, id, std::move(*held), reply);
        if (conflict) return reply(conflict_answer(id));
        const job_state& s = r.value()->state;
        submit_answer a{202, id, s.run_at_ms, true, "", ""};
        a.status = s.status;
        reply(a);
      });
  if (auto it = self->state.live.find(id); it != self->state.live.end()) {
    caf::anon_send(it->second.actor, read_atom::value, found);
  } else {
    self->send(e.store, read_atom::value, held->tenant, id, found);
  }
}

/// A submission with an idempotency key: true if the key settles it (a repeat, or a wait for
/// the store's look-up); false if it is to become a new job.
bool settled_by_key(self_ptr self, const env& e, submission& sub, completion<submit_answer>& reply,
                    const std::string& idem_key, std::int64_t now) {
  auto& idem = *self->state.idem;
  if (auto* known = idem.find(idem_key, now)) {
    bool conflict = idempotency_index::conflicts(known->fingerprint, sub.fingerprint);
    if (known->committed) answer_repeat(self, e, std::move(sub), known->id, conflict, std::move(reply));
    else if (conflict) reply(conflict_answer(known->id));
    else known->waiters.push_back(std::move(reply));  // answered after the first's sync
    return true;
  }
  if (idem.known(idem_key) || sub.idem_checked) return false;
  // Not in memory: it may have been given before a restart. Ask the store first (once).
  std::string tenant = sub.tenant, key = sub.idempotency_key;
  if (!idem.await_lookup(idem_key, std::move(sub), std::move(reply))) return true;
  self->send(e.store, idem_atom::value, tenant, key,
             completion<result<std::optional<idem_hit>>>([me = me_of(self), idem_key](result<std::optional<idem_hit>> r) {
               caf::anon_send(me, idem_loaded_atom::value, idem_key, std::move(r));
             }));
  return true;
}

}  // namespace

void submit(self_ptr self, const env& e, submission&& sub, completion<submit_answer> reply) {
  auto& st = self->state;
  std::int64_t now = e.clock->now_ms();
  st.idem->prune(now);
  std::string idem_key;
  if (!sub.idempotency_key.empty()) {
    idem_key = idempotency_index::key_of(sub.tenant, sub.idempotency_key);
    if (settled_by_key(self, e, sub, reply, idem_key, now)) return;
  }
  if (auto refused = st.admission->refusal(sub.tenant)) {
    if (refused->http_status == 503 && e.metrics) e.metrics->rejected_busy.fetch_add(1, std::memory_order_relaxed);
    return reply(*refused);
  }
  auto pol = policy_of(e, sub.policy);
  job_state s = st.admission->new_job(sub, pol->first, pol->second, now);
  if (!idem_key.empty())
    st.idem->remember(idem_key, {s.id, s.run_at_ms, st.admission->idempotency_expiry(now), sub.fingerprint, false, {}});
  // The first of this mailbox turn schedules the commit, after the submissions queued now.
  if (st.admission->add(std::move(s), std::move(sub), idem_key, now, std::move(reply)))
    self->send(self, flush_atom::value);
}

void submit_all(self_ptr self, const env& e, std::vector<submission> subs, completion<std::vector<submit_answer>> reply) {
  if (subs.empty()) return reply({});
  if (auto refused = self->state.admission->refusal(subs.front().tenant)) {
    return reply(std::vector<submit_answer>(subs.size(), *refused));
  }
  // Answers may come from other actors' threads (a repeat reads its job where it lives).
  struct gather {
    std::mutex m;
    std::vector<submit_answer> answers;
    std::size_t left;
    completion<std::vector<submit_answer>> reply;
  };
  auto g = std::make_shared<gather>();
  g->answers.resize(subs.size());
  g->left = subs.size();
  g->reply = std::move(reply);
  for (std::size_t i = 0; i < subs.size(); ++i) {
    submit(self, e, std::move(subs[i]), completion<submit_answer>([g, i](submit_answer a) {
             std::unique_lock lock(g->m);
             g->answers[i] = std::move(a);
             if (--g->left > 0) return;
             auto answers = std::move(g->answers);
             lock.unlock();
             g->reply(std::move(answers));
           }));
  }
}

void flush_submissions(self_ptr self, const env& e) {
  auto [batch, ids] = self->state.admission->take();
  if (ids.empty()) return;
  std::shared_ptr<std::vector<persistence::idem_write>> lost;
  if (!batch.idempotency.empty()) lost = batch.lost_keys = std::make_shared<std::vector<persistence::idem_write>>();
  self->send(e.store, commit_atom::value, std::move(batch),
             completion<status>([me = me_of(self), ids = std::move(ids), lost](status r) {
               // First the keys another relay held (their submissions were left out), then the rest.
               if (r.is_ok() && lost && !lost->empty()) caf::anon_send(me, idem_loaded_atom::value, std::move(*lost));
               caf::anon_send(me, committed_atom::value, ids, std::move(r));
             }));
}

void on_idem_lost(self_ptr self, const env& e, std::vector<persistence::idem_write> lost) {
  auto& st = self->state;
  std::int64_t now = e.clock->now_ms();
  for (auto& w : lost) {
    std::string key = idempotency_index::key_of(w.tenant, w.key);
    auto* ours = st.idem->find(key, now);
    if (!ours || ours->committed) continue;
    std::string fingerprint = ours->fingerprint;
    auto p = st.admission->committed(ours->id, false);  // not written: it never becomes a job here
    auto waiters = st.idem->committed(key, false);
    st.idem->remember(key, {w.record.id, 0, w.record.expires_at_ms, w.record.fingerprint, true, {}});
    if (!p) continue;
    spdlog::debug("idempotency key of tenant {} held by job {} of another relay: answered with it", w.tenant,
                  w.record.id);
    bool conflict = idempotency_index::conflicts(w.record.fingerprint, fingerprint);
    // The submission again, as the answer needs it should the holder's job be gone meanwhile.
    submission sub;
    sub.tenant = p->state.tenant;
    sub.spec = std::move(p->spec);
    sub.run_at_ms = p->state.run_at_ms;
    sub.policy = p->state.policy;
    sub.max_attempts = p->state.max_attempts;
    sub.timeout_ms = p->state.timeout_ms;
    sub.callback_url = p->state.callback_url;
    sub.failure_callback_url = p->state.failure_callback_url;
    sub.idempotency_key = p->state.idempotency_key;
    sub.fingerprint = fingerprint;
    sub.parent_id = p->state.parent_id;
    sub.queue = p->state.queue;
    sub.topic = p->state.topic;
    sub.endpoint = p->state.endpoint;
    sub.qstash = p->state.qstash;
    for (auto& w2 : waiters) answer_repeat(self, e, sub, w.record.id, conflict, std::move(w2));
    answer_repeat(self, e, std::move(sub), w.record.id, conflict, std::move(p->reply));
  }
}

void on_committed(self_ptr self, const env& e, const std::string& id, const status& r) {
  auto& st = self->state;
  auto p = st.admission->committed(id, r.is_ok());
  if (!p) return;
  std::vector<completion<submit_answer>> waiters;
  if (!p->idem.empty()) waiters = st.idem->committed(p->idem, r.is_ok());
  if (!r.is_ok()) {
    submit_answer fail{503, "", 0, false, "store_unavailable", "the job could not be stored: " + r.message(), 1};
    p->reply(fail);
    for (auto& w : waiters) w(fail);
    return;
  }
  const job_state& s = p->state;
  submit_answer ok{202, s.id, s.run_at_ms, false, "", ""};
  p->reply(ok);
  if (spdlog::should_log(spdlog::level::debug)) {  // origin_of is not free
    log::event(spdlog::level::debug,
               {{"job_id", s.id}, {"tenant", s.tenant}, {"origin", log::origin_of(s.url)}, {"policy", s.policy},
                {"delay_ms", s.run_at_ms - s.created_at_ms}, {"parent_id", s.parent_id}},
               "job accepted");
  }
  ok.deduplicated = true;
  for (auto& w : waiters) w(ok);
  if (s.queue_stage == static_cast<std::uint8_t>(queue_stage::waiting)) {
    // Its queue starts it: no actor, no due entry until then.
    if (e.options.queues) caf::anon_send(e.options.queues, queue_kick_atom::value, s.tenant, s.queue);
    return;
  }
  if (s.run_at_ms - e.clock->now_ms() > e.options.hibernate_after.count()) {
    // A long wait starts on disk: the synced snapshot is all the job needs until it is due.
    if (e.metrics) e.metrics->jobs_hibernated.fetch_add(1, std::memory_order_relaxed);
    self->send(st.scheduler, schedule_atom::value, s.run_at_ms, s.id);
    return;
  }
  spawn_job(self, e, std::move(p->state), std::move(p->spec), {});
}

void on_idem_loaded(self_ptr self, const env& e, const std::string& idem_key,
                    const result<std::optional<idem_hit>>& r) {
  auto& st = self->state;
  auto waiting = st.idem->take_lookup(idem_key);
  if (r.is_ok() && r.value() && r.value()->expires_at_ms > e.clock->now_ms()) {
    const idem_hit& hit = *r.value();
    st.idem->remember(idem_key, {hit.id, hit.run_at_ms, hit.expires_at_ms, hit.fingerprint, true, {}});
    for (auto& [sub, reply] : waiting) {
      bool conflict = idempotency_index::conflicts(hit.fingerprint, sub.fingerprint);
      answer_repeat(self, e, std::move(sub), hit.id, conflict, std::move(reply));
    }
    return;
  }
  if (!r.is_ok()) {
    for (auto& [sub, reply] : waiting) reply({503, "", 0, false, "store_unavailable", r.error().message(), 1});
    return;
  }
  // Unknown or expired: the first becomes the job; the others then find it pending in memory.
  for (auto& [sub, reply] : waiting) {
    sub.idem_checked = true;
    submit(self, e, std::move(sub), std::move(reply));
  }
}

void on_idem_gone(self_ptr self, const env& e, const std::string& id, submission sub,
                  completion<submit_answer> reply) {
  self->state.idem->forget(idempotency_index::key_of(sub.tenant, sub.idempotency_key), id);
  sub.idem_checked = true;
  submit(self, e, std::move(sub), std::move(reply));
}

/// A /v2 job's callback as QStash makes it: its request read back from the store, the body
/// QStash posts, the callback's own -Method, -Timeout, -Retries, -Retry-Delay, -Delay and
/// -Forward-* headers; a /v2 job itself (signed).
void submit_qstash_callback(self_ptr self, const env& e, const job_state& s, const std::string& url) {
  bool failure = s.status == job_status::failed;
  self->send(e.store, retry_atom::value, s.tenant, s.id,
             completion<result<std::optional<recovered_job>>>([mgr = me_of(self), s, url, failure,
                                                               now = e.clock->now_ms()](result<std::optional<recovered_job>> r) {
               if (!r || !*r) {
                 spdlog::warn("callback for {} not sent: its request cannot be read ({})", s.id,
                              r ? "gone" : r.error().message());
                 return;
               }
               auto o = qstash::decode_options(s.qstash).value_or(qstash::options{});
               submission cb;
               cb.tenant = s.tenant;
               const std::string& method = failure ? o.failure_callback_method : o.callback_method;
               cb.spec = job_spec{method.empty() ? "POST" : method, url, {{"Content-Type", "application/json"}},
                                  qstash::callback_body(s, (*r)->spec)};
               for (const auto& h : failure ? o.failure_callback_headers : o.callback_headers) cb.spec.headers.push_back(h);
               cb.run_at_ms = now + (failure ? o.failure_callback_delay_ms : o.callback_delay_ms);
               cb.policy = s.policy;
               cb.parent_id = s.id;
               auto retries = failure ? o.failure_callback_retries : o.callback_retries;
               cb.max_attempts = retries.value_or(3) + 1;
               if (auto t = failure ? o.failure_callback_timeout_ms : o.callback_timeout_ms; t > 0) {
                 cb.timeout_ms = static_cast<std::uint32_t>(t);
               }
               qstash::options co;
               co.callback_of = failure ? "failureCallback" : "callback";
               co.retry_delay = failure ? o.failure_callback_retry_delay : o.callback_retry_delay;
               co.run_attempts = *cb.max_attempts;
               cb.qstash = qstash::encode_options(co);
               caf::anon_send(mgr, submit_atom::value, std::move(cb), completion<submit_answer>([id = s.id](submit_answer a) {
                                if (a.http_status != 202) spdlog::warn("callback for {} not scheduled: {}", id, a.message);
                              }));
             }));
}

void on_done(self_ptr self, const env& e, const std::string& id, const job_state* report) {
  auto& st = self->state;
  if (auto it = st.live.find(id); it != st.live.end()) {
    st.admission->job_ended(it->second.tenant);
    forget_job(self, e, it);  // after every request forwarded to it so far
  }
  if (auto w = st.retry_after_done.find(id); w != st.retry_after_done.end()) {
    auto waiting = std::move(w->second);
    st.retry_after_done.erase(w);
    for (auto& r : waiting) on_retry(self, e, r.tenant, id, r.run_at_ms, std::move(r.reply));
  }
  if (!report) return;
  const job_state& s = *report;
  const std::string& url = s.status == job_status::delivered ? s.callback_url
                           : s.status == job_status::failed  ? s.failure_callback_url
                                                             : std::string();
  if (url.empty()) return;
  if (!s.qstash.empty()) return submit_qstash_callback(self, e, s, url);
  submission cb;
  cb.tenant = s.tenant;
  cb.spec = job_spec{"POST", url, {{"Content-Type", "application/json"}}, safe_dump(report_json(s))};
  cb.run_at_ms = e.clock->now_ms();
  cb.policy = s.policy;
  cb.parent_id = s.id;
  submit(self, e, std::move(cb), completion<submit_answer>([id](submit_answer a) {
           if (a.http_status != 202) spdlog::warn("callback for {} not scheduled: {}", id, a.message);
         }));
}

void on_retry(self_ptr self, const env& e, const std::string& tenant, const std::string& id, std::int64_t run_at_ms,
              completion<retry_answer> reply) {
  if (auto it = self->state.live.find(id); it != self->state.live.end()) {
    // Another tenant's job does not exist for this one: 404 before any other answer.
    if (it->second.tenant != tenant) return reply({retry_answer::not_found, 0, ""});
    // A job that has ended but whose end is not written yet is retried once it is.
    caf::anon_send(it->second.actor, read_atom::value,
                   completion<result<std::optional<job_view>>>(
                       [me = me_of(self), tenant, id, run_at_ms, reply](result<std::optional<job_view>> v) {
                         bool ended = v.is_ok() && v.value() && is_terminal(v.value()->state.status);
                         caf::anon_send(me, retry_atom::value, tenant, id, run_at_ms, reply, ended);
                       }));
    return;
  }
  self->send(e.store, retry_atom::value, tenant, id,
             completion<result<std::optional<recovered_job>>>(
                 [me = me_of(self), run_at_ms, reply](result<std::optional<recovered_job>> r) {
                   caf::anon_send(me, loaded_atom::value, std::move(r), run_at_ms, reply);
                 }));
}

void on_retry_checked(self_ptr self, const env& e, const std::string& tenant, const std::string& id,
                      std::int64_t run_at_ms, completion<retry_answer> reply, bool ended) {
  auto& st = self->state;
  if (!ended) {
    return reply({retry_answer::not_retryable, 0,
                  "job " + id + " is not finished; only failed or cancelled jobs can be retried"});
  }
  if (st.live.count(id)) return st.retry_after_done[id].push_back({tenant, run_at_ms, std::move(reply)});
  on_retry(self, e, tenant, id, run_at_ms, std::move(reply));  // its end was written meanwhile
}

void on_retry_loaded(self_ptr self, const env& e, result<std::optional<recovered_job>> r, std::int64_t run_at_ms,
                     completion<retry_answer> reply) {
  if (!r) return reply({retry_answer::unavailable, 0, r.error().message()});
  if (!r.value()) return reply({retry_answer::not_found, 0, ""});
  recovered_job job = std::move(*r.value());
  auto& st = self->state;
  job_status old = job.state.status;
  if ((old != job_status::failed && old != job_status::cancelled) || st.live.count(job.state.id) ||
      st.retrying.count(job.state.id)) {
    return reply({retry_answer::not_retryable, 0,
                  "job " + job.state.id + " is " + std::string(to_string(old)) +
                      "; only failed or cancelled jobs can be retried"});
  }
  auto pol = e.options.policies.find(job.state.policy);
  std::uint32_t budget = pol != e.options.policies.end() ? pol->second.retry.attempts : 1;
  if (!job.state.qstash.empty()) {  // a /v2 message runs again with its own Upstash-Retries, counted from 0
    if (auto o = qstash::decode_options(job.state.qstash)) {
      if (o->run_attempts > 0) budget = o->run_attempts;
      o->attempts_base = job.state.attempts;
      job.state.qstash = qstash::encode_options(*o);
    }
  }
  job_state& s = job.state;
  s.status = job_status::scheduled;
  s.run_at_ms = std::max(run_at_ms, e.clock->now_ms());
  s.max_attempts = s.attempts + budget;
  s.finished_at_ms = 0;
  s.defer_reason.clear();
  s.queue_stage = 0;  // run again outside its queue's order (docs/api.md)
  persistence::commit_batch b;
  b.sync = true;
  b.jobs.push_back({s, std::nullopt, std::nullopt});
  std::string id = s.id;
  st.admission->job_started(s.tenant);
  st.retrying[id] = {std::move(job), std::move(reply)};
  self->send(e.store, commit_atom::value, std::move(b), completion<status>([me = me_of(self), id](status c) {
               caf::anon_send(me, committed_atom::value, id, std::move(c));
             }));
}

void on_retry_committed(self_ptr self, const env& e, const std::string& id, const status& r) {
  auto& st = self->state;
  auto it = st.retrying.find(id);
  if (it == st.retrying.end()) return on_committed(self, e, id, r);
  auto [job, reply] = std::move(it->second);
  st.retrying.erase(it);
  if (!r.is_ok()) {
    st.admission->job_ended(job.state.tenant);
    return reply({retry_answer::unavailable, 0, r.message()});
  }
  reply({retry_answer::scheduled, job.state.run_at_ms, ""});
  spawn_job(self, e, std::move(job.state), std::move(job.spec), std::move(job.attempts));
}

}  // namespace fetchrelay::actors::manager
