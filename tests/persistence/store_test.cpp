#include "persistence/store.h"

#include <gtest/gtest.h>
#include <leveldb/db.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "tests/support/process.h"

namespace fetchrelay::persistence {
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

}  // namespace
}  // namespace fetchrelay::persistence
