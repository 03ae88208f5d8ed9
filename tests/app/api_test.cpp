// The API's route table and its edges (app/api.cpp): real Beast server on loopback, routes
// whose answers need no actor (404, 405 with Allow, 401 first under /v1/, readiness, metrics).
// Job routes with a manager behind them are covered by the relay and integration tests.
#include "app/api.h"

#include <gtest/gtest.h>

#include "tests/support/raw_http.h"

namespace fetchrelay::app::api_test {
namespace {

constexpr const char* auth = "Authorization: Bearer relay_sk_acme_123\r\n";

class Api : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = config::load_config_text(
        "storage: {path: /unused}\nauth: {keys: [{tenant: acme, key: relay_sk_acme_123}]}\n", "api_test.yaml");
    ASSERT_TRUE(loaded.errors.empty()) << loaded.errors[0].to_string();
    cfg_ = std::make_unique<config::relay_config>(*loaded.config);
    api_deps deps;
    deps.config = cfg_.get();
    deps.clock = std::make_shared<system_wall_clock>();
    deps.ready = ready_;
    deps.metrics = std::make_shared<relay_metrics>();
    server_ = std::make_unique<http::server>(http::server_options{}, make_api_handler(deps));
    ASSERT_TRUE(server_->start().is_ok());
  }

  test::raw_response ask(const std::string& method, const std::string& target, const std::string& headers = auth) {
    auto r = test::http_request(server_->port(), method, target, "", headers);
    EXPECT_TRUE(r.has_value()) << method << " " << target;
    return r.value_or(test::raw_response{});
  }

  std::unique_ptr<config::relay_config> cfg_;
  std::shared_ptr<std::atomic<bool>> ready_ = std::make_shared<std::atomic<bool>>(false);
  std::unique_ptr<http::server> server_;
};

TEST_F(Api, AnotherMethodOnAKnownPathIs405WithItsAllowList) {
  struct want {
    const char* method;
    const char* target;
    const char* allow;
  };
  for (const want& w : {want{"POST", "/healthz", "GET"}, want{"DELETE", "/readyz", "GET"},
                        want{"HEAD", "/metrics", "GET"}, want{"GET", "/v1/fetch", "POST"},
                        want{"POST", "/v1/jobs", "GET, DELETE"}, want{"PUT", "/v1/jobs/job_x", "GET, DELETE"},
                        want{"GET", "/v1/jobs/job_x/retry", "POST"}, want{"DELETE", "/v1/jobs/job_x/run", "POST"}}) {
    auto r = ask(w.method, w.target);
    EXPECT_EQ(r.status, 405) << w.method << " " << w.target;
    EXPECT_EQ(r.headers["allow"], w.allow) << w.method << " " << w.target;
    EXPECT_NE(r.body.find("\"method_not_allowed\""), std::string::npos) << r.body;
  }
}

TEST_F(Api, UnknownPathsAre404AndV1AsksForTheKeyFirst) {
  EXPECT_EQ(ask("GET", "/nope").status, 404);
  EXPECT_EQ(ask("GET", "/v1/nope").status, 404);
  EXPECT_EQ(ask("GET", "/v1/jobs/a/b/c").status, 404);
  auto r = ask("GET", "/v1/nope", "");
  EXPECT_EQ(r.status, 401) << "no route is told to a caller without a key";
  EXPECT_EQ(r.headers["www-authenticate"], "Bearer");
  EXPECT_EQ(ask("GET", "/v1/jobs", "Authorization: Bearer wrong\r\n").status, 401);
}

TEST_F(Api, V2IsOffUnlessEnabledThenAsksForItsTokenAndAnswersQstashErrors) {
  auto off = ask("GET", "/v2/keys");
  EXPECT_EQ(off.status, 404);
  EXPECT_NE(off.body.find("qstash_disabled"), std::string::npos) << off.body;
  cfg_->qstash.enabled = true;
  ready_->store(true);
  auto no_token = ask("GET", "/v2/nope", "");
  EXPECT_EQ(no_token.status, 401) << "no route is told to a caller without a token";
  EXPECT_EQ(no_token.body.rfind("{\"error\":\"Unauthorized", 0), 0u) << no_token.body;
  EXPECT_EQ(ask("GET", "/v2/keys?qstash_token=wrong", "").status, 401);
  EXPECT_EQ(ask("GET", "/v2/nope?qstash_token=relay_sk_acme_123", "").status, 404) << "a token in the query is a token";
  EXPECT_EQ(ask("PUT", "/v2/batch").status, 405);
  EXPECT_EQ(ask("GET", "/v2/flowControl/k").status, 501);
  auto bad = ask("POST", "/v2/publish/ftp://x/y");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("{\"error\":\"the destination"), std::string::npos) << bad.body;
  EXPECT_EQ(ask("POST", "/v2/enqueue/bad%20name/http://127.0.0.1:9/").status, 400);
  EXPECT_EQ(ask("POST", "/v2/publish/http://127.0.0.1:9/x?upstash-delay=soon").status, 400) << "query params are headers";
  ready_->store(false);
  EXPECT_EQ(ask("POST", "/v2/publish/http://127.0.0.1:9/x").status, 503) << "the store is not open";
}

