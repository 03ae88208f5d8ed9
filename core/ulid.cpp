#include "core/ulid.h"

#include <algorithm>

namespace fetchrelay {
namespace {

constexpr char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int decode_char(char c) {
  for (int i = 0; i < 32; ++i) {
    if (alphabet[i] == c) return i;
  }
  return -1;
}

}  // namespace

ulid_generator::ulid_generator(std::function<std::uint64_t()> random) : random_(std::move(random)) {}

std::string ulid_generator::next(std::int64_t now_ms, int shard) {
  bool same_shard = shard < 0 || last_random_[0] == static_cast<std::uint8_t>(shard);
  if (now_ms <= last_ms_ && same_shard) {
    // Same millisecond (or a clock step back): keep the last time, add one to the random part.
    for (int i = 9; i >= 0; --i) {
      if (++last_random_[i] != 0) break;
    }
  } else {
    last_ms_ = std::max(last_ms_, now_ms);
    std::uint64_t a = random_();
    std::uint64_t b = random_();
    for (int i = 0; i < 8; ++i) last_random_[i] = static_cast<std::uint8_t>(a >> (56 - 8 * i));
    last_random_[8] = static_cast<std::uint8_t>(b >> 56);
    last_random_[9] = static_cast<std::uint8_t>(b >> 48);
    // Headroom so increments within a millisecond never overflow into the byte above.
    if (shard >= 0) {
      last_random_[0] = static_cast<std::uint8_t>(shard);
      last_random_[1] &= 0x7f;
    } else {
      last_random_[0] &= 0x7f;
    }
  }
  return encode_ulid(last_ms_, last_random_);
}

namespace {

// 128 bits written as 26 groups of 5 bits (the first holds 3), from one 128-bit number: a job's
// id is made on every submission, and bit by bit this cost ~2,300 instructions.
std::string encode_bytes(const job_id_bytes& bytes) {
  unsigned __int128 x = 0;
  for (std::uint8_t b : bytes) x = (x << 8) | b;
  std::string out(26, '0');
  for (int c = 0; c < 26; ++c) out[c] = alphabet[static_cast<unsigned>(x >> (125 - 5 * c)) & 31];
  return out;
}

}  // namespace

std::string encode_ulid(std::int64_t ms, const std::array<std::uint8_t, 10>& random) {
  // 48 time bits, then 80 random bits.
  job_id_bytes bytes{};
  auto t = static_cast<std::uint64_t>(ms);
  for (int i = 0; i < 6; ++i) bytes[i] = static_cast<std::uint8_t>(t >> (40 - 8 * i));
  for (int i = 0; i < 10; ++i) bytes[6 + i] = random[i];
  return encode_bytes(bytes);
}

bool pack_job_id(std::string_view id, job_id_bytes& out) {
  if (!is_job_id(id)) return false;
  out.fill(0);
  for (int c = 0; c < 26; ++c) {
    int value = decode_char(id[4 + c]);
    int bit = 128 - 5 * (26 - c);
    for (int k = 0; k < 5; ++k) {
      int b = bit + k;
      if (b >= 0 && ((value >> (4 - k)) & 1)) out[b / 8] |= static_cast<std::uint8_t>(1 << (7 - b % 8));
    }
  }
  return true;
}

std::string unpack_job_id(const job_id_bytes& bytes) { return "job_" + encode_bytes(bytes); }

bool is_job_id(std::string_view id) {
  if (id.size() != 30 || id.substr(0, 4) != "job_") return false;
  if (decode_char(id[4]) > 7) return false;  // the first character holds only 3 bits
  for (char c : id.substr(4)) {
    if (decode_char(c) < 0) return false;
  }
  return true;
}

int job_shard(std::string_view id) {
  job_id_bytes b;
  if (!pack_job_id(id, b)) return -1;
  return b[6];  // 6 bytes of time, then the random part
}

std::int64_t job_id_time(std::string_view id) {
  if (!is_job_id(id)) return -1;
  std::uint64_t t = 0;
  for (int c = 0; c < 10; ++c) t = (t << 5) | static_cast<std::uint64_t>(decode_char(id[4 + c]));
  return static_cast<std::int64_t>(t);  // 10 chars = 2 padding bits + the 48-bit time
}

}  // namespace fetchrelay
