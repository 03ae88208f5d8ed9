#include "persistence/store.h"

#include <gtest/gtest.h>
#include <leveldb/db.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "tests/support/process.h"

namespace fetchrelay::persistence::store_test {
namespace {

namespace fs = std::filesystem;

TEST(LevelDbStore, CreatesThenReopens) {
  test::temp_dir dir;
  std::string path = dir.file("data");
  {
    auto s = open_leveldb_store({path, true});
    ASSERT_TRUE(s.is_ok()) << s.error().message();
    EXPECT_TRUE((*s)->health().is_ok());
    EXPECT_EQ((*s)->location(), path);
  }
  EXPECT_TRUE(fs::exists(fs::path(path) / "CURRENT"));
  auto again = open_leveldb_store({path, true});
  EXPECT_TRUE(again.is_ok()) << again.error().message();
}

TEST(LevelDbStore, SecondOpenerIsRefusedWhileTheFirstHoldsIt) {
  test::temp_dir dir;
  auto first = open_leveldb_store({dir.file("data"), true});
  ASSERT_TRUE(first.is_ok());
  auto second = open_leveldb_store({dir.file("data"), true});
  ASSERT_FALSE(second.is_ok());
  EXPECT_EQ(second.error().code(), status_code::unavailable);
  EXPECT_NE(second.error().message().find("in use by another process"), std::string::npos)
      << second.error().message();
}

TEST(LevelDbStore, DamagedStoreStopsWithDataLossAndIsLeftUntouched) {
  test::temp_dir dir;
  std::string path = dir.file("data");
  { ASSERT_TRUE(open_leveldb_store({path, true}).is_ok()); }
  // Point CURRENT at a manifest that does not exist.
  std::ofstream(fs::path(path) / "CURRENT", std::ios::trunc) << "MANIFEST-999999\n";
  // LevelDB's own info LOG rotates on every open; the data files must not change.
  auto data_files = [&] {
    std::map<std::string, std::uintmax_t> out;
    for (const auto& e : fs::directory_iterator(path)) {
      std::string name = e.path().filename().string();
      if (name.rfind("LOG", 0) == 0 || name == "LOCK") continue;
      out[name] = fs::file_size(e.path());
    }
    return out;
  };
  auto before = data_files();
  auto r = open_leveldb_store({path, true});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::data_loss);
  EXPECT_NE(r.error().message().find("left untouched"), std::string::npos) << r.error().message();
  EXPECT_EQ(data_files(), before);
}

TEST(LevelDbStore, ForeignLevelDbIsNotTakenOver) {
  test::temp_dir dir;
  std::string path = dir.file("data");
  {
    leveldb::Options o;
    o.create_if_missing = true;
    leveldb::DB* db = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(o, path, &db).ok());
    ASSERT_TRUE(db->Put(leveldb::WriteOptions(), "someone/else", "x").ok());
    delete db;
  }
  auto r = open_leveldb_store({path, true});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::data_loss);
  EXPECT_EQ(r.error().message(), "the store at " + path +
                                     " is a LevelDB database but not a fetchrelay store (no meta/format)");
}

TEST(LevelDbStore, PathThatIsAFileIsUnavailable) {
  test::temp_dir dir;
  std::string file = dir.write("not-a-dir", "x");
  auto r = open_leveldb_store({file, true});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::unavailable);
  EXPECT_NE(r.error().message().find("cannot create the store directory"), std::string::npos);
}

// -- a damaged store: the file is named, and `repair` keeps what can be read ------------------

std::string job_id(int n) {
  char buf[31];
  std::snprintf(buf, sizeof buf, "job_%026d", n);
  return buf;
}

/// Job n's body: printable bytes that do not compress. Bodies bigger than a record keeps
/// (big_body) fill the table's first blocks ("body/…" sorts first), and a damaged block there
/// loses some of them.
std::string body_of(int n, std::size_t bytes) {
  std::string b(bytes, ' ');
  std::uint64_t x = 0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(n + 1);
  for (auto& c : b) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>('!' + x % 90);
  }
  return b;
}

/// A body too big for the job's record: it gets a key of its own.
constexpr std::size_t big_body = inline_spec_limit + 100;

/// The submission of scheduled job n with a `body_bytes`-byte body.
commit_batch job_batch(int n, std::size_t body_bytes) {
  job_state j;
  j.id = job_id(n);
  j.tenant = "acme";
  j.url = "http://example.com/" + std::to_string(n);
  j.created_at_ms = 1'000 + n;
  j.run_at_ms = 5'000 + n;
  j.max_attempts = 3;
  commit_batch b;
  b.jobs.push_back({j, job_spec{"POST", j.url, {}, body_of(n, body_bytes)}, std::nullopt});
  return b;
}

/// Commits `count` scheduled jobs with `body_bytes`-byte bodies, one batch each.
void fill_jobs(store& s, int count, std::size_t body_bytes) {
  for (int n = 1; n <= count; ++n) {
    commit_batch b = job_batch(n, body_bytes);
    ASSERT_TRUE(s.commit(std::span<const commit_batch>(&b, 1)).is_ok());
  }
}

