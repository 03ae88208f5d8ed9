// The /v2 translation as pure functions: a QStash message's path, query and Upstash-* headers
// into the v1 submission (or schedule) the same intake takes. No process, no actors.
#include "app/qstash/message.h"

#include <gtest/gtest.h>

#include "core/qstash.h"

namespace fetchrelay::app::qstash_api::qstash_message_test {
namespace {

constexpr std::int64_t now_ms = 1'764'324'000'000;  // 2025-11-28T10:00:00Z

const config::relay_config& test_config() {
  static const config::relay_config cfg = [] {
    auto loaded = config::load_config_text(
        "storage: {path: /tmp/x}\n"
        "auth: {keys: [{tenant: acme, key: relay_sk_test_1234}]}\n"
        "limits: {max_retries: 20}\n"
        "delivery: {allow_networks: [127.0.0.0/8]}\n"
        "qstash: {enabled: true}\n",
        "test.yaml");
    EXPECT_TRUE(loaded.errors.empty()) << loaded.errors.front().to_string();
    return *loaded.config;
  }();
  return cfg;
}

message_input message(std::string destination, std::vector<http::header_field> headers, std::string body = "b") {
  message_input in;
  in.destination = std::move(destination);
  in.headers = std::move(headers);
  in.body = std::move(body);
  return in;
}

std::variant<actors::submission, bad_request> parse(message_input in) {
  manual_wall_clock clock(now_ms);
  return parse_message(test_config(), clock, "acme", std::move(in));
}

actors::submission accepted(message_input in) {
  auto r = parse(std::move(in));
  if (auto* bad = std::get_if<bad_request>(&r)) ADD_FAILURE() << bad->code << ": " << bad->message;
  return std::holds_alternative<actors::submission>(r) ? std::get<actors::submission>(r) : actors::submission{};
}

bad_request refused(message_input in) {
  auto r = parse(std::move(in));
  EXPECT_TRUE(std::holds_alternative<bad_request>(r));
  return std::holds_alternative<bad_request>(r) ? std::get<bad_request>(r) : bad_request{};
}

qstash::options options_of(const actors::submission& s) {
  auto o = qstash::decode_options(s.qstash);
  EXPECT_TRUE(o.has_value()) << s.qstash;
  return o.value_or(qstash::options{});
}

const std::string target = "http://127.0.0.1:9/hook";

TEST(QstashDestination, KeepsDoubleSlashesAndTheQueryWithoutTokenOrUpstashParameters) {
  auto s = split_destination("https://example.com/a//b", "x=1&qstash_token=secret&upstash-delay=10s&y=two%20words");
  EXPECT_EQ(s.destination, "https://example.com/a//b?x=1&y=two%20words");
  ASSERT_EQ(s.query_headers.size(), 1u);
  EXPECT_EQ(s.query_headers[0].name, "upstash-delay");
  EXPECT_EQ(s.query_headers[0].value, "10s");
  EXPECT_EQ(split_destination("https://example.com", "").destination, "https://example.com");
  EXPECT_EQ(split_destination("https://example.com/p", "qstash_token=t").destination, "https://example.com/p");
  EXPECT_TRUE(is_url_destination("HTTPS://x"));
  EXPECT_FALSE(is_url_destination("my-group"));
  EXPECT_EQ(percent_decode("a%20b+c", true), "a b c");
  EXPECT_EQ(percent_decode("a%20b+c", false), "a b+c");
  EXPECT_EQ(percent_decode("bad%zz%", true), "bad%zz%");
}

TEST(QstashMessage, DefaultsAreQstashs) {
  auto s = accepted(message(target, {{"upstash-method", "POST"}}));
  EXPECT_EQ(s.spec.url, target);
  EXPECT_EQ(s.spec.method, "POST");
  ASSERT_TRUE(s.max_attempts);
  EXPECT_EQ(*s.max_attempts, 4u) << "Upstash-Retries defaults to 3";
  EXPECT_EQ(s.run_at_ms, now_ms);
  EXPECT_TRUE(s.idempotency_key.empty());
  EXPECT_EQ(options_of(s).run_attempts, 4u);
  EXPECT_EQ(s.spec.body, "b");
}

TEST(QstashMessage, TranslatesTheUpstashHeaders) {
  auto s = accepted(message(target, {{"upstash-method", "PUT"},
                                     {"upstash-delay", "10s"},
                                     {"upstash-retries", "2"},
                                     {"upstash-timeout", "1.5s"},
                                     {"upstash-retry-delay", "pow(2, retried) * 1000"},
                                     {"upstash-forward-x-keep", "k"},
                                     {"content-type", "text/plain"},
                                     {"upstash-label", "billing"},
                                     {"upstash-callback", "http://127.0.0.1:9/cb"},
                                     {"upstash-callback-retries", "0"},
                                     {"upstash-callback-forward-x-cb", "c"},
                                     {"upstash-failure-callback", "http://127.0.0.1:9/fcb"},
                                     {"upstash-failure-callback-method", "PATCH"},
                                     {"upstash-telemetry-sdk", "upstash-qstash-js@2.12.0"},
                                     {"accept", "*/*"}}));
  EXPECT_EQ(s.spec.method, "PUT");
  EXPECT_EQ(s.run_at_ms, now_ms + 10'000);
  EXPECT_EQ(*s.max_attempts, 3u);
  EXPECT_EQ(*s.timeout_ms, 1500u);
  EXPECT_EQ(s.callback_url, "http://127.0.0.1:9/cb");
  EXPECT_EQ(s.failure_callback_url, "http://127.0.0.1:9/fcb");
  std::vector<header_pair> want{{"X-Keep", "k"}, {"Content-Type", "text/plain"}};
  EXPECT_EQ(s.spec.headers, want) << "names as QStash writes them; no telemetry, no accept";
  auto o = options_of(s);
  EXPECT_EQ(o.retry_delay, "pow(2, retried) * 1000");
  EXPECT_EQ(o.label, "billing");
  ASSERT_TRUE(o.callback_retries);
  EXPECT_EQ(*o.callback_retries, 0u);
  std::vector<header_pair> cb{{"X-Cb", "c"}};
  EXPECT_EQ(o.callback_headers, cb);
  EXPECT_EQ(o.failure_callback_method, "PATCH");
}

TEST(QstashMessage, NotBeforeIsUnixSeconds) {
  auto s = accepted(message(target, {{"Upstash-Not-Before", std::to_string(now_ms / 1000 + 60)}}));
  EXPECT_EQ(s.run_at_ms, now_ms + 60'000);
  EXPECT_EQ(options_of(s).not_before_ms, now_ms + 60'000);
}

TEST(QstashMessage, HeaderForwardSendsTheRequestsOwnHeadersButNotItsCredentials) {
  auto s = accepted(message(target, {{"upstash-header-forward", "true"},
                                     {"x-trace", "t1"},
                                     {"authorization", "Bearer relay-token"},
                                     {"host", "relay"},
                                     {"content-length", "1"}}));
  std::vector<header_pair> want{{"X-Trace", "t1"}};
  EXPECT_EQ(s.spec.headers, want);
}

TEST(QstashMessage, AGroupOrAQueue) {
  auto g = accepted(message("orders", {}));
  EXPECT_EQ(g.topic, "orders");
  EXPECT_TRUE(g.spec.url.empty());
  auto in = message(target, {});
  in.queue = "emails";
  EXPECT_EQ(accepted(std::move(in)).queue, "emails");
  auto q = accepted(message(target, {{"upstash-queue-name", "q2"}}));
  EXPECT_EQ(q.queue, "q2");
}

TEST(QstashMessage, DeduplicationMatchesRepeatsWhateverTheyCarry) {
  auto a = accepted(message(target, {{"upstash-deduplication-id", "order-1"}}, "one"));
  auto b = accepted(message(target, {{"upstash-deduplication-id", "order-1"}}, "two"));
  EXPECT_EQ(a.idempotency_key, "fetchrelay:qstash:id:order-1");
  EXPECT_EQ(a.idempotency_key, b.idempotency_key);
  EXPECT_EQ(a.fingerprint, b.fingerprint) << "a repeat is never a conflict";
  EXPECT_EQ(options_of(a).dedup_id, "order-1");
  auto c1 = accepted(message(target, {{"upstash-content-based-deduplication", "true"}}, "same"));
  auto c2 = accepted(message(target, {{"upstash-content-based-deduplication", "true"}}, "same"));
  auto c3 = accepted(message(target, {{"upstash-content-based-deduplication", "true"}}, "other"));
  EXPECT_EQ(c1.idempotency_key, c2.idempotency_key);
  EXPECT_NE(c1.idempotency_key, c3.idempotency_key);
  EXPECT_EQ(c1.idempotency_key.rfind("fetchrelay:qstash:content:", 0), 0u);
}

TEST(QstashMessage, RefusalsNameTheUpstashHeaders) {
  EXPECT_NE(refused(message(target, {{"upstash-retry-delay", "pow(2"}})).message.find("Upstash-Retry-Delay"), std::string::npos);
  EXPECT_NE(refused(message(target, {{"upstash-delay", "soon"}})).message.find("Upstash-Delay"), std::string::npos);
  EXPECT_NE(refused(message(target, {{"upstash-method", "BREW"}})).message.find("Upstash-Method"), std::string::npos);
  EXPECT_NE(refused(message(target, {{"upstash-retries", "99"}})).message.find("Upstash-Retries"), std::string::npos);
  EXPECT_NE(refused(message(target, {{"upstash-callback-timeout", "x"}})).message.find("Upstash-Callback-Timeout"),
            std::string::npos);
  EXPECT_EQ(refused(message(target, {{"upstash-flow-control-value", "speed=3"}})).code, "invalid_flow_control");
  EXPECT_EQ(refused(message("", {})).code, "missing_destination");
  auto ftp = refused(message("ftp://x/y", {}));
  EXPECT_EQ(ftp.code, "invalid_url") << "a URL of another scheme, not a group name";
  EXPECT_NE(ftp.message.find("the destination"), std::string::npos) << ftp.message;
  EXPECT_EQ(refused(message("http://10.0.0.1/x", {})).code, "blocked_destination");
  auto ok = accepted(message(target, {{"upstash-flow-control-key", "k"}, {"upstash-flow-control-value", "parallelism=2, rate=10, period=60s"}}));
  EXPECT_EQ(options_of(ok).flow_control_key, "k");
}

TEST(QstashMessage, ControlCharactersNeverReachAForwardedHeader) {
  // Values from a decoded query or batch JSON did not pass the HTTP parser: CR LF would write
  // headers of their own into the request delivered.
  EXPECT_EQ(refused(message(target, {{"upstash-forward-x", "a\r\nHost: internal"}})).code, "invalid_header");
  EXPECT_EQ(refused(message(target, {{"content-type", "text/plain\r\nX-Evil: 1"}})).code, "invalid_header");
  EXPECT_EQ(refused(message(target, {{"upstash-forward-bad name", "v"}})).code, "invalid_header");
  EXPECT_EQ(refused(message(target, {{"upstash-callback-forward-x", "a\nb"}})).code, "invalid_header");
  auto split = split_destination("http://127.0.0.1:9/x", "upstash-forward-x=a%0d%0aEvil:%201");
  auto in = message(split.destination, split.query_headers);
  EXPECT_EQ(refused(std::move(in)).code, "invalid_header");
  auto tab = accepted(message(target, {{"upstash-forward-x", "a\tb"}}));
  EXPECT_EQ(tab.spec.headers[0].value, "a\tb") << "a tab is allowed in a value";
}

TEST(QstashMessage, CallbackTimeoutsAreBoundByThePolicy) {
  EXPECT_EQ(refused(message(target, {{"upstash-callback", "http://127.0.0.1:9/cb"}, {"upstash-callback-timeout", "40d"}})).code,
            "timeout_too_long");
  EXPECT_EQ(refused(message(target, {{"upstash-failure-callback-timeout", "0s"}})).code, "invalid_duration");
  auto ok = accepted(message(target, {{"upstash-callback-timeout", "30s"}}));
  EXPECT_EQ(options_of(ok).callback_timeout_ms, 30'000);
}

TEST(QstashSchedule, TakesCronAndIdAndRefusesWhatFiresSetThemselves) {
  manual_wall_clock clock(now_ms);
  auto made = parse_schedule_message(test_config(), clock, "acme",
                                     message(target, {{"upstash-cron", "*/10 * * * * *"}, {"upstash-retries", "1"}}));
  ASSERT_TRUE(std::holds_alternative<schedule_state>(made)) << std::get<bad_request>(made).message;
  const auto& s = std::get<schedule_state>(made);
  EXPECT_EQ(s.id.rfind("scd_", 0), 0u);
  EXPECT_EQ(s.cron, "*/10 * * * * *");
  EXPECT_EQ(*s.request.max_attempts, 2u);
  ASSERT_FALSE(s.request.qstash.empty()) << "its fires are /v2 jobs";
  EXPECT_EQ(qstash::decode_options(s.request.qstash)->run_attempts, 2u) << "a DLQ retry of a fire has its retries";
  auto named = parse_schedule_message(test_config(), clock, "acme",
                                      message(target, {{"upstash-cron", "0 9 * * 1"}, {"upstash-schedule-id", "weekly"}}));
  EXPECT_EQ(std::get<schedule_state>(named).id, "weekly");
  auto no_cron = parse_schedule_message(test_config(), clock, "acme", message(target, {}));
  EXPECT_EQ(std::get<bad_request>(no_cron).code, "missing_cron");
  auto bad_cron = parse_schedule_message(test_config(), clock, "acme", message(target, {{"upstash-cron", "61 * * * *"}}));
  EXPECT_NE(std::get<bad_request>(bad_cron).message.find("Upstash-Cron"), std::string::npos);
  auto delayed = parse_schedule_message(test_config(), clock, "acme",
                                        message(target, {{"upstash-cron", "* * * * *"}, {"upstash-delay", "5s"}}));
  EXPECT_EQ(std::get<bad_request>(delayed).code, "not_for_schedules");
  auto dedup = parse_schedule_message(test_config(), clock, "acme",
                                      message(target, {{"upstash-cron", "* * * * *"}, {"upstash-deduplication-id", "x"}}));
  EXPECT_EQ(std::get<bad_request>(dedup).code, "not_for_schedules");
}

}  // namespace
}  // namespace fetchrelay::app::qstash_api::qstash_message_test
