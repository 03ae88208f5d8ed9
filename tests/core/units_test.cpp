#include "core/units.h"

#include <gtest/gtest.h>

namespace fetchrelay::units_test {
namespace {

struct duration_case {
  const char* text;
  long long ms;         // expected value when error is empty
  const char* error;    // expected message, or "" for success
  bool bare = false;    // bare_number_is_seconds
};

const duration_case duration_cases[] = {
    {"500ms", 500, ""},
    {"0s", 0, ""},
    {"0ms", 0, ""},
    {"30s", 30'000, ""},
    {"5m", 300'000, ""},
    {"24h", 86'400'000, ""},
    {"7d", 604'800'000, ""},
    {"1d2h30m", 95'400'000, ""},
    {"1h1ms", 3'600'001, ""},
    {"2d3h4m5s6ms", 183'845'006, ""},
    {"90", 90'000, "", true},
    {"0", 0, "", true},
    {"106751991167d", 106751991167LL * 86'400'000, ""},  // just fits in int64 ms
    // errors
    {"", 0, "empty"},
    {"90", 0, "missing unit (use ms, s, m, h or d, e.g. 30s)"},
    {"-5s", 0, "negative durations are not allowed"},
    {"-5", 0, "negative durations are not allowed", true},
    {"7x", 0, "unknown unit \"x\" (use ms, s, m, h or d)"},
    {"10sec", 0, "unknown unit \"sec\" (use ms, s, m, h or d)"},
    {"1w", 0, "unknown unit \"w\" (use ms, s, m, h or d)"},
    {"5M", 0, "unknown unit \"M\" (use ms, s, m, h or d)"},
    {"s", 0, "missing number before unit \"s\""},
    {"1ds", 0, "unknown unit \"ds\" (use ms, s, m, h or d)"},
    {"1d s", 0, "unexpected character ' '"},
    {"30m1d", 0, "units must go from largest to smallest, each once"},
    {"1s1s", 0, "units must go from largest to smallest, each once"},
    {"1.5s", 0, "fractions are not supported; use a smaller unit (e.g. 1500ms)"},
    {" 5s", 0, "unexpected character ' '"},
    {"5s ", 0, "unexpected character ' '"},
    {"5 s", 0, "unexpected character ' '"},
    {"+5s", 0, "unexpected character '+'"},
    {"5s2", 0, "missing unit (use ms, s, m, h or d, e.g. 30s)"},
    {"106751991168d", 0, "too large"},                 // overflows int64 ms
    {"99999999999999999999s", 0, "too large"},         // overflows uint64 digits
    {"9223372036854775807s", 0, "too large"},
    {"106751991167d8h", 0, "too large"},               // the sum overflows
    {"9223372036854776", 0, "too large", true},
};

TEST(ParseDuration, Table) {
  for (const auto& c : duration_cases) {
    SCOPED_TRACE(std::string("input: \"") + c.text + "\"");
    auto r = parse_duration(c.text, {c.bare});
    if (std::string(c.error).empty()) {
      ASSERT_TRUE(r.is_ok()) << r.error().message();
      EXPECT_EQ(r->count(), c.ms);
    } else {
      ASSERT_FALSE(r.is_ok()) << "parsed as " << r->count() << "ms";
      EXPECT_EQ(r.error().code(), status_code::invalid_argument);
      EXPECT_EQ(r.error().message(), c.error);
    }
  }
}

TEST(FormatDuration, ShortestCompoundForm) {
  EXPECT_EQ(format_duration(millis(0)), "0s");
  EXPECT_EQ(format_duration(millis(500)), "500ms");
  EXPECT_EQ(format_duration(millis(90'000)), "1m30s");
  EXPECT_EQ(format_duration(millis(86'400'000)), "1d");
  EXPECT_EQ(format_duration(millis(95'400'000)), "1d2h30m");
  EXPECT_EQ(format_duration(millis(1'001)), "1s1ms");
}

TEST(FormatDuration, RoundTripsThroughTheParser) {
  for (long long ms : {0LL, 1LL, 999LL, 1000LL, 61'001LL, 95'400'000LL, 31'536'000'000LL}) {
    auto r = parse_duration(format_duration(millis(ms)));
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r->count(), ms);
  }
}

struct size_case {
  const char* text;
  unsigned long long bytes;
  const char* error;
};

const size_case size_cases[] = {
    {"0", 0, ""},
    {"512", 512, ""},
    {"512B", 512, ""},
    {"1KiB", 1024, ""},
    {"1MiB", 1 << 20, ""},
    {"32KiB", 32 << 10, ""},
    {"2GiB", 2ULL << 30, ""},
    {"1TiB", 1ULL << 40, ""},
    {"1KB", 1000, ""},
    {"1MB", 1'000'000, ""},
    {"3GB", 3'000'000'000ULL, ""},
    {"16777215TiB", 16777215ULL << 40, ""},
    {"18446744073709551615", 18446744073709551615ULL, ""},
    // errors
    {"", 0, "empty"},
    {"-1", 0, "negative sizes are not allowed"},
    {"-1MiB", 0, "negative sizes are not allowed"},
    {"1mb", 0, "unknown unit \"mb\" (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)"},
    {"1PiB", 0, "unknown unit \"PiB\" (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)"},
    {"1 MiB", 0, "unexpected character ' '"},
    {"MiB", 0, "missing number before the unit"},
    {"1.5MiB", 0, "fractions are not supported; use a smaller unit (e.g. 1536KiB)"},
    {"16777216TiB", 0, "too large"},
    {"18446744073709551616", 0, "too large"},
    {"20000000000GB", 0, "too large"},
};

TEST(ParseSize, Table) {
  for (const auto& c : size_cases) {
    SCOPED_TRACE(std::string("input: \"") + c.text + "\"");
    auto r = parse_size(c.text);
    if (std::string(c.error).empty()) {
      ASSERT_TRUE(r.is_ok()) << r.error().message();
      EXPECT_EQ(*r, c.bytes);
    } else {
      ASSERT_FALSE(r.is_ok()) << "parsed as " << *r;
      EXPECT_EQ(r.error().message(), c.error);
    }
  }
}

TEST(FormatSize, ExactBinaryUnits) {
  EXPECT_EQ(format_size(0), "0B");
  EXPECT_EQ(format_size(1000), "1000B");
  EXPECT_EQ(format_size(1024), "1KiB");
  EXPECT_EQ(format_size(1 << 20), "1MiB");
  EXPECT_EQ(format_size(1536), "1536B");  // 1.5KiB has no exact binary form
  EXPECT_EQ(format_size(3ULL << 30), "3GiB");
}

}  // namespace
}  // namespace fetchrelay::units_test
