// The job actor on the test coordinator with simulated time, a real store actor on LevelDB, and
// a scripted destination: the test plays the target by sending outcomes.
#include "actors/job_actor.h"

#include <gtest/gtest.h>

#include "core/ulid.h"
#include "persistence/cluster.h"
#include "tests/support/caf_fixture.h"
#include "tests/support/process.h"

namespace fetchrelay::actors::job_actor_test {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t t0 = 1'764'300'000'000;  // 2025-11-28T03:20:00Z

struct recorder {
  std::vector<attempt_request> attempts;
  std::vector<job_state> finished;  // as stored when the manager heard
  std::vector<std::shared_ptr<const job_state>> reported;  // as the done message carried it
  std::vector<std::string> queue_events;  // "started <id>", "released <id>"
  std::vector<std::string> stepped_aside;  // ids the manager was told to take out of memory
};

class JobActor : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = persistence::open_leveldb_store({dir_.file("data"), true, nullptr});
    ASSERT_TRUE(s.is_ok());
    store_ = std::shared_ptr<persistence::store>(std::move(s.value()));
    auto rec = rec_;
    store_actor_ = f_.sys().spawn(store_actor_impl, store_, store_actor_options{}, nullptr);
    destination_ = f_.sys().spawn(
        [](caf::event_based_actor*, std::shared_ptr<recorder> r) -> caf::behavior {
          return {[r](deliver_atom, const attempt_request& req) { r->attempts.push_back(req); }};
        },
        rec);
    // The final state as the store holds it when the manager hears: the message carries it only
    // for a job with a callback to make.
    manager_ = f_.sys().spawn(
        [](caf::event_based_actor*, std::shared_ptr<recorder> r, std::shared_ptr<persistence::store> store) -> caf::behavior {
          return {[r, store](done_atom, const std::string& id, const std::shared_ptr<const job_state>& s) {
                    r->reported.push_back(s);
                    auto held = store->get_job(id);
                    if (held.is_ok() && held.value()) r->finished.push_back(*held.value());
                  },
                  [r](hibernated_atom, const std::string& id, std::int64_t) { r->stepped_aside.push_back(id); }};
        },
        rec, store_);
    queues_ = f_.sys().spawn(
        [](caf::event_based_actor*, std::shared_ptr<recorder> r) -> caf::behavior {
          return {[r](queue_started_atom, const std::string&, const std::string&, const std::string& id) {
                    r->queue_events.push_back("started " + id);
                  },
                  [r](queue_released_atom, const std::string&, const std::string&, const std::string& id) {
                    r->queue_events.push_back("released " + id);
                  }};
        },
        rec);
    policy_.schedule = {5s, 5min};
    policy_.attempts = 3;
    policy_.jitter = 0;
  }

  void TearDown() override {
    for (auto& a : jobs_) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    for (auto& a : {caf::actor_cast<caf::actor>(store_actor_), destination_, manager_, queues_}) {
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    }
    f_.run();
  }

  job_actor start(std::int64_t delay_ms, std::uint32_t max_attempts = 3, job_status status = job_status::scheduled,
                  const std::string& queue = "", const std::string& qstash_options = "") {
    auto ctx = std::make_shared<job_context>();
    ctx->store = store_actor_;
    ctx->destination = caf::actor_cast<destination_actor>(destination_);
    ctx->manager = caf::actor_cast<manager_actor>(manager_);
    ctx->clock = clock_;
    ctx->retry = policy_;
    ctx->unit_random = [this] { return random_; };
    ctx->queues = queues_;
    ctx->qstash_keys = qstash_keys_;
    ctx->ownership = ownership_;
    job_state s;
    s.id = "job_01JDQX7Z8Y9ABCDEFGHJKMNPQR";
    s.tenant = "acme";
    s.status = status;
    s.url = "http://target.test/hook";
    s.created_at_ms = clock_->now_ms();
    s.run_at_ms = clock_->now_ms() + delay_ms;
    s.max_attempts = max_attempts;
    s.timeout_ms = 15'000;
    s.qstash = qstash_options;
    s.failure_callback_url = failure_callback_url_;
    if (!queue.empty()) {
      s.queue = queue;
      s.queue_stage = static_cast<std::uint8_t>(queue_stage::waiting);
    }
    job_spec spec{"POST", s.url, {{"Content-Type", "application/json"}}, "{\"userId\":\"user_456\"}"};
    persistence::commit_batch b;
    b.jobs.push_back({s, spec, std::nullopt});
    EXPECT_TRUE(store_->commit(std::span<const persistence::commit_batch>(&b, 1)).is_ok());
    auto a = f_.sys().spawn(job_actor_impl, std::make_shared<job_seed>(job_seed{s, spec, {}}), ctx);
    jobs_.push_back(caf::actor_cast<caf::actor>(a));
    f_.run();
    return a;
  }

  /// Moves the wall clock and CAF's clock together, then runs what became due.
  void advance(std::chrono::milliseconds d) {
    clock_->advance(d);
    f_.sched().advance_time(d);
    f_.run();
  }

  void answer(const job_actor& a, int status, std::vector<header_pair> headers = {},
              error_class kind = error_class::none) {
    ASSERT_FALSE(rec_->attempts.empty());
    attempt_result r;
    r.generation = rec_->attempts.back().generation;
    r.status = status;
    r.headers = std::move(headers);
    r.kind = kind;
    r.error = kind == error_class::none ? "" : "simulated";
    r.started_at_ms = clock_->now_ms();
    r.duration_ms = 12;
    caf::anon_send(a, outcome_atom::value, r);
    f_.run();
  }

  job_state stored() { return **store_->get_job("job_01JDQX7Z8Y9ABCDEFGHJKMNPQR"); }

  std::string failure_callback_url_;  // for the next start()

  test::temp_dir dir_;
  test::caf_fixture f_;
  std::shared_ptr<manual_wall_clock> clock_ = std::make_shared<manual_wall_clock>(t0);
  std::shared_ptr<persistence::store> store_;
  std::shared_ptr<persistence::shard_ownership> ownership_;
  std::shared_ptr<recorder> rec_ = std::make_shared<recorder>();
  store_actor store_actor_;
  caf::actor destination_;
  caf::actor manager_;
  caf::actor queues_;
  std::vector<caf::actor> jobs_;  // told to exit at teardown, finished or not
  retry_policy policy_;
  double random_ = 0.5;
  std::shared_ptr<qstash::key_ring> qstash_keys_;
};

