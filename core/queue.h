// A queue (issue 13): jobs that start in submission order, at most `parallelism` in progress at
// once. Queues order jobs; they are never a second delivery path.
#pragma once

#include <cstdint>
#include <string>

namespace fetchrelay {

struct queue_state {
  std::string tenant;
  std::string name;  // [A-Za-z0-9_.-]{1,64}, unique per tenant
  std::uint32_t parallelism = 1;
  bool paused = false;
  std::int64_t created_at_ms = 0;
  bool operator==(const queue_state&) const = default;
};

/// Where a job of a queue stands in it.
enum class queue_stage : std::uint8_t {
  none = 0,     // not in a queue (or run again outside its order)
  waiting = 1,  // waits for its turn (not in the due index)
  granted = 2,  // its turn came: due, hibernated and retried as any job; not yet attempted
  started = 3,  // its first attempt began; in progress until terminal
};

/// Jobs of one queue as the store counts them (unfinished only).
struct queue_counts {
  std::int64_t waiting = 0;
  std::int64_t started = 0;  // granted or started: in progress
  bool operator==(const queue_counts&) const = default;
};

inline constexpr std::uint32_t max_queue_parallelism = 1000;

}  // namespace fetchrelay
