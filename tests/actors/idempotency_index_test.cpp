// The manager's idempotency memory as a plain class on a simulated clock (no actor system).
#include "actors/idempotency_index.h"

#include <gtest/gtest.h>

namespace fetchrelay::actors::idempotency_index_test {
namespace {

constexpr std::int64_t start_ms = 1'764'300'000'000;
const std::string key = idempotency_index::key_of("acme", "order-1");

idempotency_index::entry first_job(std::int64_t expires, bool committed = false) {
  return {"job_1", start_ms + 5, expires, "fp-A", committed, {}};
}

completion<submit_answer> record(std::vector<submit_answer>& out) {
  return completion<submit_answer>([&out](submit_answer a) { out.push_back(std::move(a)); });
}

TEST(IdempotencyIndex, KeysAreScopedByTenant) {
  EXPECT_NE(idempotency_index::key_of("acme", "k"), idempotency_index::key_of("globex", "k"));
  EXPECT_NE(idempotency_index::key_of("a", "b\x01" "c"), idempotency_index::key_of("a\x01" "b", "c"));
}

TEST(IdempotencyIndex, ARepeatDuringTheFirstSyncWaitsAndIsHandedBackWithItsCommit) {
  idempotency_index idx(100);
  idx.remember(key, first_job(start_ms + 1000));
  auto* e = idx.find(key, start_ms);
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->committed);
  std::vector<submit_answer> answers;
  e->waiters.push_back(record(answers));
  e->waiters.push_back(record(answers));
  auto waiters = idx.committed(key, true);
  ASSERT_EQ(waiters.size(), 2u);
  EXPECT_TRUE(idx.find(key, start_ms)->committed);
  EXPECT_TRUE(idx.find(key, start_ms)->waiters.empty());
  for (auto& w : waiters) w({202, "job_1", start_ms + 5, true, "", ""});
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[1].id, "job_1");
}

TEST(IdempotencyIndex, AFailedFirstCommitForgetsTheKeyAndHandsBackItsWaiters) {
  idempotency_index idx(100);
  idx.remember(key, first_job(start_ms + 1000));
  std::vector<submit_answer> answers;
  idx.find(key, start_ms)->waiters.push_back(record(answers));
  EXPECT_EQ(idx.committed(key, false).size(), 1u);
  EXPECT_FALSE(idx.known(key)) << "the next submission must be able to make the job";
}

TEST(IdempotencyIndex, ExpiredKeysAreNotFoundAndArePruned) {
  idempotency_index idx(100);
  idx.remember(key, first_job(start_ms + 1000, true));
  idx.remember(idempotency_index::key_of("acme", "later"), {"job_2", start_ms, start_ms + 5000, "", true, {}});
  EXPECT_TRUE(idx.find(key, start_ms + 999));
  EXPECT_FALSE(idx.find(key, start_ms + 1000)) << "the window ends at expires_at_ms";
  idx.prune(start_ms + 1000);
  EXPECT_FALSE(idx.known(key));
  EXPECT_TRUE(idx.known(idempotency_index::key_of("acme", "later")));
  EXPECT_EQ(idx.size(), 1u);
}

TEST(IdempotencyIndex, TheCapDropsTheOldestCommittedKeysButNeverOneAFirstSubmissionWaitsOn) {
  idempotency_index idx(2);
  idx.remember(key, first_job(start_ms + 1000));  // not committed yet
  for (int i = 0; i < 3; ++i) {
    idx.remember(idempotency_index::key_of("acme", "k" + std::to_string(i)),
                 {"job_k" + std::to_string(i), start_ms, start_ms + 1000, "", true, {}});
  }
  idx.prune(start_ms);
  EXPECT_TRUE(idx.known(key)) << "an uncommitted first submission stays";
  EXPECT_FALSE(idx.known(idempotency_index::key_of("acme", "k0")));
  EXPECT_TRUE(idx.known(idempotency_index::key_of("acme", "k2")));
}

TEST(IdempotencyIndex, AReRememberedKeyIsNotDroppedByItsOldSlot) {
  idempotency_index idx(100);
  idx.remember(key, first_job(start_ms + 1000, true));
  idx.forget(key, "job_1");
  idx.remember(key, {"job_9", start_ms, start_ms + 9000, "", true, {}});
  idx.prune(start_ms + 1000);  // the old slot's expiry has passed
  ASSERT_TRUE(idx.find(key, start_ms + 1000));
  EXPECT_EQ(idx.find(key, start_ms + 1000)->id, "job_9");
}

TEST(IdempotencyIndex, ForgetDropsOnlyTheJobItNames) {
  idempotency_index idx(100);
  idx.remember(key, first_job(start_ms + 1000, true));
  idx.forget(key, "job_other");
  EXPECT_TRUE(idx.known(key));
  idx.forget(key, "job_1");
  EXPECT_FALSE(idx.known(key));
}

TEST(IdempotencyIndex, ConcurrentRepeatsShareOneStoreLookUpInArrivalOrder) {
  idempotency_index idx(100);
  auto sub = [](const std::string& fp) {
    submission s;
    s.tenant = "acme";
    s.idempotency_key = "order-1";
    s.fingerprint = fp;
    return s;
  };
  std::vector<submit_answer> answers;
  EXPECT_TRUE(idx.await_lookup(key, sub("a"), record(answers))) << "the first asks the store";
  EXPECT_FALSE(idx.await_lookup(key, sub("b"), record(answers)));
  EXPECT_FALSE(idx.await_lookup(key, sub("c"), record(answers)));
  auto waiting = idx.take_lookup(key);
  ASSERT_EQ(waiting.size(), 3u);
  EXPECT_EQ(waiting[0].first.fingerprint, "a");
  EXPECT_EQ(waiting[2].first.fingerprint, "c");
  EXPECT_TRUE(idx.take_lookup(key).empty());
  EXPECT_TRUE(idx.await_lookup(key, sub("d"), record(answers))) << "a new look-up after the last one ended";
}

TEST(IdempotencyIndex, ConflictsNeedTwoFingerprintsThatDiffer) {
  EXPECT_TRUE(idempotency_index::conflicts("A", "B"));
  EXPECT_FALSE(idempotency_index::conflicts("A", "A"));
  EXPECT_FALSE(idempotency_index::conflicts("", "B")) << "a key stored before fingerprints";
}

}  // namespace
}  // namespace fetchrelay::actors::idempotency_index_test
