// The job store (DESIGN §4): durable job snapshots, request bodies, the due and listing
// indexes, attempt records, idempotency keys and per-status counters.
//
// The interface speaks in jobs, not keys: no LevelDB type, iterator or write batch reaches a
// caller, so a PostgreSQL store (DESIGN §9) can implement it. The LevelDB implementation is the
// only one so far; its key space is in persistence/codec.h.
//
// Thread-safety: one store actor uses a store at a time (it blocks on fsync).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/job.h"
#include "core/status.h"
#include "persistence/codec.h"

namespace fetchrelay::persistence {

/// One job as it is now ("job X is retrying, due at T"). The caller never says which index
/// entries move: the store works that out from what it holds for the job, read within the
/// commit (an earlier write to the same job in the same commit counts).
struct job_write {
  job_state state;                        // the new snapshot
  std::optional<job_spec> spec;           // set only for a new job (a fresh id): its request
  std::optional<attempt_record> attempt;  // an attempt to record
};

/// One schedule as it is now, or its removal; the store moves its due entry itself.
struct schedule_write {
  schedule_state state;
  bool erase = false;  // delete it (state.tenant and state.id name it)
};

/// One topic as it is now, or its removal.
struct topic_write {
  topic_state state;
  bool erase = false;
};

/// A tenant's QStash signing key pair ("" = the default pair of tenants without their own).
struct signing_key_write {
  std::string tenant;
  std::string current;
  std::string next;
};

/// One queue as it is now, or its removal.
struct queue_write {
  queue_state state;
  bool erase = false;
};

struct idem_write {
  std::string tenant;
  std::string key;
  idem_record record;
};

/// Writes applied atomically: all or nothing.
struct commit_batch {
  std::vector<job_write> jobs;
  std::vector<idem_write> idempotency;
  std::vector<schedule_write> schedules;
  std::vector<topic_write> topics;
  std::vector<queue_write> queues;
  std::vector<signing_key_write> signing_keys;
  bool sync = true;              // fsync before answering (submissions, terminal states)
  /// When the changes happened: the time of the events the store derives from them. The store
  /// actor stamps a batch that comes without one.
  std::int64_t at_ms = 0;
  /// Several relays on one database: an idempotency key of this batch that another relay's
  /// commit holds already (live, its job there) is not taken; the job that came with it is left
  /// out of the commit, and the key with the holder's record is added here (when set), for the
  /// caller to answer with that job. A single relay's store leaves it alone.
  std::shared_ptr<std::vector<idem_write>> lost_keys;
};

struct due_entry {
  std::int64_t due_ms = 0;
  std::string id;
  bool operator==(const due_entry&) const = default;
};

struct schedule_due {
  std::int64_t due_ms = 0;
  std::string tenant;
  std::string id;
  bool operator==(const schedule_due&) const = default;
};

struct topic_page {
  std::vector<topic_state> topics;  // by name
  std::string next_cursor;          // "" when there is nothing more
};

struct queue_page {
  std::vector<queue_state> queues;  // by name
  std::string next_cursor;          // "" when there is nothing more
};

/// One unfinished job of a queue, in submission (id) order.
struct queue_entry {
  std::string id;
  queue_stage stage = queue_stage::waiting;
  bool operator==(const queue_entry&) const = default;
};

struct schedule_page {
  std::vector<schedule_state> schedules;  // by id
  std::string next_cursor;                // "" when there is nothing more
};

/// Which jobs a listing returns. `status` is served from the listing index, `schedule`, `queue`
/// and `topic` from indexes of their own, `since`/`until` from the ids (a job id carries its
/// creation time); `url_prefix` is checked on each job read.
struct job_filter {
  job_filter() = default;
  job_filter(std::nullopt_t) {}                      // NOLINT: every job
  job_filter(job_status s) : status(s) {}            // NOLINT: one status
  std::optional<job_status> status;
  std::string url_prefix;
  std::optional<std::int64_t> since_ms;  // created at or after
  std::optional<std::int64_t> until_ms;  // created at or before
  // Where jobs came from, each from an index of its own (the first one set is walked; the rest,
  // and the status, are then checked on each job read).
  std::string schedule;
  std::string queue;
  std::string topic;
  /// Only jobs published through the QStash-compatible API (/v2's bulk operations and DLQ).
  bool qstash_only = false;
  /// purge_jobs only: exactly these jobs (each still checked against the tenant, the status and
  /// being finished); the other fields are then ignored.
  std::vector<std::string> ids;
};

/// Index entries one listing reads at most: a page with a filter that matches little comes back
/// short, with a next_cursor to go on from, instead of scanning the whole store.
inline constexpr std::size_t max_list_scan = 10'000;

struct purge_page {
  std::size_t count = 0;    // jobs deleted
  std::string next_cursor;  // "" when the filter's range is done
};

struct job_page {
  std::vector<job_state> jobs;  // newest first
  std::string next_cursor;      // "" when there is nothing more
};

/// Which events a listing returns: one job's (from its own index) and/or one type.
struct event_filter {
  std::string job_id;
  std::optional<event_type> type;
  /// Newest first, from before the cursor (QStash's logs); next_cursor then leads to older ones.
  bool descending = false;
};

struct event_page {
  std::vector<event_record> events;  // ascending
  std::string next_cursor;           // "" when the page reached the newest event
};

/// Test hook: makes the store's file writes fail while set, as a full disk (ENOSPC) or a failing
/// device (EIO) would: on append (and flush), on sync, or on both. Deterministic: every write of
/// the chosen kind fails from the call on, until cleared.
class fault_injection {
 public:
  enum op : unsigned { none = 0, append = 1, sync = 2, all = 3 };
  enum class kind { io_error, no_space };

