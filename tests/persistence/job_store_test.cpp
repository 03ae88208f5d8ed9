// The LevelDB store's job operations on a real database in a temporary directory.
#include <gtest/gtest.h>

#include "persistence/store.h"
#include "tests/support/job_ids.h"
#include "tests/support/process.h"

namespace fetchrelay::persistence::job_store_test {
namespace {

using test::id_of;

job_state new_job(int n, const std::string& tenant = "acme", std::int64_t run_at = 5'000) {
  job_state s;
  s.id = id_of(n);
  s.tenant = tenant;
  s.url = "http://example.com/" + std::to_string(n);
  s.created_at_ms = 1'000 + n;
  s.run_at_ms = run_at;
  s.max_attempts = 3;
  return s;
}

commit_batch submit(const job_state& s, std::string body = "{}") {
  commit_batch b;
  b.jobs.push_back({s, job_spec{"POST", s.url, {{"Content-Type", "application/json"}}, body}, std::nullopt});
  return b;
}

class JobStore : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void open() {
    store_.reset();
    auto s = open_leveldb_store({dir_.file("data"), true, faults_});
    ASSERT_TRUE(s.is_ok()) << s.error().message();
    store_ = std::move(s.value());
  }
  status commit(const commit_batch& b) { return store_->commit(std::span<const commit_batch>(&b, 1)); }
  std::int64_t count(job_status s) { return store_->counters()[static_cast<size_t>(s)]; }
  std::vector<due_entry> due(std::int64_t until = 1LL << 60) { return *store_->scan_due(std::nullopt, until, 1000); }

