// Store conformance: what any store backend must keep true of its indexes, checked against a
// model after every commit and again after the store is closed and opened (a restart).
//
// A caller only says what a job is now; the store owns the due index, the listing index, the
// counters by status, the per-tenant counts of unfinished jobs and the retention index. The
// suite is parameterised by a factory so that every backend runs the same cases.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <random>

#include "core/ulid.h"
#include "persistence/store.h"
#include "tests/support/job_ids.h"
#include "tests/support/postgres.h"
#include "tests/support/process.h"

namespace fetchrelay::persistence::store_conformance_test {
namespace {

using store_factory = std::function<result<std::unique_ptr<store>>(const std::string& dir)>;

struct backend {
  const char* name;
  store_factory open;
};

void PrintTo(const backend& b, std::ostream* os) { *os << b.name; }

using test::id_of;

constexpr job_status all_statuses[] = {job_status::scheduled, job_status::active,    job_status::retrying,
                                       job_status::delivered, job_status::failed,    job_status::cancelled};

/// What the store should hold, job by job.
struct model_job {
  std::string tenant;
  job_status status;
  std::int64_t run_at_ms;
  std::int64_t finished_at_ms;
};

/// Every backend runs every case: LevelDB in the test's folder, PostgreSQL in a schema of its own
/// named after that folder (so a reopen finds the same tables).
std::vector<backend> backends() {
  return {backend{"leveldb", [](const std::string& dir) { return open_leveldb_store({dir, false, nullptr}); }},
          backend{"postgres", [](const std::string& dir) {
                    return open_postgres_store({test::test_postgres_dsn().value_or(""), false, test::schema_for(dir)});
                  }}};
}

class StoreConformance : public ::testing::TestWithParam<backend> {
 protected:
  void SetUp() override {
    if (std::string(GetParam().name) == "postgres" && !test::test_postgres_dsn()) GTEST_SKIP() << test::no_postgres_message();
    reopen();
  }

  void reopen() {
    store_.reset();
    auto s = GetParam().open(dir_.file("data"));
    ASSERT_TRUE(s.is_ok()) << s.error().message();
    store_ = std::move(s.value());
  }

  job_state state_of(int n, const std::string& tenant, job_status st, std::int64_t run_at) {
    job_state s;
    s.id = id_of(n);
    s.tenant = tenant;
    s.url = "http://example.com/" + std::to_string(n);
    s.created_at_ms = 1'000 + n;
    s.status = st;
    s.run_at_ms = run_at;
    s.finished_at_ms = is_terminal(st) ? run_at + 1 : 0;
    s.max_attempts = 3;
    return s;
  }

  /// Adds one write to `b` and to the model: a new job (with its request) or a change.
  void add(commit_batch& b, int n, const std::string& tenant, job_status st, std::int64_t run_at) {
    job_state s = state_of(n, tenant, st, run_at);
    bool fresh = !model_.count(s.id);
    b.jobs.push_back({s, fresh ? std::optional<job_spec>(job_spec{"POST", s.url, {}, "{}"}) : std::nullopt,
                      std::nullopt});
    model_[s.id] = {tenant, st, run_at, s.finished_at_ms};
  }

  void commit(const commit_batch& b) {
    auto s = store_->commit(std::span<const commit_batch>(&b, 1));
    ASSERT_TRUE(s.is_ok()) << s.message();
  }

  void write(int n, const std::string& tenant, job_status st, std::int64_t run_at) {
    commit_batch b;
    add(b, n, tenant, st, run_at);
    commit(b);
  }

