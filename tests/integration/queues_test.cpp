// Queues end to end: strict order and the parallelism cap at a real target, across a kill -9.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/relay_process.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::test::queues_test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* key = "relay_sk_tenant_a_123";

std::string config_text(const temp_dir& dir) {
  return loopback_config(dir, "{tenant: a, key: " + std::string(key) + "}",
                         "policies:\n  default: {timeout: 2s, retry: {attempts: 3, schedule: [100ms], jitter: 0}}\n");
}

/// Submits jobs 0..n-1 to the queue, in order, to /queue/<prefix><i>; their ids.
std::vector<std::string> submit(relay_process& relay, const test_origin& o, const std::string& queue,
                                const std::string& prefix, int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    auto r = relay.call("POST", "/v1/fetch", key,
                        "X-Queue: " + queue + "\r\nX-Fetch-Url: http://127.0.0.1:" + std::to_string(o.port()) + "/queue/" +
                            prefix + std::to_string(i) + "\r\n");
    EXPECT_TRUE(r && r->status == 202) << (r ? r->body : "no answer");
    if (r && r->status == 202) ids.push_back(json::parse(r->body)["id"]);
  }
  return ids;
}

/// Polls until the queue's jobs are all delivered (bounded: 60 s); how many are.
std::size_t wait_delivered(relay_process& relay, const std::string& queue, std::size_t n) {
  std::size_t done = 0;
  for (int i = 0; i < 600 && done < n; ++i) {
    auto r = relay.call("GET", "/v1/jobs?limit=100&status=delivered&queue=" + queue, key);
    if (r && r->status == 200) done = json::parse(r->body)["jobs"].size();
    if (done < n) std::this_thread::sleep_for(100ms);
  }
  return done;
}

/// The job index of each request the target received for `prefix`, in arrival order.
std::vector<int> arrivals(const test_origin& o, const std::string& prefix) {
  std::vector<int> out;
  std::string head = "/queue/" + prefix;
  for (const auto& r : o.received()) {
    if (r.target.rfind(head, 0) == 0) out.push_back(std::stoi(r.target.substr(head.size())));
  }
  return out;
}

