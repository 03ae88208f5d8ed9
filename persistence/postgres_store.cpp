// PostgreSQL implementation of the store (storage.backend: postgres). SQL never leaves this
// file; libpq never leaves persistence/ (see pg.h).
//
// The tables hold the same records as the LevelDB key space (codec.h), in the same encodings:
// a job's snapshot, its request, attempts, schedules, topics, queues and events are the
// codec's bytes in a bytea column, beside the columns the indexes need. Every name (tenant,
// id, key) is bytea, so it is stored byte for byte and sorts as LevelDB sorts it (memcmp).
//
// A commit is one transaction of multi-row statements (unnest of binary arrays), whatever its
// size: one read of what the store holds for the jobs it changes, then one statement per
// table. A 202 still means "in a synced commit": synchronous_commit is on for a batch that asks
// for sync.
#include <algorithm>
#include <set>
#include <thread>
#include <cctype>
#include <map>
#include <unordered_map>

#include "core/ulid.h"
#include "persistence/cluster.h"
#include "persistence/pg.h"
#include "persistence/store.h"
#include "persistence/store_logic.h"

namespace fetchrelay::persistence {
namespace {

using pg::array;
using pg::oid;
using pg::params;

// -- schema ---------------------------------------------------------------------------------

/// Schema version 1. fr_shards and fr_nodes are for several relays on one database: which node
/// holds which shard's lease, and who is alive.
constexpr const char* schema_v1 = R"sql(
CREATE TABLE fr_jobs (
  id bytea PRIMARY KEY,
  tenant bytea NOT NULL,
  shard integer NOT NULL,
  version bigint NOT NULL DEFAULT 1,
  status smallint NOT NULL,
  run_at_ms bigint NOT NULL,
  finished_at_ms bigint NOT NULL,
  schedule_id bytea,
  queue bytea,
  topic bytea,
  queue_stage smallint,
  state bytea NOT NULL);
CREATE INDEX fr_jobs_by_tenant ON fr_jobs (tenant, id);
CREATE INDEX fr_jobs_by_status ON fr_jobs (tenant, status, id);
CREATE INDEX fr_jobs_finished ON fr_jobs (finished_at_ms) WHERE status >= 4;
CREATE INDEX fr_jobs_by_schedule ON fr_jobs (tenant, schedule_id, id) WHERE schedule_id IS NOT NULL;
CREATE INDEX fr_jobs_by_queue ON fr_jobs (tenant, queue, id) WHERE queue IS NOT NULL;
CREATE INDEX fr_jobs_by_topic ON fr_jobs (tenant, topic, id) WHERE topic IS NOT NULL;
CREATE INDEX fr_jobs_queue_open ON fr_jobs (tenant, queue, id) WHERE queue_stage IS NOT NULL;
CREATE TABLE fr_bodies (id bytea PRIMARY KEY, spec bytea NOT NULL);
CREATE TABLE fr_due (id bytea PRIMARY KEY, shard integer NOT NULL, due_ms bigint NOT NULL);
CREATE INDEX fr_due_order ON fr_due (due_ms, id);
CREATE TABLE fr_attempts (id bytea NOT NULL, n integer NOT NULL, record bytea NOT NULL, PRIMARY KEY (id, n));
CREATE TABLE fr_idempotency (tenant bytea NOT NULL, key bytea NOT NULL, record bytea NOT NULL,
  PRIMARY KEY (tenant, key));
CREATE TABLE fr_counters (tenant bytea NOT NULL, shard integer NOT NULL, status smallint NOT NULL,
  n bigint NOT NULL, PRIMARY KEY (tenant, shard, status));
CREATE TABLE fr_schedules (tenant bytea NOT NULL, id bytea NOT NULL, shard integer NOT NULL, due_ms bigint,
  state bytea NOT NULL, PRIMARY KEY (tenant, id));
CREATE INDEX fr_schedules_due ON fr_schedules (due_ms, tenant, id) WHERE due_ms IS NOT NULL;
CREATE TABLE fr_topics (tenant bytea NOT NULL, name bytea NOT NULL, state bytea NOT NULL, PRIMARY KEY (tenant, name));
CREATE TABLE fr_queues (tenant bytea NOT NULL, name bytea NOT NULL, shard integer NOT NULL, state bytea NOT NULL,
  PRIMARY KEY (tenant, name));
CREATE TABLE fr_signing_keys (tenant bytea PRIMARY KEY, current bytea NOT NULL, next bytea NOT NULL);
CREATE SEQUENCE fr_event_seq;
CREATE TABLE fr_events (tenant bytea NOT NULL, seq bigint NOT NULL, job_id bytea NOT NULL, at_ms bigint NOT NULL,
  record bytea NOT NULL, PRIMARY KEY (tenant, seq));
CREATE INDEX fr_events_by_job ON fr_events (tenant, job_id, seq);
CREATE INDEX fr_events_at ON fr_events (at_ms);
CREATE TABLE fr_shards (shard integer PRIMARY KEY, owner text, epoch bigint NOT NULL DEFAULT 0,
  lease_until timestamptz NOT NULL DEFAULT '-infinity');
CREATE TABLE fr_nodes (node_id text PRIMARY KEY, addr text NOT NULL, heartbeat_at timestamptz NOT NULL);
)sql";

/// Schema version 2: the token buckets the relays' rate limits share (scope: cluster), one row
/// per (plugin, origin, policy); a relay leases tokens from its row (tokens refill at the
/// policy's rate since updated_at, up to its burst). An idempotency key's job and expiry as
/// columns: the primary key decides which relay's submission a key becomes.
constexpr const char* schema_v2 = R"sql(
CREATE TABLE fr_buckets (key text PRIMARY KEY, tokens float8 NOT NULL, updated_at timestamptz NOT NULL,
  paused_until timestamptz NOT NULL DEFAULT '-infinity', granted bigint NOT NULL DEFAULT 0);
ALTER TABLE fr_idempotency ADD COLUMN job_id bytea, ADD COLUMN expires_ms bigint NOT NULL DEFAULT 0;
)sql";

/// Schema version 3, for speed (fewer index entries per job): a job's due time is a column of
/// its row with a partial index (no fr_due row to insert and delete per job); a tenant's listing
/// of every status merges the status index's runs (no index on (tenant, id) to maintain); the
/// retention purge's and the events' time indexes are BRINs (rows arrive roughly in time order,
/// and a purge needs pages, not an order).
constexpr const char* schema_v3 = R"sql(
ALTER TABLE fr_jobs ADD COLUMN due_ms bigint;
UPDATE fr_jobs j SET due_ms = d.due_ms FROM fr_due d WHERE d.id = j.id;
DROP TABLE fr_due;
CREATE INDEX fr_jobs_due ON fr_jobs (due_ms, id) INCLUDE (shard) WHERE due_ms IS NOT NULL;
DROP INDEX fr_jobs_by_tenant;
DROP INDEX fr_jobs_finished;
CREATE INDEX fr_jobs_finished ON fr_jobs USING brin (finished_at_ms) WHERE status >= 4;
DROP INDEX fr_events_at;
CREATE INDEX fr_events_at ON fr_events USING brin (at_ms);
)sql";

/// Serialises migrations of one database: nodes starting together migrate once.
constexpr const char* migrate_lock = "SELECT pg_advisory_xact_lock(7234014713683207545)";