TEST_F(Api, AJobIdThatIsNotOneIs404ForEveryJobRoute) {
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/v1/jobs/nope"}, {"DELETE", "/v1/jobs/nope"}, {"POST", "/v1/jobs/nope/retry"}, {"POST", "/v1/jobs/nope/run"}, {"GET", "/v1/jobs/"}}) {
    auto r = ask(method, target);
    EXPECT_EQ(r.status, 404) << method << " " << target;
    EXPECT_NE(r.body.find("\"job_not_found\""), std::string::npos) << r.body;
  }
}

TEST_F(Api, ReadinessMetricsAndListQueriesNeedNoActor) {
  EXPECT_EQ(ask("GET", "/readyz").status, 503);
  EXPECT_EQ(ask("HEAD", "/readyz").status, 503);
  *ready_ = true;
  EXPECT_EQ(ask("GET", "/readyz").status, 200);
  auto m = ask("GET", "/metrics", "");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.headers["content-type"].find("text/plain"), std::string::npos);
  EXPECT_EQ(ask("GET", "/v1/jobs?status=bogus").status, 400);
  EXPECT_EQ(ask("GET", "/v1/jobs?limit=0").status, 400);
  EXPECT_EQ(ask("GET", "/v1/jobs?cursor=xyz").status, 400);
  EXPECT_EQ(ask("GET", "/v1/jobs?since=yesterday").status, 400);
  EXPECT_EQ(ask("DELETE", "/v1/jobs").status, 400) << "a purge names the finished status it deletes";
  EXPECT_EQ(ask("DELETE", "/v1/jobs?status=scheduled").status, 400) << "unfinished jobs are never purged";
  EXPECT_EQ(ask("DELETE", "/v1/jobs?status=failed&colour=red").status, 400);
  EXPECT_EQ(ask("GET", "/v1/jobs?until=2025-02-30T00:00:00Z").status, 400) << "a date that does not exist";
  auto unknown = ask("GET", "/v1/jobs?stauts=failed");
  EXPECT_EQ(unknown.status, 400) << "a misspelt filter is not silently ignored";
  EXPECT_NE(unknown.body.find("\"invalid_query\""), std::string::npos) << unknown.body;
  EXPECT_NE(unknown.body.find("stauts"), std::string::npos) << unknown.body;
  EXPECT_EQ(ask("GET", "/caf\xc3\xa9").status, 400) << "a path that is not printable ASCII";
}

TEST_F(Api, TheConsoleIsServedFromTheBinaryWithAStrictContentSecurityPolicy) {
  for (const char* path : {"/", "/ui", "/ui/jobs", "/ui/jobs/job_01ABC", "/ui/queues"}) {
    auto r = ask("GET", path, "");  // no key: the page signs in by itself
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_NE(r.headers["content-type"].find("text/html"), std::string::npos) << path;
    EXPECT_NE(r.body.find("<html"), std::string::npos) << path;
    EXPECT_NE(r.headers["content-security-policy"].find("script-src 'self'"), std::string::npos);
    EXPECT_EQ(r.headers["content-security-policy"].find("unsafe"), std::string::npos) << "no inline script or eval";
    EXPECT_EQ(r.headers["x-content-type-options"], "nosniff");
  }
  auto page = ask("GET", "/", "");
  auto again = ask("GET", "/ui/topics", "If-None-Match: " + page.headers["etag"] + "\r\n");
  EXPECT_EQ(again.status, 304) << "unchanged: the browser keeps its copy";
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(ask("GET", "/", "If-None-Match: \"other\", W/" + page.headers["etag"] + "\r\n").status, 304)
      << "a weak tag in a list, as a compressing proxy sends it";
  EXPECT_EQ(ask("GET", "/", "If-None-Match: \"other\"\r\n").status, 200);
  auto head = ask("HEAD", "/ui/jobs", "");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(ask("GET", "/ui/assets/no-such-file.js", "").status, 404);
  EXPECT_EQ(ask("GET", "/ui/assets/index.html", "").status, 200);
  auto post = ask("POST", "/ui/jobs", "");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers["allow"], "GET, HEAD");
}

TEST_F(Api, StatsShowTheRelaysJobsByStatusAndAskForTheKey) {
  EXPECT_EQ(ask("GET", "/v1/stats", "").status, 401);
  auto r = ask("GET", "/v1/stats");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["scope"], "relay");
  EXPECT_EQ(j["jobs"]["delivered"], 0);
  EXPECT_TRUE(j["minutes"].is_array());
  EXPECT_EQ(ask("GET", "/v1/stats?window=1h").status, 400);
}

TEST(ConstantTimeEqual, ComparesWholeKeys) {
  EXPECT_TRUE(constant_time_equal("relay_sk_dev", "relay_sk_dev"));
  EXPECT_FALSE(constant_time_equal("relay_sk_dev", "relay_sk_de"));
  EXPECT_FALSE(constant_time_equal("relay_sk_de", "relay_sk_dev"));
  EXPECT_FALSE(constant_time_equal("relay_sk_dev", "relay_sk_deX"));
  EXPECT_FALSE(constant_time_equal("", "x"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

}  // namespace
}  // namespace fetchrelay::app::api_test
