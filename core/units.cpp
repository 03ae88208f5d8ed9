#include "core/units.h"

#include <array>
#include <limits>

namespace fetchrelay {
namespace {

constexpr std::string_view duration_units_hint = "(use ms, s, m, h or d)";

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/// Reads digits at text[pos...] into out; false on overflow of uint64.
bool read_number(std::string_view text, size_t& pos, std::uint64_t& out) {
  out = 0;
  while (pos < text.size() && is_digit(text[pos])) {
    std::uint64_t digit = static_cast<std::uint64_t>(text[pos] - '0');
    if (out > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return false;
    out = out * 10 + digit;
    ++pos;
  }
  return true;
}

struct duration_unit {
  std::string_view name;
  std::int64_t ms;
};

// Ordered largest first; the index is the unit's rank.
constexpr std::array<duration_unit, 5> duration_units{{
    {"d", 86'400'000},
    {"h", 3'600'000},
    {"m", 60'000},
    {"s", 1'000},
    {"ms", 1},
}};

std::string quoted(std::string_view s) {
  std::string out = "\"";
  out += s;
  out += '"';
  return out;
}

std::string unexpected(char c) {
  std::string out = "unexpected character '";
  out += c;
  out += '\'';
  return out;
}

}  // namespace

result<millis> parse_duration(std::string_view text, duration_options options) {
  if (text.empty()) return invalid_argument("empty");
  if (text[0] == '-') return invalid_argument("negative durations are not allowed");
  constexpr auto max_ms = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  std::uint64_t total = 0;
  size_t pos = 0;
  size_t next_rank = 0;  // units must be strictly decreasing
  while (pos < text.size()) {
    if (!is_digit(text[pos])) {
      if (is_alpha(text[pos])) {
        size_t end = pos;
        while (end < text.size() && is_alpha(text[end])) ++end;
        return invalid_argument("missing number before unit " +
                                quoted(text.substr(pos, end - pos)));
      }
      return invalid_argument(unexpected(text[pos]));
    }
    std::uint64_t n = 0;
    if (!read_number(text, pos, n)) return invalid_argument("too large");
    if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
      return invalid_argument("fractions are not supported; use a smaller unit (e.g. 1500ms)");
    }
    size_t unit_start = pos;
    while (pos < text.size() && is_alpha(text[pos])) ++pos;
    std::string_view unit = text.substr(unit_start, pos - unit_start);
    if (unit.empty()) {
      if (pos < text.size()) return invalid_argument(unexpected(text[pos]));
      if (options.bare_number_is_seconds && next_rank == 0) {
        if (n > max_ms / 1000) return invalid_argument("too large");
        return millis(static_cast<std::int64_t>(n * 1000));
      }
      return invalid_argument("missing unit (use ms, s, m, h or d, e.g. 30s)");
    }
    size_t rank = duration_units.size();
    for (size_t i = 0; i < duration_units.size(); ++i) {
      if (duration_units[i].name == unit) rank = i;
    }
    if (rank == duration_units.size()) {
      return invalid_argument("unknown unit " + quoted(unit) + " " +
                              std::string(duration_units_hint));
    }
    if (rank < next_rank) {
      return invalid_argument("units must go from largest to smallest, each once");
    }
    next_rank = rank + 1;
    auto per = static_cast<std::uint64_t>(duration_units[rank].ms);
    if (n > max_ms / per) return invalid_argument("too large");
    std::uint64_t add = n * per;
    if (total > max_ms - add) return invalid_argument("too large");
    total += add;
  }
  return millis(static_cast<std::int64_t>(total));
}

std::string format_duration(millis d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out += '-';
    ms = -ms;
  }
  for (const auto& u : duration_units) {
    if (ms >= u.ms) {
      out += std::to_string(ms / u.ms);
      out += u.name;
      ms %= u.ms;
    }
  }
  return out;
}

namespace {

struct size_unit {
  std::string_view name;
  std::uint64_t bytes;
};

constexpr std::array<size_unit, 9> size_units{{
    {"B", 1},
    {"KB", 1000ULL},
    {"MB", 1000ULL * 1000},
    {"GB", 1000ULL * 1000 * 1000},
    {"TB", 1000ULL * 1000 * 1000 * 1000},
    {"KiB", 1ULL << 10},
    {"MiB", 1ULL << 20},
    {"GiB", 1ULL << 30},
    {"TiB", 1ULL << 40},
}};

}  // namespace

result<std::uint64_t> parse_size(std::string_view text) {
  if (text.empty()) return invalid_argument("empty");
  if (text[0] == '-') return invalid_argument("negative sizes are not allowed");
  if (!is_digit(text[0])) {
    if (is_alpha(text[0])) return invalid_argument("missing number before the unit");
    return invalid_argument(unexpected(text[0]));
  }
  size_t pos = 0;
  std::uint64_t n = 0;
  if (!read_number(text, pos, n)) return invalid_argument("too large");
  if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
    return invalid_argument("fractions are not supported; use a smaller unit (e.g. 1536KiB)");
  }
  std::string_view unit = text.substr(pos);
  if (unit.empty()) return n;
  for (char c : unit) {
    if (!is_alpha(c)) return invalid_argument(unexpected(c));
  }
  for (const auto& u : size_units) {
    if (u.name == unit) {
      if (n > std::numeric_limits<std::uint64_t>::max() / u.bytes) {
        return invalid_argument("too large");
      }
      return n * u.bytes;
    }
  }
  return invalid_argument("unknown unit " + quoted(unit) +
                          " (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)");
}

std::string format_size(std::uint64_t bytes) {
  if (bytes == 0) return "0B";
  for (size_t i = size_units.size(); i-- > 5;) {
    if (bytes % size_units[i].bytes == 0) {
      return std::to_string(bytes / size_units[i].bytes) + std::string(size_units[i].name);
    }
  }
  return std::to_string(bytes) + "B";
}

}  // namespace fetchrelay
