// LevelDB implementation of the store. LevelDB types never leave this folder.
//
// Key space so far:
//   "meta/format" -> "fetchrelay-store 1"   written when the store is created; checked on open.
#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include <filesystem>
#include <system_error>

#include "persistence/store.h"

namespace fetchrelay::persistence {
namespace {

constexpr const char* format_key = "meta/format";
constexpr const char* format_value = "fetchrelay-store 1";

class leveldb_store final : public store {
 public:
  leveldb_store(std::unique_ptr<leveldb::DB> db, std::string path)
      : db_(std::move(db)), path_(std::move(path)) {}

  status health() const override { return status::ok(); }
  const std::string& location() const override { return path_; }

 private:
  std::unique_ptr<leveldb::DB> db_;
  std::string path_;
};

}  // namespace

result<std::unique_ptr<store>> open_leveldb_store(const leveldb_options& options) {
  namespace fs = std::filesystem;
  const std::string& path = options.path;
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec || !fs::is_directory(path)) {
    return unavailable("cannot create the store directory " + path + ": " +
                       (ec ? ec.message() : std::string("not a directory")));
  }
  bool fresh = !fs::exists(fs::path(path) / "CURRENT");

  leveldb::Options o;
  o.create_if_missing = fresh;
  o.paranoid_checks = true;  // never skip a damaged record silently
  leveldb::DB* raw = nullptr;
  leveldb::Status s = leveldb::DB::Open(o, path, &raw);
  if (!s.ok()) {
    std::string why = s.ToString();
    if (s.IsIOError() && why.find("lock") != std::string::npos) {
      return unavailable("the store at " + path + " is in use by another process (" + why + ")");
    }
    if (s.IsCorruption() || s.IsInvalidArgument() || !fresh) {
      return data_loss("the store at " + path + " cannot be opened: " + why +
                       ". It was left untouched: restore a backup or move it aside");
    }
    return unavailable("cannot open the store at " + path + ": " + why);
  }
  std::unique_ptr<leveldb::DB> db(raw);

  std::string marker;
  s = db->Get(leveldb::ReadOptions(), format_key, &marker);
  if (s.IsNotFound()) {
    if (!fresh) {
      return data_loss("the store at " + path +
                       " is a LevelDB database but not a fetchrelay store (no meta/format)");
    }
    leveldb::WriteOptions w;
    w.sync = options.sync;
    s = db->Put(w, format_key, format_value);
    if (!s.ok()) return unavailable("cannot write to the store at " + path + ": " + s.ToString());
  } else if (!s.ok()) {
    return data_loss("the store at " + path + " cannot be read: " + s.ToString());
  } else if (marker != format_value) {
    return data_loss("the store at " + path + " has format \"" + marker +
                     "\", which this version does not read (it expects \"" + format_value + "\")");
  }
  return std::unique_ptr<store>(new leveldb_store(std::move(db), path));
}

}  // namespace fetchrelay::persistence
