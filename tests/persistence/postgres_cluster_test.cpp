// Several relays on one PostgreSQL database, at the store level: leases, fair shares, fencing of a
// stale owner, self-fencing and unique node ids. Each test has its own schema; "a node" is a
// lease keeper and a store sharing one shard_ownership, as in a relay. A node's death or freeze
// is made by moving its lease and heartbeat into the past with SQL, not by waiting.
#include <gtest/gtest.h>


#include <set>
#include <thread>

#include "persistence/cluster.h"
#include "tests/support/pg_sql.h"
#include "tests/support/postgres.h"

namespace fetchrelay::persistence::postgres_cluster_test {
namespace {

using namespace std::chrono_literals;

class PostgresCluster : public ::testing::Test {
 protected:
  struct node {
    std::shared_ptr<shard_ownership> ownership;
    std::unique_ptr<lease_keeper> keeper;
    std::unique_ptr<store> db;
  };

  void SetUp() override {
    auto dsn = test::test_postgres_dsn();
    if (!dsn) GTEST_SKIP() << test::no_postgres_message();
    dsn_ = *dsn;
    schema_ = test::schema_for(std::string("cluster-") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    sql("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
  }

  node start(const std::string& id) {
    node n;
    n.ownership = std::make_shared<shard_ownership>(1600ms);
    postgres_options o{dsn_, true, schema_, n.ownership};
    auto k = open_lease_keeper(o, cluster_options{id, "127.0.0.1:1", 2000ms, 1600ms}, n.ownership);
    EXPECT_TRUE(k.is_ok()) << k.error().message();
    if (k.is_ok()) n.keeper = std::move(k.value());
    auto s = open_postgres_store(o);
    EXPECT_TRUE(s.is_ok()) << s.error().message();
    if (s.is_ok()) n.db = std::move(s.value());
    return n;
  }

  std::string sql(const std::string& text) {
    return test::run_sql(dsn_, "SET search_path TO " + schema_ + ", public; " + text);
  }

  /// The node stops: its leases and heartbeat lapse at once (as 10 s after a kill -9).
  void lapse(const std::string& id) {
    sql("UPDATE fr_shards SET lease_until = now() - interval '1 second' WHERE owner = '" + id + "'");
    sql("UPDATE fr_nodes SET heartbeat_at = now() - interval '1 hour' WHERE node_id = '" + id + "'");
  }

  static commit_batch new_job(const std::string& id) {
    commit_batch b;
    job_state s;
    s.id = id;
    s.tenant = "acme";
    s.url = "http://example.com/";
    s.status = job_status::scheduled;
    s.run_at_ms = 1'000;
    b.jobs.push_back({s, job_spec{"POST", s.url, {}, "{}"}, std::nullopt});
    return b;
  }

  static commit_batch finish(const std::string& id) {
    commit_batch b = new_job(id);
    b.jobs[0].spec.reset();
    b.jobs[0].state.status = job_status::delivered;
    b.jobs[0].state.finished_at_ms = 2'000;
    return b;
  }

  static status commit(node& n, const commit_batch& b) { return n.db->commit(std::span<const commit_batch>(&b, 1)); }

  static std::vector<std::string> due_ids(node& n) {
    auto due = n.db->scan_due(std::nullopt, 1LL << 60, 100);
    EXPECT_TRUE(due.is_ok());
    std::vector<std::string> out;
    for (const auto& e : *due) out.push_back(e.id);
    return out;
  }

  std::string dsn_;
  std::string schema_;
};

TEST_F(PostgresCluster, ALoneNodeTakesEveryShardAndPutsNewJobsInItsOwn) {
  node a = start("a");
  ASSERT_TRUE(a.keeper->join().is_ok());
  auto r = a.keeper->renew();
  ASSERT_TRUE(r.is_ok()) << r.error().message();
  EXPECT_EQ(r->taken.size(), static_cast<std::size_t>(postgres_shards));
  EXPECT_EQ(r->live_nodes, 1);
  EXPECT_FALSE(a.ownership->fenced());
  ASSERT_TRUE(commit(a, new_job("job_1")).is_ok());
  ASSERT_TRUE(commit(a, new_job("job_2")).is_ok());
  EXPECT_EQ(sql("SELECT shard FROM fr_jobs WHERE id = 'job_1'"), sql("SELECT shard FROM fr_jobs WHERE id = 'job_2'"))
      << "runs of 64 jobs per shard";
  // Round robin over the node's shards in runs of 64 (two jobs went already).
  std::set<int> first_run, second_run;
  for (int i = 2; i < 64; ++i) first_run.insert(a.ownership->next_shard());
  for (int i = 0; i < 64; ++i) second_run.insert(a.ownership->next_shard());
  EXPECT_EQ(first_run.size(), 1u);
  EXPECT_EQ(second_run.size(), 1u);
  EXPECT_NE(*first_run.begin(), *second_run.begin());
  EXPECT_EQ(due_ids(a), (std::vector<std::string>{"job_1", "job_2"}));

  auto again = a.keeper->renew();
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(again->taken.empty() && again->lost.empty()) << "a renewal keeps the same shards at the same epochs";
}

TEST_F(PostgresCluster, ASecondNodeGetsHalfWithinTwoRenewals) {
  node a = start("a"), b = start("b");
  ASSERT_TRUE(a.keeper->join().is_ok());
  ASSERT_TRUE(a.keeper->renew().is_ok());
  ASSERT_TRUE(b.keeper->join().is_ok());
  auto b1 = b.keeper->renew();
  ASSERT_TRUE(b1.is_ok());
  EXPECT_EQ(b1->owned, 0u) << "every lease is live: nothing to take yet";
  EXPECT_TRUE(b.ownership->fenced()) << "a node without shards writes nothing";
  auto a2 = a.keeper->renew();
  ASSERT_TRUE(a2.is_ok());
  EXPECT_EQ(a2->released.size(), static_cast<std::size_t>(postgres_shards / 2)) << "two live nodes: a keeps its half";
  auto b2 = b.keeper->renew();
  ASSERT_TRUE(b2.is_ok());
  EXPECT_EQ(b2->taken.size(), static_cast<std::size_t>(postgres_shards / 2));
  std::set<int> sa, sb;
  for (int s : a.ownership->shards()) sa.insert(s);
  for (int s : b.ownership->shards()) sb.insert(s);
  EXPECT_EQ(sa.size() + sb.size(), static_cast<std::size_t>(postgres_shards));
  for (int s : sa) EXPECT_FALSE(sb.count(s)) << "shard " << s << " held twice";
}

TEST_F(PostgresCluster, AStaleOwnerWritesNothingAndNoLongerScansTheShardsItLost) {
  node a = start("a"), b = start("b");
  ASSERT_TRUE(a.keeper->join().is_ok());
  ASSERT_TRUE(a.keeper->renew().is_ok());
  ASSERT_TRUE(commit(a, new_job("job_x")).is_ok());
  std::string shard = sql("SELECT shard FROM fr_jobs WHERE id = 'job_x'");

  lapse("a");  // a froze: its leases lapsed, and b takes over
  ASSERT_TRUE(b.keeper->join().is_ok());
  auto taken = b.keeper->renew();
  ASSERT_TRUE(taken.is_ok());
  EXPECT_EQ(taken->taken.size(), static_cast<std::size_t>(postgres_shards)) << "a is not live: b takes everything";
  EXPECT_EQ(due_ids(b), std::vector<std::string>{"job_x"}) << "the new owner's recovery scan finds a's job";

  // a wakes up and, before it renews, finishes the job it was delivering: fenced by the epoch.
  status late = commit(a, finish("job_x"));
  ASSERT_FALSE(late.is_ok());
  EXPECT_EQ(late.code(), status_code::failed_precondition);
  EXPECT_NE(late.message().find("shard " + shard + " moved to another node"), std::string::npos) << late.message();
  EXPECT_TRUE(a.db->health().is_ok()) << "refused, not failed: the store is fine";
  EXPECT_EQ(sql("SELECT status FROM fr_jobs WHERE id = 'job_x'"), "1") << "nothing of the stale write landed";
  EXPECT_EQ(sql("SELECT count(*) FROM fr_events WHERE job_id = 'job_x'"), "1") << "only the created event";
  EXPECT_FALSE(commit(a, new_job("job_y")).is_ok()) << "a new job on a stale shard is refused too";

  auto lost = a.keeper->renew();
  ASSERT_TRUE(lost.is_ok());
  EXPECT_EQ(lost->lost.size(), static_cast<std::size_t>(postgres_shards));
  EXPECT_TRUE(due_ids(a).empty()) << "a scans only what it holds: nothing";
  EXPECT_TRUE(a.ownership->fenced());
  ASSERT_TRUE(commit(b, finish("job_x")).is_ok()) << "the owner writes";
  EXPECT_EQ(sql("SELECT status FROM fr_jobs WHERE id = 'job_x'"), "4");
}

TEST_F(PostgresCluster, ANodeFencesItselfWhenItsRenewalIsLateBeforeTheLeaseCanLapse) {
  node a = start("a");
  ASSERT_TRUE(a.keeper->join().is_ok());
  ASSERT_TRUE(a.keeper->renew().is_ok());
  auto now = shard_ownership::clock::now();
  EXPECT_FALSE(a.ownership->fenced(now));
  EXPECT_TRUE(a.ownership->fenced(now + 1700ms)) << "1.6 s after the last renewal was sent, 0.4 s before the lease";
  a.ownership->confirm(a.ownership->owned(), now - 1700ms);  // as if the last renewal was 1.7 s ago
  status s = commit(a, new_job("job_late"));
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("fenced"), std::string::npos) << s.message();
  EXPECT_EQ(sql("SELECT count(*) FROM fr_jobs"), "0");
  ASSERT_TRUE(a.keeper->renew().is_ok()) << "the next renewal succeeds";
  EXPECT_TRUE(commit(a, new_job("job_late")).is_ok()) << "and the node writes again";

  // A lease that lapsed but that nobody took is still the node's, at the same epoch.
  std::string epoch = sql("SELECT epoch FROM fr_shards WHERE shard = 0");
  lapse("a");
  auto back = a.keeper->renew();
  ASSERT_TRUE(back.is_ok());
  EXPECT_TRUE(back->lost.empty() && back->taken.empty());
  EXPECT_EQ(sql("SELECT epoch FROM fr_shards WHERE shard = 0"), epoch);
}

TEST_F(PostgresCluster, ANodeIdIsRefusedWhileALiveNodeHasItAndLeavingHandsEverythingBack) {
  node a = start("n1");
  ASSERT_TRUE(a.keeper->join().is_ok());
  ASSERT_TRUE(a.keeper->renew().is_ok());
  node twin = start("n1");
  status s = twin.keeper->join();
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), status_code::failed_precondition);
  EXPECT_NE(s.message().find("\"n1\""), std::string::npos) << s.message();