  /// Appends, flushes and syncs fail with EIO while `on`.
  void fail_writes(bool on) { fail(on ? all : none); }
  void fail(unsigned ops, kind k = kind::io_error) {
    kind_.store(k);
    ops_.store(ops);
  }
  bool failing() const { return ops_.load() != none; }
  bool failing(op o) const { return (ops_.load() & o) != 0; }
  kind error_kind() const { return kind_.load(); }
  /// Faults injected so far (a test checks its fault was reached).
  std::uint64_t injected() const { return injected_.load(); }
  void count_injected() { injected_.fetch_add(1); }

 private:
  std::atomic<unsigned> ops_{none};
  std::atomic<kind> kind_{kind::io_error};
  std::atomic<std::uint64_t> injected_{0};
};

class store {
 public:
  virtual ~store() = default;

  /// ok while writes are possible; unavailable after a failed write until reopen() succeeds.
  virtual status health() const = 0;
  virtual const std::string& location() const = 0;

  /// Applies the batches as one atomic write, synced if any batch asks for it. A write to a
  /// job the store does not hold (without a spec) adds it as if new.
  virtual status commit(std::span<const commit_batch> batches) = 0;
  /// Closes and opens the database again, clearing a failed state.
  virtual status reopen() = 0;

  virtual result<std::optional<job_state>> get_job(const std::string& id) = 0;
  virtual result<std::optional<job_spec>> get_spec(const std::string& id) = 0;
  virtual result<std::vector<attempt_record>> get_attempts(const std::string& id) = 0;
  virtual result<std::optional<idem_record>> get_idem(const std::string& tenant, const std::string& key) = 0;

  /// Due entries after `after` (exclusive; nullopt: from the start) up to `until_ms`
  /// (inclusive), in due order, at most `limit`.
  virtual result<std::vector<due_entry>> scan_due(const std::optional<due_entry>& after,
                                                  std::int64_t until_ms, std::size_t limit) = 0;

  /// The tenant's jobs that pass `filter`, newest first; `cursor` is a previous page's
  /// next_cursor. Reads at most max_list_scan index entries: a page may be short (even empty)
  /// and still have a next_cursor.
  virtual result<job_page> list_jobs(const std::string& tenant, const job_filter& filter, const std::string& cursor,
                                     std::size_t limit) = 0;

