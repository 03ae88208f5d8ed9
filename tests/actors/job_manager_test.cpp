// The job manager with its scheduler, a real store actor on LevelDB and the test coordinator's
// simulated time. The target is an actor that answers every attempt at once with a scripted
// status, so the whole path (submit → sync → hibernate → due index → activation → attempt →
// terminal) runs deterministically.
#include "actors/job_manager.h"

#include <gtest/gtest.h>

#include "tests/support/caf_fixture.h"
#include "tests/support/process.h"
#include "tests/support/scripted_target.h"

namespace fetchrelay::actors::job_manager_test {
namespace {

using namespace std::chrono_literals;
using test::scripted_target;
using test::target_log;

constexpr std::int64_t t0 = 1'764'300'000'000;  // 2025-11-28T03:20:00Z

class JobManager : public ::testing::Test {
 protected:
  void SetUp() override { open_store(); }

  void open_store(std::chrono::milliseconds retention = std::chrono::milliseconds(0)) {
    auto s = persistence::open_leveldb_store({dir_.file("data"), true, nullptr});
    ASSERT_TRUE(s.is_ok()) << s.error().message();
    store_ = std::shared_ptr<persistence::store>(std::move(s.value()));
    store_actor_options o;
    o.metrics = metrics_;
    o.retention = retention;
    o.clock = clock_;
    store_actor_ = f_.sys().spawn(store_actor_impl, store_, o, nullptr);
  }

  /// Starts the manager; `adjust` changes the options first.
  void start(const std::function<void(manager_options&)>& adjust = {}) {
    manager_options o;
    policy_runtime p;
    p.retry.schedule = {5s, 5min};
    p.retry.attempts = 3;
    p.retry.jitter = 0;
    o.policies["default"] = p;
    o.hibernate_after = 30s;
    o.scheduler.horizon = 10min;
    o.initial_pending = store_->pending_by_tenant();
    auto log = log_;
    auto clock = clock_;
    o.make_destination = [log, clock](caf::local_actor* m, const std::string&) {
      return caf::actor_cast<destination_actor>(
          m->spawn<caf::linked>(scripted_target, log, std::shared_ptr<const wall_clock>(clock)));
    };
    if (adjust) adjust(o);
    manager_ = f_.sys().spawn(job_manager, o, store_actor_, std::shared_ptr<delivery_client>(), clock_, metrics_);
    f_.run();
  }

  void TearDown() override { stop(); }

  void stop() {
    for (auto& a : {caf::actor_cast<caf::actor>(manager_), caf::actor_cast<caf::actor>(store_actor_)}) {
      if (a) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    }
    f_.run();
    manager_ = nullptr;
    store_actor_ = nullptr;
  }

  /// Submits without running the coordinator; the answer lands in the returned slot.
  std::shared_ptr<submit_answer> submit_async(std::int64_t delay_ms, const std::string& tenant = "acme") {
    submission sub;
    sub.tenant = tenant;
    sub.spec = job_spec{"POST", "http://target.test/hook", {{"Content-Type", "application/json"}}, "{}"};
    sub.run_at_ms = clock_->now_ms() + delay_ms;
    auto out = std::make_shared<submit_answer>();
    out->http_status = 0;
    caf::anon_send(manager_, submit_atom::value, std::move(sub),
                   completion<submit_answer>([out](submit_answer a) { *out = std::move(a); }));
    return out;
  }

  submit_answer submit(std::int64_t delay_ms, const std::string& tenant = "acme") {
    auto a = submit_async(delay_ms, tenant);
    f_.run();
    return *a;
  }

  cancel_answer cancel(const std::string& id, const std::string& tenant = "acme") {
    auto out = std::make_shared<std::optional<cancel_answer>>();
    caf::anon_send(manager_, cancel_atom::value, tenant, id,
                   completion<cancel_answer>([out](cancel_answer a) { *out = a; }));
    f_.run();
    EXPECT_TRUE(out->has_value()) << "no answer";
    return out->value_or(cancel_answer::not_found);
  }

  void advance(std::chrono::milliseconds d) {
    clock_->advance(d);
    f_.sched().advance_time(d);
    f_.run();
  }

  job_state stored(const std::string& id) { return **store_->get_job(id); }
  std::int64_t live() { return metrics_->live_job_actors.load(); }

