// What POST /v1/fetch hands the job manager, and what the manager answers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "actors/messages.h"
#include "core/schedule.h"

namespace fetchrelay::actors {

/// A validated POST /v1/fetch.
struct submission {
  std::string tenant;
  job_spec spec;
  std::int64_t run_at_ms = 0;
  std::string policy = "default";
  std::optional<std::uint32_t> max_attempts;  // from X-Retries; else the policy's
  std::optional<std::uint32_t> timeout_ms;    // from X-Timeout; else the policy's
  std::string callback_url;
  std::string failure_callback_url;
  std::string idempotency_key;
  std::string fingerprint;  // of method, URL, forwarded headers and body; set with idempotency_key
  std::string parent_id;
  bool idem_checked = false;  // the store was asked about idempotency_key already
  // A schedule's fire: the job carries the schedule and fire time, and the schedule as it is after
  // the fire is written in the same commit as the job (with the job's id as last_job_id).
  std::string schedule_id;
  std::int64_t fire_time_ms = 0;
  std::optional<schedule_state> schedule_after;
  std::string queue;  // X-Queue
  std::string topic;     // X-Fetch-Topic: this job is for one of its endpoints
  std::string endpoint;  // that endpoint's name
  std::string qstash;    // published through /v2: its options (core/qstash.h) as JSON
};

/// The request part of a submission, as a schedule keeps it for its fires.
inline schedule_request request_of(const submission& s) {
  return {s.spec, s.policy, s.max_attempts, s.timeout_ms, s.callback_url, s.failure_callback_url, s.queue, s.topic, s.qstash};
}

/// A submission of `r` for `tenant`, running at `run_at_ms`.
inline submission submission_of(const std::string& tenant, const schedule_request& r, std::int64_t run_at_ms) {
  submission s;
  s.tenant = tenant;
  s.spec = r.spec;
  s.run_at_ms = run_at_ms;
  s.policy = r.policy;
  s.max_attempts = r.max_attempts;
  s.timeout_ms = r.timeout_ms;
  s.callback_url = r.callback_url;
  s.failure_callback_url = r.failure_callback_url;
  s.queue = r.queue;
  s.topic = r.topic;
  s.qstash = r.qstash;
  return s;
}

struct submit_answer {
  int http_status = 202;  // 202; 409 (idempotency conflict); 429 or 503 (retry after `retry_after_s`)
  std::string id;
  std::int64_t run_at_ms = 0;
  bool deduplicated = false;
  std::string error_code;
  std::string message;
  int retry_after_s = 0;
  job_status status = job_status::scheduled;  // the job's status now (a repeat may find it finished)
};

}  // namespace fetchrelay::actors
