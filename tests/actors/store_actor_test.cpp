// The store actor on the test coordinator with a real LevelDB store.
#include "actors/store_actor.h"

#include <gtest/gtest.h>

#include "tests/support/caf_fixture.h"
#include "tests/support/process.h"

namespace fetchrelay::actors::store_actor_test {
namespace {

persistence::commit_batch submit(int n) {
  job_state s;
  char id[31];
  std::snprintf(id, sizeof id, "job_%026d", n);
  s.id = id;
  s.tenant = "acme";
  s.run_at_ms = 1000;
  persistence::commit_batch b;
  b.jobs.push_back({s, job_spec{}, std::nullopt});
  return b;
}

class StoreActor : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = persistence::open_leveldb_store({dir_.file("data"), true, faults_});
    ASSERT_TRUE(s.is_ok());
    store_ = std::shared_ptr<persistence::store>(std::move(s.value()));
    store_actor_options o;
    o.ready = ready_;
    actor_ = f_.sys().spawn(store_actor_impl, store_, o, stats_);
    f_.run();
  }
  void TearDown() override {
    caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
    f_.run();
  }

  completion<status> record(std::vector<status>& out) {
    return completion<status>([&out](status s) { out.push_back(s); });
  }

  test::temp_dir dir_;
  std::shared_ptr<persistence::fault_injection> faults_ = std::make_shared<persistence::fault_injection>();
  std::shared_ptr<persistence::store> store_;
  std::shared_ptr<std::atomic<bool>> ready_ = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<store_actor_stats> stats_ = std::make_shared<store_actor_stats>();
  test::caf_fixture f_;
  store_actor actor_;
};

// Before: a reply that threw (the API's listing hit json type_error.316 on a stored 0xFF) ended
// the store actor, and every later submission hung. Now that message alone is dropped.
TEST_F(StoreActor, AReplyThatThrowsCostsOnlyThatMessage) {
  std::vector<status> answers;
  caf::anon_send(actor_, commit_atom::value, submit(1), record(answers));
  f_.run();
  ASSERT_EQ(answers.size(), 1u);
  int listed = 0;
  caf::anon_send(actor_, list_atom::value, std::string("acme"), persistence::job_filter(), std::string(),
                 std::uint32_t{10}, completion<result<persistence::job_page>>([](result<persistence::job_page>) {
                   throw std::runtime_error("a reply that cannot be rendered");
                 }));
  f_.run();
  caf::anon_send(actor_, list_atom::value, std::string("acme"), persistence::job_filter(), std::string(),
                 std::uint32_t{10}, completion<result<persistence::job_page>>([&](result<persistence::job_page> r) {
                   ASSERT_TRUE(r.is_ok());
                   listed = static_cast<int>(r->jobs.size());
                 }));
  caf::anon_send(actor_, commit_atom::value, submit(2), record(answers));
  f_.run();
  EXPECT_EQ(listed, 1) << "the store actor stopped answering after a throwing reply";
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_TRUE(answers[1].is_ok());
}

TEST_F(StoreActor, CommitsThatArriveTogetherShareOneWrite) {
  EXPECT_TRUE(ready_->load());
  std::vector<status> answers;
  for (int i = 1; i <= 5; ++i) caf::anon_send(actor_, commit_atom::value, submit(i), record(answers));
  EXPECT_TRUE(answers.empty()) << "answered before the write";
  f_.run();
  ASSERT_EQ(answers.size(), 5u);
  for (const auto& s : answers) EXPECT_TRUE(s.is_ok());
  EXPECT_EQ(stats_->commits.load(), 1u);
  EXPECT_EQ(stats_->batches.load(), 5u);
  EXPECT_EQ(store_->counters()[static_cast<size_t>(job_status::scheduled)], 5);

  caf::anon_send(actor_, commit_atom::value, submit(6), record(answers));
  f_.run();
  EXPECT_EQ(stats_->commits.load(), 2u);
}