/// The store's files whose names end with `suffix`.
std::vector<fs::path> files_ending(const std::string& dir, const std::string& suffix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) out.push_back(e.path());
  }
  return out;
}

/// Overwrites `n` bytes at `offset` (negative: from the end) with 0xA5.
void damage(const fs::path& file, std::int64_t offset, std::size_t n) {
  auto size = static_cast<std::int64_t>(fs::file_size(file));
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(offset < 0 ? size + offset : offset);
  std::string junk(n, static_cast<char>(0xA5));
  f.write(junk.data(), static_cast<std::streamsize>(n));
}

TEST(DamagedStore, ADamagedLogStopsTheOpenNamingTheFileAndTheRepair) {
  test::temp_dir dir;
  std::string path = dir.file("data");
  {
    auto s = open_leveldb_store({path, true});
    ASSERT_TRUE(s.is_ok());
    fill_jobs(**s, 20, 500);
  }  // closed: the jobs are in the log, not yet in a table
  auto logs = files_ending(path, ".log");
  ASSERT_EQ(logs.size(), 1u);
  damage(logs[0], static_cast<std::int64_t>(fs::file_size(logs[0]) / 2), 64);
  auto r = open_leveldb_store({path, true});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::data_loss);
  const std::string& m = r.error().message();
  EXPECT_NE(m.find("is damaged: " + logs[0].filename().string() + " (corruption: "), std::string::npos) << m;
  EXPECT_NE(m.find("fetchrelay repair --config"), std::string::npos) << m;
  EXPECT_NE(m.find("left untouched"), std::string::npos) << m;

  auto report = repair_leveldb_store(path);
  ASSERT_TRUE(report.is_ok()) << report.error().message();
  ASSERT_EQ(report->damaged.size(), 1u);
  EXPECT_EQ(report->damaged[0].name, logs[0].filename().string());
  // The records before the damaged part of the log are kept, the rest are gone: some, not all.
  EXPECT_GT(report->jobs, 0);
  EXPECT_LT(report->jobs, 20);
  EXPECT_EQ(report->by_status[static_cast<std::size_t>(job_status::scheduled)] +
                report->by_status[static_cast<std::size_t>(job_status::failed)],
            report->jobs);
  auto opened = open_leveldb_store({path, true});
  ASSERT_TRUE(opened.is_ok()) << opened.error().message();
  auto& s = **opened;
  std::int64_t present = 0;
  for (int n = 1; n <= 20; ++n) present += s.get_job(job_id(n))->has_value() ? 1 : 0;
  EXPECT_EQ(present, report->jobs);
  EXPECT_EQ(s.counters()[static_cast<std::size_t>(job_status::scheduled)] + s.counters()[static_cast<std::size_t>(job_status::failed)],
            present)
      << "the counters were rebuilt from the jobs kept";
  auto due = s.scan_due(std::nullopt, 1LL << 60, 1000);
  ASSERT_TRUE(due.is_ok());
  EXPECT_EQ(static_cast<std::int64_t>(due->size()), s.counters()[static_cast<std::size_t>(job_status::scheduled)])
      << "every kept scheduled job is due again, and nothing else";
}

TEST(DamagedStore, ADamagedTableStopsTheOpenNamingTheFile) {
  test::temp_dir dir;
  std::string path = dir.file("data");
  {
    auto s = open_leveldb_store({path, true});
    ASSERT_TRUE(s.is_ok());
    fill_jobs(**s, 20, 500);
  }
  { ASSERT_TRUE(open_leveldb_store({path, true}).is_ok()); }  // the log becomes a table
  auto tables = files_ending(path, ".ldb");
  ASSERT_EQ(tables.size(), 1u);
  damage(tables[0], -48, 48);  // the footer: LevelDB cannot read the table at all
  auto r = open_leveldb_store({path, true});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::data_loss);
  EXPECT_NE(r.error().message().find("is damaged: " + tables[0].filename().string() + " ("), std::string::npos)
      << r.error().message();
}

