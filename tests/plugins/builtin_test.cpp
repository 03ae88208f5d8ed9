// The built-in plugins (signing, rate_limit, circuit_breaker), loaded from build/plugins as the
// relay loads them, driven through the chain runner with an injected clock and randomness.
#include <gtest/gtest.h>

#include "plugins/host/plugin_host.h"

namespace fetchrelay::plugins::builtin_test {
namespace {

const std::string builtin_dir = FETCHRELAY_BUILTIN_PLUGIN_DIR;

class Builtin : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = registry::load({"signing", "rate_limit", "circuit_breaker"}, {builtin_dir});
    ASSERT_TRUE(r.is_ok()) << r.error().message();
    reg_ = r.value();
  }

  /// Problems found in one pipeline block, as the config check reports them.
  std::vector<std::string> check(const std::string& plugin, const std::string& block_json) {
    std::map<std::string, std::vector<config::plugin_step>> pipelines;
    pipelines["default"] = {{plugin, config::json::parse(block_json)}};
    std::vector<config::config_error> errors;
    reg_->check(pipelines, errors);
    std::vector<std::string> out;
    for (const auto& e : errors) out.push_back(e.to_string());
    return out;
  }

  std::unique_ptr<chain> make(const std::string& plugin, const std::string& block_json,
                              std::shared_ptr<shared_tokens> tokens = nullptr) {
    services svc{clock_, [this] { return random_; }, metrics_};
    svc.tokens = std::move(tokens);
    auto c = chain::create(*reg_, "default", {{plugin, config::json::parse(block_json)}}, std::move(svc));
    EXPECT_TRUE(c.is_ok()) << c.error().message();
    return c.is_ok() ? std::move(c.value()) : nullptr;
  }

  chain::verdict attempt(chain& c, const std::string& job, attempt_data* keep = nullptr) {
    attempt_data a;
    a.job_id = job;
    a.body = body_;
    auto v = c.on_attempt(a);
    if (keep) *keep = a;
    return v;
  }

  void outcome(chain& c, const std::string& job, int status, std::int64_t retry_after = -1, std::string error = "") {
    attempt_data a;
    a.job_id = job;
    c.on_outcome(a, {status, std::move(error), retry_after, 5}, 1);
  }

  void at(std::int64_t ms) { clock_->set(ms); }

  std::shared_ptr<const registry> reg_;
  std::shared_ptr<manual_wall_clock> clock_ = std::make_shared<manual_wall_clock>(0);
  std::shared_ptr<relay_metrics> metrics_ = std::make_shared<relay_metrics>();
  std::uint64_t random_ = 0;  // random_unit() == 0
  std::string body_ = "{}";
};

using strings = std::vector<std::string>;
const std::string p = "policies.default.pipeline[0].";

// -- signing ----------------------------------------------------------------------------------

TEST_F(Builtin, SigningConfigAcceptsAGoodBlockAndNamesEachBadField) {
  EXPECT_EQ(check("signing", R"({"secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]})"), strings{});
  EXPECT_EQ(check("signing", R"({"scheme": "hmac-sha256", "secrets": ["plain"], "header": "X-Sig"})"), strings{});
  EXPECT_EQ(check("signing", R"({})"), strings{p + "signing.secrets: is required but missing"});
  EXPECT_EQ(check("signing", R"({"secrets": []})"), strings{p + "signing.secrets: must have at least one entry"});
  EXPECT_EQ(check("signing", R"({"secrets": ["s"], "scheme": "rsa"})"),
            strings{p + "signing.scheme: expected one of standard-webhooks, hmac-sha256; got \"rsa\""});
  EXPECT_EQ(check("signing", R"({"secrets": ["plain-not-whsec"]})"),
            strings{p + "signing: secrets[0]: standard-webhooks secrets look like whsec_<base64>"});
  EXPECT_EQ(check("signing", R"({"secrets": ["whsec_***"]})"),
            strings{p + "signing: secrets[0]: the part after whsec_ is not base64"});
  EXPECT_EQ(check("signing", R"({"secrets": ["s"], "header": ""})"), strings{p + "signing.header: must not be empty"});
  EXPECT_EQ(check("signing", R"({"secrets": ["s"], "key": 1})"),
            strings{p + "signing.key: unknown key (allowed: scheme, secrets, header)"});
}

