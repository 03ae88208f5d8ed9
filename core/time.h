// Time as text, in one place: RFC 3339 (the API's times, job JSON, log lines) and HTTP-dates
// (Retry-After). The calendar arithmetic is Howard Hinnant's date library (the C++20 calendar
// before libstdc++ had it); only the digits are written by hand, which keeps the formatting off
// iostreams on the per-job paths (the 202 body, the log line).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fetchrelay {

/// RFC 3339 with milliseconds in UTC: "2026-11-28T10:00:00.000Z". `ms` is Unix time.
std::string format_rfc3339(std::int64_t ms);

/// An RFC 3339 §5.6 date-time ("2026-11-28T10:00:00Z", "2026-11-28t11:00:00.250+01:00") as
/// Unix milliseconds (a longer fraction is cut to milliseconds); nullopt unless it names a real
/// instant: the date must exist in the calendar, offsets at most 23:59, no trailing bytes.
std::optional<std::int64_t> parse_rfc3339(std::string_view text);

/// An RFC 9110 HTTP-date as Unix milliseconds: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"),
/// or the obsolete RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT"; 69-99 are 19xx) and asctime
/// ("Sun Nov  6 08:49:37 1994") forms; nullopt if malformed, if the date does not exist, or if
/// the day name is not that date's.
std::optional<std::int64_t> parse_http_date(std::string_view text);

/// IMF-fixdate of Unix milliseconds (whole seconds).
std::string format_imf_fixdate(std::int64_t ms);

}  // namespace fetchrelay