TEST(Queues, ParallelismOneKeepsStrictOrderNeverTwoAtOnceAcrossKillNine) {
  temp_dir dir;
  test_origin origin;
  auto relay = std::make_unique<relay_process>(dir, config_text(dir), key);
  ASSERT_NE(relay->port(), 0) << relay->log();
  auto put = relay->call("PUT", "/v1/queues/serial", key, "", R"({"parallelism":1})");
  ASSERT_TRUE(put);
  ASSERT_EQ(put->status, 201) << put->body;
  constexpr int n = 12;
  ASSERT_EQ(submit(*relay, origin, "serial", "s", n).size(), static_cast<std::size_t>(n));
  for (int i = 0; i < 200 && arrivals(origin, "s").size() < 8; ++i) std::this_thread::sleep_for(50ms);
  ASSERT_GE(arrivals(origin, "s").size(), 8u) << relay->log();
  ASSERT_TRUE(relay->kill9());
  // An attempt the killed relay had sent is still held by the target (50 ms). The restarted relay
  // sends that job again (at least once), and a restart quicker than the hold would show the
  // target two at once: not the queue's doing, so the restart waits for the target to finish.
  for (int i = 0; i < 100 && origin.queue_in_progress() > 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(origin.queue_in_progress(), 0);
  relay->start();
  ASSERT_NE(relay->port(), 0) << relay->log();
  ASSERT_EQ(wait_delivered(*relay, "serial", n), static_cast<std::size_t>(n)) << relay->log();

  auto seq = arrivals(origin, "s");
  std::map<int, int> per_job;
  for (std::size_t k = 0; k < seq.size(); ++k) {
    ++per_job[seq[k]];
    if (k > 0) EXPECT_LE(seq[k - 1], seq[k]) << "job " << seq[k] << " was attempted before job " << seq[k - 1] << " ended";
  }
  for (int i = 0; i < n; ++i) EXPECT_GE(per_job[i], 2) << "job " << i << ": its first attempt fails, the second delivers";
  EXPECT_EQ(origin.max_concurrent(), 1) << "two jobs of the queue were in progress at once";
  auto q = json::parse(relay->call("GET", "/v1/queues/serial", key)->body);
  EXPECT_EQ(q["parallelism"], 1);
  EXPECT_EQ(q["waiting"], 0);
  EXPECT_EQ(q["in_progress"], 0);
}

TEST(Queues, ParallelismFourNeverMoreThanFourAndTheQueueOperations) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config_text(dir), key);
  ASSERT_EQ(relay.call("PUT", "/v1/queues/wide", key, "", R"({"parallelism":4})")->status, 201);
  constexpr int n = 40;
  ASSERT_EQ(submit(relay, origin, "wide", "w", n).size(), static_cast<std::size_t>(n));
  ASSERT_EQ(wait_delivered(relay, "wide", n), static_cast<std::size_t>(n)) << relay.log();
  EXPECT_LE(origin.max_concurrent(), 4);
  EXPECT_GE(origin.max_concurrent(), 2) << "the queue ran one at a time";
  // (Turns are given in submission order; with several in progress, requests on different
  // connections may still reach the target in another order, so only parallelism 1 checks arrivals.)
  // A queue named by X-Queue alone is made with parallelism 1; paused, it holds its jobs.
  auto ids = submit(relay, origin, "implicit", "i", 1);
  ASSERT_EQ(wait_delivered(relay, "implicit", 1), 1u);
  auto implicit = json::parse(relay.call("GET", "/v1/queues/implicit", key)->body);
  EXPECT_EQ(implicit["parallelism"], 1);
  auto paused = relay.call("POST", "/v1/queues/implicit/pause", key);
  ASSERT_TRUE(paused && paused->status == 200);
  EXPECT_EQ(json::parse(paused->body)["paused"], true);
  submit(relay, origin, "implicit", "i", 2);  // job i0 again, then i1: both wait
  json held;
  for (int i = 0; i < 50 && held["waiting"] != 2; ++i) {  // bounded: 2.5 s
    held = json::parse(relay.call("GET", "/v1/queues/implicit", key)->body);
    if (held["waiting"] != 2) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(held["waiting"], 2) << held.dump();
  EXPECT_EQ(held["in_progress"], 0) << "a paused queue gives no turn";
  EXPECT_EQ(wait_delivered(relay, "implicit", 1), 1u) << "nothing of the paused queue ran";
  EXPECT_EQ(relay.call("DELETE", "/v1/queues/implicit", key)->status, 409);
  EXPECT_EQ(relay.call("POST", "/v1/queues/implicit/resume", key)->status, 200);
  EXPECT_EQ(wait_delivered(relay, "implicit", 3), 3u);
  auto list = json::parse(relay.call("GET", "/v1/queues", key)->body);
  EXPECT_EQ(list["queues"].size(), 2u) << list.dump();
  EXPECT_EQ(relay.call("DELETE", "/v1/queues/implicit", key)->status, 200);
  EXPECT_EQ(relay.call("GET", "/v1/queues/implicit", key)->status, 404);
  EXPECT_EQ(relay.call("POST", "/v1/queues/nope/pause", key)->status, 404);
  for (const char* body : {R"({"parallelism":0})", R"({"parallelism":"2"})", R"({"paused":1})", R"({"color":1})", "nope"}) {
    EXPECT_EQ(relay.call("PUT", "/v1/queues/q2", key, "", body)->status, 400) << body;
  }
  EXPECT_EQ(relay.call("POST", "/v1/fetch", key, "X-Queue: bad name\r\nX-Fetch-Url: http://127.0.0.1:1/x\r\n")->status, 400);
}

TEST(Queues, QueuesDeclaredInTheConfigExistAtStart) {
  temp_dir dir;
  relay_process relay(dir, config_text(dir) + "queues: [{tenant: a, name: declared, parallelism: 3}]\n", key);
  ASSERT_NE(relay.port(), 0) << relay.log();
  nlohmann::json q;
  for (int i = 0; i < 50; ++i) {  // the declaration is written just after start (bounded: 2.5 s)
    auto r = relay.call("GET", "/v1/queues/declared", key);
    if (r && r->status == 200) {
      q = json::parse(r->body);
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(q["parallelism"], 3) << q.dump();
  EXPECT_EQ(q["paused"], false);
}

}  // namespace
}  // namespace fetchrelay::test::queues_test