bool valid_schema_name(const std::string& s) {
  if (s.empty() || s.size() > 63 || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::islower(static_cast<unsigned char>(c)) ||
                                                             std::isdigit(static_cast<unsigned char>(c)) || c == '_'; });
}

/// Points the connection at the schema (created under the migration lock if missing).
status use_schema(pg::connection& db, const std::string& schema) {
  if (schema.empty()) return status::ok();
  if (!valid_schema_name(schema)) {
    return invalid_argument("storage.postgres.schema \"" + schema +
                            "\" must be lower-case letters, digits and _, starting with a letter or _");
  }
  return db.run("SET search_path TO " + schema);
}

result<int> migrate(pg::connection& db, const std::string& schema) {
  pg::transaction tx(db);
  if (auto s = tx.begin(); !s) return s;
  if (auto s = db.run(migrate_lock); !s) return s;
  if (!schema.empty()) {
    if (auto s = db.run("CREATE SCHEMA IF NOT EXISTS " + schema); !s) return s;
  }
  if (auto s = db.run("CREATE TABLE IF NOT EXISTS fr_meta (key text PRIMARY KEY, value bigint NOT NULL)"); !s) {
    return s;
  }
  auto r = db.exec("SELECT value FROM fr_meta WHERE key = 'schema_version'");
  if (!r) return r.error();
  int found = r->count() ? static_cast<int>(r->int8(0, 0)) : 0;
  if (found > postgres_schema_version) {
    return status(status_code::failed_precondition, "the fetchrelay tables in " + db.describe() + " are at schema version " +
                               std::to_string(found) + ", newer than this relay reads (" +
                               std::to_string(postgres_schema_version) + "): run the newer relay");
  }
  if (found == 0) {
    if (auto s = db.run(schema_v1); !s) return s;
    auto meta = db.exec("INSERT INTO fr_meta VALUES ('schema_version', 1), ('shards', $1)",
                        params().int8(postgres_shards));
    if (!meta) return meta.error();
    auto shards = db.exec("INSERT INTO fr_shards (shard) SELECT generate_series(0, $1 - 1)",
                          params().int4(postgres_shards));
    if (!shards) return shards.error();
  }
  if (found < 2) {
    if (auto s = db.run(schema_v2); !s) return s;
  }
  if (found < 3) {
    if (auto s = db.run(schema_v3); !s) return s;
  }
  if (found < postgres_schema_version) {
    auto v = db.exec("UPDATE fr_meta SET value = $1 WHERE key = 'schema_version'", params().int8(postgres_schema_version));
    if (!v) return v.error();
  }
  if (auto s = tx.commit(); !s) return s;
  return found;
}

// -- helpers --------------------------------------------------------------------------------



/// A bytea array of names; "" stands for SQL NULL when `empty_is_null`.
void add_name(array& a, const std::string& s, bool empty_is_null = false) {
  if (empty_is_null && s.empty()) a.add_null();
  else a.add(std::string_view(s));
}

constexpr std::int16_t terminal_from = static_cast<std::int16_t>(job_status::delivered);  // 4, 5, 6

/// What the store holds for a job, as of this commit.
struct held_job {
  job_position pos;
  int shard = 0;
  queue_stage stage = queue_stage::none;
};

class postgres_store final : public store {
 public:
  explicit postgres_store(postgres_options o) : options_(std::move(o)) {}

  status open() {
    db_.reset();
    auto c = pg::connection::open(options_.dsn);
    if (!c) return c.error();
    db_ = std::move(c.value());
    location_ = "PostgreSQL " + db_->describe();
    if (auto s = db_->run(options_.sync ? "SET synchronous_commit = on" : "SET synchronous_commit = off"); !s) return s;
    if (auto s = use_schema(*db_, options_.schema); !s) return s;
    auto m = migrate(*db_, options_.schema);
    if (!m) return m.error();
    if (auto s = load_counts(); !s) return s;
    health_ = status::ok();
    return status::ok();
  }

  status health() const override { return health_; }
  const std::string& location() const override { return location_; }

  status_counters counters() const override {
    status_counters total{};
    for (const auto& [t, c] : counts_) {
      for (std::size_t i = 0; i < total.size(); ++i) total[i] += c[i];
    }
    return total;
  }

  std::map<std::string, std::int64_t> pending_by_tenant() const override {
    std::map<std::string, std::int64_t> out;
    for (const auto& [t, c] : counts_) {
      std::int64_t n = 0;
      for (std::size_t i = 0; i < c.size(); ++i) {
        if (i != 0 && !is_terminal(static_cast<job_status>(i))) n += c[i];
      }
      if (n > 0) out[t] = n;
    }
    return out;
  }

  std::uint64_t disk_usage_bytes() const override {
    if (!db_) return 0;
    auto r = db_->exec(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND c.relname LIKE 'fr\\_%' "
        "AND n.nspname = current_schema()");
    return r && r->count() ? static_cast<std::uint64_t>(r->int8(0, 0)) : 0;
  }

  status reopen() override {
    auto s = open();
    if (!s.is_ok()) health_ = unavailable(s.message());
    return s;
  }

  // -- commit -------------------------------------------------------------------------------

