#include "actors/job_actor.h"

#include <spdlog/spdlog.h>

#include <charconv>

#include "core/ascii.h"
#include "core/log.h"
#include "core/qstash.h"
#include "core/time.h"
#include "core/ulid.h"

namespace fetchrelay::actors {
namespace {

using self_ptr = job_actor::stateful_pointer<job_actor_state>;

constexpr std::size_t kept_response_bytes = 4096;

/// What to do once a commit is answered.
enum class then { nothing, finished, hibernate };

/// Writes the snapshot as it is now; the store works out what moves in its indexes.
void commit(self_ptr self, const job_context& ctx, std::optional<attempt_record> attempt, bool sync, then after) {
  auto& st = self->state;
  persistence::commit_batch b;
  b.sync = sync;
  b.jobs.emplace_back(st.s, std::nullopt, std::move(attempt));  // in place: a job_state move costs
  completion<status> done;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  if (after == then::finished) {
    // Synced: straight to the manager (one message fewer per job); failed: back here to retry.
    // The manager reads the snapshot only to make a callback job: without one, none goes.
    std::shared_ptr<const job_state> report;
    if (!st.s.callback_url.empty() || !st.s.failure_callback_url.empty()) report = std::make_shared<const job_state>(st.s);
    done = completion<status>([me, mgr = ctx.manager, id = st.s.id, s = std::move(report),
                               latch = st.latch](status r) mutable {
      if (r.is_ok()) {  // answered once: the snapshot moves on to the manager
        if (latch) latch->terminal.store(true);  // its queue slot goes with its last holder
        caf::anon_send(mgr, done_atom::value, std::move(id), std::move(s));
      } else {
        caf::anon_send(me, committed_atom::value, std::move(r));
      }
    });
  } else if (after == then::hibernate) {
    done = completion<status>(
        [me, gen = st.generation](status s) { caf::anon_send(me, hibernate_atom::value, gen, std::move(s)); });
  }
  self->send(ctx.store, commit_atom::value, std::move(b), std::move(done));
}

bool waits_long(const job_state& s, const job_context& ctx) {
  return s.run_at_ms - ctx.clock->now_ms() > ctx.hibernate_after.count();
}

/// Arms the timer for s.run_at_ms in a new generation.
void arm(self_ptr self, const job_context& ctx) {
  auto gen = ++self->state.generation;
  std::int64_t delay = self->state.s.run_at_ms - ctx.clock->now_ms();
  if (delay <= 0) {
    self->send(self, wake_atom::value, gen);
  } else {
    self->delayed_send(self, std::chrono::milliseconds(delay), wake_atom::value, gen);
  }
}

/// Leaves memory: the snapshot with its due time is on disk (synced), so the manager may forget
/// the actor and the scheduler bring the job back when it is due.
void park(self_ptr self, const job_context& ctx) {
  auto& st = self->state;
  st.parked = true;
  ++st.generation;
  if (ctx.metrics) ctx.metrics->jobs_hibernated.fetch_add(1, std::memory_order_relaxed);
  caf::anon_send(ctx.manager, hibernated_atom::value, st.s.id, st.s.run_at_ms);
}

/// "timeout" of "timeout: the deadline passed", or "" for an answer with a status code.
std::string_view error_class_of(const std::string& error) {
  auto colon = error.find(':');
  return colon == std::string::npos ? std::string_view(error) : std::string_view(error).substr(0, colon);
}

void finish(self_ptr self, const job_context& ctx, job_status status,
            std::optional<attempt_record> attempt) {
  auto& st = self->state;
  st.s.status = status;
  st.s.finished_at_ms = ctx.clock->now_ms();
  // One line per job at info when it ends (docs/operations.md).
  if (st.s.last_status_code != 0) {
    log::event(spdlog::level::info,
               {{"job_id", st.s.id}, {"tenant", st.s.tenant}, {"origin", log::origin_of(st.s.url)},
                {"job_status", to_string(status)}, {"attempts", st.s.attempts},
                {"status_code", st.s.last_status_code}, {"duration_ms", st.s.finished_at_ms - st.s.created_at_ms}},
               "job {}", to_string(status));
  } else {
    log::event(spdlog::level::info,
               {{"job_id", st.s.id}, {"tenant", st.s.tenant}, {"origin", log::origin_of(st.s.url)},
                {"job_status", to_string(status)}, {"attempts", st.s.attempts},
                {"error_class", st.s.attempts ? error_class_of(st.s.last_error) : std::string_view("none")},
                {"duration_ms", st.s.finished_at_ms - st.s.created_at_ms}},
               "job {}", to_string(status));
  }
  st.finishing = true;
  ++st.generation;  // any timer or outcome still on its way is now stale
  commit(self, ctx, std::move(attempt), true, then::finished);
}

bool is_queue_stage(const job_state& s, queue_stage q) { return s.queue_stage == static_cast<std::uint8_t>(q); }

/// A granted queue job's first attempt: written `started` (synced) before its queue hears of
/// it, so the next job of the queue is never granted on a start a crash could undo.
void mark_started(self_ptr self, const job_context& ctx) {
  auto& st = self->state;
  st.s.queue_stage = static_cast<std::uint8_t>(queue_stage::started);
  persistence::commit_batch b;
  b.jobs.push_back({st.s, std::nullopt, std::nullopt});
  self->send(ctx.store, commit_atom::value, std::move(b),
             completion<status>([queues = ctx.queues, s = st.s](status r) {
               if (!r.is_ok()) {
                 spdlog::warn("job {}: its start in queue {} not written ({}); the queue waits", s.id, s.queue, r.message());
                 return;
               }
               if (queues) caf::anon_send(queues, queue_started_atom::value, s.tenant, s.queue, s.id);
             }));
}

/// This node may not deliver the job now (several relays: its shard's lease is not confirmed, or
/// another node holds the shard). Nothing is written: it leaves memory as after an exception, due
/// again here in a second, which the manager honours only while this node holds the shard.
void step_aside(self_ptr self, const job_context& ctx) {
  auto& st = self->state;
  st.parked = true;
  ++st.generation;
  caf::anon_send(ctx.manager, hibernated_atom::value, st.s.id, std::max(st.s.run_at_ms, ctx.clock->now_ms() + 1'000));
}

void start_attempt(self_ptr self, const job_context& ctx) {
  auto& st = self->state;
  // Stopping: the job stays due in the store and runs after the restart.
  if (ctx.drain && ctx.drain->draining.load(std::memory_order_acquire)) return;
  // A queue job keeps its slot in its queue's accounting: its queue's shard is guarded by the
  // store's fencing instead.
  // The epoch too: a shard lost and taken back since this actor was made may hold a newer
  // record of the job, written by the node that had it meanwhile; the store has it, not memory.
  if (ctx.ownership && st.s.queue.empty() &&
      (!ctx.ownership->may_deliver(job_shard(st.s.id)) || ctx.ownership->epoch(job_shard(st.s.id)) != st.shard_epoch)) {
    return step_aside(self, ctx);
  }
  if (is_queue_stage(st.s, queue_stage::waiting)) return;  // its queue starts it
  if (is_queue_stage(st.s, queue_stage::granted)) mark_started(self, ctx);  // before `active` is set
  if (ctx.metrics)
    ctx.metrics->lateness.observe(static_cast<double>(ctx.clock->now_ms() - st.s.run_at_ms));
  // Not written (docs/decisions.md): `active` lives in memory, where reads of a live job are
  // answered. The store keeps the job as it was, due entry included, so a crash now makes it due
  // again just as a written `active` would; the attempt's outcome is the next write.
  st.s.status = job_status::active;
  attempt_request req;
  req.job_id = st.s.id;
  req.generation = st.generation;
  req.method = st.spec.method;
  req.url = st.spec.url;
  req.headers.reserve(st.spec.headers.size() + 4);  // room for the relay's own: no regrowth
  req.headers.insert(req.headers.end(), st.spec.headers.begin(), st.spec.headers.end());
  if (st.s.qstash.empty()) {
    req.headers.push_back({"X-Fetch-Job-Id", st.s.id});
    req.headers.push_back({"X-Fetch-Attempt", std::to_string(st.s.attempts + 1)});
  } else {  // as QStash delivers: its ids and headers, signed by the destination after the plugins
    req.headers.push_back({"Upstash-Message-Id", qstash::message_id(st.s.id)});
    auto opts = qstash::decode_options(st.s.qstash).value_or(qstash::options{});
    req.headers.push_back({"Upstash-Retried", std::to_string(qstash::retries_in_run(st.s, opts))});
    if (!st.s.schedule_id.empty()) req.headers.push_back({"Upstash-Schedule-Id", st.s.schedule_id});
    if (!st.s.topic.empty()) req.headers.push_back({"Upstash-Topic-Name", st.s.topic});
    if (ctx.qstash_keys) {
      if (auto keys = ctx.qstash_keys->pair_of(st.s.tenant)) req.qstash_key = keys->current;
    }
  }
  req.body = st.spec.body;
  req.tenant = st.s.tenant;
  req.policy = st.s.policy;
  req.attempt = st.s.attempts + 1;
  req.timeout = std::chrono::milliseconds(st.s.timeout_ms);
  req.reply_to = caf::actor_cast<caf::actor>(self);
  if (ctx.drain) req.token = ctx.drain->token();
  if (st.latch) {  // the attempt holds the queue slot too, until it has ended
    req.token = std::make_shared<std::pair<std::shared_ptr<void>, std::shared_ptr<queue_latch>>>(req.token, st.latch);
  }
  if (spdlog::should_log(spdlog::level::debug)) {  // origin_of is not free
    log::event(spdlog::level::debug,
               {{"job_id", st.s.id}, {"attempt", req.attempt}, {"origin", log::origin_of(st.s.url)}}, "attempt started");
  }
  caf::anon_send(ctx.destination, deliver_atom::value, std::move(req));
}

/// The job now waits for s.run_at_ms: in memory, or past hibernate_after on disk (synced first:
/// DESIGN §4), after which it parks. A short wait is written only if `write_short` (a deferral
/// is not: after a crash the job is simply due again).
void wait_for_run(self_ptr self, const job_context& ctx, std::optional<attempt_record> rec, bool write_short) {
  auto& st = self->state;
  if (!waits_long(st.s, ctx)) {
    if (write_short) commit(self, ctx, std::move(rec), false, then::nothing);
    arm(self, ctx);
    return;
  }
  ++st.generation;  // no timer: the scheduler brings it back
  commit(self, ctx, std::move(rec), true, then::hibernate);
}

std::optional<std::string> header_value(const attempt_result& r, std::string_view name) {
  for (const auto& h : r.headers) {
    if (iequals(h.name, name)) return h.value;
  }
  return std::nullopt;
}

/// One line per failed attempt at info (docs/operations.md); next_attempt_at is "none" when the
/// job ends with it.
void log_failed_attempt(const job_state& s, const attempt_result& r, std::string_view next) {
  if (r.status != 0) {
    log::event(spdlog::level::info,
               {{"job_id", s.id}, {"tenant", s.tenant}, {"attempt", s.attempts}, {"status_code", r.status},
                {"duration_ms", r.duration_ms}, {"next_attempt_at", next}},
               "attempt failed");
  } else {
    log::event(spdlog::level::info,
               {{"job_id", s.id}, {"tenant", s.tenant}, {"attempt", s.attempts}, {"error_class", to_string(r.kind)},
                {"error", r.error}, {"duration_ms", r.duration_ms}, {"next_attempt_at", next}},
               "attempt failed");
  }
}

/// Defer is not failure (DESIGN §3): back to scheduled with a reason, no attempt counted.
void on_deferred(self_ptr self, const job_context& ctx, const attempt_result& r) {
  auto& st = self->state;
  st.s.status = job_status::scheduled;
  st.s.run_at_ms = std::max(r.defer_until_ms, ctx.clock->now_ms());
  st.s.defer_reason = r.defer_reason;
  if (ctx.metrics) ctx.metrics->deferrals.fetch_add(1, std::memory_order_relaxed);
  log::event(spdlog::level::debug,
             {{"job_id", st.s.id}, {"attempt", st.s.attempts + 1}, {"reason", r.defer_reason},
              {"defer_ms", st.s.run_at_ms - ctx.clock->now_ms()}},
             "attempt deferred");
  wait_for_run(self, ctx, std::nullopt, false);
}

/// Counts the attempt and keeps what it answered in the job's state; its record.
attempt_record record_attempt(job_actor_state& st, const attempt_result& r) {
  st.s.attempts += 1;
  attempt_record rec{st.s.attempts, r.started_at_ms, r.duration_ms, static_cast<std::uint16_t>(r.status),
                     r.kind == error_class::none ? std::string() : std::string(to_string(r.kind)) + ": " + r.error,
                     r.status != 0 && (r.status < 200 || r.status >= 300) ? r.body.substr(0, kept_excerpt_bytes) : std::string()};
  if (st.ctx->ownership) rec.node = st.ctx->ownership->node_id();
  st.attempts.push_back(rec);
  st.s.last_status_code = static_cast<std::uint16_t>(r.status);
  if (r.status != 0) {
    st.s.response = response_summary{static_cast<std::uint16_t>(r.status), r.headers, r.body.substr(0, kept_response_bytes)};
    st.s.last_error = r.status >= 200 && r.status < 300 ? "" : "status " + std::to_string(r.status);
  } else {
    st.s.last_error = rec.error;
  }
  return rec;
}

/// A /v2 job's rules (QStash's): 2xx delivers; a 489 with Upstash-NonRetryable-Error, or a
/// permanent error, fails at once; anything else retries after Upstash-Retry-Delay (else
/// min(86400, e^(2.5·n)) s), or after Retry-After / X-RateLimit-Reset* of a 429 or 503 if longer.
struct qstash_verdict {
  classification c;
  millis wait{0};
};

qstash_verdict classify_qstash(const job_state& s, const attempt_result& r, std::int64_t now_ms) {
  qstash_verdict v{{attempt_verdict::retry, ""}, millis(0)};
  if (r.status >= 200 && r.status < 300) return v.c.verdict = attempt_verdict::delivered, v;
  if (is_permanent(r.kind)) return v.c = {attempt_verdict::fail, "not retried: " + std::string(to_string(r.kind))}, v;
  if (r.status == 489 && header_value(r, "Upstash-NonRetryable-Error")) {
    return v.c = {attempt_verdict::fail, "not retried: the target answered 489 with Upstash-NonRetryable-Error"}, v;
  }
  auto opts = qstash::decode_options(s.qstash);
  std::uint32_t made = opts ? qstash::retries_in_run(s, *opts) : s.attempts;  // attempts in this run, this one included
  std::uint32_t retried = made > 0 ? made - 1 : 0;
  std::optional<qstash::retry_delay_expr> expr;
  if (opts && !opts->retry_delay.empty()) expr = qstash::retry_delay_expr::parse(opts->retry_delay);
  v.wait = millis(expr ? expr->delay_ms(retried) : qstash::default_backoff_ms(retried));
  if (r.status == 429 || r.status == 503) {
    for (const char* h : {"Retry-After", "X-RateLimit-Reset", "X-RateLimit-Reset-Requests", "X-RateLimit-Reset-Tokens"}) {
      auto value = header_value(r, h);
      if (!value) continue;
      std::optional<millis> asked = parse_retry_after(*value, now_ms);
      std::int64_t n = 0;  // X-RateLimit-Reset may be a unix time in seconds rather than seconds to wait
      auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), n);
      if (ec == std::errc() && end == value->data() + value->size() && n >= 1'000'000'000 && n < 10'000'000'000) {
        asked = millis(std::max<std::int64_t>(0, n * 1000 - now_ms));
      }
      if (asked && *asked > v.wait) v.wait = std::min(*asked, max_retry_after);
    }
  }
  return v;
}

void on_qstash_outcome(self_ptr self, const job_context& ctx, const attempt_result& r, attempt_record rec) {
  auto& st = self->state;
  auto v = classify_qstash(st.s, r, ctx.clock->now_ms());
  if (v.c.verdict == attempt_verdict::delivered) return finish(self, ctx, job_status::delivered, rec);
  if (v.c.verdict == attempt_verdict::fail || st.s.attempts >= st.s.max_attempts) {
    log_failed_attempt(st.s, r, "none");
    std::string why = v.c.verdict == attempt_verdict::fail
                          ? v.c.reason
                          : "gave up after " + std::to_string(st.s.attempts) + " attempt" + (st.s.attempts == 1 ? "" : "s");
    st.s.last_error = st.s.last_error.empty() ? why : st.s.last_error + "; " + why;
    return finish(self, ctx, job_status::failed, rec);
  }
  st.s.status = job_status::retrying;
  st.s.run_at_ms = ctx.clock->now_ms() + v.wait.count();
  if (spdlog::should_log(spdlog::level::info)) log_failed_attempt(st.s, r, format_rfc3339(st.s.run_at_ms));
  wait_for_run(self, ctx, rec, true);
}

void on_outcome(self_ptr self, const job_context& ctx, const attempt_result& r) {
  auto& st = self->state;
  if (r.generation != st.generation || st.s.status != job_status::active || st.finishing) return;
  if (r.deferred) return on_deferred(self, ctx, r);
  attempt_record rec = record_attempt(st, r);
  if (!st.s.qstash.empty()) return on_qstash_outcome(self, ctx, r, std::move(rec));
  attempt_outcome o;
  o.status = r.status;
  o.permanent_error = is_permanent(r.kind);
  o.no_retry_header = iequals(header_value(r, "X-Fetch-No-Retry").value_or(""), "true");
  if (r.status == 429 || r.status == 503) {
    if (auto ra = header_value(r, "Retry-After"))
      o.retry_after = parse_retry_after(*ra, ctx.clock->now_ms());
  }
  classification c = classify(ctx.retry, o);
  if (c.verdict != attempt_verdict::delivered &&
      (c.verdict == attempt_verdict::fail || st.s.attempts >= st.s.max_attempts)) {
    log_failed_attempt(st.s, r, "none");
  }
  if (c.verdict == attempt_verdict::delivered) {
    finish(self, ctx, job_status::delivered, rec);
    return;
  }
  if (c.verdict == attempt_verdict::fail) {
    if (!c.reason.empty())
      st.s.last_error = st.s.last_error.empty() ? c.reason : st.s.last_error + "; " + c.reason;
    finish(self, ctx, job_status::failed, rec);
    return;
  }
  if (st.s.attempts >= st.s.max_attempts) {
    st.s.last_error += (st.s.last_error.empty() ? "" : "; ") + std::string("gave up after ") +
                       std::to_string(st.s.attempts) + " attempt" + (st.s.attempts == 1 ? "" : "s");
    finish(self, ctx, job_status::failed, rec);
    return;
  }
  millis wait =
      apply_jitter(backoff_delay(ctx.retry, st.s.attempts), ctx.retry.jitter, ctx.unit_random());
  if (o.retry_after && *o.retry_after > wait) wait = *o.retry_after;
  st.s.status = job_status::retrying;
  st.s.run_at_ms = ctx.clock->now_ms() + wait.count();
  if (spdlog::should_log(spdlog::level::info)) log_failed_attempt(st.s, r, format_rfc3339(st.s.run_at_ms));
  wait_for_run(self, ctx, rec, true);
}

/// POST /v1/jobs/{id}/run: the wait (delay, backoff, deferral) ends now.
void run_now(self_ptr self, const completion<command_answer>& reply) {
  auto& st = self->state;
  const job_context& ctx = *st.ctx;
  if (st.parked) {  // the manager has forgotten this actor, or is about to
    caf::anon_send(ctx.manager, run_atom::value, st.s.tenant, st.s.id, reply);
    return;
  }
  if (st.finishing || is_terminal(st.s.status)) return reply(command_answer::terminal);
  if (is_queue_stage(st.s, queue_stage::waiting) || st.grant_pending) {  // its delay ends; its turn is its queue's
    st.s.run_at_ms = std::min(st.s.run_at_ms, ctx.clock->now_ms());
    commit(self, ctx, std::nullopt, false, then::nothing);
    return reply(command_answer::started);
  }
  if (st.s.status != job_status::active) {
    st.s.run_at_ms = ctx.clock->now_ms();
    ++st.generation;  // the armed timer is stale now
    start_attempt(self, ctx);
  }
  reply(command_answer::started);
}

/// The queue latch of a granted or started queue job (made once).
void hold_queue_slot(self_ptr self, const job_context& ctx) {
  auto& st = self->state;
  if (st.latch || st.s.queue.empty() || st.s.queue_stage < static_cast<std::uint8_t>(queue_stage::granted)) return;
  st.latch = std::make_shared<queue_latch>();
  st.latch->queues = ctx.queues;
  st.latch->tenant = st.s.tenant;
  st.latch->queue = st.s.queue;
  st.latch->id = st.s.id;
}

/// Its queue's turn: written granted (synced; it then has a due entry), then run as any job.
void grant(self_ptr self, const job_context& ctx, completion<command_answer> reply) {
  auto& st = self->state;
  if (st.parked) {
    caf::anon_send(ctx.manager, queue_grant_atom::value, st.s.tenant, st.s.id,
                   completion<grant_answer>([reply](grant_answer a) {
                     reply(a == grant_answer::accepted ? command_answer::done : command_answer::terminal);
                   }));
    return;
  }
  if (st.finishing || is_terminal(st.s.status)) return reply(command_answer::terminal);
  if (!is_queue_stage(st.s, queue_stage::waiting)) return reply(command_answer::done);  // granted before
  st.s.queue_stage = static_cast<std::uint8_t>(queue_stage::granted);
  st.grant_pending = true;
  hold_queue_slot(self, ctx);  // a cancel meanwhile must still release the slot
  persistence::commit_batch b;
  b.jobs.push_back({st.s, std::nullopt, std::nullopt});
  self->send(ctx.store, commit_atom::value, std::move(b),
             completion<status>([me = caf::actor_cast<caf::actor>(self), reply](status r) {
               caf::anon_send(me, queue_granted_atom_job::value, std::move(r), reply);
             }));
}

void begin(self_ptr self, const job_context& ctx);

void on_granted(self_ptr self, const job_context& ctx, const status& r, const completion<command_answer>& reply) {
  auto& st = self->state;
  st.grant_pending = false;
  if (!r.is_ok()) {  // still waiting on disk: the queue asks again later
    spdlog::warn("job {}: its turn in queue {} not written ({})", st.s.id, st.s.queue, r.message());
    st.s.queue_stage = static_cast<std::uint8_t>(queue_stage::waiting);
    st.latch.reset();  // not terminal: no release
    return reply(command_answer::unavailable);
  }
  reply(command_answer::done);
  if (st.finishing || is_terminal(st.s.status)) return;  // cancelled meanwhile: its latch releases the slot
  begin(self, ctx);
}

/// A new or recovered job starts: parked at once if its run is far off, else armed or run now.
void begin(self_ptr self, const job_context& ctx) {
  auto& st = self->state;
  hold_queue_slot(self, ctx);
  // A job recovered while active had an attempt in flight at the crash: it runs again.
  if (st.s.status == job_status::active) st.s.status = job_status::scheduled;
  // Not linked to the manager: a job that throws leaves its snapshot to the scheduler (as a
  // hibernated one does) rather than taking every other job down with it.
  self->set_exception_handler([self](std::exception_ptr& e) -> caf::error {
    auto& st = self->state;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      spdlog::error("job {}: {}; it goes back to the store and runs again when due", st.s.id, x.what());
    } catch (...) {
      spdlog::error("job {}: unknown exception; it goes back to the store and runs again when due", st.s.id);
    }
    caf::anon_send(st.ctx->manager, hibernated_atom::value, st.s.id, st.s.run_at_ms);
    return caf::exit_reason::unhandled_exception;
  });
  // Waiting for its queue's turn (brought back to be granted or cancelled): no timer of its own.
  if (is_queue_stage(st.s, queue_stage::waiting)) return;
  // Brought back early (e.g. to be cancelled): what is stored is what it is, so it may go again.
  if (ctx.hibernate_at_start && waits_long(st.s, ctx)) {
    park(self, ctx);
  } else if (st.s.run_at_ms <= ctx.clock->now_ms()) {
    ++st.generation;  // due now: no wake message to itself first
    start_attempt(self, ctx);
  } else {
    arm(self, ctx);
  }
}

}  // namespace

