// The job manager's intake as a plain class: ids, quotas, the busy limit and the commit batch.
#include <gtest/gtest.h>

#include "actors/intake.h"

namespace fetchrelay::actors::intake_test {
namespace {

submission sub_of(const std::string& tenant, std::string key = "") {
  submission s;
  s.tenant = tenant;
  s.spec = job_spec{"POST", "http://target.test/hook", {}, "{}"};
  s.run_at_ms = 0;
  s.idempotency_key = std::move(key);
  s.fingerprint = s.idempotency_key.empty() ? "" : "fp";
  return s;
}

class Intake : public ::testing::Test {
 protected:
  intake make(std::int64_t per_tenant, std::size_t commits, std::map<std::string, std::int64_t> initial = {}) {
    intake_options o;
    o.max_pending_per_tenant = per_tenant;
    o.max_pending_commits = commits;
    o.idempotency_window = std::chrono::hours(1);
    return intake(o, std::move(initial), [] { return std::uint64_t{42}; });
  }
  /// Admits and adds one submission as the manager does; the id.
  std::string add(intake& in, submission s, std::int64_t now = 1'000, const std::string& idem = "") {
    job_state st = in.new_job(s, "default", policy_, now);
    std::string id = st.id;
    in.add(std::move(st), std::move(s), idem, now, completion<submit_answer>());
    return id;
  }
  policy_runtime policy_{retry_policy{}, 7'000};
};

TEST_F(Intake, ANewJobTakesItsLimitsFromThePolicyUnlessTheSubmissionSetsThem) {
  auto in = make(10, 10);
  submission s = sub_of("acme");
  s.run_at_ms = 500;  // in the past: runs now
  job_state a = in.new_job(s, "fast", policy_, 1'000);
  EXPECT_EQ(a.policy, "fast");
  EXPECT_EQ(a.run_at_ms, 1'000);
  EXPECT_EQ(a.timeout_ms, 7'000u);
  EXPECT_EQ(a.max_attempts, policy_.retry.attempts);
  EXPECT_EQ(a.status, job_status::scheduled);
  s.max_attempts = 2;
  s.timeout_ms = 300;
  s.run_at_ms = 9'000;
  job_state b = in.new_job(s, "fast", policy_, 1'000);
  EXPECT_EQ(b.max_attempts, 2u);
  EXPECT_EQ(b.timeout_ms, 300u);
  EXPECT_EQ(b.run_at_ms, 9'000);
  EXPECT_EQ(a.id.rfind("job_", 0), 0u);
  EXPECT_LT(a.id, b.id) << "ids increase within one millisecond";
}

TEST_F(Intake, OneTurnsSubmissionsLeaveAsOneSyncedCommitWithTheirKeys) {
  auto in = make(10, 10);
  job_state first = in.new_job(sub_of("acme", "k1"), "default", policy_, 1'000);
  EXPECT_TRUE(in.add(job_state(first), sub_of("acme", "k1"), "acme/k1", 1'000, {})) << "the first schedules the flush";
  std::string second = add(in, sub_of("beta"));
  auto [batch, ids] = in.take();
  EXPECT_TRUE(batch.sync);
  ASSERT_EQ(batch.jobs.size(), 2u);
  EXPECT_TRUE(batch.jobs[0].spec.has_value()) << "a new job carries its request";
  ASSERT_EQ(batch.idempotency.size(), 1u);
  EXPECT_EQ(batch.idempotency[0].key, "k1");
  EXPECT_EQ(batch.idempotency[0].record.id, first.id);
  EXPECT_EQ(batch.idempotency[0].record.expires_at_ms, 1'000 + 3'600'000);
  EXPECT_EQ(ids, (std::vector<std::string>{first.id, second}));
  EXPECT_TRUE(in.take().second.empty()) << "taken once";
  EXPECT_TRUE(in.add(in.new_job(sub_of("acme"), "default", policy_, 1'001), sub_of("acme"), "", 1'001, {}))
      << "the first after a take schedules the next flush";
}

TEST_F(Intake, AFireWritesItsJobAndTheScheduleAfterItInOneCommit) {
  auto in = make(10, 10);
  submission s = sub_of("acme", "fetchrelay:schedule:nightly:60000");
  s.schedule_id = "nightly";
  s.fire_time_ms = 60'000;
  schedule_state after;
  after.tenant = "acme";
  after.id = "nightly";
  after.last_run_at_ms = 60'000;
  after.next_run_at_ms = 120'000;
  s.schedule_after = after;
  std::string id = add(in, s, 61'000, "acme\0key");
  auto [batch, ids] = in.take();
  ASSERT_EQ(batch.jobs.size(), 1u);
  EXPECT_EQ(batch.jobs[0].state.schedule_id, "nightly");
  EXPECT_EQ(batch.jobs[0].state.fire_time_ms, 60'000);
  ASSERT_EQ(batch.schedules.size(), 1u) << "the schedule advances in the job's own commit";
  EXPECT_EQ(batch.schedules[0].state.last_job_id, id);
  EXPECT_EQ(batch.schedules[0].state.next_run_at_ms, 120'000);
  EXPECT_FALSE(batch.schedules[0].erase);
  ASSERT_EQ(batch.idempotency.size(), 1u);
  EXPECT_EQ(batch.idempotency[0].key, "fetchrelay:schedule:nightly:60000");
  EXPECT_TRUE(batch.sync);
}

TEST_F(Intake, TheTenantQuotaCountsFromTheStoresFigureAndFollowsCommitsAndEnds) {
  auto in = make(2, 100, {{"acme", 1}});
  EXPECT_FALSE(in.refusal("acme"));
  std::string id = add(in, sub_of("acme"));
  auto refused = in.refusal("acme");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->http_status, 429);
  EXPECT_EQ(refused->error_code, "too_many_pending");
  EXPECT_FALSE(in.refusal("beta")) << "another tenant's quota is its own";
  ASSERT_TRUE(in.committed(id, false)) << "a failed commit";
  EXPECT_FALSE(in.refusal("acme")) << "a job not stored does not count";
  std::string ok = add(in, sub_of("acme"));
  ASSERT_TRUE(in.committed(ok, true));
  EXPECT_EQ(in.unfinished("acme"), 2);
  in.job_ended("acme");
  EXPECT_EQ(in.unfinished("acme"), 1);
  in.job_started("acme");
  EXPECT_EQ(in.unfinished("acme"), 2);
  EXPECT_FALSE(in.committed("job_unknown", true));
}

TEST_F(Intake, SubmissionsWaitingForTheStoreAreCappedWith503) {
  auto in = make(100, 2);
  std::string a = add(in, sub_of("acme"));
  add(in, sub_of("acme"));
  auto refused = in.refusal("acme");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->http_status, 503);
  EXPECT_EQ(refused->error_code, "busy");
  EXPECT_EQ(refused->retry_after_s, 1);
  EXPECT_EQ(in.waiting(), 2u);
  auto p = in.committed(a, true);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state.id, a);
  EXPECT_EQ(p->spec.url, "http://target.test/hook");
  EXPECT_FALSE(in.refusal("acme")) << "one answered: room again";
}

}  // namespace
}  // namespace fetchrelay::actors::intake_test
