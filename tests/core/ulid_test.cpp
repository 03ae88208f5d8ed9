#include "core/ulid.h"

#include <gtest/gtest.h>

namespace fetchrelay::ulid_test {
namespace {

TEST(Ulid, KnownEncoding) {
  // Time 1469918176385 ms with all-zero randomness: the spec's example time prefix.
  EXPECT_EQ(encode_ulid(1469918176385, {}), "01ARYZ6S410000000000000000");
  std::array<std::uint8_t, 10> ones;
  ones.fill(0xff);
  EXPECT_EQ(encode_ulid(0, ones), "0000000000ZZZZZZZZZZZZZZZZ");
}

TEST(Ulid, IdsSortByTimeAndStayMonotonicWithinAMillisecond) {
  std::uint64_t seed = 42;
  ulid_generator g([&] { return seed = seed * 6364136223846793005ULL + 1442695040888963407ULL; });
  std::string prev;
  for (std::int64_t t : {1000, 1000, 1000, 1001, 999 /* clock stepped back */, 5000}) {
    std::string id = "job_" + g.next(t);
    EXPECT_TRUE(is_job_id(id)) << id;
    EXPECT_GT(id, prev);
    prev = id;
  }
}

TEST(Ulid, JobIdTimeRoundTrips) {
  ulid_generator g([] { return 0x0123456789abcdefULL; });
  std::string id = "job_" + g.next(1'764'300'000'123);
  EXPECT_EQ(job_id_time(id), 1'764'300'000'123);
  EXPECT_EQ(job_id_time("job_short"), -1);
  EXPECT_FALSE(is_job_id("job_01ARYZ6S41000000000000000I"));  // I is not Crockford
  EXPECT_FALSE(is_job_id("job_81ARYZ6S410000000000000000"));  // first char > 7
  EXPECT_FALSE(is_job_id("task_01ARYZ6S4100000000000000"));
}

TEST(Ulid, JobIdsPackIntoSixteenBytesAndBackKeepingTheirOrder) {
  std::uint64_t seed = 7;
  ulid_generator g([&] { return seed = seed * 6364136223846793005ULL + 1442695040888963407ULL; });
  job_id_bytes prev{};
  for (std::int64_t t : {0LL, 1LL, 1LL, 1'764'300'000'123LL, 281'474'976'710'655LL /* 2^48 - 1 */}) {
    std::string id = "job_" + g.next(t);
    job_id_bytes b{};
    ASSERT_TRUE(pack_job_id(id, b)) << id;
    EXPECT_EQ(unpack_job_id(b), id);
    EXPECT_GT(b, prev) << id;
    prev = b;
  }
  job_id_bytes b{};
  EXPECT_TRUE(pack_job_id("job_7ZZZZZZZZZZZZZZZZZZZZZZZZZ", b));
  for (auto byte : b) EXPECT_EQ(byte, 0xff);
  EXPECT_FALSE(pack_job_id("job_short", b));
}

}  // namespace
TEST(Ulid, AShardGivenIsCarriedByTheIdAndOrderHoldsWithinAShard) {
  std::uint64_t seed = 7;
  ulid_generator g([&] { return seed = seed * 6364136223846793005ULL + 1442695040888963407ULL; });
  std::string last;
  for (int i = 0; i < 1'000; ++i) {
    std::string id = "job_" + g.next(5'000, 200);  // one millisecond, one shard
    EXPECT_EQ(job_shard(id), 200);
    EXPECT_GT(id, last) << "increasing within a millisecond and a shard";
    last = id;
  }
  for (int shard : {0, 1, 127, 128, 255}) {
    std::string id = "job_" + g.next(6'000, shard);
    EXPECT_EQ(job_shard(id), shard);
    EXPECT_EQ(job_id_time(id), 6'000);
  }
  EXPECT_EQ(job_shard("job_a"), -1) << "not a job id";
  EXPECT_EQ(job_shard("nope"), -1);
  EXPECT_GE(job_shard("job_" + g.next(7'000)), 0) << "any job id has a shard byte";
}

}  // namespace fetchrelay::ulid_test
