// LevelDB implementation of the store. LevelDB types never leave this folder.
// The key space and value formats are in codec.h.
#include <leveldb/db.h>
#include <leveldb/env.h>
#include <leveldb/write_batch.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <unordered_map>

#include "persistence/store.h"
#include "persistence/store_logic.h"

#include <spdlog/spdlog.h>

#include "core/ulid.h"

namespace fetchrelay::persistence {
namespace {

// -- fault injection: an Env whose writable files fail while the injector says so --------------

class faulty_file final : public leveldb::WritableFile {
 public:
  faulty_file(leveldb::WritableFile* base, std::string name, std::shared_ptr<fault_injection> f)
      : base_(base), name_(std::move(name)), faults_(std::move(f)) {}
  ~faulty_file() override { delete base_; }
  leveldb::Status Append(const leveldb::Slice& data) override {
    if (faults_->failing(fault_injection::append)) return fault();
    return base_->Append(data);
  }
  leveldb::Status Close() override { return base_->Close(); }
  leveldb::Status Flush() override {
    if (faults_->failing(fault_injection::append)) return fault();
    return base_->Flush();
  }
  leveldb::Status Sync() override {
    if (faults_->failing(fault_injection::sync)) return fault();
    return base_->Sync();
  }

 private:
  /// What the POSIX Env reports for the same errno, marked as injected.
  leveldb::Status fault() {
    faults_->count_injected();
    bool full = faults_->error_kind() == fault_injection::kind::no_space;
    return leveldb::Status::IOError(name_, full ? "No space left on device (injected ENOSPC)"
                                                : "Input/output error (injected EIO)");
  }
  leveldb::WritableFile* base_;
  std::string name_;
  std::shared_ptr<fault_injection> faults_;
};

class faulty_env final : public leveldb::EnvWrapper {
 public:
  explicit faulty_env(std::shared_ptr<fault_injection> f) : EnvWrapper(leveldb::Env::Default()), faults_(std::move(f)) {}
  leveldb::Status NewWritableFile(const std::string& name, leveldb::WritableFile** out) override {
    return wrap(target()->NewWritableFile(name, out), name, out);
  }
  leveldb::Status NewAppendableFile(const std::string& name, leveldb::WritableFile** out) override {
    return wrap(target()->NewAppendableFile(name, out), name, out);
  }

 private:
  leveldb::Status wrap(leveldb::Status s, const std::string& name, leveldb::WritableFile** out) {
    if (s.ok()) *out = new faulty_file(*out, name, faults_);
    return s;
  }
  std::shared_ptr<fault_injection> faults_;
};

// -- the store ------------------------------------------------------------------------------

/// Every read checks the block's CRC: a damaged block is an error, never bytes handed on as a job
/// (without it LevelDB returns whatever the block now holds).
leveldb::ReadOptions checked_reads() {
  leveldb::ReadOptions r;
  r.verify_checksums = true;
  return r;
}

constexpr job_status all_statuses[] = {job_status::scheduled, job_status::active,   job_status::retrying,
                                       job_status::delivered, job_status::failed,   job_status::cancelled};

class leveldb_store final : public store {
 public:
  explicit leveldb_store(leveldb_options o) : options_(std::move(o)) {
    if (options_.faults) env_ = std::make_unique<faulty_env>(options_.faults);
  }

  /// Opens the database and checks (or, for a new store, writes) the format marker.
  status open(bool fresh) {
    leveldb::Options o;
    o.create_if_missing = fresh;
    o.paranoid_checks = true;  // never skip a damaged record silently
    if (env_) o.env = env_.get();
    leveldb::DB* raw = nullptr;
    leveldb::Status s = leveldb::DB::Open(o, options_.path, &raw);
    const std::string& path = options_.path;
    if (!s.ok()) {
      std::string why = s.ToString();
      if (s.IsIOError() && why.find("lock") != std::string::npos) {
        return unavailable("the store at " + path + " is in use by another process (" + why + ")");
      }
      if (s.IsIOError()) return unavailable("cannot open the store at " + path + ": " + why);
      if (s.IsCorruption()) return damaged(why);
      if (s.IsInvalidArgument() || !fresh) {
        return data_loss("the store at " + path + " cannot be opened: " + why +
                         ". It was left untouched: restore a backup or move it aside");
      }
      return unavailable("cannot open the store at " + path + ": " + why);
    }
    db_.reset(raw);
    std::string marker;
    s = db_->Get(checked_reads(), std::string(format_key), &marker);
    if (s.IsNotFound()) {
      if (!fresh) {
        db_.reset();
        return data_loss("the store at " + path + " is a LevelDB database but not a fetchrelay store (no meta/format)");
      }
      leveldb::WriteOptions w;
      w.sync = options_.sync;
      s = db_->Put(w, std::string(format_key), std::string(format_value));
      if (!s.ok()) return unavailable("cannot write to the store at " + path + ": " + s.ToString());
    } else if (!s.ok()) {
      db_.reset();
      return s.IsCorruption() ? damaged(s.ToString()) : data_loss("the store at " + path + " cannot be read: " + s.ToString());
    } else if (marker == format_value_1) {  // every value of format 1 reads in format 2
      leveldb::WriteOptions w;
      w.sync = options_.sync;
      s = db_->Put(w, std::string(format_key), std::string(format_value));
      if (!s.ok()) return unavailable("cannot write to the store at " + path + ": " + s.ToString());
      spdlog::info("store at {}: format 1 marked as format 2 (job records)", path);
    } else if (marker != format_value) {
      db_.reset();
      return data_loss("the store at " + path + " has format \"" + marker +
                       "\", which this version does not read (it expects \"" + std::string(format_value) + "\")");
    }
    std::string counters;
    s = db_->Get(checked_reads(), std::string(counters_key), &counters);
    if (s.ok()) {
      auto c = decode_counters(counters);
      if (!c) return c.error();
      counters_ = *c;
    } else if (!s.IsNotFound()) {
      db_.reset();
      return s.IsCorruption() ? damaged(s.ToString()) : data_loss("cannot read the counters: " + s.ToString());
    }
    std::string seq;
    s = db_->Get(checked_reads(), std::string(event_seq_key), &seq);
    event_seq_ = 0;
    if (s.ok()) {
      auto n = decode_count(seq);
      if (!n) return n.error();
      event_seq_ = static_cast<std::uint64_t>(*n);
    } else if (!s.IsNotFound()) {
      db_.reset();
      return s.IsCorruption() ? damaged(s.ToString()) : data_loss("cannot read the event sequence: " + s.ToString());
    }
    tenants_.clear();
    qcounts_.clear();
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(checked_reads()));
    for (it->Seek(std::string(queue_count_prefix)); it->Valid() && it->key().starts_with(std::string(queue_count_prefix));
         it->Next()) {
      auto n = decode_queue_counts(std::string_view(it->value().data(), it->value().size()));
      if (!n) return n.error();
      qcounts_[it->key().ToString().substr(queue_count_prefix.size())] = *n;
    }
    for (it->Seek(std::string(tenant_prefix)); it->Valid() && it->key().starts_with(std::string(tenant_prefix)); it->Next()) {
      auto n = decode_count(std::string_view(it->value().data(), it->value().size()));
      if (!n) return n.error();
      tenants_[it->key().ToString().substr(tenant_prefix.size())] = *n;
    }
    if (!it->status().ok()) {
      std::string why = it->status().ToString();
      bool corrupt = it->status().IsCorruption();
      it.reset();
      db_.reset();
      return corrupt ? damaged(why) : data_loss("cannot read the tenant counts: " + why);
    }
    health_ = status::ok();
    return status::ok();
  }

