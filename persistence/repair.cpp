// A damaged store: naming the damaged files, and `fetchrelay repair` (LevelDB's RepairDB, then
// the indexes rebuilt from the job and schedule records that survived). LevelDB stays in this
// folder.
#include <leveldb/db.h>
#include <leveldb/dumpfile.h>
#include <leveldb/env.h>
#include <leveldb/iterator.h>
#include <leveldb/options.h>
#include <leveldb/table.h>
#include <leveldb/write_batch.h>

#include <fcntl.h>
#include <stdio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>

#include "persistence/codec.h"
#include "persistence/store.h"

namespace fetchrelay::persistence {
namespace {

namespace fs = std::filesystem;

/// Where leveldb::DumpFile writes: keeps only the first problem it reports ("corruption: …").
class problem_sink final : public leveldb::WritableFile {
 public:
  leveldb::Status Append(const leveldb::Slice& data) override {
    if (problem_.empty()) {
      std::string_view text(data.data(), data.size());
      if (auto at = text.find("corruption: "); at != std::string_view::npos) {
        auto end = text.find('\n', at);
        problem_ = std::string(text.substr(at, end == std::string_view::npos ? text.npos : end - at));
      }
    }
    return leveldb::Status::OK();
  }
  leveldb::Status Close() override { return leveldb::Status::OK(); }
  leveldb::Status Flush() override { return leveldb::Status::OK(); }
  leveldb::Status Sync() override { return leveldb::Status::OK(); }
  const std::string& problem() const { return problem_; }