  /// Every index agrees with the model: due entries, listings by tenant and status, counters,
  /// unfinished jobs per tenant.
  void expect_matches_model(const std::string& when) {
    SCOPED_TRACE(when);
    std::vector<due_entry> due;
    status_counters counters{};
    std::map<std::string, std::int64_t> pending;
    std::map<std::pair<std::string, job_status>, std::vector<std::string>> listed;
    for (const auto& [id, j] : model_) {
      ++counters[static_cast<std::size_t>(j.status)];
      if (!is_terminal(j.status)) {
        due.push_back({j.run_at_ms, id});
        ++pending[j.tenant];
      }
      listed[{j.tenant, j.status}].push_back(id);
    }
    std::sort(due.begin(), due.end(), [](const due_entry& a, const due_entry& b) {
      return std::tie(a.due_ms, a.id) < std::tie(b.due_ms, b.id);
    });
    auto scanned = store_->scan_due(std::nullopt, 1LL << 60, 100'000);
    ASSERT_TRUE(scanned.is_ok());
    EXPECT_EQ(*scanned, due);
    EXPECT_EQ(store_->counters(), counters);
    EXPECT_EQ(store_->pending_by_tenant(), pending);
    for (const std::string tenant : {"acme", "beta"}) {
      std::size_t total = 0;
      for (job_status st : all_statuses) {
        auto page = store_->list_jobs(tenant, st, "", 100'000);
        ASSERT_TRUE(page.is_ok());
        std::vector<std::string> ids;
        for (const auto& j : page->jobs) ids.push_back(j.id);
        std::vector<std::string> want = listed[{tenant, st}];
        std::sort(want.rbegin(), want.rend());  // newest first
        EXPECT_EQ(ids, want) << tenant << " " << to_string(st);
        total += ids.size();
      }
      auto all = store_->list_jobs(tenant, std::nullopt, "", 100'000);
      ASSERT_TRUE(all.is_ok());
      EXPECT_EQ(all->jobs.size(), total) << tenant;
    }
  }

  test::temp_dir dir_;
  std::unique_ptr<store> store_;
  std::map<std::string, model_job> model_;
};

TEST_P(StoreConformance, EveryStatusTransitionMovesTheIndexes) {
  // Each pair (from, to), a job of its own, half of them another tenant's.
  int n = 0;
  for (job_status from : all_statuses) {
    for (job_status to : all_statuses) {
      ++n;
      std::string tenant = n % 2 ? "acme" : "beta";
      write(n, tenant, from, 10'000 + n);
      write(n, tenant, to, 20'000 + n);  // a new due time too, where it has one
      expect_matches_model(std::string(to_string(from)) + " -> " + std::string(to_string(to)));
    }
  }
  reopen();
  expect_matches_model("after a restart");
}

TEST_P(StoreConformance, AChangeThatKeepsTheDueTimeKeepsOneDueEntry) {
  write(1, "acme", job_status::scheduled, 5'000);
  write(1, "acme", job_status::active, 5'000);
  write(1, "acme", job_status::scheduled, 5'000);
  expect_matches_model("same due");
  write(1, "acme", job_status::scheduled, 9'000);  // a deferral moves it
  expect_matches_model("moved");
}

TEST_P(StoreConformance, SeveralWritesToOneJobInOneCommitCountOnce) {
  commit_batch b;
  add(b, 1, "acme", job_status::scheduled, 5'000);
  add(b, 1, "acme", job_status::retrying, 6'000);
  add(b, 1, "acme", job_status::retrying, 7'000);
  add(b, 2, "acme", job_status::scheduled, 5'000);
  add(b, 2, "acme", job_status::delivered, 5'500);
  commit(b);
  expect_matches_model("one commit");
  // Over two batches of one group commit as well.
  commit_batch c1, c2;
  add(c1, 1, "acme", job_status::failed, 8'000);
  add(c2, 1, "acme", job_status::scheduled, 9'000);  // run again (POST /retry)
  std::vector<commit_batch> both{c1, c2};
  ASSERT_TRUE(store_->commit(both).is_ok());
  expect_matches_model("two batches");
  reopen();
  expect_matches_model("after a restart");
}

TEST_P(StoreConformance, AWriteWithoutARequestForAnUnknownJobAddsIt) {
  commit_batch b;
  job_state s = state_of(7, "acme", job_status::retrying, 3'000);
  b.jobs.push_back({s, std::nullopt, std::nullopt});
  model_[s.id] = {"acme", job_status::retrying, 3'000, 0};
  commit(b);
  expect_matches_model("unknown job");
}

TEST_P(StoreConformance, RandomLifecyclesAcrossRestartsThenRetentionSweep) {
  std::mt19937 rng(12345);  // fixed: the same walk every run
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  int next_id = 1;
  for (int round = 0; round < 8; ++round) {
    for (int step = 0; step < 25; ++step) {
      commit_batch b;
      int writes = 1 + pick(6);
      for (int w = 0; w < writes; ++w) {
        bool fresh = model_.empty() || pick(3) == 0;
        int n = fresh ? next_id++ : 1 + pick(next_id - 1);
        std::string tenant = fresh ? (pick(2) ? "acme" : "beta") : model_[id_of(n)].tenant;
        add(b, n, tenant, all_statuses[pick(6)], 1'000 + pick(100'000));
      }
      commit(b);
    }
    expect_matches_model("round " + std::to_string(round));
    reopen();
    expect_matches_model("round " + std::to_string(round) + " after a restart");
  }
  // Retention: every finished job goes, every unfinished one stays.
  std::size_t finished = 0;
  for (const auto& [id, j] : model_) finished += is_terminal(j.status);
  ASSERT_GT(finished, 0u);
  auto purged = store_->purge_finished(1LL << 60, 100'000);
  ASSERT_TRUE(purged.is_ok());
  EXPECT_EQ(*purged, finished);
  std::erase_if(model_, [](const auto& kv) { return is_terminal(kv.second.status); });
  expect_matches_model("after the sweep");
  reopen();
  expect_matches_model("after the sweep and a restart");
}

/// A job created at `ms` (its id carries the time, as the manager's ids do).
job_state created_at(std::int64_t ms, std::uint8_t salt, const std::string& url, job_status st) {
  job_state s;
  std::array<std::uint8_t, 10> random{};
  random[9] = salt;
  s.id = "job_" + encode_ulid(ms, random);
  s.tenant = "acme";
  s.url = url;
  s.created_at_ms = ms;
  s.status = st;
  s.run_at_ms = ms + 1;
  s.finished_at_ms = is_terminal(st) ? ms + 2 : 0;
  return s;
}

std::vector<std::string> ids_of(const job_page& p) {
  std::vector<std::string> out;
  for (const auto& j : p.jobs) out.push_back(j.id);
  return out;
}

TEST_P(StoreConformance, ListingFiltersByUrlPrefixCreationTimeAndStatus) {
  commit_batch b;
  std::vector<job_state> all;
  for (int k = 1; k <= 30; ++k) {
    auto s = created_at(k * 1'000, static_cast<std::uint8_t>(k), k % 2 ? "http://a.test/x" : "http://b.test/y",
                        k % 3 ? job_status::scheduled : job_status::failed);
    b.jobs.push_back({s, job_spec{"POST", s.url, {}, ""}, std::nullopt});
    all.push_back(s);
  }
  commit(b);
  auto expect = [&](const job_filter& f, const std::function<bool(const job_state&)>& want, const char* what) {
    std::vector<std::string> expected;
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
      if (want(*it)) expected.push_back(it->id);
    }
    auto whole = store_->list_jobs("acme", f, "", 1000);
    ASSERT_TRUE(whole.is_ok());
    EXPECT_EQ(ids_of(*whole), expected) << what;
    std::vector<std::string> paged;  // pages of 4 add up to the same
    std::string cursor;
    for (int n = 0; n < 20; ++n) {
      auto p = store_->list_jobs("acme", f, cursor, 4);
      ASSERT_TRUE(p.is_ok());
      for (auto& id : ids_of(*p)) paged.push_back(id);
      cursor = p->next_cursor;
      if (cursor.empty()) break;
    }
    EXPECT_EQ(paged, expected) << what << " (paged)";
  };
  job_filter by_url;
  by_url.url_prefix = "http://a.test/";
  expect(by_url, [](const job_state& s) { return s.url.starts_with("http://a.test/"); }, "url_prefix");
  job_filter window;
  window.since_ms = 10'000;
  window.until_ms = 20'000;
  expect(window, [](const job_state& s) { return s.created_at_ms >= 10'000 && s.created_at_ms <= 20'000; }, "since/until");
  job_filter failed_since = window;
  failed_since.status = job_status::failed;
  failed_since.until_ms.reset();
  expect(failed_since, [](const job_state& s) { return s.status == job_status::failed && s.created_at_ms >= 10'000; },
         "status and since");
  EXPECT_TRUE(store_->list_jobs("beta", by_url, "", 100)->jobs.empty()) << "another tenant's jobs";
}

TEST_P(StoreConformance, AFilterThatMatchesLittleStopsAtTheScanCapWithACursor) {
  commit_batch b;
  const int n = static_cast<int>(max_list_scan) + 50;
  for (int k = 1; k <= n; ++k) {
    auto s = created_at(k, static_cast<std::uint8_t>(k), k == 1 ? "http://rare.test/" : "http://common.test/",
                        job_status::scheduled);
    b.jobs.push_back({s, std::nullopt, std::nullopt});
  }
  commit(b);
  job_filter rare;
  rare.url_prefix = "http://rare.test/";
  auto first = store_->list_jobs("acme", rare, "", 20);
  ASSERT_TRUE(first.is_ok());
  EXPECT_TRUE(first->jobs.empty());
  ASSERT_FALSE(first->next_cursor.empty()) << "a short page says where to go on";
  auto second = store_->list_jobs("acme", rare, first->next_cursor, 20);
  ASSERT_TRUE(second.is_ok());
  ASSERT_EQ(second->jobs.size(), 1u) << "the oldest job, past the first scan";
  EXPECT_EQ(second->jobs[0].url, "http://rare.test/");
  EXPECT_TRUE(second->next_cursor.empty());
}

TEST_P(StoreConformance, PurgeDeletesOnlyFinishedJobsTheFilterNamesAndKeepsTheCountsExact) {
  commit_batch b;
  std::vector<job_state> all;
  for (int k = 1; k <= 12; ++k) {
    job_status st = k % 3 == 0 ? job_status::failed : k % 3 == 1 ? job_status::delivered : job_status::retrying;
    auto s = created_at(k * 1'000, static_cast<std::uint8_t>(k), k <= 6 ? "http://a.test/" : "http://b.test/", st);
    b.jobs.push_back({s, job_spec{"POST", s.url, {}, ""}, std::nullopt});
    all.push_back(s);
  }
  commit(b);
  job_filter failed_a;
  failed_a.status = job_status::failed;
  failed_a.url_prefix = "http://a.test/";
  auto p = store_->purge_jobs("acme", failed_a, "");
  ASSERT_TRUE(p.is_ok());
  EXPECT_EQ(p->count, 2u) << "jobs 3 and 6";
  EXPECT_TRUE(p->next_cursor.empty());
  EXPECT_FALSE(store_->get_job(all[2].id)->has_value());
  EXPECT_FALSE(store_->get_spec(all[2].id)->has_value()) << "its request goes too";
  EXPECT_TRUE(store_->get_job(all[8].id)->has_value()) << "b.test's failed job stays";
  EXPECT_EQ(store_->counters()[static_cast<std::size_t>(job_status::failed)], 2);
  job_filter retrying;
  retrying.status = job_status::retrying;
  EXPECT_EQ(store_->purge_jobs("acme", retrying, "")->count, 0u) << "an unfinished job is never purged";
  EXPECT_EQ(store_->pending_by_tenant().at("acme"), 4);
  EXPECT_EQ(store_->purge_jobs("beta", job_status::delivered, "")->count, 0u) << "another tenant's";
  EXPECT_EQ(store_->purge_jobs("acme", job_status::delivered, "")->count, 4u);
  reopen();
  EXPECT_EQ(store_->counters()[static_cast<std::size_t>(job_status::delivered)], 0);
  EXPECT_EQ(store_->list_jobs("acme", std::nullopt, "", 100)->jobs.size(), 6u);
}

TEST_P(StoreConformance, JobsAreListedByTheScheduleQueueOrTopicTheyCameFrom) {
  commit_batch b;
  for (int n = 1; n <= 6; ++n) {
    job_state s = state_of(n, n == 6 ? "beta" : "acme", job_status::scheduled, 9'000);
    s.schedule_id = n % 2 ? "nightly" : "hourly";
    if (n == 2) s.queue = "q1";
    if (n == 3) s.topic = "orders";
    b.jobs.push_back({s, job_spec{"POST", s.url, {}, ""}, std::nullopt});
  }
  commit(b);
  auto ids = [&](const std::string& tenant, const job_filter& f) {
    std::vector<std::string> out;
    auto page = store_->list_jobs(tenant, f, "", 100);
    EXPECT_TRUE(page.is_ok());
    if (page.is_ok()) for (const auto& j : page->jobs) out.push_back(j.id);
    return out;
  };
  job_filter nightly;
  nightly.schedule = "nightly";
  EXPECT_EQ(ids("acme", nightly), (std::vector<std::string>{id_of(5), id_of(3), id_of(1)}));
  job_filter hourly;
  hourly.schedule = "hourly";
  EXPECT_EQ(ids("acme", hourly), (std::vector<std::string>{id_of(4), id_of(2)})) << "job 6 is beta's";
  EXPECT_EQ(ids("beta", hourly), (std::vector<std::string>{id_of(6)}));
  job_filter q;
  q.queue = "q1";
  EXPECT_EQ(ids("acme", q), (std::vector<std::string>{id_of(2)}));
  job_filter t;
  t.topic = "orders";
  t.schedule = "nightly";
  EXPECT_EQ(ids("acme", t), (std::vector<std::string>{id_of(3)}));
  // With a status: checked on each job read.
  job_state done = state_of(3, "acme", job_status::delivered, 9'000);
  done.schedule_id = "nightly";
  done.topic = "orders";
  commit(commit_batch{{{done, std::nullopt, std::nullopt}}});
  nightly.status = job_status::delivered;
  EXPECT_EQ(ids("acme", nightly), (std::vector<std::string>{id_of(3)}));
  ASSERT_EQ(store_->purge_jobs("acme", nightly, "")->count, 1u);
  reopen();
  nightly.status.reset();
  EXPECT_EQ(ids("acme", nightly), (std::vector<std::string>{id_of(5), id_of(1)})) << "the purge took its index entry";
  EXPECT_EQ(store_->get_job(id_of(5)).value()->schedule_id, "nightly") << "the origin fields survive a restart";
  EXPECT_EQ(store_->get_job(id_of(2)).value()->queue, "q1");
}

// -- events ------------------------------------------------------------------------------------

/// (type, attempt) of each event, in order.
std::vector<std::pair<std::string, std::uint32_t>> kinds(const event_page& p) {
  std::vector<std::pair<std::string, std::uint32_t>> out;
  for (const auto& e : p.events) out.emplace_back(std::string(to_string(e.type)), e.attempt);
  return out;
}

TEST_P(StoreConformance, AJobsEventsTellItsWholeLifeInOrderAcrossARestart) {
  using v = std::vector<std::pair<std::string, std::uint32_t>>;
  auto at = [&](commit_batch b, std::int64_t ms) {
    b.at_ms = ms;
    commit(b);
  };
  commit_batch b;
  add(b, 1, "acme", job_status::scheduled, 5'000);
  at(b, 1'001);
  // A short deferral is not written; a written one is an event.
  job_state s = state_of(1, "acme", job_status::scheduled, 9'000);
  s.defer_reason = "rate_limited";
  at(commit_batch{{{s, std::nullopt, std::nullopt}}}, 5'000);
  s = state_of(1, "acme", job_status::retrying, 12'000);
  s.attempts = 1;
  s.last_error = "status 503";
  at(commit_batch{{{s, std::nullopt, attempt_record{1, 9'000, 40, 503, ""}}}}, 9'040);
  reopen();
  s.status = job_status::retrying;  // a backoff written twice (run now) makes no second event
  at(commit_batch{{{s, std::nullopt, std::nullopt}}}, 9'050);
  s = state_of(1, "acme", job_status::delivered, 12'000);
  s.attempts = 2;
  at(commit_batch{{{s, std::nullopt, attempt_record{2, 12'000, 7, 200, ""}}}}, 12'007);
  at(commit_batch{{{s, std::nullopt, std::nullopt}}}, 12'008);  // the end written again: nothing
  s.status = job_status::scheduled;
  s.run_at_ms = 20'000;
  at(commit_batch{{{s, std::nullopt, std::nullopt}}}, 13'000);  // run again (POST /retry)
  write(2, "beta", job_status::scheduled, 6'000);               // another tenant's job

  auto page = store_->list_events("acme", {id_of(1), std::nullopt}, "", 100);
  ASSERT_TRUE(page.is_ok()) << page.error().message();
  EXPECT_EQ(kinds(*page), (v{{"created", 0}, {"deferred", 0}, {"retrying", 1}, {"delivered", 2}, {"retried", 0}}));
  ASSERT_EQ(page->events.size(), 5u);
  const auto& e = page->events;
  EXPECT_EQ(e[0].at_ms, 1'001);
  EXPECT_EQ(e[0].next_at_ms, 5'000);
  EXPECT_EQ(e[0].url, "http://example.com/1");
  EXPECT_EQ(e[1].detail, "rate_limited");
  EXPECT_EQ(e[1].next_at_ms, 9'000);
  EXPECT_EQ(e[2].status_code, 503);
  EXPECT_EQ(e[2].duration_ms, 40u);
  EXPECT_EQ(e[2].detail, "status 503");
  EXPECT_EQ(e[2].next_at_ms, 12'000);
  EXPECT_EQ(e[3].status_code, 200);
  EXPECT_EQ(e[3].at_ms, 12'007);
  EXPECT_EQ(e[3].next_at_ms, 0);
  EXPECT_EQ(e[4].next_at_ms, 20'000);
  for (std::size_t i = 1; i < e.size(); ++i) EXPECT_LT(e[i - 1].seq, e[i].seq);
  EXPECT_TRUE(page->next_cursor.empty());

  EXPECT_TRUE(store_->list_events("beta", {id_of(1), std::nullopt}, "", 100)->events.empty()) << "another tenant's job";
  auto beta = store_->list_events("beta", {}, "", 100);
  ASSERT_EQ(beta->events.size(), 1u);
  EXPECT_EQ(beta->events[0].job_id, id_of(2));
  EXPECT_EQ(store_->list_events("acme", {}, "", 100)->events.size(), 5u);
  auto delivered = store_->list_events("acme", {"", event_type::delivered}, "", 100);
  ASSERT_EQ(delivered->events.size(), 1u);
  EXPECT_EQ(delivered->events[0].attempt, 2u);
}

TEST_P(StoreConformance, EventsPageFromACursorOrEndWithTheNewestAndRetentionDropsTheOld) {
  for (int n = 1; n <= 7; ++n) {
    commit_batch b;
    add(b, n, n % 2 ? "acme" : "beta", job_status::scheduled, 50'000);
    b.at_ms = n * 1'000;
    commit(b);
  }
  // acme: jobs 1 3 5 7. The newest two, ascending; then from the oldest with a cursor.
  auto newest = store_->list_events("acme", {}, "", 2);
  ASSERT_TRUE(newest.is_ok());
  ASSERT_EQ(newest->events.size(), 2u);
  EXPECT_EQ(newest->events[0].job_id, id_of(5));
  EXPECT_EQ(newest->events[1].job_id, id_of(7));
  auto first = store_->list_events("acme", {}, event_id(0), 3);
  ASSERT_EQ(first->events.size(), 3u);
  EXPECT_EQ(first->events[2].job_id, id_of(5));
  ASSERT_FALSE(first->next_cursor.empty());
  auto rest = store_->list_events("acme", {}, first->next_cursor, 3);
  ASSERT_EQ(rest->events.size(), 1u);
  EXPECT_EQ(rest->events[0].job_id, id_of(7));
  EXPECT_TRUE(rest->next_cursor.empty());
  EXPECT_FALSE(store_->list_events("acme", {}, "nope", 3).is_ok());

  auto purged = store_->purge_events(4'000, 100);
  ASSERT_TRUE(purged.is_ok());
  EXPECT_EQ(*purged, 4u) << "jobs 1-4, of both tenants";
  reopen();
  auto acme = store_->list_events("acme", {}, event_id(0), 100);
  ASSERT_EQ(acme->events.size(), 2u);
  EXPECT_EQ(acme->events[0].job_id, id_of(5));
  EXPECT_TRUE(store_->list_events("acme", {id_of(3), std::nullopt}, "", 100)->events.empty()) << "its job index too";
  EXPECT_EQ(store_->list_events("beta", {}, "", 100)->events.size(), 1u);
  // Sequence numbers go on after a restart: a new event sorts after every old one.
  write(8, "acme", job_status::scheduled, 50'000);
  auto last = store_->list_events("acme", {}, "", 1);
  ASSERT_EQ(last->events.size(), 1u);
  EXPECT_EQ(last->events[0].job_id, id_of(8));
  EXPECT_GT(last->events[0].seq, acme->events[1].seq);
}

TEST_P(StoreConformance, EventsPageNewestFirstForQstashLogs) {
  for (int n = 1; n <= 5; ++n) {
    commit_batch b;
    add(b, n, n == 5 ? "beta" : "acme", job_status::scheduled, 50'000);
    b.at_ms = n * 1'000;
    commit(b);
  }
  event_filter desc;
  desc.descending = true;
  auto first = store_->list_events("acme", desc, "", 3);
  ASSERT_TRUE(first.is_ok());
  ASSERT_EQ(first->events.size(), 3u);
  EXPECT_EQ(first->events[0].job_id, id_of(4));
  EXPECT_EQ(first->events[2].job_id, id_of(2));
  ASSERT_FALSE(first->next_cursor.empty());
  auto rest = store_->list_events("acme", desc, first->next_cursor, 3);
  ASSERT_EQ(rest->events.size(), 1u);
  EXPECT_EQ(rest->events[0].job_id, id_of(1)) << "older than the cursor, the cursor's own left out";
  EXPECT_TRUE(rest->next_cursor.empty());
}

TEST_P(StoreConformance, PurgeByIdsTakesOnlyThoseFinishedJobsOfTheTenant) {
  commit_batch b;
  add(b, 1, "acme", job_status::failed, 0);
  add(b, 2, "acme", job_status::failed, 0);
  add(b, 3, "acme", job_status::retrying, 5'000);
  add(b, 4, "beta", job_status::failed, 0);
  commit(b);
  job_filter f;
  f.status = job_status::failed;
  f.ids = {id_of(1), id_of(3), id_of(4), "job_01JD0000000000000000000000"};
  auto p = store_->purge_jobs("acme", f, "");
  ASSERT_TRUE(p.is_ok());
  EXPECT_EQ(p->count, 1u) << "job 1 only: 3 is unfinished, 4 another tenant's, the last unknown";
  EXPECT_FALSE(store_->get_job(id_of(1))->has_value());
  EXPECT_TRUE(store_->get_job(id_of(2))->has_value());
  EXPECT_TRUE(store_->get_job(id_of(3))->has_value());
  EXPECT_TRUE(store_->get_job(id_of(4))->has_value());
  EXPECT_EQ(store_->counters()[static_cast<std::size_t>(job_status::failed)], 2);
}

TEST_P(StoreConformance, SigningKeyPairsAreStoredAndSurviveARestart) {
  commit_batch b;
  b.signing_keys.push_back({"", "sig_a", "sig_b"});
  b.signing_keys.push_back({"beta", "sig_c", "sig_d"});
  commit(b);
  commit_batch rotate;
  rotate.signing_keys.push_back({"", "sig_b", "sig_e"});
  commit(rotate);
  reopen();
  auto keys = store_->signing_keys();
  ASSERT_TRUE(keys.is_ok());
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].tenant, "");
  EXPECT_EQ((*keys)[0].current, "sig_b");
  EXPECT_EQ((*keys)[0].next, "sig_e");
  EXPECT_EQ((*keys)[1].tenant, "beta");
  EXPECT_EQ((*keys)[1].next, "sig_d");
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance,
                         ::testing::ValuesIn(backends()),
                         [](const auto& info) { return std::string(info.param.name); });

// -- schedules ----------------------------------------------------------------------------------

schedule_state schedule_of(const std::string& tenant, const std::string& id, std::int64_t next, bool paused = false) {
  schedule_state s;
  s.id = id;
  s.tenant = tenant;
  s.cron = "CRON_TZ=Europe/Berlin */5 * * * *";
  s.request.spec = job_spec{"POST", "http://example.com/" + id, {{"Content-Type", "application/json"}}, "{}"};
  s.request.max_attempts = 3;
  s.request.queue = "q1";
  s.paused = paused;
  s.created_at_ms = 1'000;
  s.next_run_at_ms = next;
  return s;
}

class ScheduleConformance : public StoreConformance {
 protected:
  void put(std::vector<schedule_write> writes) {
    commit_batch b;
    b.schedules = std::move(writes);
    for (const auto& w : b.schedules) {
      std::string k = w.state.tenant + "/" + w.state.id;
      if (w.erase) schedules_.erase(k);
      else schedules_[k] = w.state;
    }
    commit(b);
  }

  /// get, list (paged by 2) and the due scan agree with the model.
  void expect_schedules(const std::string& when) {
    SCOPED_TRACE(when);
    std::vector<schedule_due> due;
    std::map<std::string, std::vector<schedule_state>> by_tenant;
    for (const auto& [k, s] : schedules_) {
      auto got = store_->get_schedule(s.tenant, s.id);
      ASSERT_TRUE(got.is_ok());
      ASSERT_TRUE(got->has_value()) << k;
      EXPECT_EQ(**got, s) << k;
      if (schedule_is_due_indexed(s)) due.push_back({s.next_run_at_ms, s.tenant, s.id});
      by_tenant[s.tenant].push_back(s);
    }
    std::sort(due.begin(), due.end(), [](const schedule_due& a, const schedule_due& b) {
      return std::tie(a.due_ms, a.tenant, a.id) < std::tie(b.due_ms, b.tenant, b.id);
    });
    auto scanned = store_->scan_schedules_due(std::nullopt, 1LL << 60, 1000);
    ASSERT_TRUE(scanned.is_ok());
    EXPECT_EQ(*scanned, due);
    for (const std::string tenant : {"acme", "beta"}) {
      std::vector<std::string> want, got;
      for (const auto& s : by_tenant[tenant]) want.push_back(s.id);
      std::sort(want.begin(), want.end());
      std::string cursor;
      for (int pages = 0; pages < 10; ++pages) {
        auto page = store_->list_schedules(tenant, cursor, 2);
        ASSERT_TRUE(page.is_ok());
        for (const auto& s : page->schedules) got.push_back(s.id);
        cursor = page->next_cursor;
        if (cursor.empty()) break;
      }
      EXPECT_EQ(got, want) << tenant;
    }
  }

  std::map<std::string, schedule_state> schedules_;
};

TEST_P(ScheduleConformance, TheDueIndexFollowsEveryChangeAndARestart) {
  put({{schedule_of("acme", "nightly", 5'000)}, {schedule_of("acme", "hourly", 3'000)},
       {schedule_of("beta", "nightly", 4'000)}, {schedule_of("acme", "a-paused", 1'000, true)}});
  expect_schedules("created");
  EXPECT_FALSE(store_->get_schedule("beta", "hourly")->has_value()) << "names are per tenant";

  schedule_state fired = schedule_of("acme", "hourly", 9'000);
  fired.last_run_at_ms = 3'000;
  fired.last_job_id = "job_x";
  put({{fired}});
  expect_schedules("fired: its next fire moved");

  put({{schedule_of("beta", "nightly", 4'000, true)}});
  expect_schedules("paused: out of the due index");
  put({{schedule_of("beta", "nightly", 6'000)}});
  expect_schedules("resumed at a new time");
  put({{schedule_of("acme", "nightly", 0)}});
  expect_schedules("no next fire");
  put({{schedule_of("acme", "a-paused", 1'000, true), true}});
  EXPECT_FALSE(store_->get_schedule("acme", "a-paused")->has_value());
  expect_schedules("deleted");

  // Several writes to one schedule in one commit: the last counts, one due entry.
  put({{schedule_of("acme", "burst", 7'000)}, {schedule_of("acme", "burst", 8'000)}, {schedule_of("acme", "burst", 8'500)}});
  expect_schedules("one commit");
  put({{schedule_of("acme", "gone", 7'000)}, {schedule_of("acme", "gone", 7'000), true}});
  expect_schedules("created and deleted in one commit");

  reopen();
  expect_schedules("after a restart");
  auto after = store_->scan_schedules_due(schedule_due{6'000, "beta", "nightly"}, 8'500, 10);
  ASSERT_TRUE(after.is_ok());
  EXPECT_EQ(*after, (std::vector<schedule_due>{{8'500, "acme", "burst"}})) << "after a cursor, up to a time";
}

INSTANTIATE_TEST_SUITE_P(Backends, ScheduleConformance,
                         ::testing::ValuesIn(backends()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace fetchrelay::persistence::store_conformance_test