TEST_F(Builtin, SigningMatchesTheStandardWebhooksTestVector) {
  auto c = make("signing", R"({"secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]})");
  at(1614265330LL * 1000 + 999);  // the timestamp is in seconds
  body_ = R"({"test": 2432232314})";
  attempt_data a;
  ASSERT_EQ(attempt(*c, "msg_p5jXN8AQM9LWM0D4loKWxJek", &a).kind, FR_PROCEED);
  std::map<std::string, std::string> h;
  for (const auto& x : a.headers) h[x.name] = x.value;
  EXPECT_EQ(h["webhook-id"], "msg_p5jXN8AQM9LWM0D4loKWxJek");
  EXPECT_EQ(h["webhook-timestamp"], "1614265330");
  EXPECT_EQ(h["webhook-signature"], "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST_F(Builtin, SigningKeepsItsKeyAcrossAttempts) {
  // The keyed HMAC is set up once: a signature must not carry anything over from the one before.
  auto c = make("signing", R"({"secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]})");
  at(1614265330LL * 1000);
  auto signature = [&](const std::string& body) {
    body_ = body;
    attempt_data a;
    attempt(*c, "msg_p5jXN8AQM9LWM0D4loKWxJek", &a);
    for (const auto& x : a.headers) if (x.name == "webhook-signature") return x.value;
    return std::string();
  };
  const std::string vector = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
  EXPECT_EQ(signature(R"({"test": 2432232314})"), vector);
  std::string other = signature("another body");
  EXPECT_NE(other, vector);
  EXPECT_EQ(signature(R"({"test": 2432232314})"), vector);
  EXPECT_EQ(signature("another body"), other);
  auto hex = make("signing", R"({"scheme": "hmac-sha256", "secrets": ["key"], "header": "X-Sig"})");
  for (int i = 0; i < 3; ++i) {
    body_ = "The quick brown fox jumps over the lazy dog";
    attempt_data a;
    attempt(*hex, "job_1", &a);
    ASSERT_EQ(a.headers.size(), 1u);
    EXPECT_EQ(a.headers[0].value, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8") << i;
  }
}

TEST_F(Builtin, SigningWithTwoSecretsSendsTwoSignaturesForRotation) {
  auto c = make("signing", R"({"secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2Vjb25k"]})");
  at(1614265330LL * 1000);
  body_ = R"({"test": 2432232314})";
  attempt_data a;
  attempt(*c, "msg_p5jXN8AQM9LWM0D4loKWxJek", &a);
  std::string sig;
  for (const auto& x : a.headers) if (x.name == "webhook-signature") sig = x.value;
  EXPECT_EQ(sig.rfind("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,", 0), 0u) << sig;
  EXPECT_EQ(sig.size(), 2 * 47 + 1);
}