 private:
  std::string problem_;
};

/// Reads every entry of a table file with its block checksums checked (LevelDB's own dump of a
/// table does not check them). OK, or what is wrong.
leveldb::Status check_table(const std::string& file) {
  leveldb::Env* env = leveldb::Env::Default();
  std::uint64_t size = 0;
  if (auto s = env->GetFileSize(file, &size); !s.ok()) return s;
  leveldb::RandomAccessFile* raw = nullptr;
  if (auto s = env->NewRandomAccessFile(file, &raw); !s.ok()) return s;
  std::unique_ptr<leveldb::RandomAccessFile> f(raw);
  leveldb::Options o;
  o.paranoid_checks = true;
  leveldb::Table* t = nullptr;
  if (auto s = leveldb::Table::Open(o, f.get(), size, &t); !s.ok()) return s;
  std::unique_ptr<leveldb::Table> table(t);
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.fill_cache = false;
  std::unique_ptr<leveldb::Iterator> it(table->NewIterator(ro));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
  }
  return it->status();
}

bool is_table(const std::string& name) {
  auto ends = [&](std::string_view s) { return name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0; };
  return ends(".ldb") || ends(".sst");
}

bool is_store_file(const std::string& name) {
  auto ends = [&](std::string_view s) { return name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0; };
  return ends(".log") || ends(".ldb") || ends(".sst") || name.rfind("MANIFEST-", 0) == 0;
}

/// Deletes every key under `prefix`, in batches.
leveldb::Status delete_prefix(leveldb::DB& db, std::string_view prefix) {
  std::unique_ptr<leveldb::Iterator> it(db.NewIterator(leveldb::ReadOptions()));
  leveldb::WriteBatch wb;
  std::size_t n = 0;
  for (it->Seek(std::string(prefix)); it->Valid() && it->key().starts_with(std::string(prefix)); it->Next()) {
    wb.Delete(it->key());
    if (++n % 10'000 == 0) {
      if (auto s = db.Write(leveldb::WriteOptions(), &wb); !s.ok()) return s;
      wb.Clear();
    }
  }
  if (!it->status().ok()) return it->status();
  return db.Write(leveldb::WriteOptions(), &wb);
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// Rebuilds every index and count from the job and schedule records (DESIGN's key list: the
/// records are the truth, the rest is derived). An unfinished job whose request did not survive
/// is finished as failed, so it is reported rather than left due with nothing to send.
result<repair_report> rebuild(leveldb::DB& db, repair_report report) {
  for (std::string_view p : {due_prefix, done_prefix, std::string_view("list/"), std::string_view("tag/"),
                             std::string_view("qjob/"), schedule_due_prefix, tenant_prefix, queue_count_prefix}) {
    if (auto s = delete_prefix(db, p); !s.ok()) return data_loss("cannot clear the indexes: " + s.ToString());
  }
  status_counters counters{};
  std::map<std::string, std::int64_t> tenants;
  std::map<std::string, queue_counts> queues;
  leveldb::WriteBatch wb;
  auto flush = [&](bool sync) -> status {
    leveldb::WriteOptions wo;
    wo.sync = sync;
    if (auto s = db.Write(wo, &wb); !s.ok()) return data_loss("cannot write the rebuilt indexes: " + s.ToString());
    wb.Clear();
    return status::ok();
  };
  std::unique_ptr<leveldb::Iterator> it(db.NewIterator(leveldb::ReadOptions()));
  const std::string jobs = "job/";
  std::size_t n = 0;
  for (it->Seek(jobs); it->Valid() && it->key().starts_with(jobs); it->Next()) {
    auto parts = split_job_record(std::string_view(it->value().data(), it->value().size()));
    auto decoded = parts ? decode_job_state(parts->state) : result<job_state>(parts.error());
    if (!decoded) {
      ++report.records_dropped;
      wb.Delete(it->key());
      continue;
    }
    job_state s = std::move(*decoded);
    if (!is_terminal(s.status) && parts->spec.empty()) {
      std::string body;
      if (db.Get(leveldb::ReadOptions(), body_key(s.id), &body).IsNotFound()) {
        s.status = job_status::failed;
        s.finished_at_ms = now_ms();
        s.last_error = "its request was lost when the store was repaired";
        s.queue_stage = 0;
        wb.Put(job_key(s.id), encode_job_record({}, parts->attempt, parts->event_seqs, s));
        ++report.requests_lost;
      }
    }
    wb.Put(list_key(s.tenant, s.status, s.id), "");
    ++counters[static_cast<std::size_t>(s.status)];
    for_each_tag(s, [&](tag_kind k, const std::string& name) { wb.Put(tag_key(s.tenant, k, name, s.id), ""); });
    if (is_terminal(s.status)) {
      wb.Put(done_key(s.finished_at_ms, s.id), "");
    } else {
      ++tenants[s.tenant];
      auto stage = s.queue.empty() ? queue_stage::none : static_cast<queue_stage>(s.queue_stage);
      if (stage != queue_stage::none) {
        wb.Put(queue_job_key(s.tenant, s.queue, s.id), std::string(1, static_cast<char>(stage)));
        queue_counts& q = queues[s.tenant + '\0' + s.queue];
        if (stage == queue_stage::waiting) ++q.waiting;
        else ++q.started;
      }
      if (stage != queue_stage::waiting) wb.Put(due_key(s.run_at_ms, s.id), "");
    }
    ++report.jobs;
    ++report.by_status[static_cast<std::size_t>(s.status)];
    if (++n % 10'000 == 0) {
      if (auto st = flush(false); !st) return st;
    }
  }
  if (!it->status().ok()) return data_loss("cannot read the jobs: " + it->status().ToString());
  const std::string schedules = "sched/";
  for (it->Seek(schedules); it->Valid() && it->key().starts_with(schedules); it->Next()) {
    auto decoded = decode_schedule(std::string_view(it->value().data(), it->value().size()));
    if (!decoded) {
      ++report.records_dropped;
      wb.Delete(it->key());
      continue;
    }
    if (schedule_is_due_indexed(*decoded)) {
      wb.Put(schedule_due_key(decoded->next_run_at_ms, decoded->tenant, decoded->id), "");
    }
    ++report.schedules;
  }
  if (!it->status().ok()) return data_loss("cannot read the schedules: " + it->status().ToString());
  // The event sequence: one past the newest event kept, so a new event never overwrites one.
  std::uint64_t last_seq = 0;
  const std::string events(event_prefix_all);
  for (it->Seek(events); it->Valid() && it->key().starts_with(events); it->Next()) {
    std::string_view k(it->key().data(), it->key().size());
    if (k.size() < events.size() + 9) continue;
    std::uint64_t seq = 0;
    for (char c : k.substr(k.size() - 8)) seq = seq << 8 | static_cast<unsigned char>(c);
    last_seq = std::max(last_seq, seq);
  }
  if (!it->status().ok()) return data_loss("cannot read the events: " + it->status().ToString());
  wb.Put(std::string(event_seq_key), encode_count(static_cast<std::int64_t>(last_seq)));
  // An idempotency record whose job did not survive would answer a retried submission with an
  // id that is not found: drop it, so the retry is taken as new.
  const std::string idem = "idem/";
  for (it->Seek(idem); it->Valid() && it->key().starts_with(idem); it->Next()) {
    auto r = decode_idem(std::string_view(it->value().data(), it->value().size()));
    std::string ignored;
    if (!r || db.Get(leveldb::ReadOptions(), job_key(r->id), &ignored).IsNotFound()) {
      wb.Delete(it->key());
      ++report.idempotency_keys_dropped;
    }
  }
  if (!it->status().ok()) return data_loss("cannot read the idempotency keys: " + it->status().ToString());
  wb.Put(std::string(counters_key), encode(counters));
  for (const auto& [t, c] : tenants) wb.Put(tenant_key(t), encode_count(c));
  for (const auto& [k, c] : queues) wb.Put(std::string(queue_count_prefix) + k, encode(c));
  if (auto st = flush(true); !st) return st;
  return report;
}

}  // namespace

std::vector<damaged_file> find_damaged_files(const std::string& path) {
  std::vector<damaged_file> out;
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    std::string name = e.path().filename().string();
    if (e.is_regular_file() && is_store_file(name)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    problem_sink sink;
    leveldb::Status s = is_table(name) ? check_table(path + "/" + name)
                                       : leveldb::DumpFile(leveldb::Env::Default(), path + "/" + name, &sink);
    if (!s.ok()) out.push_back({name, s.ToString()});
    else if (!sink.problem().empty()) out.push_back({name, sink.problem()});
  }
  return out;
}

std::string describe_damage(const std::vector<damaged_file>& files) {
  std::string out;
  for (const auto& f : files) {
    if (!out.empty()) out += "; ";
    out += f.name + " (" + f.problem + ")";
  }
  return out;
}

result<repair_report> repair_leveldb_store(const std::string& given) {
  std::error_code ec;
  fs::path store = fs::path(given).lexically_normal();
  if (!store.has_filename()) store = store.parent_path();  // "data/" is "data"
  const std::string path = store.string();
  if (!fs::exists(store / "CURRENT", ec) && !fs::exists(store / "LOCK", ec)) {
    return invalid_argument("no store at " + path + " (no CURRENT or LOCK file)");
  }
  const std::string work = path + ".repair-work";  // a copy LevelDB's repair may rewrite
  const std::string fresh = path + ".repairing";   // the new store, built from what reads well
  for (const auto& leftover : {work, fresh}) {
    if (fs::exists(leftover, ec)) {
      return unavailable(leftover + " exists: an earlier repair stopped half way; look at it, move it aside, and run again");
    }
  }
  // The store's own lock, held to the end: no relay opens the store while it is repaired, and
  // LevelDB's repair (which takes no lock) only ever sees a copy.
  leveldb::Env* env = leveldb::Env::Default();
  leveldb::FileLock* raw_lock = nullptr;
  if (auto s = env->LockFile(path + "/LOCK", &raw_lock); !s.ok()) {
    return unavailable("the store at " + path + " is in use by another process (a running relay?): stop it first (" +
                       s.ToString() + ")");
  }
  std::unique_ptr<leveldb::FileLock, std::function<void(leveldb::FileLock*)>> lock(
      raw_lock, [env](leveldb::FileLock* l) { env->UnlockFile(l); });
  auto cleanup = [&] {
    fs::remove_all(work, ec);
    fs::remove_all(fresh, ec);
  };
  repair_report report;
  report.damaged = find_damaged_files(path);

  fs::create_directory(work, ec);
  for (const auto& e : fs::directory_iterator(store, ec)) {
    std::string name = e.path().filename().string();
    if (!e.is_regular_file() || name == "LOCK") continue;
    fs::copy_file(e.path(), fs::path(work) / name, ec);
    if (ec) {
      cleanup();
      return unavailable("cannot copy " + e.path().string() + " to " + work + ": " + ec.message() +
                         " (repair needs room for two copies of the store)");
    }
  }
  // 1. LevelDB's repair of the copy: the logs become tables (a damaged log record and what
  //    follows it in that log are dropped), a new manifest lists every table. It keeps table
  //    blocks that fail their checksum as they are, so:
  leveldb::Options o;
  o.paranoid_checks = true;  // a compaction must not merge a damaged block into a sound table
  leveldb::Status s = leveldb::RepairDB(work, o);
  if (!s.ok()) {
    cleanup();
    return data_loss("LevelDB's repair of a copy of " + path + " failed: " + s.ToString());
  }
  // 2. every entry that reads with a good checksum goes into a new database; a damaged block
  //    is skipped whole.
  {
    leveldb::DB* raw = nullptr;
    s = leveldb::DB::Open(o, work, &raw);
    if (!s.ok()) {
      cleanup();
      return data_loss("the repaired copy of " + path + " cannot be opened: " + s.ToString());
    }
    std::unique_ptr<leveldb::DB> src(raw);
    leveldb::Options fo;
    fo.create_if_missing = true;
    fo.error_if_exists = true;
    s = leveldb::DB::Open(fo, fresh, &raw);
    if (!s.ok()) {
      cleanup();
      return unavailable("cannot create " + fresh + ": " + s.ToString());
    }
    std::unique_ptr<leveldb::DB> dst(raw);
    leveldb::ReadOptions ro;
    ro.verify_checksums = true;
    ro.fill_cache = false;
    std::unique_ptr<leveldb::Iterator> it(src->NewIterator(ro));
    leveldb::WriteBatch wb;
    std::size_t pending = 0;
    for (it->SeekToFirst(); it->Valid() && s.ok(); it->Next()) {
      wb.Put(it->key(), it->value());
      ++report.entries_copied;
      if (++pending == 10'000 || wb.ApproximateSize() > (8u << 20)) {
        s = dst->Write(leveldb::WriteOptions(), &wb);
        wb.Clear();
        pending = 0;
      }
    }
    if (!it->status().ok()) report.unreadable = it->status().ToString();
    if (s.ok()) s = dst->Write(leveldb::WriteOptions(), &wb);
    it.reset();
    src.reset();
    if (!s.ok()) {
      dst.reset();
      cleanup();
      return unavailable("cannot write " + fresh + ": " + s.ToString());
    }

    // 3. the records are the truth: every index and count is rebuilt from them.
    std::string marker;
    s = dst->Get(leveldb::ReadOptions(), std::string(format_key), &marker);
    status bad = status::ok();
    if (s.ok() && marker == format_value_1) {  // format 1 reads as 2: mark it so
      if (s = dst->Put(leveldb::WriteOptions(), std::string(format_key), std::string(format_value)); !s.ok()) {
        bad = unavailable("cannot write the format marker: " + s.ToString());
      }
    } else if (s.ok() && marker != format_value) {
      bad = data_loss("the store at " + path + " has format \"" + marker + "\", which this version does not read");
    } else if (!s.ok()) {
      // The marker was in a lost part. Put it back only if fetchrelay records survived.
      std::unique_ptr<leveldb::Iterator> jobs(dst->NewIterator(leveldb::ReadOptions()));
      jobs->Seek("job/");
      if (!jobs->Valid() || !jobs->key().starts_with("job/")) {
        bad = data_loss("nothing of a fetchrelay store could be read at " + path + " (no meta/format, no jobs)");
      } else if (s = dst->Put(leveldb::WriteOptions(), std::string(format_key), std::string(format_value)); !s.ok()) {
        bad = unavailable("cannot write the format marker: " + s.ToString());
      }
      report.format_marker_restored = true;
    }
    if (bad.is_ok()) {
      auto rebuilt = rebuild(*dst, std::move(report));
      if (rebuilt) report = std::move(*rebuilt);
      else bad = rebuilt.error();
    }
    if (!bad.is_ok()) {
      dst.reset();
      cleanup();
      return bad;
    }
  }
  fs::remove_all(work, ec);

  // 4. the new store and the old one swap places in one step (`path` never goes missing, so a
  //    relay started now finds either the old store, locked, or the new one); the old one is
  //    kept beside it, exactly as it was.
  std::string kept = path + ".before-repair";
  for (int i = 2; fs::exists(kept, ec); ++i) kept = path + ".before-repair-" + std::to_string(i);
  if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, path.c_str(), RENAME_EXCHANGE) != 0) {
    return unavailable("cannot swap " + fresh + " and " + path + ": " + std::strerror(errno) +
                       " (the repaired store is in " + fresh + ", the store is untouched)");
  }
  lock.reset();  // its file now lives in `fresh`, the old store
  fs::rename(fresh, kept, ec);
  report.old_store = ec ? fresh : kept;
  return report;
}

}  // namespace fetchrelay::persistence