  ASSERT_TRUE(a.keeper->leave().is_ok());
  EXPECT_EQ(sql("SELECT count(*) FROM fr_shards WHERE owner IS NOT NULL"), "0");
  EXPECT_TRUE(a.ownership->fenced());
  EXPECT_TRUE(twin.keeper->join().is_ok()) << "the id is free once its node left";
  auto r = twin.keeper->renew();
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->taken.size(), static_cast<std::size_t>(postgres_shards)) << "released shards are taken at once";
}

}  // namespace
}  // namespace fetchrelay::persistence::postgres_cluster_test

namespace fetchrelay::persistence::postgres_cluster_test {
namespace {

/// Takes from `t` until `want` tokens came or `limit` passed (the lease comes in the background).
std::int64_t take_within(shared_tokens& t, const std::string& key, std::int64_t want, double rate, std::int64_t burst,
                         std::chrono::milliseconds limit) {
  std::int64_t got = 0;
  auto end = std::chrono::steady_clock::now() + limit;
  while (got < want && std::chrono::steady_clock::now() < end) {
    got += t.take(key, want - got, rate, burst);
    if (got < want) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return got;
}

TEST_F(PostgresCluster, AnIdempotencyKeyBecomesOneJobAcrossRelaysTheLaterOneGetsTheHoldersRecord) {
  node a = start("a"), b = start("b");
  ASSERT_TRUE(a.keeper->join().is_ok() && b.keeper->join().is_ok());
  ASSERT_TRUE(a.keeper->renew().is_ok() && b.keeper->renew().is_ok());
  ASSERT_TRUE(a.keeper->renew().is_ok() && b.keeper->renew().is_ok());  // a gives b its half
  ASSERT_TRUE(b.keeper->renew().is_ok());
  ASSERT_FALSE(a.ownership->shards().empty());
  ASSERT_FALSE(b.ownership->shards().empty());
  auto keyed = [](const std::string& id, std::int64_t expires) {
    commit_batch c = new_job(id);
    c.at_ms = 1'000;
    c.idempotency.push_back({"acme", "order-7", {id, expires, "fp-" + id}});
    c.lost_keys = std::make_shared<std::vector<idem_write>>();
    return c;
  };
  auto first = keyed("job_a", 60'000);
  ASSERT_TRUE(commit(a, first).is_ok());
  EXPECT_TRUE(first.lost_keys->empty());
  // b took the same key meanwhile (its memory did not know it): the primary key decides.
  auto second = keyed("job_b", 60'000);
  ASSERT_TRUE(commit(b, second).is_ok()) << "the rest of the batch is written";
  ASSERT_EQ(second.lost_keys->size(), 1u);
  EXPECT_EQ((*second.lost_keys)[0].record.id, "job_a");
  EXPECT_EQ((*second.lost_keys)[0].record.fingerprint, "fp-job_a");
  EXPECT_EQ(sql("SELECT count(*) FROM fr_jobs WHERE id = 'job_b'"), "0") << "the later job is not written";
  EXPECT_EQ(sql("SELECT count(*) FROM fr_jobs WHERE id = 'job_b' AND due_ms IS NOT NULL"), "0");
  EXPECT_EQ(*a.db->get_idem("acme", "order-7").value(), (idem_record{"job_a", 60'000, "fp-job_a"}));
  // The same job writing its key again keeps it; once the key's window ended, a new job takes it.
  auto again = keyed("job_a", 60'000);
  ASSERT_TRUE(commit(a, again).is_ok());
  EXPECT_TRUE(again.lost_keys->empty());
  auto later = keyed("job_c", 200'000);
  later.at_ms = 60'001;
  ASSERT_TRUE(commit(b, later).is_ok());
  EXPECT_TRUE(later.lost_keys->empty()) << "an expired key is free";
  EXPECT_EQ(a.db->get_idem("acme", "order-7").value()->id, "job_c");
  // A live key whose job is gone (removed without its key) is given up too.
  sql("DELETE FROM fr_jobs WHERE id = 'job_c'");
  auto orphan = keyed("job_d", 300'000);
  orphan.at_ms = 60'002;
  ASSERT_TRUE(commit(a, orphan).is_ok());
  EXPECT_TRUE(orphan.lost_keys->empty());
  EXPECT_EQ(a.db->get_idem("acme", "order-7").value()->id, "job_d");
  EXPECT_EQ(sql("SELECT count(*) FROM fr_jobs WHERE id = 'job_d'"), "1");
}

TEST_F(PostgresCluster, TwoRelaysShareOneBucketAndAPauseHoldsBothBack) {
  postgres_options o{dsn_, true, schema_, nullptr};
  ASSERT_TRUE(migrate_postgres(o).is_ok());
  auto a = open_shared_tokens(o, nullptr);
  auto b = open_shared_tokens(o, nullptr);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  // A bucket of 40 that refills at 1 token a second: together they get the 40 and barely more.
  std::int64_t from_a = take_within(**a, "k", 30, 1.0, 40, 3s);
  std::int64_t from_b = take_within(**b, "k", 30, 1.0, 40, 1s);
  EXPECT_EQ(from_a, 30) << "a leases first, up to max(32, rate × 1 s) of the full bucket";
  EXPECT_GE(from_b, 8);
  EXPECT_LE(from_a + from_b, 40 + 5) << "the bucket plus its refill while the test ran";
  // Another bucket, paused by a for 2 s: b gets nothing until then.
  auto until = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                   .count() + 2'000;
  (*a)->pause("p", until);
  std::this_thread::sleep_for(300ms);  // the pause is written in the background
  EXPECT_EQ(take_within(**b, "p", 1, 100.0, 100, 1s), 0) << "paused for every relay";
  EXPECT_EQ(take_within(**b, "p", 1, 100.0, 100, 3s), 1) << "and free again after Retry-After";
  EXPECT_NE(sql("SELECT count(*) FROM fr_buckets"), "0");
}

TEST_F(PostgresCluster, ACommitPickedAsADeadlockVictimRunsAgainInsteadOfFailing) {
  node a = start("a");
  ASSERT_TRUE(a.keeper->renew().is_ok());
  auto keyed = [](commit_batch c) {
    c.at_ms = 1'000;
    c.idempotency.push_back({"acme", "order-9", {"job_a", 60'000, "fp-a"}});
    c.lost_keys = std::make_shared<std::vector<idem_write>>();
    return c;
  };
  ASSERT_TRUE(commit(a, keyed(new_job("job_a"))).is_ok());
  std::string shard = sql("SELECT shard FROM fr_jobs WHERE id = 'job_a'");
  ASSERT_TRUE(a.keeper->renew().is_ok());  // now, not while the other session holds the shard row
  // Another session locks the job's shard row, then (0.5 s later) the key's row. The store's
  // next commit claims the key first and then waits for the shard (its fencing read): a cycle.
  // PostgreSQL's deadlock check fires in the store's session, and rolls its transaction back; the commit must run again (once the other session is done), not
  // fail and make the store unhealthy.
  std::thread other([&] {
    // Its own deadlock check waits 100 s: the store's (1 s) always finds the cycle first.
    sql("SET deadlock_timeout = '100s'; BEGIN; SELECT 1 FROM fr_shards WHERE shard = " + shard +
        " FOR UPDATE; SELECT pg_sleep(0.5); " +
        "UPDATE fr_idempotency SET expires_ms = expires_ms WHERE key = 'order-9'; COMMIT");
  });
  for (int i = 0; i < 200 && sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(0.5)%' AND "
                                  "wait_event = 'PgSleep'") == "0"; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  auto t0 = std::chrono::steady_clock::now();
  status s = commit(a, keyed(finish("job_a")));
  auto waited = std::chrono::steady_clock::now() - t0;
  other.join();
  EXPECT_GE(waited, 900ms) << "the commit waited for PostgreSQL's deadlock check (1 s), so the cycle was made";
  ASSERT_TRUE(s.is_ok()) << s.message();
  EXPECT_TRUE(a.db->health().is_ok());
  EXPECT_EQ(sql("SELECT status FROM fr_jobs WHERE id = 'job_a'"), std::to_string(static_cast<int>(job_status::delivered)));
}

}  // namespace
}  // namespace fetchrelay::persistence::postgres_cluster_test