job_actor::behavior_type job_actor_impl(job_actor::stateful_pointer<job_actor_state> self,
                                        std::shared_ptr<job_seed> seed, std::shared_ptr<const job_context> ctx) {
  self->state.ctx = ctx;  // in the state: it goes when the actor quits (see job_manager.cpp)
  self->state.s = std::move(seed->state);
  self->state.spec = std::move(seed->spec);
  self->state.attempts = std::move(seed->attempts);
  seed.reset();
  if (ctx->ownership) self->state.shard_epoch = ctx->ownership->epoch(job_shard(self->state.s.id));
  begin(self, *ctx);
  return {
      [self](hibernate_atom, std::uint64_t gen, const status& s) {
        auto ctx = self->state.ctx;
        auto& st = self->state;
        if (gen != st.generation || st.finishing) return;  // cancelled meanwhile
        if (s.is_ok()) return park(self, *ctx);
        spdlog::warn("job {}: could not hibernate ({}); waiting in memory", st.s.id, s.message());
        arm(self, *ctx);
      },
      [self](wake_atom, std::uint64_t gen) {
        auto ctx = self->state.ctx;
        auto& st = self->state;
        if (gen != st.generation) return;
        if (st.finishing) {  // the terminal snapshot failed to commit: try again
          commit(self, *ctx, std::nullopt, true, then::finished);
          return;
        }
        if (is_terminal(st.s.status) || st.s.status == job_status::active) return;
        start_attempt(self, *ctx);
      },
      [self](outcome_atom, const attempt_result& r) {
        auto ctx = self->state.ctx;
        on_outcome(self, *ctx, r);
      },
      [self](cancel_atom, const completion<cancel_answer>& reply) {
        auto ctx = self->state.ctx;
        auto& st = self->state;
        if (st.parked) {  // the manager has forgotten this actor, or is about to
          caf::anon_send(ctx->manager, cancel_atom::value, st.s.tenant, st.s.id, reply);
          return;
        }
        if (st.finishing || is_terminal(st.s.status)) {
          reply(cancel_answer::terminal);
          return;
        }
        st.s.last_error = st.s.last_error.empty() ? "cancelled" : st.s.last_error;
        finish(self, *ctx, job_status::cancelled, std::nullopt);
        reply(cancel_answer::cancelled);
      },
      [self](run_atom, const completion<command_answer>& reply) { run_now(self, reply); },
      [self](queue_grant_atom, const completion<command_answer>& reply) {
        auto ctx = self->state.ctx;
        grant(self, *ctx, reply);
      },
      [self](queue_granted_atom_job, const status& r, const completion<command_answer>& reply) {
        auto ctx = self->state.ctx;
        on_granted(self, *ctx, r, reply);
      },
      [self](read_atom, const completion<result<std::optional<job_view>>>& reply) {
        reply(std::optional<job_view>(job_view{self->state.s, self->state.attempts, self->state.spec}));
      },
      [self](committed_atom, const status& s) {
        auto ctx = self->state.ctx;
        auto& st = self->state;
        if (!st.finishing || s.is_ok()) return;  // synced: the store told the manager
        spdlog::warn("job {}: final state not stored ({}); retrying", st.s.id, s.message());
        auto gen = st.generation;
        self->delayed_send(self, std::chrono::seconds(1), wake_atom::value, gen);
      },
      [self](forget_atom) { self->quit(); },
  };
}

}  // namespace fetchrelay::actors
