// POST /v1/fetch's validation as a pure function: one test per error code (docs/api.md), then
// what a valid submission carries. No process, no actors.
#include "app/submission.h"

#include <gtest/gtest.h>

namespace fetchrelay::app::submission_test {
namespace {

constexpr std::int64_t now_ms = 1'764'324'000'000;  // 2025-11-28T10:00:00Z

const config::relay_config& test_config() {
  static const config::relay_config cfg = [] {
    auto loaded = config::load_config_text(
        "storage: {path: /tmp/x}\n"
        "auth: {keys: [{tenant: acme, key: relay_sk_test_1234}]}\n"
        "limits: {max_delay: 30d, max_retries: 20}\n"
        "delivery: {allow_networks: [127.0.0.0/8]}\n"
        "policies:\n  default: {}\n  slow: {timeout: 30s, max_timeout: 60s}\n"
        "routes:\n  - {match: {host: \"*.billing.example\", path_prefix: /hooks}, policy: slow}\n",
        "test.yaml");
    EXPECT_TRUE(loaded.errors.empty()) << loaded.errors.front().to_string();
    return *loaded.config;
  }();
  return cfg;
}

/// A POST /v1/fetch with these headers ("Name: value" lines) and body.
http::request request(std::vector<std::pair<std::string, std::string>> headers, std::string body = "{}") {
  http::request r;
  r.method = "POST";
  r.target = "/v1/fetch";
  for (auto& [n, v] : headers) r.headers.push_back({n, v});
  r.body = std::move(body);
  return r;
}

std::variant<actors::submission, bad_request> parse(std::vector<std::pair<std::string, std::string>> headers,
                                                   std::string body = "{}") {
  manual_wall_clock clock(now_ms);
  auto req = request(std::move(headers), std::move(body));
  return parse_submission(test_config(), clock, "acme", req);
}

/// The error code of a refused submission ("" if it was accepted), checked to be a 400.
std::string code_of(std::vector<std::pair<std::string, std::string>> headers) {
  auto r = parse(std::move(headers));
  auto* bad = std::get_if<bad_request>(&r);
  if (!bad) return "";
  EXPECT_EQ(bad->status, 400) << bad->code;
  EXPECT_FALSE(bad->message.empty());
  return bad->code;
}

const std::pair<std::string, std::string> url{"X-Fetch-Url", "https://api.example.com/hooks/order"};

TEST(Submission, MissingUrl) {
  EXPECT_EQ(code_of({}), "missing_url");
  EXPECT_EQ(code_of({{"X-Fetch-Url", ""}}), "missing_url");
}

TEST(Submission, UrlTooLong) {
  EXPECT_EQ(code_of({{"X-Fetch-Url", "https://a.example/" + std::string(2040, 'x')}}), "url_too_long");
}

TEST(Submission, InvalidUrl) {
  for (const char* bad : {"ftp://a.example/", "not a url", "http://[::g]/", "http://a.example/\xff", "http://a:b:c/"}) {
    EXPECT_EQ(code_of({{"X-Fetch-Url", bad}}), "invalid_url") << bad;
  }
}

TEST(Submission, BlockedDestination) {
  EXPECT_EQ(code_of({{"X-Fetch-Url", "http://10.1.2.3/"}}), "blocked_destination");
  EXPECT_EQ(code_of({{"X-Fetch-Url", "http://[::ffff:0:a01:203]/"}}), "blocked_destination");
  EXPECT_EQ(code_of({url, {"X-Callback", "http://169.254.169.254/"}}), "blocked_destination");
  EXPECT_EQ(code_of({{"X-Fetch-Url", "http://127.0.0.1:9/"}}), "") << "allowed by delivery.allow_networks";
}

TEST(Submission, InvalidMethod) {
  EXPECT_EQ(code_of({url, {"X-Fetch-Method", "TRACE"}}), "invalid_method");
  EXPECT_EQ(code_of({url, {"X-Fetch-Method", "get"}}), "invalid_method");
}

TEST(Submission, DelayAndNotBefore) {
  EXPECT_EQ(code_of({url, {"X-Delay", "1m"}, {"X-Not-Before", "1764324060"}}), "delay_and_not_before");
}

TEST(Submission, InvalidDelay) {
  EXPECT_EQ(code_of({url, {"X-Delay", "soon"}}), "invalid_delay");
  EXPECT_EQ(code_of({url, {"X-Delay", "-5s"}}), "invalid_delay");
}

TEST(Submission, DelayTooLong) {
  EXPECT_EQ(code_of({url, {"X-Delay", "31d"}}), "delay_too_long");
  EXPECT_EQ(code_of({url, {"X-Not-Before", "2026-01-01T00:00:00Z"}}), "delay_too_long");
}

TEST(Submission, InvalidNotBefore) {
  EXPECT_EQ(code_of({url, {"X-Not-Before", "2025-02-30T10:00:00Z"}}), "invalid_not_before");
  EXPECT_EQ(code_of({url, {"X-Not-Before", "tomorrow"}}), "invalid_not_before");
}

TEST(Submission, UnknownPolicy) { EXPECT_EQ(code_of({url, {"X-Policy", "nope"}}), "unknown_policy"); }

TEST(Submission, InvalidRetries) {
  for (const char* bad : {"-1", "21", "three", "", "99999999"}) {
    EXPECT_EQ(code_of({url, {"X-Retries", bad}}), "invalid_retries") << bad;
  }
}

TEST(Submission, InvalidTimeout) {
  EXPECT_EQ(code_of({url, {"X-Timeout", "0s"}}), "invalid_timeout");
  EXPECT_EQ(code_of({url, {"X-Timeout", "fast"}}), "invalid_timeout");
}

TEST(Submission, TimeoutTooLong) {
  EXPECT_EQ(code_of({url, {"X-Timeout", "11m"}}), "timeout_too_long");  // default max_timeout 10m
  EXPECT_EQ(code_of({url, {"X-Policy", "slow"}, {"X-Timeout", "61s"}}), "timeout_too_long");
}

TEST(Submission, InvalidCallback) {
  EXPECT_EQ(code_of({url, {"X-Callback", "not a url"}}), "invalid_callback");
  EXPECT_EQ(code_of({url, {"X-Failure-Callback", "http://a.example/\xfe"}}), "invalid_callback");
  EXPECT_EQ(code_of({url, {"X-Callback", "https://a.example/" + std::string(2040, 'c')}}), "invalid_callback");
}

TEST(Submission, InvalidIdempotencyKey) {
  EXPECT_EQ(code_of({url, {"X-Idempotency-Key", ""}}), "invalid_idempotency_key");
  EXPECT_EQ(code_of({url, {"X-Idempotency-Key", std::string(257, 'k')}}), "invalid_idempotency_key");
}

TEST(Submission, InvalidHeader) {
  for (const char* name : {"X-Fetch-Method", "X-Delay", "X-Not-Before", "X-Policy", "X-Retries", "X-Timeout",
                           "X-Idempotency-Key"}) {
    EXPECT_EQ(code_of({url, {name, "v\xffv"}}), "invalid_header") << name;
    EXPECT_EQ(code_of({url, {name, "v\x01"}}), "invalid_header") << name;
  }
  EXPECT_EQ(code_of({url, {"X-Fetch-Forward-", "x"}}), "invalid_header");
}

TEST(Submission, DuplicateHeader) {
  EXPECT_EQ(code_of({url, url}), "duplicate_header");
  EXPECT_EQ(code_of({url, {"X-Delay", "1s"}, {"x-delay", "1s"}}), "duplicate_header");
  EXPECT_EQ(code_of({url, {"X-Fetch-Forward-A", "1"}, {"X-Fetch-Forward-A", "2"}}), "") << "forwarded as given";
}

TEST(Submission, AValidOneCarriesWhatWasAskedFor) {
  auto r = parse({{"X-Fetch-Url", "https://eu.billing.example/hooks/paid?x=1"},
                  {"X-Fetch-Method", "PUT"},
                  {"X-Delay", "90s"},
                  {"X-Retries", "4"},
                  {"X-Timeout", "20s"},
                  {"X-Callback", "https://api.example.com/done"},
                  {"X-Idempotency-Key", "order-1"},
                  {"X-Fetch-Forward-Authorization", "Bearer t"},
                  {"X-Fetch-Forward-Connection", "close"},  // hop-by-hop: never forwarded
                  {"Content-Type", "application/json"}},
                 R"({"paid":true})");
  ASSERT_TRUE(std::holds_alternative<actors::submission>(r)) << std::get<bad_request>(r).code;
  const auto& s = std::get<actors::submission>(r);
  EXPECT_EQ(s.tenant, "acme");
  EXPECT_EQ(s.spec.method, "PUT");
  EXPECT_EQ(s.spec.url, "https://eu.billing.example/hooks/paid?x=1");
  EXPECT_EQ(s.policy, "slow") << "the route for *.billing.example/hooks";
  EXPECT_EQ(s.run_at_ms, now_ms + 90'000);
  EXPECT_EQ(s.max_attempts, 5u);
  EXPECT_EQ(s.timeout_ms, 20'000u);
  EXPECT_EQ(s.callback_url, "https://api.example.com/done");
  EXPECT_EQ(s.idempotency_key, "order-1");
  EXPECT_EQ(s.fingerprint.size(), 32u);
  ASSERT_EQ(s.spec.headers.size(), 2u);
  EXPECT_EQ(s.spec.headers[0].name, "Authorization");
  EXPECT_EQ(s.spec.headers[1].name, "Content-Type");
  EXPECT_EQ(s.spec.body, R"({"paid":true})");
  EXPECT_EQ(std::get<actors::submission>(parse({{"X-Fetch-Url", "https://billing.example/hooks/x"}})).policy, "default")
      << "*.billing.example does not match billing.example itself";
}

TEST(Submission, TheFingerprintCoversMethodUrlForwardedHeadersAndBody) {
  auto fp = [](std::vector<std::pair<std::string, std::string>> h, std::string body) {
    h.emplace_back("X-Idempotency-Key", "k");
    return std::get<actors::submission>(parse(std::move(h), std::move(body))).fingerprint;
  };
  std::string base = fp({url}, "a");
  EXPECT_EQ(base, fp({url}, "a"));
  EXPECT_NE(base, fp({url}, "b"));
  EXPECT_NE(base, fp({{"X-Fetch-Url", "https://api.example.com/hooks/other"}}, "a"));
  EXPECT_NE(base, fp({url, {"X-Fetch-Method", "PUT"}}, "a"));
  EXPECT_NE(base, fp({url, {"X-Fetch-Forward-A", "1"}}, "a"));
  EXPECT_EQ(base, fp({url, {"X-Delay", "5m"}}, "a")) << "when it runs is not what it asks for";
}

TEST(NotBefore, UnixSecondsAndRfc3339) {
  EXPECT_EQ(parse_not_before("1764324000"), 1'764'324'000'000);
  EXPECT_EQ(parse_not_before("2025-11-28T10:00:00Z"), 1'764'324'000'000);
  EXPECT_EQ(parse_not_before("2025-11-28T10:00:00.25Z"), 1'764'324'000'250);
  EXPECT_EQ(parse_not_before("2025-11-28T11:30:00+01:30"), 1'764'324'000'000);
  EXPECT_EQ(parse_not_before("2025-11-28T08:00:00-02:00"), 1'764'324'000'000);
  for (const char* bad : {"", "tomorrow", "2025-11-28", "2025-11-28T10:00:00", "2025-11-28T10:00:00Zx",
                          "2025-11-28T10:00:00.Z", "1234567890123"}) {
    EXPECT_EQ(parse_not_before(bad), std::nullopt) << bad;
  }
}

TEST(NotBefore, DatesAreCheckedAgainstTheCalendar) {
  // strptime took these and timegm rolled them over: accepted, then due at another time.
  for (const char* bad : {"2026-02-30T10:00:00Z", "2026-02-29T10:00:00Z", "2026-04-31T00:00:00Z",
                          "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-01-00T00:00:00Z",
                          "2026-01-01T24:00:00Z", "2026-01-01T23:60:00Z", "2026-01-01T23:59:60Z",
                          "2026-01-01T10:00:00+25:00", "2026-01-01T10:00:00+01:60", "2026-01-01T10:00:00+0100",
                          " 2026-01-01T10:00:00Z", "2026-1-01T10:00:00Z", "2026-01-01T1:00:00Z",
                          "2026-01-01T10:00:00+01", "2026-01-01X10:00:00Z"}) {
    EXPECT_EQ(parse_not_before(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(parse_not_before("2024-02-29T00:00:00Z"), 1'709'164'800'000);  // a leap day
  EXPECT_EQ(parse_not_before("2000-02-29T00:00:00Z"), 951'782'400'000);
  EXPECT_EQ(parse_not_before("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_not_before("2025-11-28t10:00:00z"), 1'764'324'000'000);
  EXPECT_EQ(parse_not_before("2025-11-28T10:00:00.123456Z"), 1'764'324'000'123);
}

}  // namespace
}  // namespace fetchrelay::app::submission_test
