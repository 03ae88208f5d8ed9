// The destinations board (GET /v1/destinations): per origin and tenant, on explicit times.
#include <gtest/gtest.h>

#include "core/destinations.h"
#include "core/job_json.h"
#include "core/metrics.h"

namespace fetchrelay::destinations_test {
namespace {

constexpr std::int64_t t0 = 1'800'000'000'000;  // a whole minute
constexpr std::int64_t minute = 60'000;

TEST(DestinationBoard, CountsAttemptsFailuresAndDeferralsPerTenantOverTheLastMinutes) {
  destination_board board;
  auto a = board.origin("http://a:80");
  a->started("t1", t0);
  EXPECT_EQ(board.origin("http://a:80"), a) << "one entry per origin";
  bool more = true;
  auto v = board.view("t1", t0, "", 10, more);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_FALSE(more);
  EXPECT_EQ(v[0].in_flight, 1);
  a->finished("t1", false, "503", t0 + 10);
  a->started("t1", t0 + 20);
  a->finished("t1", true, "", t0 + 30);
  a->deferred("t1", "rate_limit", t0 + 40);
  a->deferred("t1", "circuit_breaker", t0 + 50);
  v = board.view("t1", t0 + 60, "", 10, more);
  EXPECT_EQ(v[0].in_flight, 0);
  EXPECT_EQ(v[0].attempts_recent, 2u);
  EXPECT_EQ(v[0].failures_recent, 1u);
  EXPECT_EQ(v[0].deferrals_recent, 2u);
  EXPECT_EQ(v[0].rate_limit_waits_recent, 1u);
  EXPECT_EQ(v[0].last_error, "503");
  EXPECT_EQ(v[0].last_error_ms, t0 + 10);
  EXPECT_TRUE(board.view("t2", t0, "", 10, more).empty()) << "another tenant sees none of t1's origins";

  // Six minutes on the recent figures are gone; the totals stay.
  v = board.view("t1", t0 + (origin_stats::window_minutes + 1) * minute, "", 10, more);
  EXPECT_EQ(v[0].attempts_recent, 0u);
  EXPECT_EQ(v[0].attempts_total, 2u);
  EXPECT_EQ(v[0].failures_total, 1u);
  // A bucket reused for a later minute starts from zero.
  a->finished("t1", false, "timeout: deadline", t0 + (origin_stats::window_minutes + 1) * minute);
  v = board.view("t1", t0 + (origin_stats::window_minutes + 1) * minute, "", 10, more);
  EXPECT_EQ(v[0].attempts_recent, 1u);
  EXPECT_EQ(v[0].failures_recent, 1u);
}

TEST(DestinationBoard, ShowsTheBreakerStateByPolicyFromThePluginGauge) {
  destination_board board;
  auto a = board.origin("http://a:80");
  a->started("t1", t0);
  a->plugin_gauge("guarded", "circuit_breaker_state", 1);
  a->plugin_gauge("other", "rate_limit_something", 7);
  bool more = false;
  auto v = board.view("t1", t0, "", 10, more);
  EXPECT_EQ(v[0].breakers, (std::map<std::string, std::string>{{"guarded", "open"}}));
  a->plugin_gauge("guarded", "circuit_breaker_state", 2);
  EXPECT_EQ(board.view("t1", t0, "", 10, more)[0].breakers.at("guarded"), "half_open");
  a->plugin_gauge("guarded", "circuit_breaker_state", 0);
  EXPECT_EQ(board.view("t1", t0, "", 10, more)[0].breakers.at("guarded"), "closed");
}

TEST(DestinationBoard, PagesInOriginOrderWithACursor) {
  destination_board board;
  for (const char* o : {"http://c:80", "http://a:80", "http://b:80", "http://d:80"}) board.origin(o)->started("t1", t0);
  board.origin("http://bb:80")->started("t2", t0);  // not t1's: skipped, never counted in a page
  bool more = false;
  auto p1 = board.view("t1", t0, "", 2, more);
  ASSERT_EQ(p1.size(), 2u);
  EXPECT_TRUE(more);
  EXPECT_EQ(p1[0].origin, "http://a:80");
  EXPECT_EQ(p1[1].origin, "http://b:80");
  auto p2 = board.view("t1", t0, p1.back().origin, 2, more);
  ASSERT_EQ(p2.size(), 2u);
  EXPECT_EQ(p2[0].origin, "http://c:80");
  EXPECT_EQ(p2[1].origin, "http://d:80");
  EXPECT_FALSE(more);
}

TEST(JobJson, ShowsTheRequestWithSecretsMaskedAndAFailedAttemptsResponseExcerpt) {
  job_state s;
  s.id = "job_1";
  s.status = job_status::retrying;
  job_spec spec{"POST", "http://x/y",
                {{"Authorization", "Bearer sk_live"}, {"X-Api-Key", "k"}, {"Cookie", "c=1"}, {"X-Trace", "t-1"},
                 {"Proxy-Authorization", "p"}, {"X-Session-Token", "tok"}, {"X-Client-Secret", "s"},
                 {"X-Authorization", "xa"}, {"X-Auth-User", "u"}, {"X-Db-Password", "pw"}, {"X-Hub-Signature", "sig"},
                 {"X-Credentials", "cr"}, {"Set-Cookie", "sc"}, {"X-Request-Id", "r-1"}},
                std::string(70 * 1024, 'b')};
  std::vector<attempt_record> attempts{{1, t0, 12, 503, "", "upstream down"}};
  auto j = job_json(s, attempts, &spec);
  const auto& h = j["request"]["headers"];
  for (const char* secret : {"Authorization", "X-Api-Key", "Cookie", "Proxy-Authorization", "X-Session-Token", "X-Client-Secret",
                             "X-Authorization", "X-Auth-User", "X-Db-Password", "X-Hub-Signature", "X-Credentials", "Set-Cookie"}) {
    EXPECT_EQ(h[secret], "***") << secret;
  }
  EXPECT_EQ(h["X-Trace"], "t-1");
  EXPECT_EQ(h["X-Request-Id"], "r-1");
  EXPECT_EQ(j.dump().find("sk_live"), std::string::npos);
  EXPECT_EQ(j["request"]["body_bytes"], 70 * 1024);
  EXPECT_EQ(j["request"]["body_truncated"], true);
  EXPECT_EQ(j["attempts"][0]["response_excerpt"], "upstream down");
  EXPECT_FALSE(job_json(s, attempts).contains("request")) << "lists show no request";
}

TEST(MetricsHistory, GivesEachMinuteItsAttemptsAndLatenessFromSnapshots) {
  relay_metrics m;
  metrics_history h;
  EXPECT_TRUE(h.minutes(t0, m).empty()) << "nothing before the first sample";
  h.sample(t0 + 5'000, m);
  m.attempts[static_cast<size_t>(attempt_class::s2xx)] += 7;
  m.attempts[static_cast<size_t>(attempt_class::s5xx)] += 2;
  for (int i = 0; i < 99; ++i) m.lateness.observe(3);  // the 5 ms bucket
  m.lateness.observe(400);                             // the 500 ms bucket: the 1 %
  h.sample(t0 + 30'000, m);                            // same minute: kept as it was
  h.sample(t0 + minute + 2'000, m);
  m.attempts[static_cast<size_t>(attempt_class::timeout)] += 1;
  auto rows = h.minutes(t0 + minute + 9'000, m);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at_ms, t0);
  EXPECT_EQ(rows[0].attempts, 9u);
  EXPECT_EQ(rows[0].delivered, 7u);
  EXPECT_EQ(rows[0].failed, 2u);
  EXPECT_EQ(rows[0].lateness_p99_ms, 5.0) << "99 of 100 at or under 5 ms";
  EXPECT_EQ(rows[1].attempts, 1u) << "the current minute so far";
  EXPECT_EQ(rows[1].failed, 1u);
  EXPECT_FALSE(rows[1].lateness_p99_ms);
  for (int i = 2; i < 70; ++i) h.sample(t0 + i * minute, m);
  EXPECT_EQ(h.minutes(t0 + 70 * minute, m).size(), metrics_history::kept_minutes);
}

TEST(MetricsHistory, BucketQuantilePicksTheBucketOfTheRank) {
  std::vector<double> bounds{1, 10, 100};
  EXPECT_FALSE(bucket_quantile(bounds, {0, 0, 0, 0}, 0.99));
  EXPECT_EQ(bucket_quantile(bounds, {50, 49, 1, 0}, 0.99), 10.0);
  EXPECT_EQ(bucket_quantile(bounds, {50, 48, 2, 0}, 0.99), 100.0);
  EXPECT_EQ(bucket_quantile(bounds, {0, 0, 0, 3}, 0.5), 100.0) << "+Inf shows as the last bound";
}

}  // namespace
}  // namespace fetchrelay::destinations_test
