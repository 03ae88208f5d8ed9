// The one parser for durations and sizes, shared by config, the API headers and the CLI.
//
// Durations: one or more <digits><unit> groups, largest unit first, each unit at most once:
//   500ms  30s  5m  24h  7d  1d2h30m
// Units: ms, s, m, h, d. Integers only. An empty text, a sign, a fraction, white space or an
// unknown unit is an error; so is a bare number unless `bare_number_is_seconds` is set (the
// X-Delay header allows it; config files do not, since "timeout: 500" is ambiguous).
//
// Sizes: <digits>[unit], unit one of B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB
// (powers of 1024). A bare number is bytes.
//
// Error messages describe the problem without repeating the input, so callers can prefix it
// with where the value came from.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fetchrelay {

using millis = std::chrono::milliseconds;

struct duration_options {
  bool bare_number_is_seconds = false;
};

result<millis> parse_duration(std::string_view text, duration_options options = {});

/// The shortest compound form: 0s, 500ms, 90s -> 1m30s, 86400000ms -> 1d.
std::string format_duration(millis d);

result<std::uint64_t> parse_size(std::string_view text);

/// Exact binary form when possible: 1048576 -> 1MiB, 1000 -> 1000B.
std::string format_size(std::uint64_t bytes);

}  // namespace fetchrelay