  virtual result<std::optional<schedule_state>> get_schedule(const std::string& tenant, const std::string& id) = 0;
  /// The tenant's schedules in id order after `cursor` (a previous page's next_cursor).
  virtual result<schedule_page> list_schedules(const std::string& tenant, const std::string& cursor,
                                               std::size_t limit) = 0;
  /// Schedules not paused whose next fire is at or before `until_ms`, after `after` (exclusive;
  /// nullopt: from the start), in fire order, at most `limit`.
  virtual result<std::vector<schedule_due>> scan_schedules_due(const std::optional<schedule_due>& after,
                                                               std::int64_t until_ms, std::size_t limit) = 0;

  /// Every stored QStash signing key pair (a handful), by tenant ("" = the default).
  virtual result<std::vector<signing_key_write>> signing_keys() = 0;

  virtual result<std::optional<topic_state>> get_topic(const std::string& tenant, const std::string& name) = 0;
  /// The tenant's topics in name order after `cursor` (a previous page's next_cursor).
  virtual result<topic_page> list_topics(const std::string& tenant, const std::string& cursor, std::size_t limit) = 0;

  virtual result<std::optional<queue_state>> get_queue(const std::string& tenant, const std::string& name) = 0;
  virtual result<queue_page> list_queues(const std::string& tenant, const std::string& cursor, std::size_t limit) = 0;
  /// The queue's first `limit` unfinished jobs after the id `after` ("": from the first) in submission order, from the index the store keeps
  /// from each job's queue and queue_stage (a waiting job has no due entry: its queue starts it).
  virtual result<std::vector<queue_entry>> queue_jobs(const std::string& tenant, const std::string& name,
                                                      const std::string& after, std::size_t limit) = 0;
  /// Every queue with an unfinished job, as (tenant, name).
  virtual std::vector<std::pair<std::string, std::string>> active_queues() const = 0;
  /// The queue's unfinished jobs by stage, as of the last successful commit.
  virtual queue_counts queue_count(const std::string& tenant, const std::string& name) const = 0;

  /// The tenant's events that pass `filter`, ascending. From `cursor` (an event id, exclusive)
  /// on; without one, the newest `limit`. Reads at most max_list_scan index entries: a page may be
  /// short and still have a next_cursor. Every commit derives the events of its job writes:
  /// created, retrying, deferred, the terminal status, retried (see core/event.h).
  virtual result<event_page> list_events(const std::string& tenant, const event_filter& filter,
                                         const std::string& cursor, std::size_t limit) = 0;

  /// Deletes at most `limit` events that happened at or before `before_ms` (retention); not
  /// synced. Returns how many went.
  virtual result<std::size_t> purge_events(std::int64_t before_ms, std::size_t limit) = 0;

  /// Jobs by status, as of the last successful commit.
  virtual status_counters counters() const = 0;

  /// Unfinished jobs per tenant (every tenant that has one), as of the last successful commit.
  virtual std::map<std::string, std::int64_t> pending_by_tenant() const = 0;

  /// Deletes the tenant's finished jobs that pass `filter` now (DELETE /v1/jobs), reading at most
  /// max_list_scan index entries from `cursor`; a job that is not finished is never deleted.
  /// Synced like any acknowledged change.
  virtual result<purge_page> purge_jobs(const std::string& tenant, const job_filter& filter,
                                        const std::string& cursor) = 0;

  /// Deletes every key of at most `limit` terminal jobs that finished at or before
  /// `finished_before_ms` (the retention sweep); returns how many went. Not synced: a purge
  /// lost in a crash is simply done again.
  virtual result<std::size_t> purge_finished(std::int64_t finished_before_ms, std::size_t limit) = 0;