  test::temp_dir dir_;
  std::shared_ptr<fault_injection> faults_ = std::make_shared<fault_injection>();
  std::unique_ptr<store> store_;
};

TEST_F(JobStore, LifecycleMovesTheIndexesAndCounters) {
  job_state s = new_job(1);
  ASSERT_TRUE(commit(submit(s, "hello")).is_ok());
  EXPECT_EQ(**store_->get_job(s.id), s);
  EXPECT_EQ((*store_->get_spec(s.id))->body, "hello");
  EXPECT_EQ(count(job_status::scheduled), 1);
  EXPECT_EQ(due(), (std::vector<due_entry>{{5'000, s.id}}));

  // scheduled -> active: the due entry stays (a crash now makes the job due again).
  job_state active = s;
  active.status = job_status::active;
  commit_batch b1;
  b1.jobs.push_back({active, std::nullopt, std::nullopt});
  b1.sync = false;
  ASSERT_TRUE(commit(b1).is_ok());
  EXPECT_EQ(due(), (std::vector<due_entry>{{5'000, s.id}}));
  EXPECT_EQ(count(job_status::scheduled), 0);
  EXPECT_EQ(count(job_status::active), 1);

  // active -> retrying at 65 s with the attempt recorded: the due entry moves.
  job_state retrying = active;
  retrying.status = job_status::retrying;
  retrying.attempts = 1;
  retrying.run_at_ms = 65'000;
  commit_batch b2;
  b2.jobs.push_back({retrying, std::nullopt, attempt_record{1, 5'000, 20, 500, ""}});
  ASSERT_TRUE(commit(b2).is_ok());
  EXPECT_EQ(due(), (std::vector<due_entry>{{65'000, s.id}}));
  EXPECT_EQ(*store_->get_attempts(s.id), (std::vector<attempt_record>{{1, 5'000, 20, 500, ""}}));

  // -> delivered: terminal, no due entry.
  job_state done = retrying;
  done.status = job_status::delivered;
  done.attempts = 2;
  done.finished_at_ms = 65'100;
  commit_batch b3;
  b3.jobs.push_back({done, std::nullopt, attempt_record{2, 65'000, 9, 200, ""}});
  ASSERT_TRUE(commit(b3).is_ok());
  EXPECT_TRUE(due().empty());
  EXPECT_EQ(count(job_status::delivered), 1);
  EXPECT_EQ(count(job_status::retrying), 0);
  EXPECT_EQ(store_->get_attempts(s.id)->size(), 2u);

  // Everything survives a reopen, counters included.
  open();
  EXPECT_EQ(**store_->get_job(s.id), done);
  EXPECT_EQ(count(job_status::delivered), 1);
  EXPECT_EQ(count(job_status::scheduled), 0);
}

TEST_F(JobStore, ListsNewestFirstWithPagingStatusFilterAndTenantIsolation) {
  commit_batch b;
  for (int i = 1; i <= 25; ++i) {
    job_state s = new_job(i);
    if (i % 5 == 0) s.status = job_status::failed;
    b.jobs.push_back({s, job_spec{}, std::nullopt});
  }
  for (int i = 100; i < 105; ++i) b.jobs.push_back({new_job(i, "other"), job_spec{}, std::nullopt});
  ASSERT_TRUE(commit(b).is_ok());

  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    auto p = store_->list_jobs("acme", std::nullopt, cursor, 10);
    ASSERT_TRUE(p.is_ok());
    for (const auto& j : p->jobs) seen.push_back(j.id);
    cursor = p->next_cursor;
    if (cursor.empty()) break;
  }
  ASSERT_EQ(seen.size(), 25u);
  for (int i = 0; i < 25; ++i) EXPECT_EQ(seen[i], id_of(25 - i));

  auto failed = store_->list_jobs("acme", job_status::failed, "", 100);
  ASSERT_TRUE(failed.is_ok());
  ASSERT_EQ(failed->jobs.size(), 5u);
  EXPECT_EQ(failed->jobs[0].id, id_of(25));
  EXPECT_EQ(failed->jobs[4].id, id_of(5));

  auto other = store_->list_jobs("other", std::nullopt, "", 100);
  EXPECT_EQ(other->jobs.size(), 5u);
  EXPECT_TRUE(store_->list_jobs("nobody", std::nullopt, "", 10)->jobs.empty());
}

TEST_F(JobStore, DueScanRespectsCursorHorizonAndLimit) {
  commit_batch b;
  for (int i = 1; i <= 10; ++i) b.jobs.push_back({new_job(i, "acme", i * 1'000), job_spec{}, std::nullopt});
  ASSERT_TRUE(commit(b).is_ok());
  auto first = store_->scan_due(std::nullopt, 5'000, 3);
  ASSERT_TRUE(first.is_ok());
  ASSERT_EQ(first->size(), 3u);
  EXPECT_EQ((*first)[0], (due_entry{1'000, id_of(1)}));
  auto rest = store_->scan_due(first->back(), 5'000, 100);
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*rest)[1], (due_entry{5'000, id_of(5)}));
}

TEST_F(JobStore, IdempotencyRecordsAndRetentionPurge) {
  job_state s = new_job(7);
  s.idempotency_key = "order-42";
  commit_batch b = submit(s);
  b.idempotency.push_back({"acme", "order-42", {s.id, 99'000}});
  ASSERT_TRUE(commit(b).is_ok());
  EXPECT_EQ(**store_->get_idem("acme", "order-42"), (idem_record{s.id, 99'000}));
  EXPECT_FALSE(store_->get_idem("other", "order-42")->has_value());

  job_state done = s;
  done.status = job_status::failed;
  done.attempts = 1;
  done.finished_at_ms = 6'000;
  commit_batch t;
  t.jobs.push_back({done, std::nullopt, attempt_record{1, 5'000, 1, 0, "connect: refused"}});
  ASSERT_TRUE(commit(t).is_ok());
  EXPECT_EQ(*store_->purge_finished(5'999, 100), 0u) << "finished after the cut-off: kept";
  EXPECT_TRUE(store_->get_job(s.id)->has_value());
  EXPECT_EQ(*store_->purge_finished(6'000, 100), 1u);
  EXPECT_FALSE(store_->get_job(s.id)->has_value());
  EXPECT_FALSE(store_->get_spec(s.id)->has_value());
  EXPECT_TRUE(store_->get_attempts(s.id)->empty());
  EXPECT_FALSE(store_->get_idem("acme", "order-42")->has_value());
  EXPECT_TRUE(store_->list_jobs("acme", std::nullopt, "", 10)->jobs.empty());
  EXPECT_EQ(count(job_status::failed), 0);
}

TEST_F(JobStore, RetentionSweepSkipsJobsRunAgainAndHonoursItsLimit) {
  for (int n = 1; n <= 3; ++n) {
    job_state s = new_job(n);
    ASSERT_TRUE(commit(submit(s)).is_ok());
    job_state d = s;
    d.status = job_status::delivered;
    d.finished_at_ms = 6'000 + n;
    commit_batch b;
    b.jobs.push_back({d, std::nullopt, std::nullopt});
    ASSERT_TRUE(commit(b).is_ok());
  }
  // Job 2 is run again (POST /retry): it is pending now and must survive the sweep.
  job_state again = **store_->get_job(id_of(2));
  again.status = job_status::scheduled;
  again.finished_at_ms = 0;
  again.run_at_ms = 7'000;
  commit_batch r;
  r.jobs.push_back({again, std::nullopt, std::nullopt});
  ASSERT_TRUE(commit(r).is_ok());
  EXPECT_EQ(store_->pending_by_tenant().at("acme"), 1);

  EXPECT_EQ(*store_->purge_finished(1LL << 60, 1), 1u);
  EXPECT_FALSE(store_->get_job(id_of(1))->has_value());
  EXPECT_TRUE(store_->get_job(id_of(3))->has_value()) << "limit 1";
  EXPECT_EQ(*store_->purge_finished(1LL << 60, 100), 1u);
  EXPECT_TRUE(store_->get_job(id_of(2))->has_value()) << "a job run again is not swept";
  EXPECT_FALSE(store_->get_job(id_of(3))->has_value());
  EXPECT_EQ(count(job_status::delivered), 0);
  EXPECT_EQ(count(job_status::scheduled), 1);
  EXPECT_GT(store_->disk_usage_bytes(), 0u);
}

TEST_F(JobStore, UnfinishedJobsPerTenantSurviveAReopen) {
  ASSERT_TRUE(commit(submit(new_job(1, "acme"))).is_ok());
  ASSERT_TRUE(commit(submit(new_job(2, "acme"))).is_ok());
  ASSERT_TRUE(commit(submit(new_job(3, "globex"))).is_ok());
  job_state c = new_job(3, "globex");
  c.status = job_status::cancelled;
  c.finished_at_ms = 9'000;
  commit_batch b;
  b.jobs.push_back({c, std::nullopt, std::nullopt});
  ASSERT_TRUE(commit(b).is_ok());
  using counts = std::map<std::string, std::int64_t>;
  EXPECT_EQ(store_->pending_by_tenant(), (counts{{"acme", 2}}));
  open();
  EXPECT_EQ(store_->pending_by_tenant(), (counts{{"acme", 2}}));
  // A failed write changes nothing.
  faults_->fail_writes(true);
  EXPECT_FALSE(commit(submit(new_job(4, "acme"))).is_ok());
  EXPECT_EQ(store_->pending_by_tenant(), (counts{{"acme", 2}}));
  faults_->fail_writes(false);
}

TEST_F(JobStore, FailedWriteAcknowledgesNothingAndReopenRecovers) {
  ASSERT_TRUE(commit(submit(new_job(1))).is_ok());
  faults_->fail_writes(true);
  auto s = commit(submit(new_job(2)));
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), status_code::unavailable);
  EXPECT_EQ(store_->health().code(), status_code::unavailable);
  // While unhealthy every commit is refused, even if the disk recovered.
  faults_->fail_writes(false);
  EXPECT_FALSE(commit(submit(new_job(3))).is_ok());
  ASSERT_TRUE(store_->reopen().is_ok());
  EXPECT_TRUE(store_->health().is_ok());
  EXPECT_FALSE(store_->get_job(id_of(2))->has_value()) << "the failed submission was kept";
  EXPECT_TRUE(store_->get_job(id_of(1))->has_value());
  EXPECT_EQ(count(job_status::scheduled), 1);
  ASSERT_TRUE(commit(submit(new_job(4))).is_ok());
  EXPECT_EQ(count(job_status::scheduled), 2);
}

TEST_F(JobStore, GroupOfBatchesCommitsAtomically) {
  std::vector<commit_batch> group;
  for (int i = 1; i <= 50; ++i) group.push_back(submit(new_job(i)));
  ASSERT_TRUE(store_->commit(group).is_ok());
  EXPECT_EQ(count(job_status::scheduled), 50);
  faults_->fail_writes(true);
  std::vector<commit_batch> failing;
  for (int i = 51; i <= 60; ++i) failing.push_back(submit(new_job(i)));
  EXPECT_FALSE(store_->commit(failing).is_ok());
  faults_->fail_writes(false);
  ASSERT_TRUE(store_->reopen().is_ok());
  for (int i = 51; i <= 60; ++i) EXPECT_FALSE(store_->get_job(id_of(i))->has_value());
  EXPECT_EQ(count(job_status::scheduled), 50);
}

// A full disk or a failing device, on the log's append or on its sync, through the fault-injecting
// Env: the commit is refused naming the error, every later commit is refused until a reopen
// succeeds, a reopen fails while the fault lasts, and afterwards every acknowledged job is there
// with its body, the refused group is there whole or not at all (a failed sync may leave it in the
// log, which is replayed: it was answered 503, so its sender retries), and the counters match.
struct fault_case {
  const char* name;
  unsigned ops;
  fault_injection::kind kind;
  const char* error_text;
};

class StoreFaults : public JobStore, public ::testing::WithParamInterface<fault_case> {};

TEST_P(StoreFaults, ARefusedWriteLosesNothingAcknowledgedAndReopenRecovers) {
  const fault_case& c = GetParam();
  const std::string body(2'000, 'b');
  for (int i = 1; i <= 20; ++i) ASSERT_TRUE(commit(submit(new_job(i), body)).is_ok());
  job_state done = new_job(1);
  done.status = job_status::delivered;
  done.finished_at_ms = 9'000;
  commit_batch terminal;
  terminal.jobs.push_back({done, std::nullopt, std::nullopt});
  ASSERT_TRUE(commit(terminal).is_ok());

  faults_->fail(c.ops, c.kind);
  auto injected = faults_->injected();
  std::vector<commit_batch> group;
  for (int i = 21; i <= 30; ++i) group.push_back(submit(new_job(i), body));
  status s = store_->commit(group);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), status_code::unavailable);
  EXPECT_NE(s.message().find(c.error_text), std::string::npos) << s.message();
  EXPECT_GT(faults_->injected(), injected) << "the fault was never reached";
  EXPECT_EQ(store_->health().code(), status_code::unavailable);
  EXPECT_FALSE(commit(submit(new_job(31), body)).is_ok()) << "a commit after the failure was accepted";
  EXPECT_FALSE(store_->reopen().is_ok()) << "reopened while the disk still fails";

  faults_->fail(fault_injection::none);
  ASSERT_TRUE(store_->reopen().is_ok());
  EXPECT_TRUE(store_->health().is_ok());
  auto check = [&](int later) {  // `later`: jobs committed after the recovery
    for (int i = 1; i <= 20; ++i) {
      auto j = store_->get_job(id_of(i));
      ASSERT_TRUE(j.is_ok() && j->has_value()) << "acknowledged job " << i << " lost";
      EXPECT_EQ((*j)->status, i == 1 ? job_status::delivered : job_status::scheduled);
      auto spec = store_->get_spec(id_of(i));
      ASSERT_TRUE(spec.is_ok() && spec->has_value());
      EXPECT_EQ((*spec)->body, body);
    }
    int refused_present = 0;
    for (int i = 21; i <= 30; ++i) refused_present += store_->get_job(id_of(i))->has_value() ? 1 : 0;
    EXPECT_TRUE(refused_present == 0 || refused_present == 10) << refused_present << " of the refused group";
    EXPECT_FALSE(store_->get_job(id_of(31))->has_value()) << "written while the store was unhealthy";
    EXPECT_EQ(count(job_status::scheduled), 19 + refused_present + later) << "counters disagree with the jobs";
    EXPECT_EQ(count(job_status::delivered), 1);
  };
  check(0);
  ASSERT_TRUE(commit(submit(new_job(32), body)).is_ok());
  open();  // a new process on the same files
  check(1);
  EXPECT_TRUE(store_->get_job(id_of(32))->has_value());
}

INSTANTIATE_TEST_SUITE_P(
    DiskFaults, StoreFaults,
    ::testing::Values(fault_case{"EnospcOnAppend", fault_injection::append, fault_injection::kind::no_space, "No space left on device"},
                      fault_case{"EioOnAppend", fault_injection::append, fault_injection::kind::io_error, "Input/output error"},
                      fault_case{"EnospcOnSync", fault_injection::sync, fault_injection::kind::no_space, "No space left on device"},
                      fault_case{"EioOnSync", fault_injection::sync, fault_injection::kind::io_error, "Input/output error"}),
    [](const ::testing::TestParamInfo<fault_case>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace fetchrelay::persistence::job_store_test
