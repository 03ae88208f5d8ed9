// Message types shared by the actors and the code that talks to them.
//
// Asio code reaches an actor only through caf::anon_send; an actor answers it through a
// `completion<T>` carried in the message, which the sender wrapped around its own reply path
// (e.g. a handler posted to the connection's strand, or an anon_send back to an actor).
// Actors know nothing of HTTP.
#pragma once

#include <caf/all.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error_class.h"
#include "core/job.h"
#include "core/status.h"
#include "persistence/store.h"

namespace fetchrelay::actors {

/// A one-shot reply path out of an actor. Copyable; called at most once in practice, from the
/// handler of the actor that received it, and must not block.
template <class T>
class completion {
 public:
  completion() = default;
  explicit completion(std::function<void(T)> f)
      : f_(std::make_shared<std::function<void(T)>>(std::move(f))) {}

  void operator()(T value) const {
    if (f_ && *f_) (*f_)(std::move(value));
  }
  explicit operator bool() const { return f_ && *f_; }

 private:
  std::shared_ptr<std::function<void(T)>> f_;
};

/// Graceful stop (DESIGN §8): once `draining`, no new attempt starts; `unsettled` counts the
/// attempts started and not yet settled (their outcome handled by the job actor, or dropped).
/// Each attempt carries a token from token(); the count goes down when its last copy goes.
struct delivery_drain : std::enable_shared_from_this<delivery_drain> {
  std::atomic<bool> draining{false};
  std::atomic<std::int64_t> unsettled{0};

  std::shared_ptr<void> token() {
    unsettled.fetch_add(1, std::memory_order_relaxed);
    return std::shared_ptr<void>(this, [self = shared_from_this()](void*) {
      self->unsettled.fetch_sub(1, std::memory_order_acq_rel);
    });
  }
};

/// What /healthz reports.
struct health_report {
  std::string version;
  std::int64_t uptime_ms = 0;
};

/// Everything needed to bring a stored job back to life.
struct recovered_job {
  job_state state;
  job_spec spec;
  std::vector<attempt_record> attempts;
};

/// A stored idempotency key and its job's run time.
struct idem_hit {
  std::string id;
  std::int64_t run_at_ms = 0;
  std::int64_t expires_at_ms = 0;
  std::string fingerprint;
};

/// A job as GET /v1/jobs/{id} shows it.
struct job_view {
  job_state state;
  std::vector<attempt_record> attempts;
  std::optional<job_spec> request;  // headers and body as submitted (shown masked)
};

using ping_atom = caf::atom_constant<caf::atom("ping")>;
using commit_atom = caf::atom_constant<caf::atom("commit")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using reopen_atom = caf::atom_constant<caf::atom("reopen")>;
using read_atom = caf::atom_constant<caf::atom("read")>;
using list_atom = caf::atom_constant<caf::atom("list")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using loaded_atom = caf::atom_constant<caf::atom("loaded")>;
using forget_atom = caf::atom_constant<caf::atom("forget")>;
using idem_atom = caf::atom_constant<caf::atom("idem")>;
using idem_loaded_atom = caf::atom_constant<caf::atom("idemloaded")>;
using scan_atom = caf::atom_constant<caf::atom("scan")>;
using load_atom = caf::atom_constant<caf::atom("load")>;
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;
/// (recover_atom): this node took shards (several relays on PostgreSQL): scan the due index
/// from the start again, so that their jobs are found as after a restart.
using recover_atom = caf::atom_constant<caf::atom("recover")>;
using sync_atom = caf::atom_constant<caf::atom("sync")>;
using purge_atom = caf::atom_constant<caf::atom("purge")>;
using events_atom = caf::atom_constant<caf::atom("events")>;
using sched_get_atom = caf::atom_constant<caf::atom("schedget")>;
using sched_list_atom = caf::atom_constant<caf::atom("schedlist")>;
using sched_scan_atom = caf::atom_constant<caf::atom("schedscan")>;
using topic_get_atom = caf::atom_constant<caf::atom("topicget")>;
using topic_list_atom = caf::atom_constant<caf::atom("topiclist")>;

}  // namespace fetchrelay::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::actors::health_report>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::status)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::status>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::persistence::commit_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<fetchrelay::persistence::idem_write>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::job_state)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<const fetchrelay::job_state>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::job_spec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::job_view)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::result<std::optional<fetchrelay::actors::job_view>>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::result<fetchrelay::persistence::job_page>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<fetchrelay::job_status>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::persistence::job_filter)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::result<fetchrelay::persistence::purge_page>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::recovered_job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::persistence::event_filter)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::schedule_state)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::result<std::optional<fetchrelay::topic_state>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::result<std::optional<fetchrelay::topic_state>>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::result<fetchrelay::persistence::topic_page>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::result<std::optional<fetchrelay::schedule_state>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::result<std::optional<fetchrelay::schedule_state>>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::result<fetchrelay::persistence::schedule_page>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<fetchrelay::persistence::schedule_due>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::result<std::vector<fetchrelay::persistence::schedule_due>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::result<std::vector<fetchrelay::persistence::schedule_due>>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::result<fetchrelay::persistence::event_page>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::result<std::optional<fetchrelay::actors::idem_hit>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::result<std::optional<fetchrelay::actors::idem_hit>>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::result<std::optional<fetchrelay::actors::recovered_job>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::result<std::optional<fetchrelay::actors::recovered_job>>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<fetchrelay::persistence::due_entry>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::result<std::vector<fetchrelay::persistence::due_entry>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::result<std::vector<fetchrelay::persistence::due_entry>>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::result<std::vector<fetchrelay::actors::recovered_job>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::result<std::vector<fetchrelay::actors::recovered_job>>>)

