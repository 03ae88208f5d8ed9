// The LevelDB store's job records (store format 2): a small request, the latest attempt and the
// job's event numbers live in the job's record instead of keys of their own. Checked through the
// store and by reading the database's keys directly; a store written in format 1 still reads.
#include <gtest/gtest.h>
#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include <algorithm>

#include "persistence/codec.h"
#include "persistence/store.h"
#include "tests/support/job_ids.h"
#include "tests/support/process.h"

namespace fetchrelay::persistence::job_record_test {
namespace {

using test::id_of;

job_state new_job(int n) {
  job_state s;
  s.id = id_of(n);
  s.tenant = "acme";
  s.url = "http://example.com/" + std::to_string(n);
  s.created_at_ms = 1'000 + n;
  s.run_at_ms = 5'000;
  s.max_attempts = 50;
  return s;
}

attempt_record attempt(std::uint32_t n, std::uint16_t code) {
  attempt_record a;
  a.n = n;
  a.started_at_ms = 6'000 + n;
  a.duration_ms = 10 + n;
  a.status_code = code;
  a.error = code >= 500 ? "status " + std::to_string(code) : "";
  return a;
}

class JobRecord : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void open() {
    store_.reset();
    auto s = open_leveldb_store({path_, true});
    ASSERT_TRUE(s.is_ok()) << s.error().message();
    store_ = std::move(s.value());
  }
  void commit(job_state s, std::optional<job_spec> spec = std::nullopt, std::optional<attempt_record> a = std::nullopt) {
    commit_batch b;
    b.at_ms = 7'000;
    b.jobs.push_back({std::move(s), std::move(spec), std::move(a)});
    ASSERT_TRUE(store_->commit(std::span<const commit_batch>(&b, 1)).is_ok());
  }
  /// Writes `s` finished as `end` by attempt n (status `code`); returns the snapshot written.
  job_state finish(job_state s, job_status end, std::uint32_t n, std::uint16_t code) {
    s.status = end;
    s.attempts = n;
    s.finished_at_ms = 6'100;
    commit(s, std::nullopt, attempt(n, code));
    return s;
  }
  /// The database's keys that start with `prefix` and contain `id` (the store closed meanwhile).
  std::vector<std::string> keys(const std::string& prefix, const std::string& id) {
    store_.reset();
    std::vector<std::string> out;
    {
      leveldb::DB* raw = nullptr;
      EXPECT_TRUE(leveldb::DB::Open(leveldb::Options(), path_, &raw).ok());
      std::unique_ptr<leveldb::DB> db(raw);
      std::unique_ptr<leveldb::Iterator> it(db->NewIterator(leveldb::ReadOptions()));
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        std::string k = it->key().ToString();
        if (k.find(id) != std::string::npos) out.push_back(k);
      }
    }
    open();
    return out;
  }
  std::vector<std::uint32_t> attempt_numbers(const std::string& id) {
    std::vector<std::uint32_t> out;
    auto attempts = store_->get_attempts(id);
    for (const auto& a : *attempts) out.push_back(a.n);
    return out;
  }
  std::vector<event_type> events_of(const std::string& id, std::size_t limit = 100) {
    event_filter f;
    f.job_id = id;
    std::vector<event_type> out;
    auto page = store_->list_events("acme", f, "", limit);
    for (const auto& e : page->events) out.push_back(e.type);
    return out;
  }

  test::temp_dir dir_;
  std::string path_ = dir_.file("data");
  std::unique_ptr<store> store_;
};

TEST_F(JobRecord, ADeliveredJobWithASmallRequestWritesNoBodyAttemptOrEventIndexKey) {
  job_state s = new_job(1);
  commit(s, job_spec{"POST", s.url, {{"Content-Type", "text/plain"}}, "hello"});
  job_state done = finish(s, job_status::delivered, 1, 200);

  EXPECT_EQ((*store_->get_spec(s.id))->body, "hello");
  EXPECT_EQ(**store_->get_job(s.id), done);
  auto attempts = *store_->get_attempts(s.id);
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0], attempt(1, 200));
  EXPECT_EQ(events_of(s.id), (std::vector<event_type>{event_type::created, event_type::delivered}));
  EXPECT_TRUE(keys("body/", s.id).empty());
  EXPECT_TRUE(keys("att/", s.id).empty());
  EXPECT_TRUE(keys("evj/", s.id).empty());
  EXPECT_EQ(keys("job/", s.id).size(), 1u);
  EXPECT_EQ(keys("ev/", "").size(), 2u) << "both events are in the feed";
}

