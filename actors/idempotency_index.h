// The job manager's memory of idempotency keys (DESIGN §2): a plain class, no actor, so it is
// unit-tested on a simulated clock (tests/actors/idempotency_index_test.cpp).
//
// A key is "<tenant>\0<X-Idempotency-Key>". It is remembered when its first job is handed to
// the store; repeats that come before that commit is synced wait on the entry and are answered
// with it. Keys not in memory (after a restart, or pruned) are looked up in the store; repeats
// that arrive during the look-up wait for it too, so one key costs one look-up. Entries leave
// when their window ends, or (oldest first) past the in-memory cap: the store still has them.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "actors/submit.h"

namespace fetchrelay::actors {

class idempotency_index {
 public:
  struct entry {
    std::string id;
    std::int64_t run_at_ms = 0;
    std::int64_t expires_at_ms = 0;
    std::string fingerprint;
    bool committed = false;                          // the first submission is synced
    std::vector<completion<submit_answer>> waiters;  // repeats that came before that
  };
  using pending_repeat = std::pair<submission, completion<submit_answer>>;

  explicit idempotency_index(std::size_t max_in_memory) : max_(max_in_memory) {}

  static std::string key_of(const std::string& tenant, const std::string& key) { return tenant + '\0' + key; }
  /// Two submissions under one key ask for different things (empty: written before fingerprints).
  static bool conflicts(const std::string& first, const std::string& repeat) {
    return !first.empty() && !repeat.empty() && first != repeat;
  }

  /// The entry of `key` if it is remembered and its window has not ended at `now`.
  entry* find(const std::string& key, std::int64_t now);
  /// True if `key` is in memory at all (even expired): then the store need not be asked.
  bool known(const std::string& key) const { return entries_.count(key) != 0; }
  void remember(const std::string& key, entry e);
  /// The first submission's commit is answered: ok marks the entry committed, a failure drops
  /// it. Returns the repeats that waited for it.
  std::vector<completion<submit_answer>> committed(const std::string& key, bool ok);
  /// Drops `key` if it still names job `id` (the job is gone: the key goes with it).
  void forget(const std::string& key, const std::string& id);
  /// Drops entries whose window ended, and the oldest committed ones past the cap.
  void prune(std::int64_t now);
  std::size_t size() const { return entries_.size(); }

  /// A repeat whose key is not in memory waits for the store look-up. True for the first one
  /// of its key: the caller asks the store (once); the others only wait.
  bool await_lookup(const std::string& key, submission sub, completion<submit_answer> reply);
  /// The repeats that waited for the look-up of `key`, in arrival order.
  std::vector<pending_repeat> take_lookup(const std::string& key);

 private:
  std::size_t max_;
  std::unordered_map<std::string, entry> entries_;
  std::deque<std::pair<std::string, std::int64_t>> order_;  // (key, expiry), oldest first
  std::unordered_map<std::string, std::vector<pending_repeat>> lookups_;
};

}  // namespace fetchrelay::actors
