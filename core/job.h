// The job: what was asked (job_spec, written once) and where it stands (job_state, snapshotted
// on every transition). Pure data; the job actor drives it, persistence encodes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fetchrelay {

/// DESIGN §3. delivered, failed and cancelled are terminal.
enum class job_status : std::uint8_t {
  scheduled = 1,  // waiting for its run time (first attempt, or after a deferral)
  active = 2,     // an attempt is in flight
  retrying = 3,   // waiting for the backoff before the next attempt
  delivered = 4,
  failed = 5,
  cancelled = 6,
};

std::string_view to_string(job_status s) noexcept;
std::optional<job_status> parse_job_status(std::string_view s) noexcept;
bool is_terminal(job_status s) noexcept;

struct header_pair {
  std::string name;
  std::string value;
  bool operator==(const header_pair&) const = default;
};

/// What the client asked for. Immutable after submission; stored once under body/<id>.
struct job_spec {
  std::string method = "POST";
  std::string url;
  std::vector<header_pair> headers;  // forwarded to the target (X-Fetch-Forward-*, Content-Type)
  std::string body;
  bool operator==(const job_spec&) const = default;
};

/// One delivery attempt, as GET /v1/jobs/{id} shows it.
struct attempt_record {
  std::uint32_t n = 0;               // 1-based
  std::int64_t started_at_ms = 0;
  std::uint32_t duration_ms = 0;
  std::uint16_t status_code = 0;     // 0: no response
  std::string error;                 // "" or "<class>: <message>"
  std::string response_excerpt;      // a response other than 2xx: its body's first bytes (kept_excerpt_bytes)
  std::string node;                  // several relays on PostgreSQL: the relay that made it; "" otherwise
  bool operator==(const attempt_record&) const = default;
};

/// Bytes of a failed attempt's response body kept in its record (the job page's timeline).
inline constexpr std::size_t kept_excerpt_bytes = 256;

/// The last response, kept for the terminal report (body: the first 4 KiB).
struct response_summary {
  std::uint16_t status = 0;
  std::vector<header_pair> headers;
  std::string body;
  bool operator==(const response_summary&) const = default;
};

/// Everything about a job except its request body and headers: small, rewritten on every
/// transition.
struct job_state {
  std::string id;
  std::string tenant;
  job_status status = job_status::scheduled;
  std::string method = "POST";
  std::string url;
  std::string policy = "default";
  std::int64_t created_at_ms = 0;
  std::int64_t run_at_ms = 0;        // when the next attempt is due (non-terminal jobs)
  std::uint32_t attempts = 0;        // attempts made
  std::uint32_t max_attempts = 1;    // every attempt, the first included
  std::uint32_t timeout_ms = 0;      // per attempt
  std::uint16_t last_status_code = 0;
  std::string last_error;
  std::string defer_reason;          // why the last deferral happened, if it did
  std::string callback_url;          // X-Callback
  std::string failure_callback_url;  // X-Failure-Callback
  std::string parent_id;             // set on callback jobs: the job whose report this carries
  std::string idempotency_key;
  std::int64_t finished_at_ms = 0;   // terminal jobs
  std::optional<response_summary> response;
  // Where the job came from, if not straight from POST /v1/fetch (issue 13); fixed at creation.
  std::string schedule_id;           // the schedule that fired it
  std::int64_t fire_time_ms = 0;     // the fire time it carries
  std::string queue;                 // X-Queue
  std::string topic;                 // X-Fetch-Topic: one job per endpoint
  std::string endpoint;              // the topic endpoint's name
  std::uint8_t queue_stage = 0;      // queue_stage (core/queue.h): 0 none, 1 waiting, 2 granted, 3 started
  // A job published through the QStash-compatible API (/v2): its options (core/qstash.h) as JSON,
  // never empty for such a job; "" for a v1 job. It is delivered, retried and reported as QStash does.
  std::string qstash;
  bool operator==(const job_state&) const = default;
};

}  // namespace fetchrelay
