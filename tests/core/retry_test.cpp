#include "core/retry.h"

#include <gtest/gtest.h>

namespace fetchrelay::retry_test {
namespace {

TEST(Backoff, ScheduleIsFollowedAndItsLastEntryRepeats) {
  retry_policy p;
  p.schedule = {millis(5'000), millis(300'000), millis(1'800'000)};
  EXPECT_EQ(backoff_delay(p, 1), millis(5'000));
  EXPECT_EQ(backoff_delay(p, 2), millis(300'000));
  EXPECT_EQ(backoff_delay(p, 3), millis(1'800'000));
  EXPECT_EQ(backoff_delay(p, 4), millis(1'800'000));
  EXPECT_EQ(backoff_delay(p, 50), millis(1'800'000));
}

TEST(Backoff, ExponentialGrowsByFactorUpToMax) {
  retry_policy p;
  p.exponential = true;
  p.base = millis(1'000);
  p.factor = 2;
  p.max = millis(10'000);
  EXPECT_EQ(backoff_delay(p, 1), millis(1'000));
  EXPECT_EQ(backoff_delay(p, 2), millis(2'000));
  EXPECT_EQ(backoff_delay(p, 4), millis(8'000));
  EXPECT_EQ(backoff_delay(p, 5), millis(10'000));
  EXPECT_EQ(backoff_delay(p, 5000), millis(10'000));  // pow overflows to inf: still max
}

TEST(Jitter, StaysWithinItsBounds) {
  EXPECT_EQ(apply_jitter(millis(10'000), 0.2, 0.0), millis(8'000));
  EXPECT_EQ(apply_jitter(millis(10'000), 0.2, 0.5), millis(10'000));
  EXPECT_EQ(apply_jitter(millis(10'000), 0.2, 0.999999), millis(12'000));
  EXPECT_EQ(apply_jitter(millis(10'000), 0.0, 0.7), millis(10'000));
  for (double r = 0; r < 1; r += 0.01) {
    auto d = apply_jitter(millis(5'000), 0.2, r);
    EXPECT_GE(d, millis(4'000));
    EXPECT_LE(d, millis(6'000));
  }
}

TEST(RetryAfter, SecondsDatesAndCaps) {
  const std::int64_t now = 784'111'777'000;  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(parse_retry_after("120", now), millis(120'000));
  EXPECT_EQ(parse_retry_after(" 0 ", now), millis(0));
  EXPECT_EQ(parse_retry_after("999999", now), max_retry_after);
  EXPECT_EQ(parse_retry_after("99999999999999999999999", now), max_retry_after);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now), millis(60'000));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), millis(0));
  EXPECT_EQ(parse_retry_after("Mon, 07 Nov 1994 12:00:00 GMT", now), max_retry_after);
  EXPECT_EQ(parse_retry_after("soon", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("12s", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("-5", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("", now), std::nullopt);
}

TEST(Classify, Table) {
  retry_policy p;  // non_retryable [410]
  struct {
    attempt_outcome o;
    attempt_verdict v;
  } cases[] = {
      {{200}, attempt_verdict::delivered},
      {{204}, attempt_verdict::delivered},
      {{299}, attempt_verdict::delivered},
      {{301}, attempt_verdict::retry},   // redirects are not followed and count as failures
      {{400}, attempt_verdict::retry},
      {{404}, attempt_verdict::retry},
      {{410}, attempt_verdict::fail},
      {{429}, attempt_verdict::retry},
      {{500}, attempt_verdict::retry},
      {{503}, attempt_verdict::retry},
      {{0}, attempt_verdict::retry},     // network error, timeout, TLS
      {{500, false, true}, attempt_verdict::fail},   // X-Fetch-No-Retry
      {{200, false, true}, attempt_verdict::delivered},
      {{0, true}, attempt_verdict::fail},            // blocked by the SSRF guard
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.o.status);
    EXPECT_EQ(classify(p, c.o).verdict, c.v);
  }
  EXPECT_EQ(classify(p, {410}).reason, "status 410 is not retried (policy non_retryable)");
}

}  // namespace
}  // namespace fetchrelay::retry_test
