// Cron expressions and their fire times (schedules, DESIGN §9): 5 fields (minute hour
// day-of-month month day-of-week) or 6 (seconds first); `*`, lists, ranges, steps, month and day
// names; the macros @yearly @annually @monthly @weekly @daily @midnight @hourly; and an optional
// `CRON_TZ=Area/City ` prefix naming an IANA zone (the system's tzdata, through Howard Hinnant's
// date library; default UTC).
//
// As in Vixie cron, day-of-month and day-of-week combine by OR when both are restricted (neither
// starts with `*`), by AND otherwise. Fire times are local times in the zone: one inside a
// skipped hour (DST starts) fires once at the first instant after the gap; in a repeated hour (DST
// ends) only the first occurrence fires.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace date {
class time_zone;
}

namespace fetchrelay {

struct cron_schedule {
  std::string text;  // as given
  std::string zone;  // IANA name, or "UTC"
  const date::time_zone* tz = nullptr;  // null: UTC
  std::bitset<60> seconds;
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days;    // 1..31
  std::bitset<13> months;  // 1..12
  std::bitset<7> weekdays; // 0 (Sunday)..6
  bool days_star = true;      // day-of-month field starts with '*'
  bool weekdays_star = true;  // day-of-week field starts with '*'
};

/// What is wrong with an expression: the field (`seconds`, `minute`, `hour`, `day-of-month`,
/// `month`, `day-of-week`, `timezone`, or `expression` for its shape) and why.
struct cron_error {
  std::string field;
  std::string message;
};

std::variant<cron_schedule, cron_error> parse_cron(std::string_view text);

/// The first fire strictly after `after_ms` (Unix milliseconds; fires are whole seconds), or
/// nullopt if there is none in the next eight years (e.g. `0 0 30 2 *`).
std::optional<std::int64_t> next_fire(const cron_schedule& c, std::int64_t after_ms);

}  // namespace fetchrelay