  test::temp_dir dir_;
  test::caf_fixture f_;
  std::shared_ptr<manual_wall_clock> clock_ = std::make_shared<manual_wall_clock>(t0);
  std::shared_ptr<relay_metrics> metrics_ = std::make_shared<relay_metrics>();
  std::shared_ptr<target_log> log_ = std::make_shared<target_log>();
  std::shared_ptr<persistence::store> store_;
  store_actor store_actor_;
  manager_actor manager_;
};

TEST_F(JobManager, ADayLongDelayHibernatesAndFiresAtADayNotBefore) {
  start();
  auto a = submit(24LL * 3'600'000);
  ASSERT_EQ(a.http_status, 202);
  EXPECT_EQ(live(), 0) << "a job waiting a day is not in memory";
  EXPECT_EQ(metrics_->due_index_size.load(), 0) << "nor in the due index: it is past the horizon";
  EXPECT_EQ(metrics_->jobs_hibernated.load(), 1u);
  EXPECT_EQ(stored(a.id).status, job_status::scheduled);

  advance(24h - 11min);
  EXPECT_EQ(live(), 0);
  advance(10min);  // now within the horizon: loaded into the due index, still not live
  EXPECT_EQ(metrics_->due_index_size.load(), 1);
  EXPECT_EQ(live(), 0);
  advance(1min - 1ms);
  EXPECT_TRUE(log_->hits.empty()) << "fired early";
  advance(1ms);
  ASSERT_EQ(log_->hits.size(), 1u);
  EXPECT_EQ(log_->hits[0].job_id, a.id);
  EXPECT_EQ(log_->hits[0].attempt, "1");
  EXPECT_EQ(log_->hits[0].at_ms, t0 + 24LL * 3'600'000);
  EXPECT_EQ(stored(a.id).status, job_status::delivered);
  EXPECT_EQ(live(), 0) << "forgotten once delivered";
  EXPECT_EQ(metrics_->jobs_activated.load(), 1u);
  EXPECT_EQ(metrics_->due_index_size.load(), 0);
}

// Job actors are not linked to the manager (linking is O(live jobs) per spawn in CAF 0.17), so the
// manager must end them itself: otherwise the actor system's shutdown would wait forever.
TEST_F(JobManager, AManagerThatStopsEndsItsWaitingJobActors) {
  start();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(submit(10'000).http_status, 202);
  ASSERT_EQ(live(), 3) << "jobs due in 10 s wait in memory";
  auto before = f_.sys().registry().running();
  caf::anon_send_exit(manager_, caf::exit_reason::user_shutdown);
  f_.run();
  manager_ = nullptr;
  // Left running: the store actor only (manager, scheduler, destination and the 3 jobs are gone).
  EXPECT_EQ(f_.sys().registry().running(), 1u) << "was " << before;
  EXPECT_TRUE(log_->hits.empty());
}

// Jobs of one origin share a job context only when their policy is the same too: after a 500,
// a job under a policy with a 20 s backoff waits 20 s while its neighbour under the default waits 5 s.
TEST_F(JobManager, JobsOfOneOriginUnderTwoPoliciesKeepTheirOwnBackoff) {
  start([](manager_options& o) {
    policy_runtime slow;
    slow.retry.schedule = {20s};
    slow.retry.attempts = 3;
    slow.retry.jitter = 0;
    o.policies["slow"] = slow;
  });
  log_->script = {500, 500};
  auto plain = submit_async(0);
  submission sub;
  sub.tenant = "acme";
  sub.policy = "slow";
  sub.spec = job_spec{"POST", "http://target.test/hook", {}, "{}"};
  sub.run_at_ms = clock_->now_ms();
  auto slowed = std::make_shared<submit_answer>();
  caf::anon_send(manager_, submit_atom::value, std::move(sub),
                 completion<submit_answer>([slowed](submit_answer a) { *slowed = std::move(a); }));
  f_.run();
  ASSERT_EQ(plain->http_status, 202);
  ASSERT_EQ(slowed->http_status, 202);
  ASSERT_EQ(log_->hits.size(), 2u);
  EXPECT_EQ(stored(plain->id).status, job_status::retrying);
  EXPECT_EQ(stored(plain->id).run_at_ms, t0 + 5'000) << "the default policy's backoff";
  EXPECT_EQ(stored(slowed->id).status, job_status::retrying);
  EXPECT_EQ(stored(slowed->id).run_at_ms, t0 + 20'000) << "its own policy's backoff";
}

TEST_F(JobManager, ALongBackoffHibernatesAndTheAttemptsGoOnAfterwards) {
  start();
  log_->script = {500, 502};
  auto a = submit(0);
  ASSERT_EQ(log_->hits.size(), 1u);
  EXPECT_EQ(live(), 1) << "a 5 s backoff stays in memory";
  EXPECT_EQ(metrics_->jobs_hibernated.load(), 0u);
  advance(5s);
  ASSERT_EQ(log_->hits.size(), 2u);
  // The 5 min backoff hibernates, synced, with its due time.
  EXPECT_EQ(live(), 0);
  EXPECT_EQ(metrics_->jobs_hibernated.load(), 1u);
  job_state s = stored(a.id);
  EXPECT_EQ(s.status, job_status::retrying);
  EXPECT_EQ(s.run_at_ms, t0 + 5'000 + 300'000);
  EXPECT_EQ(s.attempts, 2u);
  advance(5min - 1ms);
  EXPECT_EQ(log_->hits.size(), 2u);
  advance(1ms);
  ASSERT_EQ(log_->hits.size(), 3u);
  EXPECT_EQ(log_->hits[2].attempt, "3") << "attempt numbers go on from the snapshot";
  s = stored(a.id);
  EXPECT_EQ(s.status, job_status::delivered);
  EXPECT_EQ(store_->get_attempts(a.id)->size(), 3u);
}

TEST_F(JobManager, DeferralsCountNoAttemptAndALongOneHibernates) {
  start();
  log_->script = {-10'000, -120'000, 500};
  auto a = submit(0);
  ASSERT_EQ(log_->hits.size(), 1u);
  // A 10 s deferral stays in memory, unwritten: the store still has the job as submitted.
  EXPECT_EQ(live(), 1);
  EXPECT_EQ(stored(a.id).status, job_status::scheduled);
  EXPECT_EQ(stored(a.id).run_at_ms, t0);
  advance(10s - 1ms);
  EXPECT_EQ(log_->hits.size(), 1u);
  advance(1ms);
  ASSERT_EQ(log_->hits.size(), 2u);
  // A 2 min deferral is written (synced) with its reason, and the job leaves memory.
  EXPECT_EQ(live(), 0);
  job_state s = stored(a.id);
  EXPECT_EQ(s.status, job_status::scheduled);
  EXPECT_EQ(s.run_at_ms, t0 + 10'000 + 120'000);
  EXPECT_EQ(s.defer_reason, "rate_limit");
  EXPECT_EQ(s.attempts, 0u) << "a deferral is not an attempt";
  advance(2min);
  ASSERT_EQ(log_->hits.size(), 3u);
  for (const auto& h : log_->hits) EXPECT_EQ(h.attempt, "1");
  s = stored(a.id);
  EXPECT_EQ(s.status, job_status::retrying) << "the 500 is attempt 1";
  EXPECT_EQ(s.attempts, 1u);
  EXPECT_EQ(metrics_->deferrals.load(), 2u);
  EXPECT_EQ(metrics_->jobs_by_status[static_cast<size_t>(job_status::retrying)].load(), 1);
  EXPECT_EQ(metrics_->jobs_by_status[static_cast<size_t>(job_status::active)].load(), 0)
      << "the skipped write left no count behind";
  advance(5s);
  EXPECT_EQ(stored(a.id).status, job_status::delivered);
  EXPECT_EQ(metrics_->jobs_by_status[static_cast<size_t>(job_status::scheduled)].load(), 0);
}

/// A submission with an idempotency key; `fingerprint` stands for what it asks for.
submission keyed(const std::string& key, const std::string& fingerprint, std::int64_t run_at_ms) {
  submission sub;
  sub.tenant = "acme";
  sub.spec = job_spec{"POST", "http://target.test/hook", {}, "{}"};
  sub.run_at_ms = run_at_ms;
  sub.idempotency_key = key;
  sub.fingerprint = fingerprint;
  return sub;
}

// Before: a repeat always said "scheduled", another request under the same key silently got
// the first job, and a key outlived its purged job.
TEST_F(JobManager, ARepeatTellsTheJobsStatusNowAConflictIs409AndAKeyLeavesWithItsJob) {
  stop();
  store_.reset();
  open_store(1h);  // retention 1 h, shorter than the 24 h idempotency window
  start([](manager_options& o) { o.sweep_every = 10min; });
  auto send = [&](submission sub) {
    auto out = std::make_shared<submit_answer>();
    caf::anon_send(manager_, submit_atom::value, std::move(sub),
                   completion<submit_answer>([out](submit_answer a) { *out = std::move(a); }));
    f_.run();
    return *out;
  };
  auto first = send(keyed("order-1", "A", t0));
  ASSERT_EQ(first.http_status, 202);
  EXPECT_FALSE(first.deduplicated);
  ASSERT_EQ(log_->hits.size(), 1u);  // delivered at once
  auto repeat = send(keyed("order-1", "A", t0));
  EXPECT_EQ(repeat.http_status, 202);
  EXPECT_TRUE(repeat.deduplicated);
  EXPECT_EQ(repeat.id, first.id);
  EXPECT_EQ(repeat.status, job_status::delivered) << to_string(repeat.status);
  // Repeats that arrive before the first submission's sync wait for it and get its id.
  auto out = std::make_shared<std::vector<submit_answer>>();
  for (int i = 0; i < 3; ++i) {
    caf::anon_send(manager_, submit_atom::value, keyed("order-3", "A", t0 + 3'600'000),
                   completion<submit_answer>([out](submit_answer a) { out->push_back(std::move(a)); }));
  }
  f_.run();
  ASSERT_EQ(out->size(), 3u);
  for (const auto& a : *out) EXPECT_EQ(a.id, (*out)[0].id);
  EXPECT_EQ(std::count_if(out->begin(), out->end(), [](const submit_answer& a) { return a.deduplicated; }), 2);
  EXPECT_EQ(store_->pending_by_tenant()["acme"], 1) << "one job for three submissions";

  auto conflict = send(keyed("order-1", "B", t0));
  EXPECT_EQ(conflict.http_status, 409);
  EXPECT_EQ(conflict.error_code, "idempotency_key_conflict");
  EXPECT_NE(conflict.message.find(first.id), std::string::npos) << conflict.message;

  auto waiting = send(keyed("order-2", "A", t0 + 3'600'000));
  ASSERT_EQ(waiting.http_status, 202);
  EXPECT_EQ(cancel(waiting.id), cancel_answer::cancelled);
  EXPECT_EQ(send(keyed("order-2", "A", t0)).status, job_status::cancelled);

  // The same from the store, after a restart (the keys are no longer in memory).
  stop();
  store_.reset();
  open_store(1h);
  start([](manager_options& o) { o.sweep_every = 10min; });
  auto after = send(keyed("order-1", "A", t0));
  EXPECT_EQ(after.id, first.id);
  EXPECT_EQ(after.status, job_status::delivered);
  EXPECT_EQ(send(keyed("order-1", "B", t0)).http_status, 409);

  // Retention purges the jobs, and their keys with them: the next use makes a new job.
  advance(2h);
  EXPECT_FALSE(store_->get_job(first.id)->has_value()) << "not purged";
  auto fresh = send(keyed("order-1", "B", clock_->now_ms()));
  EXPECT_EQ(fresh.http_status, 202);
  EXPECT_FALSE(fresh.deduplicated);
  EXPECT_NE(fresh.id, first.id);
}

TEST_F(JobManager, CancellingAHibernatedJobBringsItBackToCancelIt) {
  start();
  auto a = submit(3'600'000);
  ASSERT_EQ(a.http_status, 202);
  ASSERT_EQ(live(), 0);
  EXPECT_EQ(cancel(a.id, "globex"), cancel_answer::not_found) << "another tenant's job";
  EXPECT_EQ(cancel(a.id), cancel_answer::cancelled);
  EXPECT_EQ(stored(a.id).status, job_status::cancelled);
  EXPECT_EQ(live(), 0);
  EXPECT_EQ(cancel(a.id), cancel_answer::terminal);
  EXPECT_EQ(cancel("job_01JDQX7Z8Y9ABCDEFGHJKMNPQR"), cancel_answer::not_found);
  advance(2h);
  EXPECT_TRUE(log_->hits.empty()) << "a cancelled job is never delivered";
  EXPECT_EQ(store_->pending_by_tenant().count("acme"), 0u);
}

TEST_F(JobManager, RunNowEndsTheWaitOfALiveOrHibernatedJobOnly) {
  start();
  auto run = [&](const std::string& id, const std::string& tenant = "acme") {
    auto out = std::make_shared<std::optional<command_answer>>();
    caf::anon_send(manager_, run_atom::value, tenant, id,
                   completion<command_answer>([out](command_answer a) { *out = a; }));
    f_.run();
    EXPECT_TRUE(out->has_value()) << "no answer";
    return out->value_or(command_answer::not_found);
  };
  // Hibernated (an hour away): brought back and attempted now, not an hour later.
  auto far = submit(3'600'000);
  ASSERT_EQ(live(), 0);
  EXPECT_EQ(run(far.id, "globex"), command_answer::not_found) << "another tenant's job";
  EXPECT_TRUE(log_->hits.empty());
  EXPECT_EQ(run(far.id), command_answer::started);
  ASSERT_EQ(log_->hits.size(), 1u);
  EXPECT_EQ(log_->hits[0].at_ms, t0);
  EXPECT_EQ(stored(far.id).status, job_status::delivered);
  EXPECT_EQ(run(far.id), command_answer::terminal);
  // Live, in a 5 s backoff: the next attempt starts now, and the old timer does nothing.
  log_->script = {500};
  auto near = submit(0);
  ASSERT_EQ(log_->hits.size(), 2u);
  EXPECT_EQ(run(near.id), command_answer::started);
  ASSERT_EQ(log_->hits.size(), 3u);
  EXPECT_EQ(log_->hits[2].attempt, "2");
  EXPECT_EQ(stored(near.id).status, job_status::delivered);
  advance(10s);
  EXPECT_EQ(log_->hits.size(), 3u) << "the stale backoff timer must not attempt again";
  EXPECT_EQ(run("job_01JDQX7Z8Y9ABCDEFGHJKMNPQR"), command_answer::not_found);
}

TEST_F(JobManager, TheDueIndexCapKeepsTheRestOnDiskAndDeliversAllInOrder) {
  start([](manager_options& o) {
    o.scheduler.max_entries = 3;
    o.scheduler.page = 2;
  });
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    // Due 1..10 min from now, submitted in a scrambled order; all hibernate (> 30 s).
    int minute = (i * 7) % 10 + 1;
    auto a = submit(minute * 60'000LL);
    ASSERT_EQ(a.http_status, 202);
    ids.push_back(a.id);
    EXPECT_LE(metrics_->due_index_size.load(), 3);
  }
  EXPECT_EQ(live(), 0);
  for (int m = 1; m <= 10; ++m) {
    advance(1min);
    EXPECT_LE(metrics_->due_index_size.load(), 3);
    ASSERT_EQ(log_->hits.size(), static_cast<size_t>(m)) << "minute " << m;
    EXPECT_EQ(log_->hits.back().at_ms, t0 + m * 60'000LL) << "minute " << m;
  }
  for (const auto& id : ids) EXPECT_EQ(stored(id).status, job_status::delivered);
}

TEST_F(JobManager, TheTenantLimitCountsHibernatedJobsAndSurvivesARestart) {
  start([](manager_options& o) { o.intake.max_pending_per_tenant = 2; });
  EXPECT_EQ(submit(3'600'000).http_status, 202);
  EXPECT_EQ(submit(3'600'000).http_status, 202);
  auto third = submit(3'600'000);
  EXPECT_EQ(third.http_status, 429);
  EXPECT_EQ(third.error_code, "too_many_pending");
  EXPECT_GE(third.retry_after_s, 1);
  EXPECT_EQ(submit(3'600'000, "globex").http_status, 202) << "another tenant has its own count";
  stop();
  store_.reset();
  open_store();
  start([](manager_options& o) { o.intake.max_pending_per_tenant = 2; });
  EXPECT_EQ(submit(3'600'000).http_status, 429) << "the count came back from the store";
}

TEST_F(JobManager, AStoreThatFallsBehindGets503WithRetryAfter) {
  start([](manager_options& o) { o.intake.max_pending_commits = 2; });
  auto a = submit_async(0);
  auto b = submit_async(0);
  auto c = submit_async(0);
  f_.run();
  EXPECT_EQ(a->http_status, 202);
  EXPECT_EQ(b->http_status, 202);
  EXPECT_EQ(c->http_status, 503);
  EXPECT_EQ(c->error_code, "busy");
  EXPECT_EQ(c->retry_after_s, 1);
  EXPECT_EQ(metrics_->rejected_busy.load(), 1u);
  EXPECT_EQ(submit(0).http_status, 202) << "accepted again once the store caught up";
}

TEST_F(JobManager, JobsDueAtARestartAreLoadedFromTheDueIndex) {
  start();
  auto soon = submit(10'000);       // stays live: under hibernate_after
  auto later = submit(3'600'000);   // hibernated
  ASSERT_EQ(live(), 1);
  stop();
  store_.reset();
  // "Restart" an hour later: both are due; the scheduler finds them on disk.
  clock_->advance(1h);
  f_.sched().advance_time(1h);
  open_store();
  start();
  f_.run();
  ASSERT_EQ(log_->hits.size(), 2u);
  EXPECT_EQ(stored(soon.id).status, job_status::delivered);
  EXPECT_EQ(stored(later.id).status, job_status::delivered);
}

}  // namespace
}  // namespace fetchrelay::actors::job_manager_test