TEST(DamagedStore, RepairOfATableWithADamagedBlockKeepsTheRestAndFailsJobsThatLostTheirRequest) {
  test::temp_dir dir;
  std::string path = dir.file("data");
  {
    auto s = open_leveldb_store({path, true});
    ASSERT_TRUE(s.is_ok());
    fill_jobs(**s, 200, big_body);
  }
  { ASSERT_TRUE(open_leveldb_store({path, true}).is_ok()); }
  auto tables = files_ending(path, ".ldb");
  ASSERT_EQ(tables.size(), 1u);
  damage(tables[0], 80'000, 16);  // inside the bodies: about the 20th of 200 of them
  auto found = find_damaged_files(path);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].name, tables[0].filename().string());

  auto report = repair_leveldb_store(path);
  ASSERT_TRUE(report.is_ok()) << report.error().message();
  EXPECT_EQ(report->jobs, 200) << "the job records were not in the damaged block";
  EXPECT_GT(report->requests_lost, 0);
  EXPECT_LT(report->requests_lost, 200);
  EXPECT_EQ(report->by_status[static_cast<std::size_t>(job_status::failed)], report->requests_lost);
  ASSERT_EQ(report->damaged.size(), 1u) << "the damaged table is reported";
  EXPECT_EQ(report->damaged[0].name, tables[0].filename().string());
  EXPECT_TRUE(find_damaged_files(path).empty()) << "the repaired store still reads as damaged";
  EXPECT_EQ(report->old_store, path + ".before-repair");
  EXPECT_EQ(find_damaged_files(report->old_store).size(), 1u) << "the store as it was is kept, damage and all";
  auto opened = open_leveldb_store({path, true});
  ASSERT_TRUE(opened.is_ok()) << opened.error().message();
  auto& s = **opened;
  for (int n = 1; n <= 200; ++n) {
    auto j = s.get_job(job_id(n));
    ASSERT_TRUE(j.is_ok() && j->has_value());
    auto spec = s.get_spec(job_id(n));
    ASSERT_TRUE(spec.is_ok());
    if ((*j)->status == job_status::failed) {
      EXPECT_EQ((*j)->last_error, "its request was lost when the store was repaired");
    } else {
      ASSERT_TRUE(spec->has_value()) << n;
      EXPECT_EQ((*spec)->body, body_of(n, big_body)) << "a kept body changed";
    }
  }
  EXPECT_EQ(s.counters()[static_cast<std::size_t>(job_status::failed)], report->requests_lost);
  EXPECT_EQ(s.counters()[static_cast<std::size_t>(job_status::scheduled)], 200 - report->requests_lost);
}

/// Every file of a folder (not LOCK or LevelDB's info LOG) with its bytes.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (!e.is_regular_file() || name == "LOCK" || name.rfind("LOG", 0) == 0) continue;
    std::ifstream in(e.path(), std::ios::binary);
    out[name] = std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  return out;
}

// Many tables: LevelDB's repair puts every table at level 0, which makes the next open compact
// them; that compaction must not merge the damaged block into a sound table, and the folder kept
// as it was must be exactly the folder before the repair.
TEST(DamagedStore, RepairOfManyTablesNeverLaundersADamagedBlockAndKeepsTheOldFolderAsItWas) {
  test::temp_dir dir;
  std::string path = dir.file("data");
  constexpr int jobs = 1'500;
  {
    auto s = open_leveldb_store({path, true});
    ASSERT_TRUE(s.is_ok());
    for (int first = 1; first <= jobs; first += 100) {  // 100 jobs a commit: 6 MB in all
      std::vector<commit_batch> group;
      for (int n = first; n < first + 100; ++n) group.push_back(job_batch(n, big_body));
      ASSERT_TRUE((*s)->commit(group).is_ok());
    }
  }
  { ASSERT_TRUE(open_leveldb_store({path, true}).is_ok()); }
  auto tables = files_ending(path, ".ldb");
  ASSERT_GE(tables.size(), 2u) << "the test needs several tables";
  std::sort(tables.begin(), tables.end());
  damage(tables[0], 50'000, 16);
  auto before = snapshot(path);

  auto report = repair_leveldb_store(path);
  ASSERT_TRUE(report.is_ok()) << report.error().message();
  ASSERT_EQ(report->damaged.size(), 1u) << "the damaged table is reported";
  EXPECT_EQ(report->damaged[0].name, tables[0].filename().string());
  EXPECT_GT(report->requests_lost, 0);
  EXPECT_EQ(snapshot(report->old_store), before) << "the folder kept as it was has changed";
  EXPECT_TRUE(find_damaged_files(path).empty());
  auto opened = open_leveldb_store({path, true});
  ASSERT_TRUE(opened.is_ok()) << opened.error().message();
  int intact = 0;
  for (int n = 1; n <= jobs; ++n) {
    auto spec = (*opened)->get_spec(job_id(n));
    ASSERT_TRUE(spec.is_ok()) << n << ": " << spec.error().message();
    if (!spec->has_value()) continue;
    ASSERT_EQ((*spec)->body, body_of(n, big_body)) << "job " << n << " came back with damaged bytes";
    ++intact;
  }
  EXPECT_EQ(intact + report->requests_lost, jobs);
}

TEST(DamagedStore, RepairIsRefusedWhileTheStoreIsOpen) {
  test::temp_dir dir;
  std::string path = dir.file("data");
  auto s = open_leveldb_store({path, true});
  ASSERT_TRUE(s.is_ok());
  auto r = repair_leveldb_store(path);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::unavailable);
  EXPECT_NE(r.error().message().find("in use"), std::string::npos) << r.error().message();
  EXPECT_EQ(repair_leveldb_store(dir.file("nothing")).error().code(), status_code::invalid_argument);
  EXPECT_FALSE(fs::exists(dir.file("data") + ".repair-work"));
  EXPECT_FALSE(fs::exists(dir.file("data") + ".repairing"));
}

}  // namespace
}  // namespace fetchrelay::persistence::store_test
