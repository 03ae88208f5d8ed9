#include "core/time.h"

#include <date/date.h>

#include <chrono>
#include <cstdio>
#include <sstream>

namespace fetchrelay {
namespace {

using ms_time = date::sys_time<std::chrono::milliseconds>;

ms_time to_time(std::int64_t ms) { return ms_time(std::chrono::milliseconds(ms)); }

/// Reads exactly `digits` decimal digits at `i`.
bool read_number(std::string_view v, std::size_t& i, std::size_t digits, int& out) {
  if (i + digits > v.size()) return false;
  out = 0;
  for (std::size_t k = 0; k < digits; ++k, ++i) {
    if (v[i] < '0' || v[i] > '9') return false;
    out = out * 10 + (v[i] - '0');
  }
  return true;
}

/// Consumes `c` (case-insensitive for letters) at `i`.
bool read_char(std::string_view v, std::size_t& i, char c) {
  if (i >= v.size() || (v[i] | 0x20) != (c | 0x20)) return false;
  ++i;
  return true;
}

/// "[.digits]" at `i` as milliseconds (missing: 0); false if a '.' has no digit after it.
bool read_fraction(std::string_view v, std::size_t& i, std::int64_t& ms) {
  ms = 0;
  if (i >= v.size() || v[i] != '.') return true;
  std::size_t digits = 0;
  for (++i; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i, ++digits) {
    if (digits < 3) ms = ms * 10 + (v[i] - '0');
  }
  for (std::size_t d = digits; d < 3; ++d) ms *= 10;
  return digits > 0;
}

/// "Z" or "+HH:MM" / "-HH:MM" at `i`, as seconds east of UTC.
bool read_offset(std::string_view v, std::size_t& i, std::int64_t& seconds) {
  seconds = 0;
  if (read_char(v, i, 'z')) return true;
  if (i >= v.size() || (v[i] != '+' && v[i] != '-')) return false;
  int sign = v[i++] == '+' ? 1 : -1;
  int h, m;
  if (!read_number(v, i, 2, h) || !read_char(v, i, ':') || !read_number(v, i, 2, m) || h > 23 || m > 59) return false;
  seconds = sign * (h * 3600LL + m * 60LL);
  return true;
}

}  // namespace

std::string format_rfc3339(std::int64_t ms) {
  auto tp = to_time(ms);
  auto day = date::floor<date::days>(tp);
  date::year_month_day ymd{day};
  date::hh_mm_ss<std::chrono::milliseconds> t{tp - day};
  int year = static_cast<int>(ymd.year());
  char buf[40];
  if (year < 0 || year > 9999) {  // not a time the relay meets; snprintf says what it is
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", year, static_cast<unsigned>(ymd.month()),
                  static_cast<unsigned>(ymd.day()), static_cast<int>(t.hours().count()),
                  static_cast<int>(t.minutes().count()), static_cast<int>(t.seconds().count()),
                  static_cast<int>(t.subseconds().count()));
    return buf;
  }
  // By hand: snprintf cost more than the rest of a job's 202 answer.
  char* p = buf;
  auto digits = [&p](int v, int n) {
    for (int i = n - 1; i >= 0; --i, v /= 10) p[i] = static_cast<char>('0' + v % 10);
    p += n;
  };
  digits(year, 4);
  *p++ = '-';
  digits(static_cast<int>(static_cast<unsigned>(ymd.month())), 2);
  *p++ = '-';
  digits(static_cast<int>(static_cast<unsigned>(ymd.day())), 2);
  *p++ = 'T';
  digits(static_cast<int>(t.hours().count()), 2);
  *p++ = ':';
  digits(static_cast<int>(t.minutes().count()), 2);
  *p++ = ':';
  digits(static_cast<int>(t.seconds().count()), 2);
  *p++ = '.';
  digits(static_cast<int>(t.subseconds().count()), 3);
  *p++ = 'Z';
  return std::string(buf, p);
}

std::optional<std::int64_t> parse_rfc3339(std::string_view v) {
  std::size_t i = 0;
  int y, mo, d, h, mi, s;
  if (!read_number(v, i, 4, y) || !read_char(v, i, '-') || !read_number(v, i, 2, mo) || !read_char(v, i, '-') ||
      !read_number(v, i, 2, d) || !read_char(v, i, 't') || !read_number(v, i, 2, h) || !read_char(v, i, ':') ||
      !read_number(v, i, 2, mi) || !read_char(v, i, ':') || !read_number(v, i, 2, s)) {
    return std::nullopt;
  }
  std::int64_t frac = 0, offset_s = 0;
  if (!read_fraction(v, i, frac) || !read_offset(v, i, offset_s) || i != v.size()) return std::nullopt;
  date::year_month_day ymd{date::year{y}, date::month{static_cast<unsigned>(mo)}, date::day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 59) return std::nullopt;  // no leap second: Unix time has none
  auto tp = date::sys_days(ymd) + std::chrono::hours(h) + std::chrono::minutes(mi) + std::chrono::seconds(s) -
            std::chrono::seconds(offset_s);
  return std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count() + frac;
}

namespace {

/// True if `t` has the shape of `pattern`: `A` one or more letters (a day name), `a` a letter,
/// `d` a digit, `D` a digit or a space, anything else itself. Each HTTP-date form is checked so
/// before date::parse sees it: fuzzing found date::parse converting a NaN seconds value to an
/// integer (undefined behaviour) for a time field that was not digits.
bool shaped(std::string_view t, std::string_view pattern) {
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  std::size_t i = 0;
  for (char p : pattern) {
    if (p == 'A') {
      std::size_t start = i;
      while (i < t.size() && letter(t[i])) ++i;
      if (i == start) return false;
      continue;
    }
    if (i >= t.size()) return false;
    char c = t[i++];
    if (p == 'a' ? !letter(c) : p == 'd' ? !digit(c) : p == 'D' ? !(digit(c) || c == ' ') : c != p) return false;
  }
  return i == t.size();
}

}  // namespace

std::optional<std::int64_t> parse_http_date(std::string_view text) {
  // IMF-fixdate first; then the obsolete RFC 850 and asctime forms recipients must still take.
  struct form_of {
    const char* shape;
    const char* form;
  };
  for (auto [shape, form] : {form_of{"aaa, dd aaa dddd dd:dd:dd GMT", "%a, %d %b %Y %H:%M:%S GMT"},
                             form_of{"A, dd-aaa-dd dd:dd:dd GMT", "%A, %d-%b-%y %H:%M:%S GMT"},
                             form_of{"aaa aaa Dd dd:dd:dd dddd", "%a %b %e %H:%M:%S %Y"}}) {
    if (!shaped(text, shape)) continue;
    std::istringstream in{std::string(text)};
    in.imbue(std::locale::classic());
    date::sys_seconds tp;
    in >> date::parse(form, tp);
    if (in.fail() || in.peek() != std::char_traits<char>::eof()) continue;
    return std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count();
  }
  return std::nullopt;
}

std::string format_imf_fixdate(std::int64_t ms) {
  return date::format("%a, %d %b %Y %H:%M:%S GMT", date::floor<std::chrono::seconds>(to_time(ms)));
}

}  // namespace fetchrelay