TEST_F(JobRecord, ARequestTooBigForTheRecordHasItsOwnKeyAndGoesWithThePurge) {
  job_state s = new_job(2);
  std::string body(inline_spec_limit, 'x');
  commit(s, job_spec{"POST", s.url, {}, body});
  EXPECT_EQ(keys("body/", s.id).size(), 1u);
  EXPECT_EQ((*store_->get_spec(s.id))->body, body);
  finish(s, job_status::failed, 1, 500);
  ASSERT_EQ(*store_->purge_finished(10'000, 100), 1u);
  EXPECT_TRUE(keys("body/", s.id).empty());
  EXPECT_TRUE(keys("job/", s.id).empty());
  EXPECT_TRUE(keys("att/", s.id).empty());
}

TEST_F(JobRecord, EarlierAttemptsMoveToKeysOfTheirOwnAndThePurgeTakesThemAll) {
  job_state s = new_job(3);
  commit(s, job_spec{"POST", s.url, {}, "{}"});
  job_state j = s;
  for (std::uint32_t n = 1; n <= 3; ++n) {
    j.attempts = n;
    j.status = n < 3 ? job_status::retrying : job_status::failed;
    j.run_at_ms = 5'000 + 100 * n;
    if (n == 3) j.finished_at_ms = 6'500;
    commit(j, std::nullopt, attempt(n, 503));
    // The same snapshot written again without an attempt (a retried commit) keeps the latest.
    commit(j);
    EXPECT_EQ(attempt_numbers(s.id).size(), n);
  }
  EXPECT_EQ(attempt_numbers(s.id), (std::vector<std::uint32_t>{1, 2, 3}));
  EXPECT_EQ((*store_->get_attempts(s.id))[1], attempt(2, 503));
  EXPECT_EQ(keys("att/", s.id).size(), 2u) << "attempts 1 and 2; the record holds 3";
  EXPECT_EQ(events_of(s.id), (std::vector<event_type>{event_type::created, event_type::retrying,
                                                       event_type::retrying, event_type::failed}));
  ASSERT_EQ(*store_->purge_finished(10'000, 100), 1u);
  EXPECT_TRUE(keys("att/", s.id).empty());
  EXPECT_TRUE(keys("job/", s.id).empty());
  EXPECT_TRUE(store_->get_attempts(s.id)->empty());
}

TEST_F(JobRecord, AJobWithMoreEventsThanARecordListsHasThemAllByJobInOrder) {
  job_state s = new_job(4);
  commit(s, job_spec{"POST", s.url, {}, "{}"});
  job_state j = s;
  const int deferrals = static_cast<int>(max_record_events) + 8;
  for (int i = 1; i <= deferrals; ++i) {
    j.defer_reason = "rate limited " + std::to_string(i);
    j.run_at_ms = 5'000 + i;
    commit(j);
  }
  EXPECT_EQ(keys("evj/", s.id).size(), 9u) << "what the record cannot list is indexed";
  std::vector<event_type> all = events_of(s.id);
  ASSERT_EQ(all.size(), static_cast<std::size_t>(deferrals) + 1);
  EXPECT_EQ(all.front(), event_type::created);
  // Ascending pages from a cursor meet every event once, in sequence order.
  event_filter f;
  f.job_id = s.id;
  std::vector<std::uint64_t> seqs;
  std::string cursor;
  auto first = store_->list_events("acme", f, "", 1'000)->events;
  ASSERT_FALSE(first.empty());
  cursor = event_id(first.front().seq);
  for (int page = 0; page < 20; ++page) {
    auto p = store_->list_events("acme", f, cursor, 7);
    ASSERT_TRUE(p.is_ok());
    for (const auto& e : p->events) seqs.push_back(e.seq);
    if (p->next_cursor.empty()) break;
    cursor = p->next_cursor;
  }
  ASSERT_EQ(seqs.size(), all.size() - 1) << "every event after the first";
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
  EXPECT_EQ(std::adjacent_find(seqs.begin(), seqs.end()), seqs.end());
  // Newest first from the end, and the newest few without a cursor (still ascending).
  f.descending = true;
  auto desc = store_->list_events("acme", f, "", 5)->events;
  ASSERT_EQ(desc.size(), 5u);
  EXPECT_EQ(desc.front().detail, "rate limited " + std::to_string(deferrals));
  // The next page back from the cursor: older still, newest first, across the record's list and
  // the index (the record lists the first 32).
  auto back = store_->list_events("acme", f, event_id(desc.back().seq), 30)->events;
  ASSERT_EQ(back.size(), 30u);
  for (std::size_t i = 0; i < back.size(); ++i) {
    EXPECT_EQ(back[i].detail, "rate limited " + std::to_string(deferrals - 5 - static_cast<int>(i)));
  }
  f.descending = false;
  auto newest = store_->list_events("acme", f, "", 3)->events;
  ASSERT_EQ(newest.size(), 3u);
  EXPECT_EQ(newest.back().detail, "rate limited " + std::to_string(deferrals));
  EXPECT_LT(newest.front().seq, newest.back().seq);
  // Another tenant asking for this job sees nothing.
  event_filter other;
  other.job_id = s.id;
  EXPECT_TRUE(store_->list_events("beta", other, "", 100)->events.empty());
}

TEST_F(JobRecord, EventsOfAJobPurgedByRequestAreStillFoundByJob) {
  job_state s = new_job(5);
  commit(s, job_spec{"POST", s.url, {}, "{}"});
  finish(s, job_status::delivered, 1, 200);
  job_filter all;
  ASSERT_EQ(store_->purge_jobs("acme", all, "")->count, 1u);
  EXPECT_FALSE(store_->get_job(s.id)->has_value());
  EXPECT_EQ(events_of(s.id), (std::vector<event_type>{event_type::created, event_type::delivered}));
  // The events' own sweep takes the index entries with them.
  ASSERT_EQ(*store_->purge_events(1LL << 50, 100), 2u);
  EXPECT_TRUE(events_of(s.id).empty());
  EXPECT_TRUE(keys("evj/", s.id).empty());
}

// A store written before job records: bare snapshots, and the request, every attempt and every
// event index entry in keys of their own (written here by hand, as format 1 wrote them).
TEST_F(JobRecord, AFormat1StoreReadsAndItsJobsCarryOn) {
  store_.reset();
  job_state s = new_job(6);
  s.status = job_status::retrying;
  s.attempts = 1;
  event_record created;
  created.at_ms = 1'006;
  created.type = event_type::created;
  created.job_id = s.id;
  created.url = s.url;
  {
    leveldb::DB* raw = nullptr;
    leveldb::Options o;
    o.create_if_missing = true;
    ASSERT_TRUE(leveldb::DB::Open(o, path_, &raw).ok());
    std::unique_ptr<leveldb::DB> db(raw);
    leveldb::WriteBatch wb;
    wb.Put(std::string(format_key), std::string(format_value_1));
    wb.Put(job_key(s.id), encode(s));
    wb.Put(body_key(s.id), encode(job_spec{"POST", s.url, {}, "old body"}));
    wb.Put(attempt_key(s.id, 1), encode(attempt(1, 503)));
    wb.Put(due_key(s.run_at_ms, s.id), "");
    wb.Put(list_key("acme", s.status, s.id), "");
    status_counters c{};
    c[static_cast<std::size_t>(job_status::retrying)] = 1;
    wb.Put(std::string(counters_key), encode(c));
    wb.Put(tenant_key("acme"), encode_count(1));
    wb.Put(event_key("acme", 1), encode(created));
    wb.Put(event_job_key("acme", s.id, 1), "");
    wb.Put(std::string(event_seq_key), encode_count(1));
    ASSERT_TRUE(db->Write(leveldb::WriteOptions(), &wb).ok());
  }
  open();
  EXPECT_EQ(**store_->get_job(s.id), s);
  EXPECT_EQ((*store_->get_spec(s.id))->body, "old body");
  EXPECT_EQ(attempt_numbers(s.id), (std::vector<std::uint32_t>{1}));
  EXPECT_EQ(events_of(s.id), (std::vector<event_type>{event_type::created}));

  finish(s, job_status::delivered, 2, 200);
  EXPECT_EQ((*store_->get_spec(s.id))->body, "old body");
  EXPECT_EQ(attempt_numbers(s.id), (std::vector<std::uint32_t>{1, 2}));
  EXPECT_EQ(events_of(s.id), (std::vector<event_type>{event_type::created, event_type::delivered}));
  EXPECT_EQ(store_->counters()[static_cast<std::size_t>(job_status::delivered)], 1);
  ASSERT_EQ(*store_->purge_finished(10'000, 100), 1u);
  EXPECT_TRUE(keys("body/", s.id).empty());
  EXPECT_TRUE(keys("att/", s.id).empty());
  EXPECT_TRUE(keys("job/", s.id).empty());
  // Opened once by this version, the store says format 2.
  store_.reset();
  leveldb::DB* raw = nullptr;
  ASSERT_TRUE(leveldb::DB::Open(leveldb::Options(), path_, &raw).ok());
  std::unique_ptr<leveldb::DB> db(raw);
  std::string marker;
  ASSERT_TRUE(db->Get(leveldb::ReadOptions(), std::string(format_key), &marker).ok());
  EXPECT_EQ(marker, format_value);
}

}  // namespace
}  // namespace fetchrelay::persistence::job_record_test