/// The value of header `name` of attempt `i`, or "" if it has none.
std::string header_of(const attempt_request& req, std::string_view name) {
  for (const auto& h : req.headers) {
    if (h.name == name) return h.value;
  }
  return "";
}

TEST_F(JobActor, AQstashMessageIsSentAndRetriedAsQstashDoes) {
  qstash_keys_ = std::make_shared<qstash::key_ring>();
  qstash_keys_->set("", {"sig_current", "sig_next"});
  auto a = start(0, 10, job_status::scheduled, "", R"js({"retry_delay":"1000 * (retried + 1)"})js");
  ASSERT_EQ(rec_->attempts.size(), 1u);
  const auto& first = rec_->attempts[0];
  EXPECT_EQ(first.qstash_key, "sig_current") << "signed by the destination with the tenant's current key";
  EXPECT_EQ(header_of(first, "Upstash-Message-Id"), "msg_01JDQX7Z8Y9ABCDEFGHJKMNPQR");
  EXPECT_EQ(header_of(first, "Upstash-Retried"), "0");
  EXPECT_EQ(header_of(first, "X-Fetch-Job-Id"), "") << "QStash's headers, not v1's";
  answer(a, 500);  // Retry-Delay with retried = 0: 1 s
  advance(999ms);
  EXPECT_EQ(rec_->attempts.size(), 1u) << "retried early";
  advance(1ms);
  ASSERT_EQ(rec_->attempts.size(), 2u);
  EXPECT_EQ(header_of(rec_->attempts[1], "Upstash-Retried"), "1");
  answer(a, 500);  // retried = 1: 2 s
  advance(1999ms);
  EXPECT_EQ(rec_->attempts.size(), 2u);
  advance(1ms);
  ASSERT_EQ(rec_->attempts.size(), 3u);
  answer(a, 429, {{"Retry-After", "7"}});  // 3 s by the expression, but the target asks for 7
  advance(6999ms);
  EXPECT_EQ(rec_->attempts.size(), 3u) << "Retry-After not honoured";
  advance(1ms);
  ASSERT_EQ(rec_->attempts.size(), 4u);
  answer(a, 489, {{"Upstash-NonRetryable-Error", "true"}});
  ASSERT_EQ(rec_->finished.size(), 1u) << "489 with Upstash-NonRetryable-Error ends it at once";
  EXPECT_EQ(rec_->finished[0].status, job_status::failed);
  EXPECT_NE(rec_->finished[0].last_error.find("489"), std::string::npos) << rec_->finished[0].last_error;
  EXPECT_EQ(stored().attempts, 4u);
}

