// Several relays on one PostgreSQL database, as real processes (the test run's throwaway
// server, a schema of the test's own; leases of 2 s so that a takeover takes seconds): the
// shards are shared out, and when a node is killed the survivor takes its shards and delivers
// its acknowledged jobs, none early.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <set>

#include "core/time.h"
#include "tests/support/postgres.h"
#include "tests/support/relay_process.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* key = "relay_sk_cluster";

std::string node_config(const std::string& node, const std::string& schema) {
  return "server: {listen: 127.0.0.1:0}\n"
         "storage: {backend: postgres, postgres: {dsn: '" + test_postgres_dsn().value_or("") + "', schema: " + schema +
         "}}\n"
         "cluster: {node_id: " + node + ", lease: 2s}\n"
         "auth: {keys: [{tenant: t, key: " + key + "}]}\n"
         "delivery: {allow_networks: [127.0.0.0/8]}\n"
         "policies:\n  default: {timeout: 5s, retry: {attempts: 20, schedule: [200ms], jitter: 0}}\n";
}

/// Polls /readyz until 200, bounded by `limit`.
bool ready_within(relay_process& r, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    auto s = r.call("GET", "/readyz", "");
    if (s && s->status == 200) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

/// How many times the origin received each job (by its X-Fetch-Job-Id).
std::map<std::string, int> deliveries_of(const std::vector<received_request>& got) {
  std::map<std::string, int> out;
  for (const auto& r : got) {
    auto it = r.headers.find("x-fetch-job-id");
    if (it != r.headers.end()) ++out[it->second];
  }
  return out;
}

std::size_t duplicates_of(const std::map<std::string, int>& deliveries) {
  std::size_t n = 0;
  for (const auto& [id, k] : deliveries) n += k > 1 ? static_cast<std::size_t>(k - 1) : 0;
  return n;
}

struct acked {
  std::string id;
  std::int64_t run_at_ms = 0;
};

/// Submits `n` jobs to `r`, each due `delay` later; returns those that got a 202.
std::vector<acked> submit(relay_process& r, const test_origin& origin, int n, const std::string& delay) {
  std::vector<acked> out;
  for (int i = 0; i < n; ++i) {
    auto resp = r.call("POST", "/v1/fetch", key,
                       "X-Fetch-Url: http://127.0.0.1:" + std::to_string(origin.port()) + "/jobs/c\r\nX-Delay: " + delay +
                           "\r\nContent-Type: application/json\r\n",
                       "{\"n\":" + std::to_string(i) + "}");
    if (!resp || resp->status != 202) continue;
    auto j = nlohmann::json::parse(resp->body);
    out.push_back({j["id"], parse_rfc3339(j["run_at"].get<std::string>()).value_or(0)});
  }
  return out;
}

TEST(Cluster, TwoNodesShareTheShardsAndTheSurvivorDeliversAKilledNodesJobsNoneEarly) {
  if (!test_postgres_dsn()) GTEST_SKIP() << no_postgres_message();
  temp_dir da, db;
  const std::string schema = schema_for(da.file("cluster"));
  test_origin origin;
  relay_process a(da, node_config("a", schema), key);
  ASSERT_TRUE(ready_within(a, 10s)) << a.log();
  relay_process b(db, node_config("b", schema), key);
  ASSERT_NE(b.port(), 0) << b.log();
  // b holds nothing until a gives up its extra half (a renewal every 200 ms).
  ASSERT_TRUE(ready_within(b, 10s)) << b.log();
  EXPECT_NE(b.log().find("holding 128 of 256 with 2 live node(s)"), std::string::npos) << b.log();

  auto on_a = submit(a, origin, 100, "3s");
  auto on_b = submit(b, origin, 100, "3s");
  ASSERT_EQ(on_a.size(), 100u) << a.log();
  ASSERT_EQ(on_b.size(), 100u) << b.log();
  ASSERT_TRUE(a.kill9());
  auto killed_at = std::chrono::system_clock::now();

  std::map<std::string, std::int64_t> due;  // every acknowledged job -> its run_at
  std::set<std::string> from_a;
  for (const auto& j : on_a) due[j.id] = j.run_at_ms, from_a.insert(j.id);
  for (const auto& j : on_b) due[j.id] = j.run_at_ms;
  std::map<std::string, int> deliveries;
  std::vector<received_request> got;
  auto end = std::chrono::steady_clock::now() + 30s;
  std::size_t missing = due.size();
  while (std::chrono::steady_clock::now() < end && missing > 0) {
    got = origin.received();
    deliveries = deliveries_of(got);
    missing = 0;
    for (const auto& [id, at] : due) missing += deliveries.count(id) ? 0 : 1;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(missing, 0u) << "acknowledged jobs never delivered\n" << b.log();

  std::size_t early = 0, duplicates = 0;
  auto first_of_a = std::chrono::system_clock::time_point::max();
  for (const auto& r : got) {
    auto it = r.headers.find("x-fetch-job-id");
    if (it == r.headers.end() || !due.count(it->second)) continue;
    auto at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(r.at.time_since_epoch()).count();
    if (at_ms < due[it->second]) ++early;
    if (from_a.count(it->second)) first_of_a = std::min(first_of_a, r.at);
  }
  duplicates = duplicates_of(deliveries);
  EXPECT_EQ(early, 0u) << "delivered before their run_at";
  EXPECT_LE(duplicates, 64u) << "at most the dead node's attempts in flight (none were: all delayed)";
  auto takeover = std::chrono::duration_cast<std::chrono::milliseconds>(first_of_a - killed_at).count();
  std::printf("cluster test: %zu acknowledged, %zu missing, %zu duplicates, first of the killed node's jobs delivered "
              "%lld ms after the kill (lease 2 s; its jobs were due about 3 s after submission)\n",
              due.size(), missing, duplicates, static_cast<long long>(takeover));
  EXPECT_LE(takeover, 15'000);
  EXPECT_NE(b.log().find("holding 256 of 256 with 1 live node(s)"), std::string::npos) << "b took the dead node's shards";
  EXPECT_EQ(b.stop(), 0);
}

TEST(Cluster, AFrozenNodeStartsNoAttemptOnceItsLeaseIsLostAndRejoins) {
  if (!test_postgres_dsn()) GTEST_SKIP() << no_postgres_message();
  temp_dir da, db;
  const std::string schema = schema_for(da.file("freeze"));
  test_origin origin;
  relay_process a(da, node_config("a", schema), key);
  ASSERT_TRUE(ready_within(a, 10s)) << a.log();
  relay_process b(db, node_config("b", schema), key);
  ASSERT_TRUE(ready_within(b, 10s)) << b.log();
  auto on_a = submit(a, origin, 60, "3s");  // waiting in a's memory, with their timers
  ASSERT_EQ(on_a.size(), 60u) << a.log();

  a.signal(SIGSTOP);  // frozen: no renewal; its leases lapse after 2 s and b takes its shards
  std::this_thread::sleep_for(6s);
  a.signal(SIGCONT);  // its timers fire at once, 3 s late: none may start an attempt
  std::map<std::string, int> deliveries;
  auto end = std::chrono::steady_clock::now() + 20s;
  std::size_t missing = on_a.size();
  while (std::chrono::steady_clock::now() < end && missing > 0) {
    deliveries = deliveries_of(origin.received());
    missing = 0;
    for (const auto& j : on_a) missing += deliveries.count(j.id) ? 0 : 1;
    std::this_thread::sleep_for(100ms);
  }
  std::this_thread::sleep_for(2s);  // time for a late attempt from a to show
  deliveries = deliveries_of(origin.received());
  std::size_t duplicates = duplicates_of(deliveries);
  std::printf("freeze test: %zu of a's jobs, %zu missing, %zu delivered twice\n", on_a.size(), missing, duplicates);
  EXPECT_EQ(missing, 0u) << b.log();
  EXPECT_EQ(duplicates, 0u) << "the thawed node started attempts it no longer owned\n" << a.log();
  // The attempt records say which relay made them: b, for every one of a's jobs checked.
  for (std::size_t i = 0; i < on_a.size(); i += 10) {
    auto r = b.call("GET", "/v1/jobs/" + on_a[i].id, key);
    ASSERT_TRUE(r && r->status == 200);
    auto attempts = nlohmann::json::parse(r->body)["attempts"];
    ASSERT_FALSE(attempts.empty()) << r->body;
    for (const auto& at : attempts) EXPECT_EQ(at.value("node", ""), "b") << r->body;
  }
  EXPECT_TRUE(ready_within(a, 10s)) << "a takes shards again\n" << a.log();
  EXPECT_EQ(a.stop(), 0);
  EXPECT_EQ(b.stop(), 0);
}

/// A PostgreSQL of the test's own (it is killed), started with scripts/pg-up.sh in `dir` and
/// removed at the end.
class own_postgres {
 public:
  explicit own_postgres(std::string dir) : dir_(std::move(dir)) {}
  ~own_postgres() {
    std::string out;
    run_command(std::string(FETCHRELAY_SOURCE_DIR) + "/scripts/pg-down.sh", {dir_}, out, 60s);
  }
  /// Starts it (again, on its data, after a crash); the DSN, or "" if it did not start.
  std::string up() {
    std::string out;
    auto r = run_command(std::string(FETCHRELAY_SOURCE_DIR) + "/scripts/pg-up.sh", {dir_}, out, 60s);
    if (!r.exited || r.code != 0) {
      ADD_FAILURE() << "pg-up.sh: " << out;
      return "";
    }
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out.substr(out.rfind('\n') + 1);
  }
  /// kill -9 of the postmaster: every backend goes with it, nothing is flushed.
  void kill9() {
    std::ifstream pidfile(dir_ + "/data/postmaster.pid");
    pid_t pid = 0;
    pidfile >> pid;
    ASSERT_GT(pid, 0);
    ::kill(pid, SIGKILL);
    for (int i = 0; i < 100 && ::kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(50ms);
  }

 private:
  std::string dir_;
};

TEST(Cluster, PostgresKilledMidBurstAnswers503ThenGoesOnLosingNoAcknowledgedJob) {
  if (!test_postgres_dsn()) GTEST_SKIP() << no_postgres_message();  // the server is installed
  temp_dir dir;
  ::chmod(dir.path().c_str(), 0755);  // the server runs as the postgres user: it must reach its folder
  own_postgres pg(dir.file("pg"));
  std::string dsn = pg.up();
  ASSERT_FALSE(dsn.empty());
  test_origin origin;
  std::string cfg = "server: {listen: 127.0.0.1:0}\n"
                    "storage: {backend: postgres, postgres: {dsn: '" + dsn + "'}}\n"
                    "cluster: {node_id: solo, lease: 2s}\n"
                    "auth: {keys: [{tenant: t, key: " + std::string(key) + "}]}\n"
                    "delivery: {allow_networks: [127.0.0.0/8]}\n"
                    "policies:\n  default: {timeout: 5s, retry: {attempts: 30, schedule: [200ms], jitter: 0}}\n";
  relay_process relay(dir, cfg, key);
  ASSERT_TRUE(ready_within(relay, 10s)) << relay.log();

  std::set<std::string> acked;
  std::string last_refusal;
  auto one = [&]() -> int {
    auto r = relay.call("POST", "/v1/fetch", key,
                        "X-Fetch-Url: http://127.0.0.1:" + std::to_string(origin.port()) + "/jobs/pg\r\n", "{}");
    if (!r) return 0;
    if (r->status == 202) acked.insert(nlohmann::json::parse(r->body)["id"].get<std::string>());
    else last_refusal = r->body;
    return r->status;
  };
  for (int i = 0; i < 2'000 && acked.size() < 300; ++i) one();
  ASSERT_GE(acked.size(), 300u);
  pg.kill9();
  // Every submission now gets 503 (none 202), and /readyz says so (bounded: 10 s).
  bool refused = false, not_ready = false;
  for (int i = 0; i < 200 && !(refused && not_ready); ++i) {
    int st = one();
    EXPECT_NE(st, 202) << "a 202 while the database is down";
    refused = refused || st == 503;
    auto r = relay.call("GET", "/readyz", "");
    not_ready = not_ready || (r && r->status == 503);
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(refused && not_ready) << relay.log();

  ASSERT_FALSE(pg.up().empty());
  ASSERT_TRUE(ready_within(relay, 20s)) << "the relay goes on by itself\n" << relay.log();
  int after = 0;
  std::map<int, int> answers;
  for (int i = 0; i < 50; ++i) {
    int st = one();
    ++answers[st];
    after += st == 202;
  }
  std::string seen;
  for (const auto& [st, n] : answers) seen += std::to_string(st) + "x" + std::to_string(n) + " ";
  EXPECT_EQ(after, 50) << "answers: " << seen << "(last: " << last_refusal << ")\n" << relay.log();

  std::map<std::string, int> deliveries;
  std::size_t missing = acked.size();
  auto end = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < end && missing > 0) {
    deliveries = deliveries_of(origin.received());
    missing = 0;
    for (const auto& id : acked) missing += deliveries.count(id) ? 0 : 1;
    std::this_thread::sleep_for(100ms);
  }
  std::size_t duplicates = duplicates_of(deliveries);
  std::printf("postgres kill test: %zu acknowledged, %zu missing, %zu duplicates\n", acked.size(), missing, duplicates);
  EXPECT_EQ(missing, 0u) << relay.log();
  EXPECT_EQ(relay.stop(), 0);
}

}  // namespace
}  // namespace fetchrelay::test
