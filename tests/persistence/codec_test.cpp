#include "persistence/codec.h"

#include <gtest/gtest.h>

namespace fetchrelay::persistence::codec_test {
namespace {

job_state full_state() {
  job_state s;
  s.id = "job_01JDQX7Z8Y9ABCDEFGHJKMNPQR";
  s.tenant = "acme";
  s.status = job_status::retrying;
  s.method = "PUT";
  s.url = "https://example.com/hooks/x?y=1";
  s.policy = "signed";
  s.created_at_ms = 1'764'300'000'123;
  s.run_at_ms = 1'764'300'600'000;
  s.attempts = 3;
  s.max_attempts = 10;
  s.timeout_ms = 15'000;
  s.last_status_code = 503;
  s.last_error = "timeout: no complete response";
  s.defer_reason = "rate_limit: 50/s";
  s.callback_url = "https://cb.example.com/ok";
  s.failure_callback_url = "https://cb.example.com/fail";
  s.parent_id = "job_01JDQX7Z8Y9ABCDEFGHJKMNPQS";
  s.idempotency_key = "order-42";
  s.finished_at_ms = 0;
  s.response = response_summary{503, {{"Retry-After", "30"}, {"Content-Type", "text/plain"}},
                                std::string("busy\0\xff", 6)};
  return s;
}

TEST(Codec, JobStateRoundTrips) {
  job_state s = full_state();
  auto back = decode_job_state(encode(s));
  ASSERT_TRUE(back.is_ok()) << back.error().message();
  EXPECT_EQ(*back, s);
  job_state minimal;
  minimal.id = "job_x";
  auto m = decode_job_state(encode(minimal));
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(*m, minimal);
}

TEST(Codec, QstashOptionsRoundTripInJobsAndSchedules) {
  job_state s = full_state();
  s.qstash = R"({"retry_delay":"1000","run_attempts":4})";
  auto back = decode_job_state(encode(s));
  ASSERT_TRUE(back.is_ok()) << back.error().message();
  EXPECT_EQ(*back, s) << "the options need the section before them, written even when empty";
  s.queue = "q";
  s.queue_stage = 1;
  EXPECT_EQ(*decode_job_state(encode(s)), s);
  schedule_state sch;
  sch.id = "scd_1";
  sch.tenant = "acme";
  sch.cron = "* * * * * *";
  sch.request.qstash = "{}";
  auto sb = decode_schedule(encode(sch));
  ASSERT_TRUE(sb.is_ok()) << sb.error().message();
  EXPECT_EQ(*sb, sch);
}

TEST(Codec, JobStateVersion1BytesStayReadable) {
  // Bytes written by format version 1; a later version must still decode them.
  job_state s;
  s.id = "job_1";
  s.tenant = "t";
  s.status = job_status::scheduled;
  s.url = "http://a/";
  s.created_at_ms = 300;
  std::string v1("\x01\x05job_1\x01t\x01\x04POST\x09http://a/\x07"
                 "default\xac\x02\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                 48);
  auto d = decode_job_state(v1);
  ASSERT_TRUE(d.is_ok()) << d.error().message();
  EXPECT_EQ(*d, s);
  EXPECT_EQ(encode(s), v1);
}

TEST(Codec, UnknownVersionAndTruncationAreDataLoss) {
  std::string v = encode(full_state());
  std::string future = v;
  future[0] = 0x02;
  auto f = decode_job_state(future);
  ASSERT_FALSE(f.is_ok());
  EXPECT_EQ(f.error().code(), status_code::data_loss);
  EXPECT_EQ(f.error().message(), "job snapshot has unknown format version 2");
  for (size_t cut : {size_t{0}, size_t{1}, size_t{10}, v.size() - 1}) {
    auto t = decode_job_state(v.substr(0, cut));
    ASSERT_FALSE(t.is_ok()) << cut;
    EXPECT_EQ(t.error().code(), status_code::data_loss);
  }
  EXPECT_FALSE(decode_job_state(v + "x").is_ok()) << "trailing bytes accepted";
}

TEST(Codec, ScheduleRoundTripsAndEveryCutIsDataLoss) {
  schedule_state s;
  s.id = "nightly.report";
  s.tenant = "acme";
  s.cron = "CRON_TZ=America/New_York 0 2 * * MON-FRI";
  s.request.spec = {"PUT", "https://x.test/r?a=1", {{"Authorization", "Bearer t"}}, std::string("b\0dy", 4)};
  s.request.policy = "slow";
  s.request.max_attempts = 0;  // set to zero is not unset
  s.request.callback_url = "https://cb.test/";
  s.request.topic = "orders";
  s.paused = true;
  s.created_at_ms = 1;
  s.next_run_at_ms = 1'764'324'000'000;
  s.last_run_at_ms = 1'764'320'400'000;
  s.last_job_id = "job_01";
  std::string v = encode(s);
  auto back = decode_schedule(v);
  ASSERT_TRUE(back.is_ok()) << back.error().message();
  EXPECT_EQ(*back, s);
  EXPECT_FALSE(back->request.timeout_ms.has_value());
  for (size_t cut = 0; cut < v.size(); ++cut) {
    auto t = decode_schedule(v.substr(0, cut));
    ASSERT_FALSE(t.is_ok()) << cut;
    EXPECT_EQ(t.error().code(), status_code::data_loss);
  }
  EXPECT_FALSE(decode_schedule(v + "x").is_ok()) << "trailing bytes accepted";
  std::int64_t due = 0;
  std::string tenant, id;
  ASSERT_TRUE(parse_schedule_due_key(schedule_due_key(42, "acme", "a.b"), due, tenant, id));
  EXPECT_EQ(due, 42);
  EXPECT_EQ(tenant, "acme");
  EXPECT_EQ(id, "a.b");
  EXPECT_LT(schedule_due_key(41, "zeta", "z"), schedule_due_key(42, "acme", "a")) << "ordered by time first";
}

TEST(Codec, AJobStateWithOnlyOneOriginFieldSetKeepsIt) {
  // Found by tests/fuzz/fuzz_codec: the origin section was written only for a schedule, queue,
  // topic or QStash options, so an endpoint, fire time or queue stage alone was dropped.
  job_state s;
  s.id = "job_1";
  s.endpoint = "a";
  EXPECT_EQ(*decode_job_state(encode(s)), s);
  s.endpoint.clear();
  s.queue_stage = 2;
  EXPECT_EQ(*decode_job_state(encode(s)), s);
  s.queue_stage = 0;
  s.fire_time_ms = 5;
  EXPECT_EQ(*decode_job_state(encode(s)), s);
}

TEST(Codec, SpecAttemptIdemCountersRoundTrip) {
  job_spec spec{"POST", "http://x/y", {{"Content-Type", "application/json"}, {"X-A", ""}}, "{\"k\":1}"};
  EXPECT_EQ(*decode_job_spec(encode(spec)), spec);
  attempt_record a{2, 1'764'300'000'000, 153, 500, ""};
  EXPECT_EQ(*decode_attempt(encode(a)), a);
  attempt_record e{1, 5, 15000, 0, "timeout: deadline"};
  EXPECT_EQ(*decode_attempt(encode(e)), e);
  attempt_record x{3, 5, 7, 502, "", std::string("bad \x00\xff gateway", 14)};
  EXPECT_EQ(*decode_attempt(encode(x)), x);  // with its response excerpt
  attempt_record n{4, 5, 7, 200, "", "", "node-b:8080"};
  EXPECT_EQ(*decode_attempt(encode(n)), n) << "the relay that made it, without an excerpt";
  attempt_record both{5, 5, 7, 503, "", "busy", "node-b:8080"};
  EXPECT_EQ(*decode_attempt(encode(both)), both);
  EXPECT_EQ(encode(a).size() + 0, encode(attempt_record{2, 1'764'300'000'000, 153, 500, ""}).size())
      << "a record without them is written as before";
  EXPECT_EQ(encode(attempt_record{3, 5, 7, 502, ""}), encode(x).substr(0, encode(x).size() - 1 - x.response_excerpt.size()))
      << "no excerpt: the record ends as records written before excerpts did";
  EXPECT_FALSE(decode_attempt(encode(x) + "x").is_ok());
  idem_record i{"job_1", 1'764'386'400'000, ""};
  EXPECT_EQ(*decode_idem(encode(i)), i);  // as records were written before fingerprints
  idem_record f{"job_1", 1'764'386'400'000, std::string("\x00\xff fingerprint", 14)};
  EXPECT_EQ(*decode_idem(encode(f)), f);
  EXPECT_FALSE(decode_idem(encode(f) + "x").is_ok());
  status_counters c{0, 10, 2, 3, 1'000'000, 7, 0};
  EXPECT_EQ(*decode_counters(encode(c)), c);
  // Found by tests/fuzz/fuzz_codec: a count past INT64_MAX decoded as a negative count.
  EXPECT_FALSE(decode_counters(std::string("\x01\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12)).is_ok());
}

TEST(Keys, DueKeysSortByTimeThenId) {
  EXPECT_LT(due_key(999, "job_B"), due_key(1000, "job_A"));
  EXPECT_LT(due_key(1000, "job_A"), due_key(1000, "job_B"));
  EXPECT_LT(due_key(255, "job_A"), due_key(256, "job_A"));  // big-endian, not little
  std::int64_t ms = 0;
  std::string id;
  ASSERT_TRUE(parse_due_key(due_key(1'764'300'000'123, "job_Z"), ms, id));
  EXPECT_EQ(ms, 1'764'300'000'123);
  EXPECT_EQ(id, "job_Z");
  EXPECT_FALSE(parse_due_key("job/x", ms, id));
}

TEST(Keys, ListKeysSeparateTenantsAndStatuses) {
  // "a" + status must never fall inside tenant "a\x01..."'s range: the NUL separator sees to it.
  EXPECT_EQ(list_key("acme", job_status::failed, "job_1").rfind(list_prefix("acme", job_status::failed), 0), 0u);
  EXPECT_NE(list_key("ab", job_status::failed, "job_1").rfind(list_prefix("a", job_status::failed), 0), 0u);
  EXPECT_LT(attempt_key("job_1", 2), attempt_key("job_1", 10));
  EXPECT_EQ(attempt_key("job_1", 1).size(), attempt_prefix("job_1").size() + 4);
}

}  // namespace
}  // namespace fetchrelay::persistence::codec_test
