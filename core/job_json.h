// The JSON shapes of a job (GET /v1/jobs/{id}, DESIGN §2) and of its terminal report (DESIGN §3,
// also the body of callbacks).
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "core/event.h"
#include "core/job.h"
#include "core/schedule.h"

namespace fetchrelay {

/// {status, attempts, last_status_code, last_error, response: {status, headers, body_base64},
///  finished_at}
nlohmann::json report_json(const job_state& s);

/// The whole job: id, status, url, method, policy, created_at, run_at, next_attempt_at,
/// attempts [{n, started_at, duration_ms, status_code|null, error|null, response_excerpt|null}],
/// last_error, defer_reason, report once terminal, and with `request` its headers (secret values
/// as "***"), body_base64 (the first 64 KiB), body_bytes and body_truncated.
nlohmann::json job_json(const job_state& s, const std::vector<attempt_record>& attempts,
                        const job_spec* request = nullptr);

/// One event (GET /v1/events): id, at, type, job_id, url, and where they apply attempt,
/// status_code, duration_ms, next_attempt_at and error (or reason, for a deferral).
nlohmann::json event_json(const event_record& e);

/// A schedule (GET /v1/schedules/{id}): id, cron, tz, paused, created_at, next_run_at,
/// last_run_at, last_job_id, and request {method, url, headers, body_base64, policy, retries,
/// timeout_ms, callback, failure_callback, queue}. Secret header values show as "***".
nlohmann::json schedule_json(const schedule_state& s);

/// "***" for the value of a header that carries a secret (Cookie, Set-Cookie, names containing
/// "auth" — Authorization, Proxy-Authorization, X-Auth-Token —, and names ending in Key, Token,
/// Secret, Password, Signature or Credential(s)); else the value.
std::string masked_header_value(std::string_view name, const std::string& value);

}  // namespace fetchrelay