  /// A damaged store at start: which files, and what to do. The database is closed first, so
  /// the files can be read; nothing is changed.
  status damaged(const std::string& why) {
    db_.reset();
    auto files = find_damaged_files(options_.path);
    return data_loss("the store at " + options_.path + " is damaged: " + (files.empty() ? why : describe_damage(files)) +
                     ". It was left untouched. Stop here and copy the folder; then either run `fetchrelay repair "
                     "--config <this config>`, which keeps what can be read and reports how many jobs it kept, or "
                     "restore a backup");
  }

  status health() const override { return health_; }
  const std::string& location() const override { return options_.path; }
  status_counters counters() const override { return counters_; }
  std::map<std::string, std::int64_t> pending_by_tenant() const override { return tenants_; }

  std::uint64_t disk_usage_bytes() const override {
    std::uint64_t total = 0;
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(options_.path, ec)) {
      std::error_code fe;
      if (f.is_regular_file(fe)) total += f.file_size(fe);
    }
    return total;
  }

  status commit(std::span<const commit_batch> batches) override {
    if (!health_.is_ok()) return health_;
    leveldb::WriteBatch wb;
    changes c{counters_, {}, {}, {}, event_seq_};
    bool sync = false;
    for (const auto& b : batches) {
      sync = sync || b.sync;
      for (const auto& w : b.jobs) {
        if (auto s = add_job(wb, w, b.at_ms, c); !s) return s;
      }
      for (const auto& i : b.idempotency) wb.Put(idem_key(i.tenant, i.key), encode(i.record));
      for (const auto& w : b.schedules) {
        if (auto s = add_schedule(wb, w, c); !s) return s;
      }
      for (const auto& w : b.queues) {
        if (w.erase) wb.Delete(queue_key(w.state.tenant, w.state.name));
        else wb.Put(queue_key(w.state.tenant, w.state.name), encode(w.state));
      }
      for (const auto& w : b.topics) {
        if (w.erase) wb.Delete(topic_key(w.state.tenant, w.state.name));
        else wb.Put(topic_key(w.state.tenant, w.state.name), encode(w.state));
      }
      for (const auto& k : b.signing_keys) {
        wb.Put(std::string(signing_key_prefix) + k.tenant, k.current + std::string(1, '\0') + k.next);
      }
    }
    return write(wb, c, sync);
  }