TEST_F(JobActor, AQstashMessageWithoutRetryDelayWaitsEToTheTwoAndAHalfNWithoutJitter) {
  random_ = 0.99;  // v1 jitter would move the wait; QStash's has none
  auto a = start(0, 3, job_status::scheduled, "", "{}");
  answer(a, 503);
  advance(12'181ms);  // e^2.5 s = 12.182 s
  EXPECT_EQ(rec_->attempts.size(), 1u);
  advance(1ms);
  ASSERT_EQ(rec_->attempts.size(), 2u);
  answer(a, 410);  // retried like any other status (v1's non_retryable does not apply)
  advance(148'412ms);  // e^5 s = 148.413 s
  EXPECT_EQ(rec_->attempts.size(), 2u);
  advance(1ms);
  ASSERT_EQ(rec_->attempts.size(), 3u);
  answer(a, 200);
  ASSERT_EQ(rec_->finished.size(), 1u);
  EXPECT_EQ(rec_->finished[0].status, job_status::delivered);
}

TEST_F(JobActor, TheManagerIsHandedTheFinalSnapshotWhenItHasACallbackToMake) {
  failure_callback_url_ = "http://target.test/failed";
  auto a = start(0, 1);
  answer(a, 500);
  ASSERT_EQ(rec_->reported.size(), 1u);
  ASSERT_TRUE(rec_->reported[0]);
  EXPECT_EQ(rec_->reported[0]->id, "job_01JDQX7Z8Y9ABCDEFGHJKMNPQR");
  EXPECT_EQ(rec_->reported[0]->status, job_status::failed);
  EXPECT_EQ(rec_->reported[0]->failure_callback_url, "http://target.test/failed");
  EXPECT_EQ(rec_->reported[0]->last_status_code, 500);
}

TEST_F(JobActor, TheManagerIsHandedNoSnapshotWhenThereIsNoCallback) {
  auto a = start(0, 1);
  answer(a, 500);
  ASSERT_EQ(rec_->reported.size(), 1u);
  EXPECT_FALSE(rec_->reported[0]) << "no copy of the snapshot for a job without callbacks";
  ASSERT_EQ(rec_->finished.size(), 1u);
  EXPECT_EQ(rec_->finished[0].status, job_status::failed);
}

TEST_F(JobActor, DelayedJobFiresAtItsTimeAndNotBefore) {
  auto a = start(24LL * 3'600'000);
  EXPECT_TRUE(rec_->attempts.empty());
  advance(24h - 1ms);
  EXPECT_TRUE(rec_->attempts.empty()) << "fired early";
  advance(1ms);
  ASSERT_EQ(rec_->attempts.size(), 1u);
  const auto& req = rec_->attempts[0];
  EXPECT_EQ(req.url, "http://target.test/hook");
  EXPECT_EQ(req.body, "{\"userId\":\"user_456\"}");
  auto has = [&](const char* n, const std::string& v) {
    for (const auto& h : req.headers) if (h.name == n && h.value == v) return true;
    return false;
  };
  EXPECT_TRUE(has("X-Fetch-Job-Id", "job_01JDQX7Z8Y9ABCDEFGHJKMNPQR"));
  EXPECT_TRUE(has("X-Fetch-Attempt", "1"));
  EXPECT_TRUE(has("Content-Type", "application/json"));
  // `active` is not written: the store keeps the job scheduled and due until the outcome.
  EXPECT_EQ(stored().status, job_status::scheduled);
  EXPECT_EQ(store_->scan_due(std::nullopt, 1LL << 62, 10)->size(), 1u);
  answer(a, 200);
  ASSERT_EQ(rec_->finished.size(), 1u);
  EXPECT_EQ(rec_->finished[0].status, job_status::delivered);
  job_state s = stored();
  EXPECT_EQ(s.status, job_status::delivered);
  EXPECT_EQ(s.attempts, 1u);
  EXPECT_EQ(s.finished_at_ms, t0 + 24LL * 3'600'000);
  EXPECT_EQ(store_->get_attempts(s.id)->size(), 1u);
  EXPECT_TRUE(store_->scan_due(std::nullopt, 1LL << 62, 10)->empty());
}

// Several relays: the job's shard was lost and taken back while its actor waited. Another node
// may have delivered it meanwhile, so the actor starts nothing and leaves memory; the store's
// record is what runs.
TEST_F(JobActor, AJobWhoseShardWasLostAndTakenBackMeanwhileStepsAsideInsteadOfDelivering) {
  const std::string id = "job_01JDQX7Z8Y9ABCDEFGHJKMNPQR";
  const int shard = job_shard(id);
  ownership_ = std::make_shared<persistence::shard_ownership>(std::chrono::hours(1));
  ownership_->confirm({{shard, 7}}, persistence::shard_ownership::clock::now());
  start(10'000);
  ownership_->confirm({{shard, 9}}, persistence::shard_ownership::clock::now());  // lost at 8, back at 9
  advance(10s);
  EXPECT_TRUE(rec_->attempts.empty()) << "delivered from a memory older than the shard's epoch";
  ASSERT_EQ(rec_->stepped_aside.size(), 1u);
  EXPECT_EQ(rec_->stepped_aside[0], id);
}

TEST_F(JobActor, AJobWhoseShardIsHeldAtTheSameEpochIsDelivered) {
  const int shard = job_shard("job_01JDQX7Z8Y9ABCDEFGHJKMNPQR");
  ownership_ = std::make_shared<persistence::shard_ownership>(std::chrono::hours(1));
  ownership_->confirm({{shard, 7}}, persistence::shard_ownership::clock::now());
  start(10'000);
  ownership_->confirm({{shard, 7}, {(shard + 1) % 256, 3}}, persistence::shard_ownership::clock::now());  // renewed, one more
  advance(10s);
  EXPECT_EQ(rec_->attempts.size(), 1u);
  EXPECT_TRUE(rec_->stepped_aside.empty());
}

TEST_F(JobActor, BackoffScheduleIsFollowedExactlyThenRetriesRunOut) {
  auto a = start(0);
  ASSERT_EQ(rec_->attempts.size(), 1u);
  answer(a, 500);
  EXPECT_EQ(stored().status, job_status::retrying);
  EXPECT_EQ(stored().run_at_ms, t0 + 5'000);
  advance(4'999ms);
  EXPECT_EQ(rec_->attempts.size(), 1u);
  advance(1ms);
  ASSERT_EQ(rec_->attempts.size(), 2u);
  EXPECT_EQ(rec_->attempts[1].headers.back().value, "2");  // X-Fetch-Attempt
  answer(a, 502);
  advance(5min - 1ms);
  EXPECT_EQ(rec_->attempts.size(), 2u);
  advance(1ms);
  ASSERT_EQ(rec_->attempts.size(), 3u);
  answer(a, 0, {}, error_class::timeout);
  ASSERT_EQ(rec_->finished.size(), 1u);
  job_state s = stored();
  EXPECT_EQ(s.status, job_status::failed);
  EXPECT_EQ(s.attempts, 3u);
  EXPECT_EQ(s.last_error, "timeout: simulated; gave up after 3 attempts");
  auto att = *store_->get_attempts(s.id);
  ASSERT_EQ(att.size(), 3u);
  EXPECT_EQ(att[0].status_code, 500);
  EXPECT_EQ(att[1].status_code, 502);
  EXPECT_EQ(att[2].error, "timeout: simulated");
  advance(1h);
  EXPECT_EQ(rec_->attempts.size(), 3u);
}

TEST_F(JobActor, JitterStaysWithinItsBounds) {
  policy_.jitter = 0.2;
  random_ = 0.0;
  auto a = start(0);
  answer(a, 500);
  EXPECT_EQ(stored().run_at_ms, t0 + 4'000);  // 5 s - 20 %
  random_ = 0.999999;
  advance(4'000ms);
  answer(a, 500);
  EXPECT_EQ(stored().run_at_ms, t0 + 4'000 + 360'000);  // 5 min + 20 %
}

TEST_F(JobActor, GoneAndNoRetryFailAtOnce) {
  auto a = start(0, 10);
  answer(a, 410);
  EXPECT_EQ(stored().status, job_status::failed);
  EXPECT_EQ(stored().attempts, 1u);
  EXPECT_EQ(stored().last_error, "status 410; status 410 is not retried (policy non_retryable)");
}

TEST_F(JobActor, NoRetryHeaderFailsAtOnce) {
  auto a = start(0, 10);
  answer(a, 500, {{"x-fetch-no-retry", "true"}});
  EXPECT_EQ(stored().status, job_status::failed);
  EXPECT_EQ(stored().attempts, 1u);
}

TEST_F(JobActor, BlockedFailsAtOnce) {
  auto a = start(0, 10);
  answer(a, 0, {}, error_class::blocked);
  EXPECT_EQ(stored().status, job_status::failed);
  EXPECT_EQ(stored().attempts, 1u);
}

// DESIGN §3: a request that cannot be sent as it is (before: compared against "invalid_url",
// which nothing produced, so such a job was retried to the end of its budget).
TEST_F(JobActor, AnUnusableRequestFailsAtOnceNotRetried) {
  auto a = start(0, 10);
  answer(a, 0, {}, error_class::unusable);
  EXPECT_EQ(stored().status, job_status::failed);
  EXPECT_EQ(stored().attempts, 1u);
  EXPECT_EQ(stored().last_error.rfind("unusable: simulated", 0), 0u) << stored().last_error;
}

TEST_F(JobActor, RetryAfterIsHonoured) {
  auto a = start(0);
  answer(a, 503, {{"Retry-After", "120"}});
  EXPECT_EQ(stored().run_at_ms, t0 + 120'000);
  advance(119'999ms);
  EXPECT_EQ(rec_->attempts.size(), 1u);
  advance(1ms);
  EXPECT_EQ(rec_->attempts.size(), 2u);
  EXPECT_EQ(stored().attempts, 1u);  // Retry-After does not count as an attempt
}

TEST_F(JobActor, CancelDuringBackoff) {
  auto a = start(0);
  answer(a, 500);
  std::optional<cancel_answer> got;
  caf::anon_send(a, cancel_atom::value, completion<cancel_answer>([&](cancel_answer c) { got = c; }));
  f_.run();
  EXPECT_EQ(got, cancel_answer::cancelled);
  EXPECT_EQ(stored().status, job_status::cancelled);
  ASSERT_EQ(rec_->finished.size(), 1u);
  advance(10min);
  EXPECT_EQ(rec_->attempts.size(), 1u) << "the backoff timer fired after the cancel";
  EXPECT_TRUE(store_->scan_due(std::nullopt, 1LL << 62, 10)->empty());
}

TEST_F(JobActor, OutcomeOfAnOldGenerationIsIgnored) {
  auto a = start(0);
  attempt_result stale;
  stale.generation = 999;
  stale.status = 200;
  caf::anon_send(a, outcome_atom::value, stale);
  f_.run();
  EXPECT_EQ(stored().status, job_status::scheduled) << "nothing written for a stale outcome";
  EXPECT_EQ(stored().attempts, 0u);
  EXPECT_TRUE(rec_->finished.empty());
}

TEST_F(JobActor, RecoveredActiveJobRunsAgain) {
  start(0, 3, job_status::active);
  ASSERT_EQ(rec_->attempts.size(), 1u);
}

// -- queue jobs ---------------------------------------------------------------------------------

TEST_F(JobActor, AQueueJobWaitsForItsTurnThenStartsAndReleasesItsSlotWhenDone) {
  auto a = start(0, 3, job_status::scheduled, "q1");
  EXPECT_TRUE(rec_->attempts.empty()) << "a waiting queue job has no turn yet";
  EXPECT_TRUE(store_->scan_due(std::nullopt, 1LL << 62, 10)->empty()) << "and no due entry";
  std::optional<command_answer> granted;
  caf::anon_send(a, queue_grant_atom::value, completion<command_answer>([&](command_answer c) { granted = c; }));
  f_.run();
  EXPECT_EQ(granted, command_answer::done);
  ASSERT_EQ(rec_->attempts.size(), 1u);
  EXPECT_EQ(stored().queue_stage, static_cast<std::uint8_t>(queue_stage::started));
  EXPECT_EQ(rec_->queue_events, std::vector<std::string>{"started " + stored().id});
  answer(a, 200);
  EXPECT_EQ(stored().status, job_status::delivered);
  EXPECT_EQ(rec_->queue_events.size(), 1u) << "no release while the attempt's request is still held";
  for (auto& r : rec_->attempts) r.token.reset();  // the destination lets go of the attempt
  caf::anon_send(a, forget_atom::value);
  f_.run();
  EXPECT_EQ(rec_->queue_events.back(), "released " + stored().id) << "the slot goes with the actor and its attempts";
}

TEST_F(JobActor, AQueueJobCancelledWhileItsGrantIsWrittenStillReleasesItsSlot) {
  auto a = start(0, 3, job_status::scheduled, "q1");
  std::optional<command_answer> granted, cancelled;
  caf::anon_send(a, queue_grant_atom::value, completion<command_answer>([&](command_answer c) { granted = c; }));
  caf::anon_send(a, cancel_atom::value, completion<cancel_answer>([&](cancel_answer c) { cancelled = c; }));
  f_.run();
  EXPECT_EQ(granted, command_answer::done);
  EXPECT_EQ(cancelled, cancel_answer::cancelled);
  EXPECT_TRUE(rec_->attempts.empty());
  caf::anon_send(a, forget_atom::value);
  f_.run();
  EXPECT_EQ(rec_->queue_events, std::vector<std::string>{"released " + stored().id})
      << "a granted job that ends must give its slot back, or its queue stops";
}

TEST_F(JobActor, RunNowWhileAGrantIsWrittenStartsOneAttemptOnly) {
  auto a = start(60'000, 3, job_status::scheduled, "q1");
  caf::anon_send(a, queue_grant_atom::value, completion<command_answer>([](command_answer) {}));
  caf::anon_send(a, run_atom::value, completion<command_answer>([](command_answer) {}));
  f_.run();
  EXPECT_EQ(rec_->attempts.size(), 1u) << "one attempt, when the grant is written";
  EXPECT_EQ(rec_->queue_events.size(), 1u);
}

}  // namespace
}  // namespace fetchrelay::actors::job_actor_test
