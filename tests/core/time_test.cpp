// core/time: RFC 3339 and HTTP-dates, formatted and parsed against the calendar.
#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>

#include "core/time.h"

namespace fetchrelay::time_test {
namespace {

TEST(Time, Rfc3339IsUtcWithMilliseconds) {
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(1'764'324'000'250), "2025-11-28T10:00:00.250Z");
  EXPECT_EQ(format_rfc3339(1'709'164'800'000), "2024-02-29T00:00:00.000Z");  // a leap day
  EXPECT_EQ(format_rfc3339(253'402'300'799'999), "9999-12-31T23:59:59.999Z");
}

// The digits written by hand agree with the C library's calendar over many spread-out times
// (every field's carry: days, months, leap years, the milliseconds).
TEST(Time, Rfc3339AgreesWithGmtime) {
  std::uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (int i = 0; i < 2'000; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    auto ms = static_cast<std::int64_t>(x % 253'402'300'800'000ULL);  // 1970 to 9999
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    ASSERT_NE(gmtime_r(&secs, &tm), nullptr);
    char want[64];
    std::snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
    ASSERT_EQ(format_rfc3339(ms), want) << ms;
  }
}

TEST(Time, Rfc3339ParsesOffsetsFractionsAndLowerCase) {
  EXPECT_EQ(parse_rfc3339("2025-11-28T10:00:00Z"), 1'764'324'000'000);
  EXPECT_EQ(parse_rfc3339("2025-11-28t10:00:00.25z"), 1'764'324'000'250);
  EXPECT_EQ(parse_rfc3339("2025-11-28T10:00:00.123456789Z"), 1'764'324'000'123) << "cut to milliseconds";
  EXPECT_EQ(parse_rfc3339("2025-11-28T11:30:00+01:30"), 1'764'324'000'000);
  EXPECT_EQ(parse_rfc3339("2025-11-28T08:00:00-02:00"), 1'764'324'000'000);
  EXPECT_EQ(parse_rfc3339("2000-02-29T00:00:00Z"), 951'782'400'000);
  for (std::int64_t ms : {0LL, 951'782'400'001LL, 1'764'324'000'250LL}) {
    EXPECT_EQ(parse_rfc3339(format_rfc3339(ms)), ms) << "round trip " << ms;
  }
}

TEST(Time, Rfc3339RefusesInstantsThatDoNotExist) {
  for (const char* bad : {"", "2025-11-28", "2025-11-28T10:00:00", "2025-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
                          "2025-04-31T00:00:00Z", "2025-13-01T00:00:00Z", "2025-11-28T24:00:00Z",
                          "2025-11-28T10:60:00Z", "2025-11-28T10:00:60Z", "2025-11-28T10:00:00.Z",
                          "2025-11-28T10:00:00+24:00", "2025-11-28T10:00:00+01:60", "2025-11-28T10:00:00Z ",
                          "2025-11-28 10:00:00Z", "+2025-11-28T10:00:00Z", "2025-1-28T10:00:00Z"}) {
    EXPECT_EQ(parse_rfc3339(bad), std::nullopt) << bad;
  }
}

TEST(Time, HttpDatesWithABrokenTimeFieldAreRefusedBeforeTheDateLibrarySeesThem) {
  // Found by tests/fuzz/fuzz_durations (UBSan: a NaN seconds value converted to an integer).
  EXPECT_FALSE(parse_http_date(std::string("Sun, 12 Nov 1499 08:4:\xfa" "8\x10", 25)));
  EXPECT_FALSE(parse_http_date("Sun, 12 Nov 1499 08:4:x8 GMT"));
  EXPECT_FALSE(parse_http_date("Sun, 06 Nov 1994 08:49:3 GMT"));
  EXPECT_FALSE(parse_http_date("Sun, 06 Nov 1994 08:49:37 G\x01T"));
  EXPECT_FALSE(parse_http_date(std::string(100, ' ') + "Sun, 06 Nov 1994 08:49:37 GMT"));
  EXPECT_FALSE(parse_http_date("Sun,6 Nov 1994 08:49:,6 Nov 1994 08:49:37 GMT")) << "a valid time later on is no excuse";
}

TEST(Time, HttpDatesParseInAllThreeFormsAndTheDayNameMustMatch) {
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784'111'777'000);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784'111'777'000) << "RFC 850";
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), 784'111'777'000) << "asctime";
  EXPECT_EQ(format_imf_fixdate(784'111'777'999), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(parse_http_date(format_imf_fixdate(1'764'324'000'000)), 1'764'324'000'000);
  for (const char* bad : {"", "Mon, 06 Nov 1994 08:49:37 GMT", "Sun, 31 Nov 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 08:49:37 GMT junk",
                          "Monday, 06-Nov-94 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT"}) {
    EXPECT_EQ(parse_http_date(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace fetchrelay::time_test