namespace fetchrelay::actors {

using wake_atom = caf::atom_constant<caf::atom("wake")>;
using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using outcome_atom = caf::atom_constant<caf::atom("outcome")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using submit_atom = caf::atom_constant<caf::atom("submit")>;
using committed_atom = caf::atom_constant<caf::atom("committed")>;
using run_atom = caf::atom_constant<caf::atom("run")>;

/// One attempt handed to a destination actor.
struct attempt_request {
  std::string job_id;
  std::uint64_t generation = 0;  // echoed in the outcome; stale outcomes are ignored
  std::string method;
  std::string url;
  std::vector<header_pair> headers;
  std::string body;
  std::chrono::milliseconds timeout{15'000};
  caf::actor reply_to;
  std::string tenant;
  std::string policy = "default";  // picks the plugin chain
  std::uint32_t attempt = 1;       // 1-based
  std::shared_ptr<void> token;     // delivery_drain::token(); may be null
  /// A /v2 job's signing key (secret): the attempt is signed as QStash signs, after the plugins
  /// ran, over the URL and body they leave. "" for v1 jobs.
  std::string qstash_key;
};

/// What happened to one attempt, as the job actor sees it.
struct attempt_result {
  std::uint64_t generation = 0;
  int status = 0;  // 0: no response
  std::vector<header_pair> headers;
  std::string body;               // the first 4 KiB
  error_class kind = error_class::none;  // why there is no answer (core/error_class.h)
  std::string error;              // human-readable
  std::int64_t started_at_ms = 0;
  std::uint32_t duration_ms = 0;
  /// Not attempted: a plugin deferred it (rate limit, open breaker) until this time.
  bool deferred = false;
  std::int64_t defer_until_ms = 0;
  std::string defer_reason;
  std::shared_ptr<void> token;  // the attempt's, passed on: released once the outcome is handled
};

/// A command to one job: cancel it, or run it now.
enum class job_command : std::uint8_t { cancel, run_now, grant };

/// What a command came to: done (cancelled / started), the job had ended, there is no such job
/// for this tenant, or the store could not be read or written (try again).
enum class command_answer { done = 0, cancelled = 0, started = 0, terminal, not_found, unavailable };
using cancel_answer = command_answer;

}  // namespace fetchrelay::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::attempt_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::attempt_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::actors::cancel_answer>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::job_command)
