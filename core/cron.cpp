#include "core/cron.h"

#include <date/date.h>
#include <date/tz.h>

#include <array>
#include <charconv>
#include <chrono>
#include <vector>

#include "core/ascii.h"

namespace fetchrelay {
namespace {

struct field_spec {
  const char* name;
  int lo;
  int hi;
  const char* const* names;  // names[i] is value lo + i; null: none
};

constexpr const char* month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"};

constexpr field_spec seconds_field{"seconds", 0, 59, nullptr};
constexpr field_spec minute_field{"minute", 0, 59, nullptr};
constexpr field_spec hour_field{"hour", 0, 23, nullptr};
constexpr field_spec day_field{"day-of-month", 1, 31, nullptr};
constexpr field_spec month_field{"month", 1, 12, month_names};
constexpr field_spec weekday_field{"day-of-week", 0, 7, day_names};  // 7 is Sunday too

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

/// A number or (for months and days) a name; nullopt if neither.
std::optional<int> value_of(std::string_view v, const field_spec& f) {
  if (v.empty()) return std::nullopt;
  int n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec == std::errc() && end == v.data() + v.size()) return n;
  if (!f.names) return std::nullopt;
  for (int i = 0; i <= f.hi - f.lo; ++i) {
    if (iequals(v, f.names[i])) return f.lo + i;
  }
  return std::nullopt;
}

/// Sets the values one comma-separated item names: `*`, `a`, `a-b`, each optionally `/step`.
std::optional<cron_error> add_item(std::string_view item, const field_spec& f, std::vector<bool>& out) {
  auto bad = [&](const std::string& why) { return cron_error{f.name, std::string(f.name) + ": " + why}; };
  int step = 1;
  if (auto slash = item.find('/'); slash != std::string_view::npos) {
    auto s = value_of(item.substr(slash + 1), {f.name, 0, 0, nullptr});
    if (!s || *s < 1 || *s > f.hi) return bad("step \"" + std::string(item.substr(slash + 1)) + "\" is not 1 to " + std::to_string(f.hi));
    step = *s;
    item = item.substr(0, slash);
  }
  int lo = f.lo, hi = f.hi;
  if (item != "*") {
    auto dash = item.find('-');
    auto a = value_of(item.substr(0, dash), f);
    if (!a) return bad("\"" + std::string(item.substr(0, dash)) + "\" is not a value");
    lo = *a;
    hi = step > 1 && dash == std::string_view::npos ? f.hi : *a;  // "a/step": from a to the end
    if (dash != std::string_view::npos) {
      auto b = value_of(item.substr(dash + 1), f);
      if (!b) return bad("\"" + std::string(item.substr(dash + 1)) + "\" is not a value");
      hi = *b;
    }
  }
  if (lo < f.lo || hi > f.hi || lo > hi) {
    return bad(std::to_string(lo) + (lo == hi ? "" : "-" + std::to_string(hi)) + " is outside " + std::to_string(f.lo) +
               "-" + std::to_string(f.hi));
  }
  for (int v = lo; v <= hi; v += step) out[static_cast<std::size_t>(v - f.lo)] = true;
  return std::nullopt;
}

template <std::size_t N>
std::optional<cron_error> parse_field(std::string_view text, const field_spec& f, std::bitset<N>& bits, int offset) {
  std::vector<bool> seen(static_cast<std::size_t>(f.hi - f.lo + 1), false);
  for (auto item : split(text, ',')) {
    if (item.empty()) return cron_error{f.name, std::string(f.name) + ": an empty item in \"" + std::string(text) + "\""};
    if (auto e = add_item(item, f, seen)) return e;
  }
  for (std::size_t i = 0; i < seen.size(); ++i) {
    if (seen[i]) bits.set((static_cast<std::size_t>(f.lo) + i + static_cast<std::size_t>(offset)) % N);
  }
  return std::nullopt;
}

std::string_view expand_macro(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 7> macros{{
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
      {"@daily", "0 0 * * *"},  {"@midnight", "0 0 * * *"}, {"@hourly", "0 * * * *"},
  }};
  for (const auto& [name, fields] : macros) {
    if (iequals(text, name)) return fields;
  }
  return text;
}

/// Splits on runs of spaces and tabs.
std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    std::size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

}  // namespace