  status commit(std::span<const commit_batch> batches) override {
    for (int attempt = 1;; ++attempt) {
      failed_state_.clear();
      status s = commit_once(batches);
      // PostgreSQL chose this transaction as a deadlock's (or a serialization conflict's) victim:
      // it rolled back whole and the connection is fine, so it runs again (three times at most),
      // after a pause that lets the winner finish first (else the retry can take the same locks
      // in the same order again and close the same cycle).
      if (s.is_ok() || attempt == 3 || (failed_state_ != "40P01" && failed_state_ != "40001")) return s;
      health_ = status::ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(20 * attempt));
    }
  }

  status commit_once(std::span<const commit_batch> batches) {
    if (!health_.is_ok()) return health_;
    if (auto f = self_fenced(); !f) return f;
    bool sync = false;
    for (const auto& b : batches) sync = sync || b.sync;
    std::optional<pg::transaction> tx;
    if (auto s = begin_write(tx); !s) return fail(s);
    if (!sync || !options_.sync) {
      if (auto s = db_->run("SET LOCAL synchronous_commit = off"); !s) return fail(s);
    }
    std::set<std::string> left_out;  // jobs whose idempotency key another relay holds
    if (auto s = claim_keys(batches, left_out); !s) return fail(s);
    auto held = read_held(batches);
    if (!held) return fail(held.error());
    plan p;
    for (const auto& b : batches) {
      for (const auto& w : b.jobs) {
        if (!left_out.empty() && left_out.count(w.state.id)) continue;
        if (auto st = add_job(p, *held, w, b.at_ms); !st) return st;
      }
      for (const auto& w : b.schedules) p.schedules[{w.state.tenant, w.state.id}] = w;
      for (const auto& w : b.topics) p.topics[{w.state.tenant, w.state.name}] = w;
      for (const auto& w : b.queues) p.queues[{w.state.tenant, w.state.name}] = w;
      for (const auto& k : b.signing_keys) p.keys[k.tenant] = k;
    }
    if (auto f = fence(touched_shards(p)); !f) return f;
    if (auto s = write(p); !s) return fail(s);
    if (auto s = tx->commit(); !s) return fail(s);
    apply(p.counts, p.queue_delta);
    return status::ok();
  }

  /// Writes the batches' idempotency keys, first: the primary key decides between relays. A key
  /// is taken when it is new, or its row is expired, names the same job, or names a job that is
  /// gone; otherwise another relay's live key holds it: the job that came with it goes into
  /// `left_out` and the holder's record into the batch's lost_keys.
  status claim_keys(std::span<const commit_batch> batches, std::set<std::string>& left_out) {
    array t(oid::bytea), k(oid::bytea), rec(oid::bytea), job(oid::bytea), exp(oid::int8);
    std::int64_t now = 0;
    std::map<name_key, std::pair<const commit_batch*, std::string>> mine;  // key -> batch, our job
    std::map<name_key, const idem_record*> records;
    for (const auto& b : batches) {
      now = std::max(now, b.at_ms);
      if (b.lost_keys) b.lost_keys->clear();  // from an earlier try of this commit that failed
      for (const auto& i : b.idempotency) {
        if (!mine.emplace(name_key{i.tenant, i.key}, std::make_pair(&b, i.record.id)).second) continue;
        records[name_key{i.tenant, i.key}] = &i.record;
      }
    }
    if (mine.empty()) return status::ok();
    // In key order: two relays' commits then wait on each other's keys in one order, never both ways.
    for (const auto& [key, r] : records) {
      t.add(std::string_view(key.first));
      k.add(std::string_view(key.second));
      rec.add(std::string_view(encode(*r)));
      job.add(std::string_view(r->id));
      exp.add(r->expires_at_ms);
    }
    auto r = db_->exec(
        "INSERT INTO fr_idempotency AS i (tenant, key, record, job_id, expires_ms) SELECT * FROM unnest($1::bytea[], "
        "$2::bytea[], $3::bytea[], $4::bytea[], $5::int8[]) ON CONFLICT (tenant, key) DO UPDATE SET record = "
        "excluded.record, job_id = excluded.job_id, expires_ms = excluded.expires_ms WHERE i.job_id IS NULL OR "
        "i.job_id = excluded.job_id OR i.expires_ms <= $6 RETURNING tenant, key",
        params().arr(t).arr(k).arr(rec).arr(job).arr(exp).int8(now));
    if (!r) return r.error();
    if (static_cast<std::size_t>(r->count()) == mine.size()) return status::ok();
    for (int i = 0; i < r->count(); ++i) mine.erase(name_key{r->str(i, 0), r->str(i, 1)});
    // Held by another job. A statement of its own sees what committed meanwhile (the upsert's
    // snapshot may predate the holder's commit it waited for): a holder whose job is gone
    // (purged without its key) gives the key up.
    array lt(oid::bytea), lk(oid::bytea);
    for (const auto& [key, v] : mine) {
      lt.add(std::string_view(key.first));
      lk.add(std::string_view(key.second));
    }
    auto held = db_->exec_planned(
        "SELECT i.tenant, i.key, i.record, EXISTS (SELECT 1 FROM fr_jobs j WHERE j.id = i.job_id) FROM fr_idempotency i "
        "WHERE (i.tenant, i.key) IN (SELECT * FROM unnest($1::bytea[], $2::bytea[])) FOR UPDATE",
        params().arr(lt).arr(lk));
    if (!held) return held.error();
    for (int i = 0; i < held->count(); ++i) {
      auto it = mine.find(name_key{held->str(i, 0), held->str(i, 1)});
      if (it == mine.end()) continue;
      const commit_batch& b = *it->second.first;
      const idem_write* ours = nullptr;
      for (const auto& w : b.idempotency) {
        if (w.tenant == it->first.first && w.key == it->first.second) ours = &w;
      }
      if (!held->boolean(i, 3) && ours) {
        auto take = db_->exec("UPDATE fr_idempotency SET record = $3, job_id = $4, expires_ms = $5 WHERE tenant = $1 "
                              "AND key = $2",
                              params().bytea(ours->tenant).bytea(ours->key).bytea(encode(ours->record))
                                  .bytea(ours->record.id).int8(ours->record.expires_at_ms));
        if (!take) return take.error();
        continue;
      }
      left_out.insert(it->second.second);
      auto record = decode_idem(held->bytes(i, 2));
      if (!record) return record.error();
      if (b.lost_keys) b.lost_keys->push_back({it->first.first, it->first.second, std::move(*record)});
    }
    return status::ok();
  }

  // -- reads ----------------------------------------------------------------------------------

  result<std::optional<job_state>> get_job(const std::string& id) override {
    return one<job_state>("SELECT state FROM fr_jobs WHERE id = $1", params().bytea(id), decode_job_state);
  }

  result<std::optional<job_spec>> get_spec(const std::string& id) override {
    return one<job_spec>("SELECT spec FROM fr_bodies WHERE id = $1", params().bytea(id), decode_job_spec);
  }

  result<std::vector<attempt_record>> get_attempts(const std::string& id) override {
    auto r = query("SELECT record FROM fr_attempts WHERE id = $1 ORDER BY n", params().bytea(id));
    if (!r) return r.error();
    std::vector<attempt_record> out;
    for (int i = 0; i < r->count(); ++i) {
      auto a = decode_attempt(r->bytes(i, 0));
      if (!a) return a.error();
      out.push_back(std::move(*a));
    }
    return out;
  }

  result<std::optional<idem_record>> get_idem(const std::string& tenant, const std::string& key) override {
    return one<idem_record>("SELECT record FROM fr_idempotency WHERE tenant = $1 AND key = $2", params().bytea(tenant).bytea(key),
               decode_idem);
  }

  result<std::vector<due_entry>> scan_due(const std::optional<due_entry>& after, std::int64_t until_ms,
                                          std::size_t limit) override {
    params p;
    std::string sql;
    if (after) {
      p.int8(after->due_ms).bytea(after->id).int8(until_ms).int8(as_limit(limit));
      sql = "SELECT due_ms, id FROM fr_jobs WHERE (due_ms, id) > ($1, $2) AND due_ms <= $3" + shard_filter(p, 5) +
            " ORDER BY due_ms, id LIMIT $4";
    } else {
      p.int8(until_ms).int8(as_limit(limit));
      sql = "SELECT due_ms, id FROM fr_jobs WHERE due_ms <= $1" + shard_filter(p, 3) + " ORDER BY due_ms, id LIMIT $2";
    }
    auto r = query(sql, p);
    if (!r) return r.error();
    std::vector<due_entry> out;
    for (int i = 0; i < r->count(); ++i) out.push_back({r->int8(i, 0), r->str(i, 1)});
    return out;
  }

  result<job_page> list_jobs(const std::string& tenant, const job_filter& f, const std::string& cursor,
                             std::size_t limit) override {
    // Newest first, from just below the cursor (or the first id after `until`), reading the one
    // index the filter picks: a tag index, the status index, or all of the tenant's jobs.
    std::string upper = cursor.empty() ? std::string("\xff\xff", 2) : cursor;
    if (f.until_ms) upper = std::min(upper, "job_" + encode_ulid(*f.until_ms + 1, {}));
    std::string sql = "SELECT id, state FROM fr_jobs WHERE tenant = $1 AND id < $2";
    std::string extra;
    bool by_tag = true;
    if (!f.schedule.empty()) sql += " AND schedule_id = $4", extra = f.schedule;
    else if (!f.queue.empty()) sql += " AND queue = $4", extra = f.queue;
    else if (!f.topic.empty()) sql += " AND topic = $4", extra = f.topic;
    else by_tag = false;
    std::optional<std::int16_t> status;
    if (!by_tag && f.status) {
      sql += " AND status = $4";
      status = static_cast<std::int16_t>(*f.status);
    }
    sql += " ORDER BY id DESC LIMIT $3";
    if (!by_tag && !status) {
      // Every status: the newest of each status's run of the status index, merged.
      std::string all;
      for (int st = static_cast<int>(job_status::scheduled); st <= static_cast<int>(job_status::cancelled); ++st) {
        all += std::string(all.empty() ? "" : " UNION ALL ") + "(SELECT id, state FROM fr_jobs WHERE tenant = $1 AND " +
               "status = " + std::to_string(st) + " AND id < $2 ORDER BY id DESC LIMIT $3)";
      }
      sql = "SELECT id, state FROM (" + all + ") u ORDER BY id DESC LIMIT $3";
    }
    job_page page;
    std::size_t scanned = 0;
    std::string last;
    while (page.jobs.size() < limit && scanned < max_list_scan) {
      std::size_t chunk = std::min<std::size_t>(max_list_scan - scanned, std::max<std::size_t>(limit - page.jobs.size(), 64));
      params p;
      p.bytea(tenant).bytea(upper).int8(static_cast<std::int64_t>(chunk));
      if (by_tag) p.bytea(extra);
      else if (status) p.int2(*status);
      auto r = query(sql, p);
      if (!r) return r.error();
      for (int i = 0; i < r->count() && page.jobs.size() < limit; ++i) {
        std::string id = r->str(i, 0);
        ++scanned;
        last = upper = id;
        if (f.since_ms && job_id_time(id) < *f.since_ms) return page;  // every later id is older
        auto j = decode_job_state(r->bytes(i, 1));
        if (!j) return j.error();
        if (listing_passes(f, by_tag, *j)) page.jobs.push_back(std::move(*j));
      }
      if (static_cast<std::size_t>(r->count()) < chunk) break;  // the index ends here
    }
    if (page.jobs.size() == limit || scanned == max_list_scan) page.next_cursor = last;
    return page;
  }

  result<std::optional<schedule_state>> get_schedule(const std::string& tenant, const std::string& id) override {
    return one<schedule_state>("SELECT state FROM fr_schedules WHERE tenant = $1 AND id = $2", params().bytea(tenant).bytea(id),
               decode_schedule);
  }

  result<schedule_page> list_schedules(const std::string& tenant, const std::string& cursor, std::size_t limit) override {
    schedule_page page;
    auto s = list_named("fr_schedules", "id", tenant, cursor, limit, decode_schedule, page.schedules,
                        [](const schedule_state& x) { return x.id; }, page.next_cursor);
    if (!s) return s;
    return page;
  }

  result<std::vector<schedule_due>> scan_schedules_due(const std::optional<schedule_due>& after, std::int64_t until_ms,
                                                       std::size_t limit) override {
    params p;
    std::string sql;
    if (after) {
      p.int8(after->due_ms).bytea(after->tenant).bytea(after->id).int8(until_ms).int8(as_limit(limit));
      sql = "SELECT due_ms, tenant, id FROM fr_schedules WHERE due_ms IS NOT NULL AND "
            "(due_ms, tenant, id) > ($1, $2, $3) AND due_ms <= $4" + shard_filter(p, 6) +
            " ORDER BY due_ms, tenant, id LIMIT $5";
    } else {
      p.int8(until_ms).int8(as_limit(limit));
      sql = "SELECT due_ms, tenant, id FROM fr_schedules WHERE due_ms IS NOT NULL AND due_ms <= $1" + shard_filter(p, 3) +
            " ORDER BY due_ms, tenant, id LIMIT $2";
    }
    auto r = query(sql, p);
    if (!r) return r.error();
    std::vector<schedule_due> out;
    for (int i = 0; i < r->count(); ++i) out.push_back({r->int8(i, 0), r->str(i, 1), r->str(i, 2)});
    return out;
  }

  result<std::vector<signing_key_write>> signing_keys() override {
    auto r = query("SELECT tenant, current, next FROM fr_signing_keys ORDER BY tenant");
    if (!r) return r.error();
    std::vector<signing_key_write> out;
    for (int i = 0; i < r->count(); ++i) out.push_back({r->str(i, 0), r->str(i, 1), r->str(i, 2)});
    return out;
  }

  result<std::optional<topic_state>> get_topic(const std::string& tenant, const std::string& name) override {
    return one<topic_state>("SELECT state FROM fr_topics WHERE tenant = $1 AND name = $2", params().bytea(tenant).bytea(name),
               decode_topic);
  }

  result<topic_page> list_topics(const std::string& tenant, const std::string& cursor, std::size_t limit) override {
    topic_page page;
    auto s = list_named("fr_topics", "name", tenant, cursor, limit, decode_topic, page.topics,
                        [](const topic_state& x) { return x.name; }, page.next_cursor);
    if (!s) return s;
    return page;
  }

  result<std::optional<queue_state>> get_queue(const std::string& tenant, const std::string& name) override {
    return one<queue_state>("SELECT state FROM fr_queues WHERE tenant = $1 AND name = $2", params().bytea(tenant).bytea(name),
               decode_queue);
  }

  result<queue_page> list_queues(const std::string& tenant, const std::string& cursor, std::size_t limit) override {
    queue_page page;
    auto s = list_named("fr_queues", "name", tenant, cursor, limit, decode_queue, page.queues,
                        [](const queue_state& x) { return x.name; }, page.next_cursor);
    if (!s) return s;
    return page;
  }

  result<std::vector<queue_entry>> queue_jobs(const std::string& tenant, const std::string& name,
                                              const std::string& after, std::size_t limit) override {
    auto r = query("SELECT id, queue_stage FROM fr_jobs WHERE tenant = $1 AND queue = $2 AND queue_stage IS NOT NULL "
                   "AND id > $3 ORDER BY id LIMIT $4",
                   params().bytea(tenant).bytea(name).bytea(after).int8(as_limit(limit)));
    if (!r) return r.error();
    std::vector<queue_entry> out;
    for (int i = 0; i < r->count(); ++i) out.push_back({r->str(i, 0), static_cast<queue_stage>(r->int2(i, 1))});
    return out;
  }

  std::vector<std::pair<std::string, std::string>> active_queues() const override {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [k, n] : qcounts_) out.push_back(k);
    return out;
  }

  queue_counts queue_count(const std::string& tenant, const std::string& name) const override {
    auto it = qcounts_.find({tenant, name});
    return it == qcounts_.end() ? queue_counts{} : it->second;
  }

  result<event_page> list_events(const std::string& tenant, const event_filter& f, const std::string& cursor,
                                 std::size_t limit) override {
    std::optional<std::uint64_t> after;
    if (!cursor.empty()) {
      after = parse_event_id(cursor);
      if (!after) return invalid_argument("cursor must be an event id");
    }
    bool by_job = !f.job_id.empty();
    // Newest first from below the cursor (descending, or the newest page), else oldest first
    // from above it.
    bool backwards = f.descending || !after;
    std::string sql = std::string("SELECT seq, record FROM fr_events WHERE tenant = $1 AND seq ") +
                      (backwards ? "<" : ">") + " $2" + (by_job ? " AND job_id = $4" : "") + " ORDER BY seq " +
                      (backwards ? "DESC" : "ASC") + " LIMIT $3";
    std::int64_t bound = after ? static_cast<std::int64_t>(*after) : (backwards ? INT64_MAX : 0);
    event_page page;
    std::size_t scanned = 0;
    std::string last;
    while (page.events.size() < limit && scanned < max_list_scan) {
      std::size_t want = f.type ? 512 : limit - page.events.size();
      std::size_t chunk = std::min<std::size_t>(max_list_scan - scanned, want);
      params p;
      p.bytea(tenant).int8(bound).int8(static_cast<std::int64_t>(chunk));
      if (by_job) p.bytea(f.job_id);
      auto r = query(sql, p);
      if (!r) return r.error();
      for (int i = 0; i < r->count() && page.events.size() < limit; ++i) {
        auto seq = static_cast<std::uint64_t>(r->int8(i, 0));
        ++scanned;
        bound = static_cast<std::int64_t>(seq);
        last = event_id(seq);
        auto e = decode_event(r->bytes(i, 1), seq);
        if (!e) return e.error();
        if (!f.type || e->type == *f.type) page.events.push_back(std::move(*e));
      }
      if (static_cast<std::size_t>(r->count()) < chunk) break;
    }
    if (!f.descending && !after) {
      std::reverse(page.events.begin(), page.events.end());  // the newest `limit`, in order
    } else if (page.events.size() == limit || scanned == max_list_scan) {
      page.next_cursor = last;
    }
    return page;
  }

  // -- deletes --------------------------------------------------------------------------------

  result<std::size_t> purge_events(std::int64_t before_ms, std::size_t limit) override {
    if (!health_.is_ok()) return health_;
    auto r = query("DELETE FROM fr_events WHERE (tenant, seq) IN (SELECT tenant, seq FROM fr_events "
                   "WHERE at_ms <= $1 LIMIT $2) RETURNING seq",
                   params().int8(before_ms).int8(as_limit(limit)));
    if (!r) return r.error();
    return static_cast<std::size_t>(r->count());
  }

  result<std::size_t> purge_finished(std::int64_t finished_before_ms, std::size_t limit) override {
    if (!health_.is_ok()) return health_;
    // The literal 4 (terminal_from), not a parameter: it is what lets a plan use the partial index.
    auto r = query("SELECT state FROM fr_jobs WHERE status >= 4 AND finished_at_ms <= $1 LIMIT $2",
                   params().int8(finished_before_ms).int8(as_limit(limit)));
    if (!r) return r.error();
    std::vector<job_state> jobs;
    for (int i = 0; i < r->count(); ++i) {
      auto j = decode_job_state(r->bytes(i, 0));
      if (!j) return j.error();
      jobs.push_back(std::move(*j));
    }
    return purge(jobs, false);
  }

  result<purge_page> purge_jobs(const std::string& tenant, const job_filter& filter, const std::string& cursor) override {
    if (!health_.is_ok()) return health_;
    auto page = purge_selection(*this, tenant, filter, cursor);
    if (!page) return page.error();
    std::vector<job_state> finished;
    for (auto& j : page->jobs) {
      if (is_terminal(j.status)) finished.push_back(std::move(j));
    }
    auto n = purge(finished, true);
    if (!n) return n.error();
    return purge_page{*n, page->next_cursor};
  }

 private:
  using name_key = std::pair<std::string, std::string>;  // (tenant, name)

  /// Everything one commit writes, worked out before the first statement.
  struct plan {
    std::unordered_map<std::string, held_job> written;  // the jobs as of this commit so far
    struct job_row {
      const job_state* state = nullptr;  // the last one this commit writes
      int shard = 0;
      bool due = false;     // in the due index (at state->run_at_ms)
      bool stored = false;  // the row exists: an update, not an insert
    };
    std::map<std::string, job_row> jobs;
    std::vector<std::pair<const job_state*, const job_spec*>> bodies;
    std::map<std::pair<std::string, std::uint32_t>, std::string> attempts;
    std::map<std::tuple<std::string, int, int>, std::int64_t> counts;       // (tenant, shard, status) -> delta
    std::map<name_key, queue_counts> queue_delta;
    struct event {
      std::string tenant, job_id;
      std::int64_t at_ms;
      event_record record;
    };
    std::vector<event> events;
    std::map<name_key, schedule_write> schedules;
    std::map<name_key, topic_write> topics;
    std::map<name_key, queue_write> queues;
    std::map<std::string, signing_key_write> keys;
  };

  /// What the store holds for every job the batches change without a request: one read.
  result<std::unordered_map<std::string, held_job>> read_held(std::span<const commit_batch> batches) {
    array ids(oid::bytea);
    for (const auto& b : batches) {
      for (const auto& w : b.jobs) {
        if (!w.spec) ids.add(std::string_view(w.state.id));
      }
    }
    std::unordered_map<std::string, held_job> out;
    if (ids.size() == 0) return out;
    auto r = db_->exec_planned("SELECT id, status, run_at_ms, shard, queue_stage FROM fr_jobs WHERE id = ANY($1::bytea[])",
                       params().arr(ids));
    if (!r) return r.error();
    for (int i = 0; i < r->count(); ++i) {
      held_job h;
      h.pos = {static_cast<job_status>(r->int2(i, 1)), r->int8(i, 2)};
      h.shard = r->int4(i, 3);
      h.stage = r->is_null(i, 4) ? queue_stage::none : static_cast<queue_stage>(r->int2(i, 4));
      out.emplace(r->str(i, 0), h);
    }
    return out;
  }

  /// The index moves, counter changes and event of one job write, as the LevelDB store makes them.
  status add_job(plan& p, const std::unordered_map<std::string, held_job>& held, const job_write& w, std::int64_t at_ms) {
    const job_state& s = w.state;
    std::optional<held_job> h;
    if (auto it = p.written.find(s.id); it != p.written.end()) h = it->second;
    else if (auto it = held.find(s.id); !w.spec && it != held.end()) h = it->second;
    std::optional<job_position> old = h ? std::optional<job_position>(h->pos) : std::nullopt;
    // A new job's shard: the one its id carries (several relays), else the next of the store's.
    int shard = h ? h->shard : options_.ownership && job_shard(s.id) >= 0 ? job_shard(s.id) : next_shard();
    if (shard < 0) return status(status_code::failed_precondition, "no_shards: this node holds no shard for a new job");
    queue_stage old_stage = h && !s.queue.empty() ? h->stage : queue_stage::none;
    index_move m = plan_move(s, old, old_stage);
    if (old_stage != m.new_stage) count_stage_move(p.queue_delta[{s.tenant, s.queue}], old_stage, m.new_stage);
    if (m.status_changed) {
      if (old) --p.counts[{s.tenant, shard, static_cast<int>(old->status)}];
      ++p.counts[{s.tenant, shard, static_cast<int>(s.status)}];
    }
    p.written[s.id] = held_job{{s.status, s.run_at_ms}, shard, m.new_stage};
    auto& row = p.jobs[s.id];
    row = {&s, shard, m.new_due, row.stored || (!w.spec && held.count(s.id) > 0)};
    if (w.spec) p.bodies.emplace_back(&s, &*w.spec);
    if (w.attempt) p.attempts[{s.id, w.attempt->n}] = encode(*w.attempt);
    if (auto type = event_of(w, old)) p.events.push_back({s.tenant, s.id, at_ms, make_event(*type, w, at_ms)});
    return status::ok();
  }

  // -- fencing (several relays on the database) ------------------------------------------------

  /// Refuses every write once the node may have lost its leases (cluster.h).
  status self_fenced() const {
    if (!options_.ownership || !options_.ownership->fenced()) return status::ok();
    return status(status_code::failed_precondition,
                  "fenced: this node's shard leases were not confirmed in time (or it holds none); nothing was written");
  }

  /// The shards a commit writes: its jobs', and the schedules' and queues' own.
  static std::vector<int> touched_shards(const plan& p) {
    std::vector<int> out;
    for (const auto& [id, row] : p.jobs) out.push_back(row.shard);
    for (const auto& [k, w] : p.schedules) out.push_back(named_shard(k.first, k.second));
    for (const auto& [k, w] : p.queues) out.push_back(named_shard(k.first, k.second));
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  /// Inside the write's transaction: the epochs of the shards it touches, read FOR SHARE (a
  /// takeover's epoch bump waits for this transaction, or this one sees the bump), must be the
  /// ones this node holds; else nothing is written.
  status fence(const std::vector<int>& shards) {
    if (!options_.ownership || shards.empty()) return status::ok();
    auto owned = options_.ownership->owned();
    array a(oid::int4);
    for (int sh : shards) a.add_int4(sh);
    auto r = db_->exec("SELECT shard, epoch FROM fr_shards WHERE shard = ANY($1::int4[]) ORDER BY shard FOR SHARE", params().arr(a));
    if (!r) return fail(r.error());
    std::map<int, std::int64_t> now;
    for (int i = 0; i < r->count(); ++i) now[r->int4(i, 0)] = r->int8(i, 1);
    for (int sh : shards) {
      auto mine = owned.find(sh);
      auto cur = now.find(sh);
      if (mine == owned.end() || cur == now.end() || cur->second != mine->second) {
        return status(status_code::failed_precondition,
                      "fenced: shard " + std::to_string(sh) +
                          (mine == owned.end() ? " is not held by this node"
                                               : " moved to another node (epoch " + std::to_string(mine->second) +
                                                     " is now " + (cur == now.end() ? "gone" : std::to_string(cur->second)) + ")") +
                          "; nothing was written");
      }
    }
    return status::ok();
  }

  /// "AND shard = ANY(...)" with the node's shards as parameter `n`, or "" when alone.
  std::string shard_filter(params& p, int n) const {
    if (!options_.ownership) return "";
    array a(oid::int4);
    for (int sh : options_.ownership->shards()) a.add_int4(sh);
    p.arr(a);
    return " AND shard = ANY($" + std::to_string(n) + "::int4[])";
  }

  /// Every write of the plan in one round trip (a pipeline): none of them reads an answer.
  status write(plan& p) {
    if (auto s = db_->begin_pipeline(); !s) return s;
    status s = write_all(p);
    status e = db_->end_pipeline();
    return s.is_ok() ? e : s;
  }

  status write_all(plan& p) {
    if (auto s = write_jobs(p, false); !s) return s;
    if (auto s = write_jobs(p, true); !s) return s;
    if (!p.bodies.empty()) {
      std::map<std::string, std::string> last;  // one row per id
      for (const auto& [s, spec] : p.bodies) last[s->id] = encode(*spec);
      if (auto s = upsert_pairs("INSERT INTO fr_bodies (id, spec) SELECT * FROM unnest($1::bytea[], $2::bytea[]) "
                                "ON CONFLICT (id) DO UPDATE SET spec = excluded.spec",
                                last);
          !s) {
        return s;
      }
    }
    if (!p.attempts.empty()) {
      array id(oid::bytea), n(oid::int4), rec(oid::bytea);
      for (const auto& [k, v] : p.attempts) {
        id.add(std::string_view(k.first));
        n.add_int4(static_cast<std::int32_t>(k.second));
        rec.add(std::string_view(v));
      }
      auto r = db_->exec("INSERT INTO fr_attempts (id, n, record) SELECT * FROM unnest($1::bytea[], $2::int4[], "
                         "$3::bytea[]) ON CONFLICT (id, n) DO UPDATE SET record = excluded.record",
                         params().arr(id).arr(n).arr(rec));
      if (!r) return r.error();
    }
    if (auto s = write_counts(p.counts); !s) return s;
    if (auto s = write_events(p); !s) return s;
    if (auto s = write_named(p.schedules, "fr_schedules", "id", true); !s) return s;
    if (auto s = write_named(p.topics, "fr_topics", "name", false); !s) return s;
    if (auto s = write_named(p.queues, "fr_queues", "name", false); !s) return s;
    for (const auto& [t, k] : p.keys) {
      auto r = db_->exec("INSERT INTO fr_signing_keys (tenant, current, next) VALUES ($1, $2, $3) "
                         "ON CONFLICT (tenant) DO UPDATE SET current = excluded.current, next = excluded.next",
                         params().bytea(t).bytea(k.current).bytea(k.next));
      if (!r) return r.error();
    }
    return status::ok();
  }

  status upsert_pairs(const std::string& sql, const std::map<std::string, std::string>& rows) {
    array a(oid::bytea), b(oid::bytea);
    for (const auto& [k, v] : rows) {
      a.add(std::string_view(k));
      b.add(std::string_view(v));
    }
    auto r = db_->exec(sql, params().arr(a).arr(b));
    return r ? status::ok() : r.error();
  }

  /// The job rows of the plan that are new (`stored` false: one insert, which also takes a row
  /// that is there after all) or stored (one update by primary key: no insert attempt, no
  /// conflict lock).
  status write_jobs(const plan& p, bool stored) {
    array id(oid::bytea), tenant(oid::bytea), shard(oid::int4), st(oid::int2), run(oid::int8), fin(oid::int8),
        sched(oid::bytea), queue(oid::bytea), topic(oid::bytea), stage(oid::int2), state(oid::bytea), due(oid::int8);
    for (const auto& [key, row] : p.jobs) {
      if (row.stored != stored) continue;
      const job_state& s = *row.state;
      id.add(std::string_view(s.id));
      tenant.add(std::string_view(s.tenant));
      shard.add_int4(row.shard);
      st.add_int2(static_cast<std::int16_t>(s.status));
      run.add(s.run_at_ms);
      fin.add(s.finished_at_ms);
      add_name(sched, s.schedule_id, true);
      add_name(queue, s.queue, true);
      add_name(topic, s.topic, true);
      auto qs = p.written.at(s.id).stage;
      if (qs == queue_stage::none) stage.add_null();
      else stage.add_int2(static_cast<std::int16_t>(qs));
      state.add(std::string_view(encode(s)));
      if (row.due) due.add(s.run_at_ms);
      else due.add_null();
    }
    if (id.size() == 0) return status::ok();
    auto args = params().arr(id).arr(tenant).arr(shard).arr(st).arr(run).arr(fin).arr(sched).arr(queue).arr(topic).arr(
        stage).arr(state).arr(due);
    constexpr const char* rows =
        "unnest($1::bytea[], $2::bytea[], $3::int4[], $4::int2[], $5::int8[], $6::int8[], $7::bytea[], $8::bytea[], "
        "$9::bytea[], $10::int2[], $11::bytea[], $12::int8[])";
    if (stored) {
      auto r = db_->exec_planned(
          std::string("UPDATE fr_jobs j SET status = u.status, run_at_ms = u.run_at_ms, finished_at_ms = u.fin, "
                      "schedule_id = u.sched, queue = u.queue, topic = u.topic, queue_stage = u.stage, state = u.state, "
                      "due_ms = u.due, version = j.version + 1 FROM ") +
              rows + " AS u(id, tenant, shard, status, run_at_ms, fin, sched, queue, topic, stage, state, due) "
                     "WHERE j.id = u.id",
          args);
      return r ? status::ok() : r.error();
    }
    auto r = db_->exec(
        std::string("INSERT INTO fr_jobs (id, tenant, shard, status, run_at_ms, finished_at_ms, schedule_id, queue, "
                    "topic, queue_stage, state, due_ms) SELECT * FROM ") +
            rows +
            " ON CONFLICT (id) DO UPDATE SET status = excluded.status, run_at_ms = excluded.run_at_ms, "
            "finished_at_ms = excluded.finished_at_ms, schedule_id = excluded.schedule_id, queue = excluded.queue, "
            "topic = excluded.topic, queue_stage = excluded.queue_stage, state = excluded.state, "
            "due_ms = excluded.due_ms, version = fr_jobs.version + 1",
        args);
    return r ? status::ok() : r.error();
  }

  status write_counts(const std::map<std::tuple<std::string, int, int>, std::int64_t>& counts) {
    array t(oid::bytea), shard(oid::int4), st(oid::int2), n(oid::int8);
    for (const auto& [k, d] : counts) {
      if (d == 0) continue;
      t.add(std::string_view(std::get<0>(k)));
      shard.add_int4(std::get<1>(k));
      st.add_int2(static_cast<std::int16_t>(std::get<2>(k)));
      n.add(d);
    }
    if (t.size() == 0) return status::ok();
    auto r = db_->exec("INSERT INTO fr_counters (tenant, shard, status, n) SELECT * FROM unnest($1::bytea[], "
                       "$2::int4[], $3::int2[], $4::int8[]) ON CONFLICT (tenant, shard, status) "
                       "DO UPDATE SET n = fr_counters.n + excluded.n",
                       params().arr(t).arr(shard).arr(st).arr(n));
    return r ? status::ok() : r.error();
  }

  status write_events(const plan& p) {
    if (p.events.empty()) return status::ok();
    // Numbered by the sequence in the statement itself, in the plan's order (unnest's).
    array t(oid::bytea), job(oid::bytea), at(oid::int8), rec(oid::bytea);
    for (const auto& e : p.events) {
      t.add(std::string_view(e.tenant));
      job.add(std::string_view(e.job_id));
      at.add(e.at_ms);
      rec.add(std::string_view(encode(e.record)));
    }
    auto r = db_->exec("INSERT INTO fr_events (tenant, seq, job_id, at_ms, record) SELECT t, nextval('fr_event_seq'), "
                       "j, a, r FROM unnest($1::bytea[], $2::bytea[], $3::int8[], $4::bytea[]) AS u(t, j, a, r)",
                       params().arr(t).arr(job).arr(at).arr(rec));
    return r ? status::ok() : r.error();
  }

  /// Upserts or deletes schedules, topics or queues: the last write of each name counts.
  template <class W>
  status write_named(const std::map<name_key, W>& writes, const std::string& table, const std::string& name_col,
                     bool has_due) {
    if (writes.empty()) return status::ok();
    bool has_shard = table != "fr_topics";
    array dt(oid::bytea), dn(oid::bytea), t(oid::bytea), n(oid::bytea), shard(oid::int4), due(oid::int8),
        state(oid::bytea);
    for (const auto& [k, w] : writes) {
      if (w.erase) {
        dt.add(std::string_view(k.first));
        dn.add(std::string_view(k.second));
        continue;
      }
      t.add(std::string_view(k.first));
      n.add(std::string_view(k.second));
      shard.add_int4(named_shard(k.first, k.second));
      if constexpr (std::is_same_v<W, schedule_write>) {
        if (schedule_is_due_indexed(w.state)) due.add(w.state.next_run_at_ms);
        else due.add_null();
      }
      state.add(std::string_view(encode(w.state)));
    }
    if (dt.size()) {
      auto r = db_->exec("DELETE FROM " + table + " WHERE (tenant, " + name_col +
                             ") IN (SELECT * FROM unnest($1::bytea[], $2::bytea[]))",
                         params().arr(dt).arr(dn));
      if (!r) return r.error();
    }
    if (t.size() == 0) return status::ok();
    std::string cols = "tenant, " + name_col + (has_shard ? ", shard" : "") + (has_due ? ", due_ms" : "") + ", state";
    std::string types = std::string("$1::bytea[], $2::bytea[]") + (has_shard ? ", $3::int4[]" : "") +
                        (has_due ? ", $4::int8[]" : "") + (has_due ? ", $5::bytea[]" : has_shard ? ", $4::bytea[]" : ", $3::bytea[]");
    std::string set = std::string("state = excluded.state") + (has_due ? ", due_ms = excluded.due_ms" : "");
    params p;
    p.arr(t).arr(n);
    if (has_shard) p.arr(shard);
    if (has_due) p.arr(due);
    p.arr(state);
    auto r = db_->exec("INSERT INTO " + table + " (" + cols + ") SELECT * FROM unnest(" + types +
                           ") ON CONFLICT (tenant, " + name_col + ") DO UPDATE SET " + set,
                       p);
    return r ? status::ok() : r.error();
  }

  /// Deletes finished jobs with everything they own, in one transaction; the counters follow
  /// the rows actually deleted.
  result<std::size_t> purge(const std::vector<job_state>& jobs, bool sync) {
    if (jobs.empty()) return std::size_t{0};
    array ids(oid::bytea), it(oid::bytea), ik(oid::bytea);
    for (const auto& j : jobs) {
      ids.add(std::string_view(j.id));
      if (!j.idempotency_key.empty()) {
        it.add(std::string_view(j.tenant));
        ik.add(std::string_view(j.idempotency_key));
      }
    }
    if (auto f = self_fenced(); !f) return f;
    std::optional<pg::transaction> tx;
    if (auto s = begin_write(tx); !s) return fail(s);
    if (!sync || !options_.sync) {
      if (auto s = db_->run("SET LOCAL synchronous_commit = off"); !s) return fail(s);
    }
    // Only finished jobs (one run again meanwhile stays), and only of this node's shards, under
    // their fence.
    std::vector<int> mine = options_.ownership ? options_.ownership->shards() : std::vector<int>{};
    if (auto f = fence(mine); !f) return f;
    params del;
    del.arr(ids).int2(terminal_from);
    std::string only_mine = shard_filter(del, 3);
    auto gone = db_->exec_planned("DELETE FROM fr_jobs WHERE id = ANY($1::bytea[]) AND status >= $2" + only_mine +
                              " RETURNING id, tenant, shard, status",
                          del);
    if (!gone) return fail(gone.error());
    array deleted(oid::bytea);
    std::map<std::tuple<std::string, int, int>, std::int64_t> counts;
    for (int i = 0; i < gone->count(); ++i) {
      deleted.add(gone->bytes(i, 0));
      --counts[{gone->str(i, 1), gone->int4(i, 2), gone->int2(i, 3)}];
    }
    for (const char* sql : {"DELETE FROM fr_bodies WHERE id = ANY($1::bytea[])",
                            "DELETE FROM fr_attempts WHERE id = ANY($1::bytea[])"}) {
      auto r = db_->exec_planned(sql, params().arr(deleted));
      if (!r) return fail(r.error());
    }
    if (it.size()) {
      auto r = db_->exec_planned("DELETE FROM fr_idempotency WHERE (tenant, key) IN (SELECT * FROM unnest($1::bytea[], "
                         "$2::bytea[]))",
                         params().arr(it).arr(ik));
      if (!r) return fail(r.error());
    }
    if (auto s = write_counts(counts); !s) return fail(s);
    if (auto s = tx->commit(); !s) return fail(s);
    apply(counts, {});
    return static_cast<std::size_t>(gone->count());
  }

  // -- caches -----------------------------------------------------------------------------------

  status load_counts() {
    counts_.clear();
    qcounts_.clear();
    auto c = db_->exec("SELECT tenant, status, sum(n)::int8 FROM fr_counters GROUP BY tenant, status");
    if (!c) return c.error();
    for (int i = 0; i < c->count(); ++i) {
      auto st = static_cast<std::size_t>(c->int2(i, 1));
      if (st < status_counters{}.size()) counts_[c->str(i, 0)][st] = c->int8(i, 2);
    }
    auto q = db_->exec("SELECT tenant, queue, queue_stage, count(*) FROM fr_jobs WHERE queue_stage IS NOT NULL "
                       "GROUP BY tenant, queue, queue_stage");
    if (!q) return q.error();
    for (int i = 0; i < q->count(); ++i) {
      count_stage_move_n(qcounts_[{q->str(i, 0), q->str(i, 1)}], static_cast<queue_stage>(q->int2(i, 2)), q->int8(i, 3));
    }
    return status::ok();
  }

  static void count_stage_move_n(queue_counts& c, queue_stage stage, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) count_stage_move(c, queue_stage::none, stage);
  }

  void apply(const std::map<std::tuple<std::string, int, int>, std::int64_t>& counts,
             const std::map<name_key, queue_counts>& queues) {
    for (const auto& [k, d] : counts) counts_[std::get<0>(k)][static_cast<std::size_t>(std::get<2>(k))] += d;
    for (const auto& [k, d] : queues) {
      queue_counts& n = qcounts_[k];
      n.waiting += d.waiting;
      n.started += d.started;
      if (n.waiting <= 0 && n.started <= 0) qcounts_.erase(k);
    }
  }

  // -- plumbing -----------------------------------------------------------------------------------

  int next_shard() {
    if (options_.ownership) return options_.ownership->next_shard();
    int s = next_shard_;
    next_shard_ = (next_shard_ + 1) % postgres_shards;
    return s;
  }

  static std::int64_t as_limit(std::size_t n) {
    return static_cast<std::int64_t>(std::min<std::size_t>(n, static_cast<std::size_t>(INT64_MAX)));
  }

  /// BEGIN, on a new connection if the database restarted since the last statement (the old
  /// one reports broken only once used): nothing was sent yet, so the write goes on instead of
  /// failing once after every database restart.
  status begin_write(std::optional<pg::transaction>& tx) {
    tx.emplace(*db_);
    auto s = tx->begin();
    if (s.is_ok() || !db_->broken()) return s;
    tx.reset();
    if (!open().is_ok()) return s;
    tx.emplace(*db_);
    return tx->begin();
  }

  /// A failed write: nothing of it landed (the transaction rolls back). The store answers
  /// unavailable until reopen() connects again.
  status fail(const status& s) {
    // Kept now: the transaction's rollback (as it goes out of scope) runs a statement of its own.
    failed_state_ = db_ ? db_->last_sqlstate() : std::string();
    health_ = unavailable(location_ + " failed a write: " + s.message());
    return health_;
  }

  /// A read outside any transaction. On a connection the database dropped (a restart) it
  /// connects again once and reads again: reads are safe to repeat.
  result<pg::rows> query(const std::string& sql, const params& p = {}) {
    if (db_) {
      auto r = db_->exec(sql, p);
      if (r || !db_->broken()) return r;
    }
    // No connection, or the database dropped it: connect again (once per read) and read again.
    if (auto s = open(); !s) {
      health_ = unavailable(location_ + ": connection lost: " + s.message());
      return health_;
    }
    auto r = db_->exec(sql, p);
    if (!r && db_->broken()) health_ = unavailable(location_ + ": connection lost: " + r.error().message());
    return r;
  }

  template <class T, class Decode>
  result<std::optional<T>> one(const std::string& sql, const params& p, Decode decode) {
    auto r = query(sql, p);
    if (!r) return r.error();
    if (r->count() == 0) return std::optional<T>();
    auto d = decode(r->bytes(0, 0));
    if (!d) return d.error();
    return std::optional<T>(std::move(*d));
  }

  /// A page of a tenant's schedules, topics or queues after the name `cursor`, in name order.
  template <class T, class Decode, class Name>
  status list_named(const std::string& table, const std::string& name_col, const std::string& tenant,
                    const std::string& cursor, std::size_t limit, Decode decode, std::vector<T>& out, Name name,
                    std::string& next_cursor) {
    auto r = query("SELECT state FROM " + table + " WHERE tenant = $1 AND " + name_col + " > $2 ORDER BY " + name_col +
                       " LIMIT $3",
                   params().bytea(tenant).bytea(cursor).int8(as_limit(limit)));
    if (!r) return r.error();
    for (int i = 0; i < r->count(); ++i) {
      auto d = decode(r->bytes(i, 0));
      if (!d) return d.error();
      out.push_back(std::move(*d));
    }
    if (out.size() == limit) next_cursor = name(out.back());
    return status::ok();
  }

  postgres_options options_;
  std::unique_ptr<pg::connection> db_;
  std::string location_ = "PostgreSQL";
  status health_ = unavailable("not open");
  std::string failed_state_;  // the SQLSTATE of the last failed write ("" if it had none)
  std::map<std::string, status_counters> counts_;  // jobs by tenant and status, summed over shards
  std::map<name_key, queue_counts> qcounts_;       // unfinished jobs per queue
  int next_shard_ = 0;
};

}  // namespace

result<int> migrate_postgres(const postgres_options& options) {
  auto c = pg::connection::open(options.dsn);
  if (!c) return c.error();
  if (auto s = use_schema(**c, options.schema); !s) return s;
  return migrate(**c, options.schema);
}

result<std::unique_ptr<store>> open_postgres_store(const postgres_options& options) {
  auto s = std::make_unique<postgres_store>(options);
  if (auto st = s->open(); !st) return st;
  return std::unique_ptr<store>(std::move(s));
}

}  // namespace fetchrelay::persistence
