// The crash test (durable-jobs issue): submit jobs at full speed from several connections,
// kill -9 the real relay mid-stream, restart it on the same data directory, and check that
// every job that got a 202 is delivered. Duplicates (at least once) and deliveries whose 202
// the kill cut off are counted and reported, not failed. Run on both stores: LevelDB in the
// test's folder, and PostgreSQL (the test run's throwaway server, a schema of the test's own).
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <thread>

#include "tests/support/postgres.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::test::crash_test {
namespace {

using namespace std::chrono_literals;

constexpr const char* key = "relay_sk_crash_test";

std::string storage_of(const temp_dir& dir, const std::string& backend) {
  if (backend == "postgres") {
    return "storage: {backend: postgres, postgres: {dsn: '" + test_postgres_dsn().value_or("") + "', schema: " +
           schema_for(dir.file("data")) + "}}\n";
  }
  return "storage: {path: " + dir.file("data") + "}\n";
}

std::string config_text(const temp_dir& dir, const std::string& backend) {
  return "server: {listen: 127.0.0.1:0}\n" + storage_of(dir, backend) +
         "auth: {keys: [{tenant: t, key: " + std::string(key) + "}]}\n"
         "delivery: {allow_networks: [127.0.0.0/8]}\n"
         "policies:\n  default: {timeout: 5s, retry: {attempts: 20, schedule: [200ms], jitter: 0}}\n";
}

class Crash : public ::testing::TestWithParam<std::string> {};

TEST_P(Crash, KillNineMidStreamLosesNoAcknowledgedJob) {
  if (GetParam() == "postgres" && !test_postgres_dsn()) GTEST_SKIP() << no_postgres_message();
  temp_dir dir;
  test_origin origin;
  std::string cfg = dir.write("relay.yaml", config_text(dir, GetParam()));
  auto relay = std::make_unique<process>(
      FETCHRELAY_BIN, std::vector<std::string>{"serve", "--config", cfg, "--port-file", dir.file("port")}, dir.file("relay1.log"));
  auto port = wait_for_port_file(dir.file("port"), 30s);
  ASSERT_TRUE(port) << relay->log();

  constexpr int writers = 8;
  constexpr int max_jobs = 20'000;  // bound on the load, whatever happens
  std::mutex mu;
  std::set<std::string> acked;
  std::atomic<int> sent{0};
  std::atomic<int> in_flight{0};
  std::atomic<bool> stop{false};
  std::string target = "X-Fetch-Url: http://127.0.0.1:" + std::to_string(origin.port()) + "/jobs/crash\r\n";
  std::vector<std::thread> threads;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      auto c = connection::open(*port);
      if (!c) return;
      while (!stop.load() && sent.fetch_add(1) < max_jobs && std::chrono::steady_clock::now() < deadline) {
        std::string body = "{\"writer\":" + std::to_string(w) + "}";
        ++in_flight;
        bool ok = c->send("POST /v1/fetch HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " + std::string(key) +
                          "\r\n" + target + "Content-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body);
        auto r = ok ? c->read_response(10s) : std::nullopt;
        --in_flight;
        if (!r) return;  // the relay died under us
        if (r->status == 202) {
          auto id = nlohmann::json::parse(r->body)["id"].get<std::string>();
          std::lock_guard<std::mutex> lock(mu);
          acked.insert(id);
        }
      }
    });
  }
  // Kill once at least 1,000 jobs are acknowledged and while requests are still in flight.
  std::size_t acked_at_kill = 0;
  int in_flight_at_kill = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mu);
      acked_at_kill = acked.size();
    }
    in_flight_at_kill = in_flight.load();
    if (acked_at_kill >= 1000 && in_flight_at_kill > 0) break;
    std::this_thread::sleep_for(1ms);
  }
  relay->signal(SIGKILL);
  auto killed = relay->wait(10s);
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_TRUE(killed.exited);
  EXPECT_EQ(killed.signal, SIGKILL);
  ASSERT_GE(acked_at_kill, 1000u) << "not enough acknowledgements before the deadline";
  ASSERT_GT(in_flight_at_kill, 0) << "no request was in flight at the kill";

  // Restart on the same data directory and wait for every acknowledged job.
  std::remove(dir.file("port").c_str());
  relay = std::make_unique<process>(
      FETCHRELAY_BIN, std::vector<std::string>{"serve", "--config", cfg, "--port-file", dir.file("port")}, dir.file("relay2.log"));
  ASSERT_TRUE(wait_for_port_file(dir.file("port"), 30s)) << relay->log();
  std::set<std::string> acked_ids;
  {
    std::lock_guard<std::mutex> lock(mu);
    acked_ids = acked;
  }
  std::size_t missing = acked_ids.size();
  std::map<std::string, int> deliveries;
  auto wait_until = std::chrono::steady_clock::now() + 90s;
  while (std::chrono::steady_clock::now() < wait_until) {
    deliveries.clear();
    for (const auto& r : origin.received()) {
      auto it = r.headers.find("x-fetch-job-id");
      if (it != r.headers.end()) ++deliveries[it->second];
    }
    missing = 0;
    for (const auto& id : acked_ids) missing += deliveries.count(id) ? 0 : 1;
    if (missing == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  std::size_t duplicates = 0;
  std::size_t unacked_delivered = 0;
  for (const auto& [id, n] : deliveries) {
    if (n > 1) duplicates += static_cast<std::size_t>(n - 1);
    if (!acked_ids.count(id)) ++unacked_delivered;
  }
  RecordProperty("acknowledged", static_cast<int>(acked_ids.size()));
  RecordProperty("duplicates", static_cast<int>(duplicates));
  RecordProperty("delivered_without_ack", static_cast<int>(unacked_delivered));
  std::printf("crash test (%s): %zu acknowledged (%d requests in flight at the kill), %zu missing, %zu duplicate "
              "deliveries, %zu delivered whose 202 the kill cut off\n",
              GetParam().c_str(), acked_ids.size(), in_flight_at_kill, missing, duplicates, unacked_delivered);
  EXPECT_EQ(missing, 0u) << relay->log();
  relay->signal(SIGTERM);
  EXPECT_EQ(relay->wait(20s).code, 0);
}

INSTANTIATE_TEST_SUITE_P(Stores, Crash, ::testing::Values("leveldb", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace fetchrelay::test::crash_test
