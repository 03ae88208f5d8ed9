// The API's router (app/router.h), pure: the answers that end a request before any handler, and
// the handler, params and tenant of the rest.
#include "app/router.h"

#include <gtest/gtest.h>

namespace fetchrelay::app::router_test {
namespace {

const config::relay_config& cfg(bool qstash) {
  static auto make = [](bool q) {
    auto r = config::load_config_text(std::string("server: {listen: 127.0.0.1:0}\nstorage: {path: /tmp/x}\n"
                                                  "auth: {keys: [{tenant: a, key: key_a}, {tenant: b, key: key_b}]}\n") +
                                          (q ? "qstash: {enabled: true}\n" : ""),
                                      "t.yaml", [](const std::string&) { return std::optional<std::string>(); });
    EXPECT_TRUE(r.config.has_value());
    return *r.config;
  };
  static const config::relay_config off = make(false), on = make(true);
  return qstash ? on : off;
}

http::request req(std::string method, std::string target, std::string key = "") {
  http::request r;
  r.method = std::move(method);
  r.target = std::move(target);
  if (!key.empty()) r.headers.push_back({"Authorization", "Bearer " + key});
  return r;
}

TEST(Router, NamesTheHandlerItsParamsAndTheTenant) {
  auto r = route_request(cfg(false), req("POST", "/v1/jobs/job_1/retry?x=1", "key_b"));
  ASSERT_EQ(r.what, routed::kind::handler);
  EXPECT_EQ(r.id, route_id::retry_job);
  EXPECT_EQ(r.params, std::vector<std::string>{"job_1"});
  EXPECT_EQ(r.tenant, "b");
  auto h = route_request(cfg(false), req("HEAD", "/healthz"));
  ASSERT_EQ(h.what, routed::kind::handler);
  EXPECT_EQ(h.id, route_id::healthz);
  EXPECT_EQ(h.tenant, "");
  EXPECT_EQ(route_request(cfg(false), req("POST", "/v1/queues/q/pause", "key_a")).id, route_id::pause_queue);
}

TEST(Router, AnswersBeforeAnyHandler) {
  auto bad = route_request(cfg(false), req("GET", "/v1/jobs/\x7f", "key_a"));
  ASSERT_EQ(bad.what, routed::kind::answer);
  EXPECT_EQ(bad.answer.status, 400);
  auto anon = route_request(cfg(false), req("GET", "/v1/nothing-here"));  // no key: no route is revealed
  ASSERT_EQ(anon.what, routed::kind::answer);
  EXPECT_EQ(anon.answer.status, 401);
  EXPECT_TRUE(anon.unauthorized);
  EXPECT_EQ(route_request(cfg(false), req("GET", "/v1/jobs", "key_c")).answer.status, 401);
  auto wrong = route_request(cfg(false), req("PATCH", "/v1/jobs/job_1", "key_a"));
  ASSERT_EQ(wrong.answer.status, 405);
  ASSERT_EQ(wrong.answer.headers.size(), 1u);
  EXPECT_EQ(wrong.answer.headers[0].value, "GET, DELETE");
  EXPECT_EQ(route_request(cfg(false), req("GET", "/v1/nothing-here", "key_a")).answer.status, 404);
  EXPECT_EQ(route_request(cfg(false), req("GET", "/nothing")).answer.status, 404);
}

TEST(Router, HandsV2OnOnlyWhenTheQstashApiIsOn) {
  EXPECT_EQ(route_request(cfg(false), req("POST", "/v2/publish/https://a.b/c")).answer.status, 404);
  EXPECT_EQ(route_request(cfg(true), req("POST", "/v2/publish/https://a.b/c")).what, routed::kind::qstash);
}

}  // namespace
}  // namespace fetchrelay::app::router_test
