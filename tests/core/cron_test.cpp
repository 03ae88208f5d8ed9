// core/cron: parsing (every error names its field) and fire times in UTC and across DST.
#include <gtest/gtest.h>

#include "core/cron.h"
#include "core/time.h"

namespace fetchrelay::cron_test {
namespace {

cron_schedule cron(std::string_view text) {
  auto r = parse_cron(text);
  if (auto* e = std::get_if<cron_error>(&r)) ADD_FAILURE() << text << ": " << e->message;
  return std::get_if<cron_schedule>(&r) ? std::get<cron_schedule>(r) : cron_schedule{};
}

std::int64_t at(const char* rfc3339) { return *parse_rfc3339(rfc3339); }

std::string next(std::string_view text, const char* after) {
  auto n = next_fire(cron(text), at(after));
  return n ? format_rfc3339(*n) : "none";
}

TEST(Cron, EveryErrorNamesItsField) {
  struct want {
    const char* text;
    const char* field;
  };
  for (const want& w : {want{"61 * * * *", "minute"}, want{"* 24 * * *", "hour"}, want{"* * 0 * *", "day-of-month"},
                        want{"* * 32 * *", "day-of-month"}, want{"* * * 13 *", "month"}, want{"* * * FOO *", "month"},
                        want{"* * * * 8", "day-of-week"}, want{"* * * * MOX", "day-of-week"},
                        want{"*/0 * * * *", "minute"}, want{"5-1 * * * *", "minute"}, want{"1,,2 * * * *", "minute"},
                        want{"60 * * * * *", "seconds"}, want{"* * *", "expression"}, want{"* * * * * * *", "expression"},
                        want{"@reboot", "expression"}, want{"", "expression"},
                        want{"CRON_TZ=Mars/Olympus * * * * *", "timezone"}}) {
    auto r = parse_cron(w.text);
    auto* e = std::get_if<cron_error>(&r);
    ASSERT_NE(e, nullptr) << w.text << " was accepted";
    EXPECT_EQ(e->field, w.field) << w.text << ": " << e->message;
  }
}

TEST(Cron, FieldsListsRangesStepsNamesAndMacros) {
  auto c = cron("0,30 9-17/2 * JAN-mar mon-FRI");
  EXPECT_TRUE(c.minutes.test(0) && c.minutes.test(30) && !c.minutes.test(15));
  EXPECT_TRUE(c.hours.test(9) && c.hours.test(11) && c.hours.test(17) && !c.hours.test(10));
  EXPECT_TRUE(c.months.test(1) && c.months.test(3) && !c.months.test(4));
  EXPECT_TRUE(c.weekdays.test(1) && c.weekdays.test(5) && !c.weekdays.test(0));
  EXPECT_TRUE(c.seconds.test(0) && c.seconds.count() == 1) << "5 fields fire at second 0";
  EXPECT_TRUE(cron("0 0 * * 7").weekdays.test(0)) << "7 is Sunday";
  EXPECT_EQ(cron("5/20 * * * *").minutes.count(), 3u) << "5/20 is 5, 25, 45";
  EXPECT_EQ(next("@hourly", "2026-01-01T10:20:00Z"), "2026-01-01T11:00:00.000Z");
  EXPECT_EQ(next("@daily", "2026-01-01T10:20:00Z"), "2026-01-02T00:00:00.000Z");
  EXPECT_EQ(next("@weekly", "2026-01-01T10:20:00Z"), "2026-01-04T00:00:00.000Z");  // a Sunday
  EXPECT_EQ(next("@monthly", "2026-01-01T10:20:00Z"), "2026-02-01T00:00:00.000Z");
  EXPECT_EQ(next("@yearly", "2026-01-01T10:20:00Z"), "2027-01-01T00:00:00.000Z");
  EXPECT_EQ(cron("CRON_TZ=Europe/Berlin  0 9 * * *").zone, "Europe/Berlin");
  EXPECT_EQ(cron("0 9 * * *").zone, "UTC");
}

TEST(Cron, NextFireInUtc) {
  EXPECT_EQ(next("*/2 * * * * *", "2026-01-01T10:00:00Z"), "2026-01-01T10:00:02.000Z") << "strictly after";
  EXPECT_EQ(next("*/2 * * * * *", "2026-01-01T10:00:00.500Z"), "2026-01-01T10:00:02.000Z");
  EXPECT_EQ(next("*/2 * * * * *", "2026-01-01T10:00:01Z"), "2026-01-01T10:00:02.000Z");
  EXPECT_EQ(next("* * * * *", "2026-12-31T23:59:30Z"), "2027-01-01T00:00:00.000Z");
  EXPECT_EQ(next("0 0 29 2 *", "2026-03-01T00:00:00Z"), "2028-02-29T00:00:00.000Z") << "the next leap day";
  EXPECT_EQ(next("0 0 30 2 *", "2026-03-01T00:00:00Z"), "none");
  // Both day fields restricted: either matches (the 13th, or a Friday). 2026-02-06 is a Friday.
  EXPECT_EQ(next("0 0 13 * FRI", "2026-02-01T00:00:00Z"), "2026-02-06T00:00:00.000Z");
  EXPECT_EQ(next("0 0 13 * FRI", "2026-02-07T00:00:00Z"), "2026-02-13T00:00:00.000Z");
  // One of them '*'-led: both must match (odd days that are Mondays). 2026-02-09 is a Monday.
  EXPECT_EQ(next("0 0 */2 * MON", "2026-02-01T00:00:00Z"), "2026-02-09T00:00:00.000Z");
}

TEST(Cron, NewYorkAcrossBothDstChanges) {
  const char* daily_0230 = "CRON_TZ=America/New_York 30 2 * * *";
  EXPECT_EQ(next(daily_0230, "2026-03-07T00:00:00Z"), "2026-03-07T07:30:00.000Z");  // EST, UTC-5
  // 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist and fires at the end of the gap.
  EXPECT_EQ(next(daily_0230, "2026-03-07T07:30:00Z"), "2026-03-08T07:00:00.000Z");
  EXPECT_EQ(next(daily_0230, "2026-03-08T07:00:00Z"), "2026-03-09T06:30:00.000Z");  // EDT, UTC-4
  // Every minute of the skipped hour collapses into one fire.
  const char* each_minute_at_2 = "CRON_TZ=America/New_York * 2 * * *";
  EXPECT_EQ(next(each_minute_at_2, "2026-03-08T06:00:00Z"), "2026-03-08T07:00:00.000Z");
  EXPECT_EQ(next(each_minute_at_2, "2026-03-08T07:00:00Z"), "2026-03-09T06:00:00.000Z");
  // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice and fires once, the first time.
  const char* daily_0130 = "CRON_TZ=America/New_York 30 1 * * *";
  EXPECT_EQ(next(daily_0130, "2026-11-01T00:00:00Z"), "2026-11-01T05:30:00.000Z");  // 01:30 EDT
  EXPECT_EQ(next(daily_0130, "2026-11-01T05:30:00Z"), "2026-11-02T06:30:00.000Z");  // not 01:30 EST
  EXPECT_EQ(next(daily_0130, "2026-11-01T06:10:00Z"), "2026-11-02T06:30:00.000Z") << "from inside the repeat";
  // Within the repeated hour a minute-by-minute schedule does not run the hour twice.
  const char* each_minute_at_1 = "CRON_TZ=America/New_York * 1 * * *";
  EXPECT_EQ(next(each_minute_at_1, "2026-11-01T05:59:00Z"), "2026-11-02T06:00:00.000Z");
}

}  // namespace
}  // namespace fetchrelay::cron_test
