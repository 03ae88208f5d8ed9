// ULIDs (https://github.com/ulid/spec): 48-bit millisecond time + 80 random bits, written as 26
// Crockford base32 characters, so ids sort by creation time as bytes and as strings.
// Job ids are "job_" + a ULID.
//
// Thread-safety: a ulid_generator is used by one actor (the job manager) at a time.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace fetchrelay {

class ulid_generator {
 public:
  /// `random` returns 64 random bits; injected so tests are deterministic.
  explicit ulid_generator(std::function<std::uint64_t()> random);

  /// A new ULID for `now_ms`. Within one millisecond (or if the clock steps back) ids stay
  /// strictly increasing: the random part is incremented, as the spec's monotonic mode does.
  /// With `shard` (0-255; several relays on PostgreSQL) the random part's first byte is the
  /// shard, so anyone can tell a job's shard from its id (job_shard); ids then increase within a
  /// millisecond only while the shard stays the same.
  std::string next(std::int64_t now_ms, int shard = -1);

 private:
  std::function<std::uint64_t()> random_;
  std::int64_t last_ms_ = -1;
  std::array<std::uint8_t, 10> last_random_{};
};

/// The 26-character text of (time, 80-bit random).
std::string encode_ulid(std::int64_t ms, const std::array<std::uint8_t, 10>& random);

/// True if `id` is "job_" + 26 Crockford base32 characters.
bool is_job_id(std::string_view id);

/// The shard a job id carries (the first byte of its random part, 0-255); -1 if it is not a
/// job id.
int job_shard(std::string_view id);

/// The creation time (ms) encoded in a job id; -1 if it is not a job id.
std::int64_t job_id_time(std::string_view id);

/// A job id in 16 bytes (the ULID's 128 bits), for compact in-memory indexes. Byte order
/// keeps the id order.
using job_id_bytes = std::array<std::uint8_t, 16>;
/// False if `id` is not a job id.
bool pack_job_id(std::string_view id, job_id_bytes& out);
std::string unpack_job_id(const job_id_bytes& bytes);

}  // namespace fetchrelay
