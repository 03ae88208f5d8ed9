// A recurring schedule (issue 13): the request each fire submits, its cron and where it stands.
// Schedules create jobs; they are never a second delivery path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/job.h"

namespace fetchrelay {

/// What each fire submits, as POST /v1/fetch would have.
struct schedule_request {
  job_spec spec;  // method, URL, forwarded headers, body
  std::string policy = "default";
  std::optional<std::uint32_t> max_attempts;  // X-Retries + 1; else the policy's
  std::optional<std::uint32_t> timeout_ms;    // X-Timeout; else the policy's
  std::string callback_url;
  std::string failure_callback_url;
  std::string queue;  // X-Queue, if any
  std::string topic;  // X-Fetch-Topic instead of a URL, if any
  std::string qstash;  // made through /v2: the fires' QStash options (core/qstash.h) as JSON
  bool operator==(const schedule_request&) const = default;
};

struct schedule_state {
  std::string id;  // "sched_<ULID>" or the client's X-Schedule-Id; unique per tenant
  std::string tenant;
  std::string cron;  // as given, CRON_TZ= prefix included
  schedule_request request;
  bool paused = false;
  std::int64_t created_at_ms = 0;
  std::int64_t next_run_at_ms = 0;  // the next fire; 0: none (the cron cannot fire again)
  std::int64_t last_run_at_ms = 0;  // the last fire time (0: never)
  std::string last_job_id;
  bool operator==(const schedule_state&) const = default;
};

/// Due, for the store's schedule index: fires at `due_ms` unless paused.
inline bool schedule_is_due_indexed(const schedule_state& s) { return !s.paused && s.next_run_at_ms > 0; }

}  // namespace fetchrelay
