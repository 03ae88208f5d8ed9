// What POST /v1/fetch hands the job manager, and what the manager answers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "actors/messages.h"

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
};

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
