// The relay in-process (app/relay.h) with an injected store fault: the HTTP answers while the
// disk fails, and after it recovers. Real LevelDB, real Beast server and target on loopback.
#include "app/relay.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::app::relay_test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* auth = "Authorization: Bearer relay_sk_acme_123\r\n";

class Relay : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = config::load_config_text(
        "server: {listen: 127.0.0.1:0}\n"
        "storage: {path: " + dir_.file("data") + "}\n"
        "auth: {keys: [{tenant: acme, key: relay_sk_acme_123}]}\n"
        "delivery: {allow_networks: [127.0.0.0/8]}\n",
        "relay_test.yaml");
    ASSERT_TRUE(loaded.errors.empty()) << loaded.errors[0].to_string();
    auto r = relay::start(*loaded.config, {faults_, 100ms});
    ASSERT_TRUE(r.is_ok()) << r.error().message();
    relay_ = std::move(r.value());
    ASSERT_TRUE(wait_status("/readyz", 200));
  }

  std::optional<test::raw_response> post() {
    std::string h = std::string(auth) + "X-Fetch-Url: http://127.0.0.1:" + std::to_string(origin_.port()) + "/ok\r\n";
    return test::http_request(relay_->port(), "POST", "/v1/fetch", "{}", h);
  }

  bool wait_status(const std::string& path, int status) {
    for (int i = 0; i < 200; ++i) {
      auto r = test::http_request(relay_->port(), "GET", path, "", auth);
      if (r && r->status == status) return true;
      std::this_thread::sleep_for(25ms);
    }
    return false;
  }

  std::string job_status(const std::string& id) {
    auto r = test::http_request(relay_->port(), "GET", "/v1/jobs/" + id, "", auth);
    return r && r->status == 200 ? json::parse(r->body)["status"].get<std::string>() : "";
  }

  test::temp_dir dir_;
  test::test_origin origin_;
  std::shared_ptr<persistence::fault_injection> faults_ = std::make_shared<persistence::fault_injection>();
  std::unique_ptr<relay> relay_;
};

TEST_F(Relay, AFailedStoreWriteAnswers503AcknowledgesNothingAndRecoversAfterReopen) {
  auto first = post();
  ASSERT_TRUE(first && first->status == 202);
  std::string id1 = json::parse(first->body)["id"];
  // Delivered first, so no write of its own races with the fault below.
  for (int i = 0; i < 200 && job_status(id1) != "delivered"; ++i) std::this_thread::sleep_for(25ms);
  ASSERT_EQ(job_status(id1), "delivered");

  faults_->fail_writes(true);
  auto failed = post();
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status, 503);
  EXPECT_EQ(json::parse(failed->body)["error"]["code"], "store_unavailable") << failed->body;
  EXPECT_EQ(failed->headers["retry-after"], "1");
  EXPECT_TRUE(wait_status("/readyz", 503));
  auto refused = post();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(json::parse(refused->body)["error"]["code"], "not_ready");
  EXPECT_EQ(refused->headers["retry-after"], "1");

  faults_->fail_writes(false);
  ASSERT_TRUE(wait_status("/readyz", 200)) << "the store reopens on its own";
  auto again = post();
  ASSERT_TRUE(again);
  ASSERT_EQ(again->status, 202);
  std::string id2 = json::parse(again->body)["id"];
  for (int i = 0; i < 200 && job_status(id2) != "delivered"; ++i) std::this_thread::sleep_for(25ms);
  EXPECT_EQ(job_status(id2), "delivered");
  // Nothing answered 503 was kept: the store holds exactly the two acknowledged jobs.
  auto list = test::http_request(relay_->port(), "GET", "/v1/jobs", "", auth);
  ASSERT_TRUE(list && list->status == 200);
  auto jobs = json::parse(list->body)["jobs"];
  ASSERT_EQ(jobs.size(), 2u) << list->body;
  EXPECT_EQ(jobs[0]["id"], id2);
  EXPECT_EQ(jobs[1]["id"], id1);
}

}  // namespace
}  // namespace fetchrelay::app::relay_test
