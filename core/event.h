// Events (issue 13): the record of what happened to a job, one per state change the store writes
// and per attempt result. The store derives them inside the commit that makes the change (no
// extra write, no extra sync); the API, the QStash logs and the console read them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fetchrelay {

enum class event_type : std::uint8_t {
  created = 1,    // a new job (its run time in next_at_ms)
  retrying = 2,   // an attempt failed and another follows at next_at_ms
  deferred = 3,   // a plugin deferred the attempt to next_at_ms (written deferrals only)
  delivered = 4,  // the last attempt got a 2xx
  failed = 5,     // no attempt left, or a permanent failure
  cancelled = 6,
  retried = 7,    // a finished job was run again (POST /retry), at next_at_ms
};

std::string_view to_string(event_type t) noexcept;
std::optional<event_type> parse_event_type(std::string_view s) noexcept;

/// One event. The attempt fields are set on the events an attempt result caused (retrying and
/// terminal ones); `detail` is the deferral's reason or the job's last error.
struct event_record {
  std::uint64_t seq = 0;  // store-wide, increasing: the order of the commits
  std::int64_t at_ms = 0;
  event_type type = event_type::created;
  std::string job_id;
  std::string url;
  std::uint32_t attempt = 0;  // 0: no attempt result in this event
  std::uint16_t status_code = 0;
  std::uint32_t duration_ms = 0;
  std::int64_t next_at_ms = 0;  // created, retrying, deferred, retried
  std::string detail;
  bool operator==(const event_record&) const = default;
};

/// "evt_" and the sequence number as 16 hex digits: sorts as the events do.
std::string event_id(std::uint64_t seq);
/// The sequence number of an event id; nullopt if it is not one.
std::optional<std::uint64_t> parse_event_id(std::string_view id) noexcept;

}  // namespace fetchrelay