  result<std::size_t> purge_finished(std::int64_t finished_before_ms, std::size_t limit) override {
    if (!health_.is_ok()) return health_;
    leveldb::WriteBatch wb;
    changes c{counters_, {}, {}, {}, event_seq_};
    std::size_t purged = 0;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(checked_reads()));
    std::string prefix(done_prefix);
    for (it->Seek(prefix); it->Valid() && purged < limit; it->Next()) {
      std::int64_t finished = 0;
      std::string id;
      if (!parse_done_key(std::string_view(it->key().data(), it->key().size()), finished, id)) break;
      if (finished > finished_before_ms) break;
      wb.Delete(it->key());
      auto j = read_job(id);
      if (!j) return j.error();
      // A job run again (POST /retry) left this entry behind; its current state decides.
      if (!*j || !is_terminal((*j)->state.status) || (*j)->state.finished_at_ms != finished) continue;
      // Its events are past retention too: they go in the events' own sweep.
      add_purge(wb, **j, c);
      ++purged;
    }
    if (!it->status().ok()) return data_loss(it->status().ToString());
    if (auto s = write(wb, c, false); !s) return s;
    return purged;
  }

  result<purge_page> purge_jobs(const std::string& tenant, const job_filter& filter,
                                const std::string& cursor) override {
    if (!health_.is_ok()) return health_;
    auto page = purge_selection(*this, tenant, filter, cursor);
    if (!page) return page.error();
    leveldb::WriteBatch wb;
    changes c{counters_, {}, {}, {}, event_seq_};
    purge_page out;
    for (const auto& listed : page->jobs) {
      if (!is_terminal(listed.status)) continue;
      auto j = read_job(listed.id);
      if (!j) return j.error();
      if (!*j) continue;
      // Its events stay in the feed until retention, and `job=` still finds them: the ones its
      // record listed get index entries now.
      for (std::uint64_t seq : (*j)->event_seqs) {
        std::string ignored;
        auto found = get(event_key(listed.tenant, seq), ignored);
        if (!found) return found.error();
        if (*found) wb.Put(event_job_key(listed.tenant, listed.id, seq), "");
      }
      add_purge(wb, **j, c);
      ++out.count;
    }
    if (auto s = write(wb, c, true); !s) return s;
    out.next_cursor = page->next_cursor;
    return out;
  }

  status reopen() override {
    db_.reset();
    auto s = open(false);
    if (!s.is_ok()) health_ = unavailable(s.message());
    return s;
  }

  result<std::optional<job_state>> get_job(const std::string& id) override {
    std::string v;
    auto s = get(job_key(id), v);
    if (!s) return s.error();
    if (!*s) return std::optional<job_state>();
    auto d = decode_job_record_state(v);
    if (!d) return d.error();
    return std::optional<job_state>(std::move(*d));
  }

  result<std::optional<job_spec>> get_spec(const std::string& id) override {
    std::string v;
    auto s = get(job_key(id), v);
    if (!s) return s.error();
    if (*s) {
      auto parts = split_job_record(v);
      if (!parts) return parts.error();
      if (!parts->spec.empty()) {
        auto d = decode_job_spec(parts->spec);
        if (!d) return d.error();
        return std::optional<job_spec>(std::move(*d));
      }
    }
    s = get(body_key(id), v);  // too big for the record, or written before records held requests
    if (!s) return s.error();
    if (!*s) return std::optional<job_spec>();
    auto d = decode_job_spec(v);
    if (!d) return d.error();
    return std::optional<job_spec>(std::move(*d));
  }

  result<std::vector<attempt_record>> get_attempts(const std::string& id) override {
    std::vector<attempt_record> out;
    std::string prefix = attempt_prefix(id);
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(checked_reads()));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      auto a = decode_attempt(std::string_view(it->value().data(), it->value().size()));
      if (!a) return a.error();
      out.push_back(std::move(*a));
    }
    if (!it->status().ok()) return data_loss(it->status().ToString());
    // The latest attempt is in the job's record (after the others: attempts only grow).
    std::string v;
    auto found = get(job_key(id), v);
    if (!found) return found.error();
    if (*found) {
      auto parts = split_job_record(v);
      if (!parts) return parts.error();
      if (!parts->attempt.empty()) {
        auto a = decode_attempt(parts->attempt);
        if (!a) return a.error();
        std::erase_if(out, [&](const attempt_record& r) { return r.n >= a->n; });
        out.push_back(std::move(*a));
      }
    }
    return out;
  }

  result<std::optional<idem_record>> get_idem(const std::string& tenant, const std::string& key) override {
    std::string v;
    auto s = get(idem_key(tenant, key), v);
    if (!s) return s.error();
    if (!*s) return std::optional<idem_record>();
    auto d = decode_idem(v);
    if (!d) return d.error();
    return std::optional<idem_record>(std::move(*d));
  }

  result<std::vector<due_entry>> scan_due(const std::optional<due_entry>& after, std::int64_t until_ms,
                                          std::size_t limit) override {
    std::vector<due_entry> out;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(checked_reads()));
    std::string start = after ? due_key(after->due_ms, after->id) : std::string(due_prefix);
    it->Seek(start);
    if (after && it->Valid() && it->key() == leveldb::Slice(start)) it->Next();
    for (; it->Valid() && out.size() < limit; it->Next()) {
      due_entry e;
      if (!parse_due_key(std::string_view(it->key().data(), it->key().size()), e.due_ms, e.id)) break;
      if (e.due_ms > until_ms) break;
      out.push_back(std::move(e));
    }
    if (!it->status().ok()) return data_loss(it->status().ToString());
    return out;
  }

  result<job_page> list_jobs(const std::string& tenant, const job_filter& f, const std::string& cursor,
                             std::size_t limit) override {
    // Newest first: one iterator per status's index, each walked backwards from the upper
    // bound (the cursor, or the first id after `until`), merged by id.
    std::string upper = cursor;
    if (f.until_ms) {
      std::string after_until = "job_" + encode_ulid(*f.until_ms + 1, {});
      if (upper.empty() || after_until < upper) upper = after_until;
    }
    struct walker {
      std::unique_ptr<leveldb::Iterator> it;
      std::string prefix;
      bool valid() const { return it->Valid() && it->key().starts_with(prefix); }
      leveldb::Slice id() const {  // the key without its prefix: the job id
        leveldb::Slice k = it->key();
        k.remove_prefix(prefix.size());
        return k;
      }
    };
    std::vector<std::string> prefixes;
    bool by_tag = true;
    if (!f.schedule.empty()) prefixes.push_back(tag_prefix(tenant, tag_kind::schedule, f.schedule));
    else if (!f.queue.empty()) prefixes.push_back(tag_prefix(tenant, tag_kind::queue, f.queue));
    else if (!f.topic.empty()) prefixes.push_back(tag_prefix(tenant, tag_kind::topic, f.topic));
    else by_tag = false;
    for (job_status st : all_statuses) {
      if (!by_tag && (!f.status || *f.status == st)) prefixes.push_back(list_prefix(tenant, st));
    }
    std::vector<walker> walkers;
    for (auto& prefix : prefixes) {
      walker w{std::unique_ptr<leveldb::Iterator>(db_->NewIterator(checked_reads())), std::move(prefix)};
      w.it->Seek(upper.empty() ? w.prefix + "\xff" : w.prefix + upper);
      if (w.it->Valid()) w.it->Prev();
      else w.it->SeekToLast();
      walkers.push_back(std::move(w));
    }
    job_page page;
    std::size_t scanned = 0;
    std::string last;
    while (page.jobs.size() < limit && scanned < max_list_scan) {
      walker* next = nullptr;
      for (auto& w : walkers) {
        if (w.valid() && (!next || w.id().compare(next->id()) > 0)) next = &w;
      }
      if (!next) break;
      std::string id = next->id().ToString();
      next->it->Prev();
      ++scanned;
      last = id;
      if (f.since_ms && job_id_time(id) < *f.since_ms) return page;  // every later id is older
      auto j = get_job(id);
      if (!j) return j.error();
      if (!*j || !listing_passes(f, by_tag, **j)) continue;
      page.jobs.push_back(std::move(**j));
    }
    for (auto& w : walkers) {
      if (!w.it->status().ok()) return data_loss(w.it->status().ToString());
    }
    // A full page (or a scan cut at the cap) may be followed by an empty one: cheaper than looking ahead.
    if (page.jobs.size() == limit || scanned == max_list_scan) page.next_cursor = last;
    return page;
  }

  result<std::optional<schedule_state>> get_schedule(const std::string& tenant, const std::string& id) override {
    std::string v;
    auto s = get(schedule_key(tenant, id), v);
    if (!s) return s.error();
    if (!*s) return std::optional<schedule_state>();
    auto d = decode_schedule(v);
    if (!d) return d.error();
    return std::optional<schedule_state>(std::move(*d));
  }

  result<schedule_page> list_schedules(const std::string& tenant, const std::string& cursor,
                                       std::size_t limit) override {
    schedule_page page;
    auto s = list_named(schedule_prefix(tenant), cursor, limit, decode_schedule, page.schedules,
                        [](const schedule_state& x) { return x.id; }, page.next_cursor);
    if (!s) return s;
    return page;
  }

  result<std::optional<topic_state>> get_topic(const std::string& tenant, const std::string& name) override {
    std::string v;
    auto s = get(topic_key(tenant, name), v);
    if (!s) return s.error();
    if (!*s) return std::optional<topic_state>();
    auto d = decode_topic(v);
    if (!d) return d.error();
    return std::optional<topic_state>(std::move(*d));
  }

  result<std::vector<signing_key_write>> signing_keys() override {
    std::vector<signing_key_write> out;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(checked_reads()));
    for (it->Seek(leveldb::Slice(signing_key_prefix.data(), signing_key_prefix.size())); it->Valid(); it->Next()) {
      std::string_view k(it->key().data(), it->key().size()), v(it->value().data(), it->value().size());
      if (!k.starts_with(signing_key_prefix)) break;
      auto nul = v.find('\0');
      if (nul == std::string_view::npos) return data_loss("signing key record " + std::string(k) + " has no next key");
      out.push_back({std::string(k.substr(signing_key_prefix.size())), std::string(v.substr(0, nul)),
                     std::string(v.substr(nul + 1))});
    }
    if (!it->status().ok()) return data_loss(it->status().ToString());
    return out;
  }

  result<topic_page> list_topics(const std::string& tenant, const std::string& cursor, std::size_t limit) override {
    topic_page page;
    auto s = list_named(topic_prefix(tenant), cursor, limit, decode_topic, page.topics,
                        [](const topic_state& x) { return x.name; }, page.next_cursor);
    if (!s) return s;
    return page;
  }

  result<std::vector<schedule_due>> scan_schedules_due(const std::optional<schedule_due>& after, std::int64_t until_ms,
                                                       std::size_t limit) override {
    std::vector<schedule_due> out;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(checked_reads()));
    std::string start = after ? schedule_due_key(after->due_ms, after->tenant, after->id)
                              : std::string(schedule_due_prefix);
    it->Seek(start);
    if (after && it->Valid() && it->key() == leveldb::Slice(start)) it->Next();
    for (; it->Valid() && out.size() < limit; it->Next()) {
      schedule_due e;
      if (!parse_schedule_due_key(std::string_view(it->key().data(), it->key().size()), e.due_ms, e.tenant, e.id)) break;
      if (e.due_ms > until_ms) break;
      out.push_back(std::move(e));
    }
    if (!it->status().ok()) return data_loss(it->status().ToString());
    return out;
  }

  result<std::optional<queue_state>> get_queue(const std::string& tenant, const std::string& name) override {
    std::string v;
    auto s = get(queue_key(tenant, name), v);
    if (!s) return s.error();
    if (!*s) return std::optional<queue_state>();
    auto d = decode_queue(v);
    if (!d) return d.error();
    return std::optional<queue_state>(std::move(*d));
  }

  result<queue_page> list_queues(const std::string& tenant, const std::string& cursor, std::size_t limit) override {
    queue_page page;
    auto s = list_named(queue_prefix(tenant), cursor, limit, decode_queue, page.queues,
                        [](const queue_state& x) { return x.name; }, page.next_cursor);
    if (!s) return s;
    return page;
  }

  result<std::vector<queue_entry>> queue_jobs(const std::string& tenant, const std::string& name,
                                              const std::string& after, std::size_t limit) override {
    std::vector<queue_entry> out;
    std::string prefix = queue_jobs_prefix(tenant, name);
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(checked_reads()));
    it->Seek(prefix + after);
    if (!after.empty() && it->Valid() && it->key() == leveldb::Slice(prefix + after)) it->Next();
    for (; it->Valid() && it->key().starts_with(prefix) && out.size() < limit; it->Next()) {
      leveldb::Slice k = it->key();
      k.remove_prefix(prefix.size());
      auto stage = it->value().size() == 1 ? static_cast<queue_stage>(it->value()[0]) : queue_stage::waiting;
      out.push_back({k.ToString(), stage});
    }
    if (!it->status().ok()) return data_loss(it->status().ToString());
    return out;
  }

  std::vector<std::pair<std::string, std::string>> active_queues() const override {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [k, n] : qcounts_) {
      auto nul = k.find('\0');
      if (nul != std::string::npos) out.emplace_back(k.substr(0, nul), k.substr(nul + 1));
    }
    return out;
  }

  queue_counts queue_count(const std::string& tenant, const std::string& name) const override {
    auto it = qcounts_.find(tenant + '\0' + name);
    return it == qcounts_.end() ? queue_counts{} : it->second;
  }

  result<event_page> list_events(const std::string& tenant, const event_filter& f, const std::string& cursor,
                                 std::size_t limit) override {
    std::optional<std::uint64_t> after;
    if (!cursor.empty()) {
      after = parse_event_id(cursor);
      if (!after) return invalid_argument("cursor must be an event id");
    }
    if (!f.job_id.empty()) return list_job_events(tenant, f, after, limit);
    std::string prefix = event_prefix(tenant);
    auto read = [&](const leveldb::Iterator& it) -> result<std::optional<event_record>> {
      std::uint64_t seq = key_seq(std::string_view(it.key().data(), it.key().size()));
      auto e = decode_event(std::string_view(it.value().data(), it.value().size()), seq);
      if (!e) return e.error();
      if (f.type && e->type != *f.type) return std::optional<event_record>();
      return std::optional<event_record>(std::move(*e));
    };
    event_page page;
    std::size_t scanned = 0;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(checked_reads()));
    if (f.descending) {  // newest first, from just before the cursor
      it->Seek(after ? event_key(tenant, *after) : prefix + std::string(8, '\xff'));
      if (it->Valid()) it->Prev();
      else it->SeekToLast();
      std::string last;
      for (; it->Valid() && it->key().starts_with(prefix) && page.events.size() < limit && scanned < max_list_scan;
           it->Prev(), ++scanned) {
        last = event_id(key_seq(std::string_view(it->key().data(), it->key().size())));
        auto e = read(*it);
        if (!e) return e.error();
        if (*e) page.events.push_back(std::move(**e));
      }
      if (page.events.size() == limit || scanned == max_list_scan) page.next_cursor = last;
    } else if (!after) {  // the newest `limit`, walking back from the end
      it->Seek(prefix + std::string(8, '\xff'));
      if (it->Valid()) it->Prev();
      else it->SeekToLast();
      for (; it->Valid() && it->key().starts_with(prefix) && page.events.size() < limit && scanned < max_list_scan;
           it->Prev(), ++scanned) {
        auto e = read(*it);
        if (!e) return e.error();
        if (*e) page.events.push_back(std::move(**e));
      }
      std::reverse(page.events.begin(), page.events.end());
    } else {
      std::string start = event_key(tenant, *after);
      it->Seek(start);
      if (it->Valid() && it->key() == leveldb::Slice(start)) it->Next();
      std::string last;
      for (; it->Valid() && it->key().starts_with(prefix) && page.events.size() < limit && scanned < max_list_scan;
           it->Next(), ++scanned) {
        last = event_id(key_seq(std::string_view(it->key().data(), it->key().size())));
        auto e = read(*it);
        if (!e) return e.error();
        if (*e) page.events.push_back(std::move(**e));
      }
      if (page.events.size() == limit || scanned == max_list_scan) page.next_cursor = last;
    }
    if (!it->status().ok()) return data_loss(it->status().ToString());
    return page;
  }

  result<std::size_t> purge_events(std::int64_t before_ms, std::size_t limit) override {
    if (!health_.is_ok()) return health_;
    // Within a tenant, events are in commit order, so the old ones come first: each tenant's
    // range is read until its first event to keep, then the walk jumps to the next tenant.
    leveldb::WriteBatch wb;
    std::size_t purged = 0;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(checked_reads()));
    it->Seek(std::string(event_prefix_all));
    while (it->Valid() && it->key().starts_with(std::string(event_prefix_all)) && purged < limit) {
      std::string_view key(it->key().data(), it->key().size());
      auto nul = key.find('\0', event_prefix_all.size());
      if (nul == std::string_view::npos) break;
      std::string tenant(key.substr(event_prefix_all.size(), nul - event_prefix_all.size()));
      auto e = decode_event(std::string_view(it->value().data(), it->value().size()), key_seq(key));
      if (!e) return e.error();
      if (e->at_ms > before_ms) {
        it->Seek(std::string(event_prefix_all) + tenant + '\x01');  // the next tenant's events
        continue;
      }
      wb.Delete(it->key());
      wb.Delete(event_job_key(tenant, e->job_id, e->seq));
      ++purged;
      it->Next();
    }
    if (!it->status().ok()) return data_loss(it->status().ToString());
    if (purged == 0) return purged;
    changes c{counters_, {}, {}, {}, event_seq_};
    if (auto s = write(wb, c, false); !s) return s;
    return purged;
  }

 private:
  /// A page of the values under `prefix` after the name `cursor`, in name order.
  template <class T, class Decode, class Name>
  status list_named(const std::string& prefix, const std::string& cursor, std::size_t limit, Decode decode,
                    std::vector<T>& out, Name name, std::string& next_cursor) {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(checked_reads()));
    std::string start = prefix + cursor;
    it->Seek(start);
    if (!cursor.empty() && it->Valid() && it->key() == leveldb::Slice(start)) it->Next();
    for (; it->Valid() && out.size() < limit && it->key().starts_with(prefix); it->Next()) {
      auto d = decode(std::string_view(it->value().data(), it->value().size()));
      if (!d) return d.error();
      out.push_back(std::move(*d));
    }
    if (!it->status().ok()) return data_loss(it->status().ToString());
    if (out.size() == limit) next_cursor = name(out.back());
    return status::ok();
  }

  /// One job's events: the sequence numbers its record lists and those in evj/ (beyond the
  /// record's list, from format 1, or kept when the job was purged), each event read by its key.
  /// The tenant's prefix in the event key keeps another tenant's job from showing.
  result<event_page> list_job_events(const std::string& tenant, const event_filter& f,
                                     std::optional<std::uint64_t> after, std::size_t limit) {
    std::vector<std::uint64_t> seqs;
    std::string v;
    auto found = get(job_key(f.job_id), v);
    if (!found) return found.error();
    if (*found) {
      auto parts = split_job_record(v);
      if (!parts) return parts.error();
      seqs = std::move(parts->event_seqs);
    }
    // The walk goes after the cursor ascending, or before it (or from the newest) descending, and
    // reads at most max_list_scan events: so does the index, from the cursor in the same direction.
    bool ascending = after && !f.descending;
    std::string prefix = event_job_prefix(tenant, f.job_id);
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(checked_reads()));
    auto take = [&] { seqs.push_back(key_seq(std::string_view(it->key().data(), it->key().size()))); };
    std::size_t indexed = 0;
    if (ascending) {
      std::string start = event_job_key(tenant, f.job_id, *after);
      it->Seek(start);
      if (it->Valid() && it->key() == leveldb::Slice(start)) it->Next();
      for (; it->Valid() && it->key().starts_with(prefix) && indexed < max_list_scan; it->Next(), ++indexed) take();
    } else {
      it->Seek(after ? event_job_key(tenant, f.job_id, *after) : prefix + std::string(8, '\xff'));
      if (it->Valid()) it->Prev();
      else it->SeekToLast();
      for (; it->Valid() && it->key().starts_with(prefix) && indexed < max_list_scan; it->Prev(), ++indexed) take();
    }
    if (!it->status().ok()) return data_loss(it->status().ToString());
    std::sort(seqs.begin(), seqs.end());
    seqs.erase(std::unique(seqs.begin(), seqs.end()), seqs.end());
    std::vector<std::uint64_t> walk;
    for (std::uint64_t seq : seqs) {
      if (!after || (ascending ? seq > *after : seq < *after)) walk.push_back(seq);
    }
    if (!ascending) std::reverse(walk.begin(), walk.end());
    event_page page;
    std::size_t scanned = 0;
    std::string last;
    for (std::uint64_t seq : walk) {
      if (page.events.size() == limit || scanned == max_list_scan) break;
      ++scanned;
      last = event_id(seq);
      auto got = get(event_key(tenant, seq), v);
      if (!got) return got.error();
      if (!*got) continue;  // swept, or another tenant's
      auto e = decode_event(v, seq);
      if (!e) return e.error();
      if (f.type && e->type != *f.type) continue;
      page.events.push_back(std::move(*e));
    }
    bool more = page.events.size() == limit || scanned == max_list_scan;
    if (!f.descending && !after) std::reverse(page.events.begin(), page.events.end());
    else if (more) page.next_cursor = last;
    return page;
  }

  result<bool> get(const std::string& key, std::string& value) {
    leveldb::Status s = db_->Get(checked_reads(), key, &value);
    if (s.IsNotFound()) return false;
    if (!s.ok()) return data_loss("cannot read " + key + ": " + s.ToString());
    return true;
  }

  /// Counter changes of one write, applied when it succeeds, and the jobs it has written so far
  /// (a later write to the same job in the same batch starts from there, not from the disk).
  struct changes {
    status_counters counters;
    std::map<std::string, std::int64_t> tenant_delta;
    std::unordered_map<std::string, std::string> written;  // id -> the record written
    /// Schedules written so far (by their key): their due time if indexed, 0 if not, nullopt if erased.
    std::unordered_map<std::string, std::optional<std::int64_t>> schedules;
    std::uint64_t event_seq = 0;  // the last event's sequence number so far
    /// Queue jobs written so far: their stage in the queue index (none: not in it).
    std::unordered_map<std::string, queue_stage> queue_stages;
    std::map<std::string, queue_counts> queue_delta;  // by tenant "\0" queue
  };

  /// The record the store holds for `id` as of this batch (its value): nullopt if nothing.
  result<std::optional<std::string>> held(const std::string& id, const changes& c) {
    if (auto it = c.written.find(id); it != c.written.end()) return std::optional<std::string>(it->second);
    std::string v;
    auto found = get(job_key(id), v);
    if (!found) return found.error();
    if (!*found) return std::optional<std::string>();
    return std::optional<std::string>(std::move(v));
  }

  status write(leveldb::WriteBatch& wb, changes& c, bool sync) {
    wb.Put(std::string(counters_key), encode(c.counters));
    if (c.event_seq != event_seq_) wb.Put(std::string(event_seq_key), encode_count(static_cast<std::int64_t>(c.event_seq)));
    std::map<std::string, std::int64_t> tenants;
    for (const auto& [t, d] : c.tenant_delta) {
      if (d == 0) continue;
      std::int64_t n = (tenants_.count(t) ? tenants_.at(t) : 0) + d;
      tenants[t] = n;
      if (n > 0) wb.Put(tenant_key(t), encode_count(n));
      else wb.Delete(tenant_key(t));
    }
    std::map<std::string, queue_counts> queues;
    for (const auto& [k, d] : c.queue_delta) {
      queue_counts n = qcounts_.count(k) ? qcounts_.at(k) : queue_counts{};
      n.waiting += d.waiting;
      n.started += d.started;
      queues[k] = n;
      std::string key = std::string(queue_count_prefix) + k;
      if (n.waiting > 0 || n.started > 0) wb.Put(key, encode(n));
      else wb.Delete(key);
    }
    leveldb::WriteOptions wo;
    wo.sync = sync && options_.sync;
    leveldb::Status s = db_->Write(wo, &wb);
    if (!s.ok()) {
      health_ = unavailable("the store at " + options_.path + " failed a write: " + s.ToString());
      return health_;
    }
    counters_ = c.counters;
    event_seq_ = c.event_seq;
    for (const auto& [k, n] : queues) {
      if (n.waiting > 0 || n.started > 0) qcounts_[k] = n;
      else qcounts_.erase(k);
    }
    for (const auto& [t, n] : tenants) {
      if (n > 0) tenants_[t] = n;
      else tenants_.erase(t);
    }
    return status::ok();
  }

  /// Puts the job's record and moves its due, listing and done entries, its status counter and
  /// its tenant's count, from what the store held to what `w` says. The record keeps what the
  /// held one had: the request (when small), the latest attempt (a newer one moves it to att/),
  /// and the job's event sequence numbers.
  status add_job(leveldb::WriteBatch& wb, const job_write& w, std::int64_t at_ms, changes& c) {
    const job_state& s = w.state;
    std::optional<std::string> held_value;
    job_record_view before;
    std::optional<job_position> old;
    if (!w.spec) {  // a new job's id is fresh: nothing to read
      auto h = held(s.id, c);
      if (!h) return h.error();
      held_value = std::move(*h);
      if (held_value) {
        auto parts = split_job_record(*held_value);
        if (!parts) return parts.error();
        auto p = decode_job_position(parts->state);
        if (!p) return p.error();
        before = std::move(*parts);
        old = *p;
      }
    }
    status_counters& counters = c.counters;
    std::string spec_bytes;
    std::string_view spec = before.spec;
    if (w.spec) {
      spec_bytes = encode(*w.spec);
      if (spec_bytes.size() <= inline_spec_limit) {
        spec = spec_bytes;
      } else {
        wb.Put(body_key(s.id), spec_bytes);
        spec = {};
      }
      for_each_tag(s, [&](tag_kind k, const std::string& name) { wb.Put(tag_key(s.tenant, k, name, s.id), ""); });
    }
    std::string attempt_bytes;
    std::string_view attempt = before.attempt;
    if (w.attempt) {
      attempt_bytes = encode(*w.attempt);
      // The attempt held so far goes to a key of its own, unless this one replaces it.
      if (!before.attempt.empty() && attempt_number(before.attempt) != w.attempt->n) {
        wb.Put(attempt_key(s.id, attempt_number(before.attempt)),
               leveldb::Slice(before.attempt.data(), before.attempt.size()));
      }
      attempt = attempt_bytes;
    }
    queue_stage old_stage = queue_stage::none;
    if (!s.queue.empty()) {
      auto st = held_stage(s, w.spec.has_value(), c);
      if (!st) return st.error();
      old_stage = *st;
    }
    index_move m = plan_move(s, old, old_stage);
    if (m.old_due && !m.same_due) wb.Delete(due_key(old->run_at_ms, s.id));
    if (m.new_due && !m.same_due) wb.Put(due_key(s.run_at_ms, s.id), "");
    if (old_stage != m.new_stage) move_queue_entry(wb, s, old_stage, m.new_stage, c);
    if (m.status_changed) {
      if (old) {
        wb.Delete(list_key(s.tenant, old->status, s.id));
        --counters[static_cast<std::size_t>(old->status)];
      }
      wb.Put(list_key(s.tenant, s.status, s.id), "");
      ++counters[static_cast<std::size_t>(s.status)];
    }
    // A finished job is found by the retention sweep under its finish time. An entry left by an
    // earlier finish (run again, or finished twice) is skipped by the sweep.
    if (m.terminal) wb.Put(done_key(s.finished_at_ms, s.id), "");
    c.tenant_delta[s.tenant] += (m.terminal ? 0 : 1) - (m.was_pending ? 1 : 0);
    std::vector<std::uint64_t> seqs = std::move(before.event_seqs);
    if (auto type = event_of(w, old)) {
      std::uint64_t seq = add_event(wb, *type, w, at_ms, c);
      // A record lists a bounded number; the rest (a job deferred again and again) are indexed.
      if (seqs.size() < max_record_events) seqs.push_back(seq);
      else wb.Put(event_job_key(s.tenant, s.id, seq), "");
    }
    std::string record = encode_job_record(spec, attempt, seqs, s);
    wb.Put(job_key(s.id), record);
    c.written[s.id] = std::move(record);
    return status::ok();
  }

  /// The stage the queue index holds for a queue job as of this batch (none: not in it).
  result<queue_stage> held_stage(const job_state& s, bool fresh, const changes& c) {
    if (auto it = c.queue_stages.find(s.id); it != c.queue_stages.end()) return it->second;
    if (fresh) return queue_stage::none;
    std::string v;
    auto found = get(queue_job_key(s.tenant, s.queue, s.id), v);
    if (!found) return found.error();
    if (!*found || v.size() != 1) return queue_stage::none;
    return static_cast<queue_stage>(v[0]);
  }

  static void move_queue_entry(leveldb::WriteBatch& wb, const job_state& s, queue_stage from, queue_stage to, changes& c) {
    std::string key = queue_job_key(s.tenant, s.queue, s.id);
    if (to == queue_stage::none) wb.Delete(key);
    else wb.Put(key, std::string(1, static_cast<char>(to)));
    count_stage_move(c.queue_delta[s.tenant + '\0' + s.queue], from, to);
    c.queue_stages[s.id] = to;
  }

  /// Puts the event; returns its sequence number.
  static std::uint64_t add_event(leveldb::WriteBatch& wb, event_type type, const job_write& w, std::int64_t at_ms,
                                 changes& c) {
    std::uint64_t seq = ++c.event_seq;
    wb.Put(event_key(w.state.tenant, seq), encode(make_event(type, w, at_ms)));
    return seq;
  }

  /// Puts or erases the schedule and moves its due entry from what the store held.
  status add_schedule(leveldb::WriteBatch& wb, const schedule_write& w, changes& c) {
    const schedule_state& s = w.state;
    std::string key = schedule_key(s.tenant, s.id);
    std::optional<std::int64_t> old_due;  // the indexed due time held, if any
    if (auto it = c.schedules.find(key); it != c.schedules.end()) {
      old_due = it->second;
    } else {
      std::string v;
      auto found = get(key, v);
      if (!found) return found.error();
      if (*found) {
        auto old = decode_schedule(v);
        if (!old) return old.error();
        if (schedule_is_due_indexed(*old)) old_due = old->next_run_at_ms;
      }
    }
    std::optional<std::int64_t> new_due;
    if (!w.erase && schedule_is_due_indexed(s)) new_due = s.next_run_at_ms;
    if (old_due && old_due != new_due) wb.Delete(schedule_due_key(*old_due, s.tenant, s.id));
    if (new_due && old_due != new_due) wb.Put(schedule_due_key(*new_due, s.tenant, s.id), "");
    if (w.erase) wb.Delete(key);
    else wb.Put(key, encode(s));
    c.schedules[key] = new_due;
    return status::ok();
  }

  /// A stored job: its snapshot and what its record holds besides.
  struct stored_job {
    job_state state;
    bool spec_in_record = false;          // else in body/
    std::uint32_t attempt_in_record = 0;  // the attempt number the record holds (0: none)
    std::vector<std::uint64_t> event_seqs;
  };

  result<std::optional<stored_job>> read_job(const std::string& id) {
    std::string v;
    auto found = get(job_key(id), v);
    if (!found) return found.error();
    if (!*found) return std::optional<stored_job>();
    auto parts = split_job_record(v);
    if (!parts) return parts.error();
    auto st = decode_job_state(parts->state);
    if (!st) return st.error();
    stored_job j{std::move(*st), !parts->spec.empty(), parts->attempt.empty() ? 0 : attempt_number(parts->attempt),
                 std::move(parts->event_seqs)};
    return std::optional<stored_job>(std::move(j));
  }

  static void add_purge(leveldb::WriteBatch& wb, const stored_job& j, changes& c) {
    const job_state& s = j.state;
    status_counters& counters = c.counters;
    wb.Delete(job_key(s.id));
    if (!j.spec_in_record) wb.Delete(body_key(s.id));
    wb.Delete(list_key(s.tenant, s.status, s.id));
    for (std::uint32_t n = 1; n <= s.attempts; ++n) {
      if (n != j.attempt_in_record) wb.Delete(attempt_key(s.id, n));
    }
    if (!s.idempotency_key.empty()) wb.Delete(idem_key(s.tenant, s.idempotency_key));
    for_each_tag(s, [&](tag_kind k, const std::string& name) { wb.Delete(tag_key(s.tenant, k, name, s.id)); });
    --counters[static_cast<std::size_t>(s.status)];
  }

  leveldb_options options_;
  std::unique_ptr<leveldb::Env> env_;  // outlives db_ (declared first)
  std::unique_ptr<leveldb::DB> db_;
  status health_ = status::ok();
  status_counters counters_{};
  std::uint64_t event_seq_ = 0;  // the last event's sequence number, as of the last commit
  std::map<std::string, std::int64_t> tenants_;  // unfinished jobs per tenant
  std::map<std::string, queue_counts> qcounts_;  // unfinished jobs per queue (tenant "\0" name)
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
  auto s = std::make_unique<leveldb_store>(options);
  if (auto st = s->open(fresh); !st) return st;
  return std::unique_ptr<store>(std::move(s));
}

}  // namespace fetchrelay::persistence