  /// Bytes the store's files take on disk.
  virtual std::uint64_t disk_usage_bytes() const = 0;
};

struct leveldb_options {
  std::string path;
  bool sync = true;  // false: never fsync (storage.sync: false)
  std::shared_ptr<fault_injection> faults;  // tests only
};

/// Opens (creating if missing) the LevelDB store at options.path with paranoid checks.
/// Errors, each with a message saying what to do:
///   unavailable  - the directory cannot be created, or another process holds the store;
///   data_loss    - the store is damaged, or is not a fetchrelay store (never emptied).
result<std::unique_ptr<store>> open_leveldb_store(const leveldb_options& options);

class shard_ownership;  // persistence/cluster.h

struct postgres_options {
  std::string dsn;   // a libpq connection string (URI or key=value); never logged
  bool sync = true;  // false: commits do not wait for the WAL flush (synchronous_commit off)
  /// The PostgreSQL schema (namespace) of the tables, created if missing; "" = the DSN's
  /// search_path (normally public). Letters, digits and _, starting with a letter or _.
  std::string schema;
  /// Several relays on the database: the shards this node holds (its lease keeper keeps them).
  /// Null: the store is alone and holds every shard, with no fencing (tests, migrate).
  std::shared_ptr<shard_ownership> ownership;
};

/// PostgreSQL's schema version this relay writes and reads (fr_meta.schema_version).
inline constexpr int postgres_schema_version = 3;
/// Logical shards, fixed when the schema is created.
inline constexpr int postgres_shards = 256;

/// Creates or migrates fetchrelay's tables in the database the DSN names (it never creates the
/// database), under an advisory lock so that nodes starting together migrate once. Returns the
/// schema version found before (0: the tables were created now). A schema newer than this relay
/// knows is refused.
result<int> migrate_postgres(const postgres_options& options);

/// Connects, migrates and opens the PostgreSQL store. Errors: invalid_argument for a malformed
/// DSN; unavailable when the server cannot be reached or refuses (its message, never the password).
result<std::unique_ptr<store>> open_postgres_store(const postgres_options& options);

/// A store file (log, table or manifest) LevelDB reports damaged, and what it says.
struct damaged_file {
  std::string name;     // e.g. "000005.log", relative to the store's folder
  std::string problem;  // e.g. "corruption: 32768 bytes; checksum mismatch"
};

/// Reads every log, table and manifest file of the store at `path` through LevelDB's own
/// readers and returns the damaged ones (the whole store is read: for error paths and repair).
std::vector<damaged_file> find_damaged_files(const std::string& path);

/// "000005.log (corruption: …); 000007.ldb (…)".
std::string describe_damage(const std::vector<damaged_file>& files);

struct repair_report {
  std::vector<damaged_file> damaged;    // what was found damaged before the repair
  std::int64_t entries_copied = 0;      // LevelDB entries that read with a good checksum
  std::string unreadable;               // non-empty: blocks that failed and were skipped (the first error)
  std::string old_store;                // where the store as it was is kept (<path>.before-repair)
  std::int64_t jobs = 0;                // job records kept
  std::array<std::int64_t, 7> by_status{};  // of those, by job_status value
  std::int64_t requests_lost = 0;       // unfinished jobs whose request was lost: now failed
  std::int64_t schedules = 0;           // schedule records kept
  std::int64_t records_dropped = 0;     // job or schedule records that no longer decode
  std::int64_t idempotency_keys_dropped = 0;  // keys whose job was lost (a retry is taken as new)
  bool format_marker_restored = false;  // meta/format was lost and written again
};

/// `fetchrelay repair`: holds the store's lock throughout (refused while a relay holds it), runs
/// LevelDB's RepairDB on a copy (logs to tables, a new manifest), copies every entry that reads
/// with a good checksum into a new database, rebuilds every index, count and the event sequence
/// there from the records, drops idempotency keys whose job was lost, and swaps it with the store
/// in one rename; the old folder is kept untouched as <path>.before-repair. Needs room for two
/// copies. A block skipped as damaged may have held a record's newest version, so an older one
/// (an earlier status of a job) can come back: at least once, as after a crash. Never run by the
/// relay on its own.
result<repair_report> repair_leveldb_store(const std::string& path);

}  // namespace fetchrelay::persistence