TEST_F(StoreActor, ASweepDeletesJobsFinishedLongerAgoThanRetentionAndReportsDiskUse) {
  const std::int64_t now = 100'000'000;
  auto metrics = std::make_shared<relay_metrics>();
  store_actor_options o;
  o.metrics = metrics;
  o.retention = std::chrono::hours(1);
  o.clock = std::make_shared<manual_wall_clock>(now);
  auto sweeper = f_.sys().spawn(store_actor_impl, store_, o, nullptr);
  std::vector<status> answers;
  for (int i : {1, 2}) {
    auto b = submit(i);
    job_state done = b.jobs[0].state;
    done.status = job_status::delivered;
    done.finished_at_ms = i == 1 ? now - 2 * 3'600'000 : now - 600'000;  // 2 h ago, 10 min ago
    b.jobs.push_back({done, std::nullopt, std::nullopt});
    caf::anon_send(sweeper, commit_atom::value, std::move(b), record(answers));
  }
  f_.run();
  ASSERT_EQ(answers.size(), 2u);
  caf::anon_send(sweeper, sweep_atom::value);
  f_.run();
  EXPECT_FALSE(store_->get_job("job_00000000000000000000000001")->has_value()) << "past retention";
  EXPECT_TRUE(store_->get_job("job_00000000000000000000000002")->has_value()) << "within retention";
  EXPECT_EQ(metrics->jobs_purged.load(), 1u);
  EXPECT_EQ(metrics->jobs_by_status[static_cast<size_t>(job_status::delivered)].load(), 1);
  EXPECT_GT(metrics->store_disk_bytes.load(), 0);
  caf::anon_send_exit(sweeper, caf::exit_reason::user_shutdown);
}

TEST_F(StoreActor, FailedWriteAnswersUnavailableThenReopens) {
  std::vector<status> answers;
  faults_->fail_writes(true);
  caf::anon_send(actor_, commit_atom::value, submit(1), record(answers));
  caf::anon_send(actor_, commit_atom::value, submit(2), record(answers));
  f_.run();
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].code(), status_code::unavailable);
  EXPECT_EQ(answers[1].code(), status_code::unavailable);
  EXPECT_FALSE(ready_->load());

  // Still failing at the first reopen: stays unready and answers new commits at once.
  f_.sched().advance_time(std::chrono::seconds(1));
  f_.run();
  EXPECT_FALSE(ready_->load());
  caf::anon_send(actor_, commit_atom::value, submit(3), record(answers));
  f_.run();
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_FALSE(answers[2].is_ok());

  faults_->fail_writes(false);
  f_.sched().advance_time(std::chrono::seconds(1));
  f_.run();
  EXPECT_TRUE(ready_->load());
  caf::anon_send(actor_, commit_atom::value, submit(4), record(answers));
  f_.run();
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_TRUE(answers[3].is_ok());
  EXPECT_FALSE(store_->get_job(std::string("job_") + std::string(25, '0') + "1")->has_value());
  EXPECT_EQ(store_->counters()[static_cast<size_t>(job_status::scheduled)], 1);
}

TEST_F(StoreActor, ReadsHideOtherTenantsJobs) {
  std::vector<status> answers;
  caf::anon_send(actor_, commit_atom::value, submit(1), record(answers));
  f_.run();
  std::string id = std::string("job_") + std::string(25, '0') + "1";
  std::optional<result<std::optional<job_view>>> mine, theirs;
  caf::anon_send(actor_, read_atom::value, std::string("acme"), id,
                 completion<result<std::optional<job_view>>>([&](auto r) { mine = std::move(r); }));
  caf::anon_send(actor_, read_atom::value, std::string("other"), id,
                 completion<result<std::optional<job_view>>>([&](auto r) { theirs = std::move(r); }));
  f_.run();
  ASSERT_TRUE(mine && mine->is_ok() && mine->value().has_value());
  EXPECT_EQ(mine->value()->state.id, id);
  ASSERT_TRUE(theirs && theirs->is_ok());
  EXPECT_FALSE(theirs->value().has_value());
}

}  // namespace
}  // namespace fetchrelay::actors::store_actor_test