TEST_F(Builtin, SigningHmacSchemePutsTheHexDigestOfTheBodyInItsHeader) {
  // RFC 2104 style example: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
  auto c = make("signing", R"({"scheme": "hmac-sha256", "secrets": ["key"], "header": "X-Sig"})");
  body_ = "The quick brown fox jumps over the lazy dog";
  attempt_data a;
  attempt(*c, "job_1", &a);
  ASSERT_EQ(a.headers.size(), 1u);
  EXPECT_EQ(a.headers[0].name, "X-Sig");
  EXPECT_EQ(a.headers[0].value, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
}

// -- rate_limit -------------------------------------------------------------------------------

TEST_F(Builtin, RateLimitConfigAcceptsAGoodBlockAndNamesEachBadField) {
  EXPECT_EQ(check("rate_limit", R"({"rate": "100/s", "burst": 100, "max_in_flight": 64})"), strings{});
  EXPECT_EQ(check("rate_limit", R"({"rate": "1000/m"})"), strings{});
  EXPECT_EQ(check("rate_limit", R"({})"), strings{p + "rate_limit.rate: is required but missing"});
  EXPECT_EQ(check("rate_limit", R"({"rate": "fast"})"),
            strings{p + "rate_limit: rate: expected <count>/s, /m or /h with a count ≥ 1, got \"fast\""});
  EXPECT_EQ(check("rate_limit", R"({"rate": "0/s"})"),
            strings{p + "rate_limit: rate: expected <count>/s, /m or /h with a count ≥ 1, got \"0/s\""});
  EXPECT_EQ(check("rate_limit", R"({"rate": "5/s", "burst": 0})"),
            strings{p + "rate_limit.burst: expected an integer between 1 and 1000000, got 0"});
  EXPECT_EQ(check("rate_limit", R"({"rate": "5/s", "max_in_flight": -1})"),
            strings{p + "rate_limit.max_in_flight: expected an integer between 0 and 1000000, got -1"});
}

TEST_F(Builtin, RateLimitDefersToTheExactGcraSlotAndReservesIt) {
  auto c = make("rate_limit", R"({"rate": "10/s", "burst": 2})");  // T = 100 ms, tolerance 100 ms
  at(0);
  EXPECT_EQ(attempt(*c, "j1").kind, FR_PROCEED);
  EXPECT_EQ(attempt(*c, "j2").kind, FR_PROCEED) << "burst 2";
  auto v3 = attempt(*c, "j3");
  auto v4 = attempt(*c, "j4");
  ASSERT_EQ(v3.kind, FR_DEFER);
  EXPECT_EQ(v3.defer_until_ms, 100);
  EXPECT_EQ(v3.reason, "rate_limit: over 10/s");
  ASSERT_EQ(v4.kind, FR_DEFER);
  EXPECT_EQ(v4.defer_until_ms, 200) << "staggered: the next slot, not the same one";
  at(100);
  EXPECT_EQ(attempt(*c, "j3").kind, FR_PROCEED) << "its reserved slot";
  auto v5 = attempt(*c, "j5");
  ASSERT_EQ(v5.kind, FR_DEFER) << "a newcomer does not take j4's slot";
  EXPECT_EQ(v5.defer_until_ms, 300);
  at(200);
  EXPECT_EQ(attempt(*c, "j4").kind, FR_PROCEED);
  at(300);
  EXPECT_EQ(attempt(*c, "j5").kind, FR_PROCEED);
  at(1000);
  EXPECT_EQ(attempt(*c, "j6").kind, FR_PROCEED) << "idle long enough: the burst is back";
  EXPECT_EQ(attempt(*c, "j7").kind, FR_PROCEED);
}

TEST_F(Builtin, RateLimitPausesOnA429RetryAfterAndCapsAttemptsInFlight) {
  auto c = make("rate_limit", R"({"rate": "100/s", "burst": 10, "max_in_flight": 1})");
  at(1000);
  EXPECT_EQ(attempt(*c, "a").kind, FR_PROCEED);
  auto busy = attempt(*c, "b");
  ASSERT_EQ(busy.kind, FR_DEFER);
  EXPECT_EQ(busy.reason, "rate_limit: 1 attempts in flight (max_in_flight)");
  EXPECT_EQ(busy.defer_until_ms, 1010);
  outcome(*c, "a", 429, 6000);  // Retry-After: 5 s
  auto paused = attempt(*c, "b");
  ASSERT_EQ(paused.kind, FR_DEFER);
  EXPECT_EQ(paused.defer_until_ms, 6000);
  at(6000);
  EXPECT_EQ(attempt(*c, "b").kind, FR_PROCEED);
}

/// A shared bucket the test fills by hand, as the database would lease it.
struct hand_tokens : shared_tokens {
  std::int64_t take(const std::string& key, std::int64_t want, double rate, std::int64_t burst) override {
    last_key = key, last_rate = rate, last_burst = burst;
    std::int64_t n = std::min(want, tokens);
    tokens -= n;
    return n;
  }
  void pause(const std::string&, std::int64_t until_ms) override { paused_until = until_ms; }
  int live_nodes() const override { return nodes; }
  std::int64_t tokens = 0;
  std::int64_t paused_until = 0;
  int nodes = 1;
  std::string last_key;
  double last_rate = 0;
  std::int64_t last_burst = 0;
};

TEST_F(Builtin, RateLimitWithASharedBucketSendsOnlyWithATokenAndKeepsItsTriesAtTheRate) {
  auto tokens = std::make_shared<hand_tokens>();
  auto c = make("rate_limit", R"({"rate": "10/s", "burst": 2})", tokens);  // T = 100 ms
  at(0);
  tokens->tokens = 1;
  EXPECT_EQ(attempt(*c, "j1").kind, FR_PROCEED) << "paced here and a token at hand";
  EXPECT_EQ(tokens->last_rate, 10.0);
  EXPECT_EQ(tokens->last_burst, 2);
  EXPECT_EQ(tokens->last_key.rfind("rate_limit{", 0), 0u) << tokens->last_key;
  auto v = attempt(*c, "j2");  // paced here (burst 2) but the other relays have the tokens
  ASSERT_EQ(v.kind, FR_DEFER);
  EXPECT_EQ(v.reason, "rate_limit: waiting for a token shared by the relays (10/s)");
  EXPECT_EQ(v.defer_until_ms, 100) << "behind the next local slot, at least 20 ms on";
  auto v3 = attempt(*c, "j3");
  ASSERT_EQ(v3.kind, FR_DEFER) << "the failed try used the burst's second slot";
  EXPECT_EQ(v3.defer_until_ms, 200);
  at(100);
  tokens->tokens = 5;
  EXPECT_EQ(attempt(*c, "j2").kind, FR_PROCEED);
  EXPECT_EQ(tokens->tokens, 4);
  outcome(*c, "j2", 429, 5000);
  EXPECT_EQ(tokens->paused_until, 5000) << "every relay holds back until Retry-After";
}

TEST_F(Builtin, RateLimitScopeNodeSplitsTheRateAndBurstBetweenTheLiveRelays) {
  auto tokens = std::make_shared<hand_tokens>();
  tokens->nodes = 2;
  auto c = make("rate_limit", R"({"rate": "10/s", "burst": 4, "scope": "node"})", tokens);  // here: 5/s, burst 2
  at(0);
  EXPECT_EQ(attempt(*c, "a").kind, FR_PROCEED);
  EXPECT_EQ(attempt(*c, "b").kind, FR_PROCEED);
  auto v = attempt(*c, "c");
  ASSERT_EQ(v.kind, FR_DEFER);
  EXPECT_EQ(v.defer_until_ms, 200) << "T = 200 ms for this relay's half";
  EXPECT_EQ(tokens->last_key, "") << "no shared bucket with scope: node";
}

TEST_F(Builtin, RateLimitWithoutASharedBucketIsTheSingleRelayLimit) {
  auto c = make("rate_limit", R"({"rate": "10/s", "burst": 1, "scope": "cluster"})");
  at(0);
  EXPECT_EQ(attempt(*c, "a").kind, FR_PROCEED);
  EXPECT_EQ(attempt(*c, "b").defer_until_ms, 100);
}

// -- circuit_breaker --------------------------------------------------------------------------

TEST_F(Builtin, BreakerConfigAcceptsAGoodBlockAndNamesEachBadField) {
  EXPECT_EQ(check("circuit_breaker", R"({})"), strings{});
  EXPECT_EQ(check("circuit_breaker", R"({"consecutive_failures": 5, "open_for": "30s", "max_open_for": "5m"})"), strings{});
  EXPECT_EQ(check("circuit_breaker", R"({"consecutive_failures": 0})"),
            strings{p + "circuit_breaker.consecutive_failures: expected an integer between 1 and 1000000, got 0"});
  EXPECT_EQ(check("circuit_breaker", R"({"failure_ratio": 1.5})"),
            strings{p + "circuit_breaker.failure_ratio: expected a number between 0 and 1, got 1.5"});
  EXPECT_EQ(check("circuit_breaker", R"({"open_for": "soon"})"),
            strings{p + "circuit_breaker.open_for: expected a duration such as 500ms, 30s or 1d2h, got \"soon\": missing number before unit \"soon\""});
  EXPECT_EQ(check("circuit_breaker", R"({"open_for": "10m", "max_open_for": "1m"})"),
            strings{p + "circuit_breaker: max_open_for: shorter than open_for"});
}

TEST_F(Builtin, BreakerOpensHalfOpensAndClosesAgain) {
  auto c = make("circuit_breaker", R"({"consecutive_failures": 3, "open_for": "10s", "jitter": 0})");
  at(0);
  for (const char* j : {"a", "b", "c"}) ASSERT_EQ(attempt(*c, j).kind, FR_PROCEED);
  outcome(*c, "a", 500);
  outcome(*c, "b", 404);  // a 4xx is the target answering: not a failure, and it resets the run
  outcome(*c, "c", 0, -1, "timeout");
  for (const char* j : {"d", "e"}) ASSERT_EQ(attempt(*c, j).kind, FR_PROCEED);
  outcome(*c, "d", 503);
  at(1000);
  outcome(*c, "e", 0, -1, "connect");  // the third in a row: open until 11 s
  auto v = attempt(*c, "f");
  ASSERT_EQ(v.kind, FR_DEFER);
  EXPECT_EQ(v.defer_until_ms, 11'000);
  EXPECT_EQ(v.reason, "circuit_breaker: open");
  at(11'000);
  EXPECT_EQ(attempt(*c, "f").kind, FR_PROCEED) << "half-open: one probe";
  auto g = attempt(*c, "g");
  ASSERT_EQ(g.kind, FR_DEFER) << "only one probe at a time";
  EXPECT_EQ(g.reason, "circuit_breaker: half-open, probing");
  outcome(*c, "f", 200);
  EXPECT_EQ(attempt(*c, "g").kind, FR_PROCEED) << "closed again";
  EXPECT_EQ(attempt(*c, "h").kind, FR_PROCEED);
}

TEST_F(Builtin, BreakerProbeFailuresDoubleTheOpenTimeUpToTheMaximum) {
  auto c = make("circuit_breaker", R"({"consecutive_failures": 1, "open_for": "10s", "max_open_for": "30s", "jitter": 0})");
  at(0);
  attempt(*c, "a");
  outcome(*c, "a", 500);  // open 10 s
  std::int64_t t = 10'000;
  for (std::int64_t expected_open : {20'000, 30'000, 30'000}) {
    at(t);
    ASSERT_EQ(attempt(*c, "probe").kind, FR_PROCEED) << t;
    outcome(*c, "probe", 502);  // the probe fails: open again, twice as long (capped)
    auto v = attempt(*c, "x");
    ASSERT_EQ(v.kind, FR_DEFER);
    EXPECT_EQ(v.defer_until_ms, t + expected_open) << t;
    t += expected_open;
  }
  at(t);
  attempt(*c, "probe");
  outcome(*c, "probe", 200);
  attempt(*c, "y");
  outcome(*c, "y", 500);  // closed had reset the open time
  EXPECT_EQ(attempt(*c, "z").defer_until_ms, t + 10'000);
}

TEST_F(Builtin, BreakerOpensOnTheFailureRatioOverTheWindow) {
  auto c = make("circuit_breaker",
                R"({"consecutive_failures": 100, "failure_ratio": 0.5, "min_requests": 4, "window": "10s", "jitter": 0})");
  at(0);
  int n = 0;
  for (int status : {200, 500, 200}) {
    std::string j = "r" + std::to_string(n++);
    attempt(*c, j);
    outcome(*c, j, status);
  }
  EXPECT_EQ(attempt(*c, "r3").kind, FR_PROCEED);
  outcome(*c, "r3", 429);  // 2 of 4 failed
  EXPECT_EQ(attempt(*c, "r4").kind, FR_DEFER);
}

// The failure count is kept running: failures that leave the window must leave the count too.
TEST_F(Builtin, BreakerForgetsFailuresThatLeaveTheWindow) {
  auto c = make("circuit_breaker",
                R"({"consecutive_failures": 100, "failure_ratio": 0.5, "min_requests": 4, "window": "10s", "jitter": 0})");
  at(0);
  for (const char* j : {"a", "b"}) {  // 2 failures: below min_requests, no trip
    attempt(*c, j);
    outcome(*c, j, 500);
  }
  at(10'001);  // both have left the 10 s window
  int n = 0;
  for (int i = 0; i < 3; ++i) {
    std::string j = "r" + std::to_string(n++);
    EXPECT_EQ(attempt(*c, j).kind, FR_PROCEED);
    outcome(*c, j, 200);
  }
  EXPECT_EQ(attempt(*c, "r3").kind, FR_PROCEED);
  outcome(*c, "r3", 500);  // 1 of 4 in the window failed (3 of 4 had the old ones counted)
  EXPECT_EQ(attempt(*c, "r4").kind, FR_PROCEED) << "tripped on failures outside the window";
}

}  // namespace
}  // namespace fetchrelay::plugins::builtin_test
