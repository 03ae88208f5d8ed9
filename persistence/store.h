// The job store. This slice opens and checks the store at start-up; the durable-jobs issue
// adds the job, due, list, idempotency and counter key spaces (DESIGN §4) and group commit.
//
// The interface carries no LevelDB type, so a PostgreSQL store (DESIGN §9) can implement it.
// Thread-safety: a store is used by one actor (the store actor) at a time.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"

namespace fetchrelay::persistence {

class store {
 public:
  virtual ~store() = default;

  /// ok while writes are possible; unavailable after a failed write until reopened.
  virtual status health() const = 0;

  /// Where the store lives, for messages.
  virtual const std::string& location() const = 0;
};

struct leveldb_options {
  std::string path;
  bool sync = true;
};

/// Opens (creating if missing) the LevelDB store at options.path with paranoid checks.
/// Errors, each with a message saying what to do:
///   unavailable  - the directory cannot be created, or another process holds the store;
///   data_loss    - the store is damaged, or is not a fetchrelay store (never emptied).
result<std::unique_ptr<store>> open_leveldb_store(const leveldb_options& options);

}  // namespace fetchrelay::persistence