std::variant<cron_schedule, cron_error> parse_cron(std::string_view text) {
  cron_schedule c;
  c.text = std::string(text);
  c.zone = "UTC";
  auto w = words(text);
  if (!w.empty() && istarts_with(w.front(), "CRON_TZ=")) {
    std::string zone(w.front().substr(8));
    try {
      c.tz = date::locate_zone(zone);
    } catch (const std::exception&) {
      return cron_error{"timezone", "timezone: \"" + zone + "\" is not an IANA time zone (e.g. Europe/Berlin)"};
    }
    c.zone = zone;
    if (zone == "UTC" || zone == "Etc/UTC") c.tz = nullptr;
    w.erase(w.begin());
  }
  if (w.size() == 1 && w[0].starts_with('@')) {
    std::string_view fields = expand_macro(w[0]);
    if (fields == w[0]) return cron_error{"expression", "unknown macro " + std::string(w[0]) + " (use @yearly, @monthly, @weekly, @daily or @hourly)"};
    w = words(fields);
  }
  if (w.size() != 5 && w.size() != 6) {
    return cron_error{"expression", "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got " +
                                        std::to_string(w.size())};
  }
  std::size_t i = 0;
  if (w.size() == 6) {
    if (auto e = parse_field(w[i++], seconds_field, c.seconds, 0)) return *e;
  } else {
    c.seconds.set(0);
  }
  if (auto e = parse_field(w[i++], minute_field, c.minutes, 0)) return *e;
  if (auto e = parse_field(w[i++], hour_field, c.hours, 0)) return *e;
  c.days_star = w[i].starts_with('*');
  if (auto e = parse_field(w[i++], day_field, c.days, 0)) return *e;
  if (auto e = parse_field(w[i++], month_field, c.months, 0)) return *e;
  c.weekdays_star = w[i].starts_with('*');
  if (auto e = parse_field(w[i++], weekday_field, c.weekdays, 0)) return *e;  // 7 wraps to 0
  return c;
}

namespace {

bool day_matches(const cron_schedule& c, const date::year_month_day& ymd) {
  bool dom = c.days.test(static_cast<unsigned>(ymd.day()));
  bool dow = c.weekdays.test(date::weekday(date::sys_days(ymd)).c_encoding());
  if (c.days_star || c.weekdays_star) return dom && dow;  // a '*' matches every day anyway
  return dom || dow;
}

/// The instant of local time `t` in the schedule's zone: a time in a skipped hour is the end of
/// the gap; one in a repeated hour is its first occurrence.
date::sys_seconds instant_of(const cron_schedule& c, date::local_seconds t) {
  if (!c.tz) return date::sys_seconds(t.time_since_epoch());
  return c.tz->to_sys(t, date::choose::earliest);
}

}  // namespace

std::optional<std::int64_t> next_fire(const cron_schedule& c, std::int64_t after_ms) {
  using namespace std::chrono;
  auto after = date::sys_time<milliseconds>(milliseconds(after_ms));
  date::local_seconds start;
  if (c.tz) start = date::floor<seconds>(c.tz->to_local(date::floor<seconds>(after)));
  else start = date::local_seconds(date::floor<seconds>(after).time_since_epoch());
  auto first_day = date::floor<date::days>(start);
  for (int d = 0; d < 366 * 8 + 2; ++d) {
    date::local_days day = first_day + date::days(d);
    date::year_month_day ymd{day};
    if (!c.months.test(static_cast<unsigned>(ymd.month())) || !day_matches(c, ymd)) continue;
    for (int h = 0; h < 24; ++h) {
      if (!c.hours.test(static_cast<std::size_t>(h))) continue;
      if (d == 0 && day + hours(h + 1) <= start) continue;
      for (int m = 0; m < 60; ++m) {
        if (!c.minutes.test(static_cast<std::size_t>(m))) continue;
        for (int s = 0; s < 60; ++s) {
          if (!c.seconds.test(static_cast<std::size_t>(s))) continue;
          date::local_seconds t = day + hours(h) + minutes(m) + seconds(s);
          if (t < start) continue;
          auto at = instant_of(c, t);
          if (at > after) return duration_cast<milliseconds>(at.time_since_epoch()).count();
        }
      }
    }
  }
  return std::nullopt;
}

}  // namespace fetchrelay
