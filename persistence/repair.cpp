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

#include <algorithm>
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
    auto decoded = decode_job_state(std::string_view(it->value().data(), it->value().size()));
    if (!decoded) {
      ++report.records_dropped;
      wb.Delete(it->key());
      continue;
    }
    job_state s = std::move(*decoded);
    if (!is_terminal(s.status)) {
      std::string body;
      if (db.Get(leveldb::ReadOptions(), body_key(s.id), &body).IsNotFound()) {
        s.status = job_status::failed;
        s.finished_at_ms = now_ms();
        s.last_error = "its request was lost when the store was repaired";
        s.queue_stage = 0;
        wb.Put(job_key(s.id), encode(s));
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

result<repair_report> repair_leveldb_store(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(fs::path(path) / "CURRENT", ec) && !fs::exists(fs::path(path) / "LOCK", ec)) {
    return invalid_argument("no store at " + path + " (no CURRENT or LOCK file)");
  }
  // LevelDB's repair does not take the store's lock itself: take it, so a running relay's store
  // is never rewritten under it.
  leveldb::Env* env = leveldb::Env::Default();
  leveldb::FileLock* lock = nullptr;
  if (auto s = env->LockFile(path + "/LOCK", &lock); !s.ok()) {
    return unavailable("the store at " + path + " is in use by another process (a running relay?): stop it first (" +
                       s.ToString() + ")");
  }
  repair_report report;
  report.damaged = find_damaged_files(path);
  // 1. LevelDB's repair: the logs become tables (a damaged log record and what follows it in
  //    that log are dropped), a new manifest lists every table. It keeps a table whose blocks
  //    fail their checksum as it is, so:
  leveldb::Options o;
  leveldb::Status s = leveldb::RepairDB(path, o);
  env->UnlockFile(lock);
  if (!s.ok()) return data_loss("LevelDB's repair of " + path + " failed: " + s.ToString());

  // 2. every entry that still reads with its checksum is copied into a new database beside it;
  //    a damaged block is skipped whole.
  const std::string fresh = path + ".repairing";
  fs::remove_all(fresh, ec);
  {
    leveldb::DB* raw = nullptr;
    s = leveldb::DB::Open(o, path, &raw);
    if (!s.ok()) return data_loss("the repaired store at " + path + " cannot be opened: " + s.ToString());
    std::unique_ptr<leveldb::DB> src(raw);
    leveldb::Options fo;
    fo.create_if_missing = true;
    fo.error_if_exists = true;
    s = leveldb::DB::Open(fo, fresh, &raw);
    if (!s.ok()) return unavailable("cannot create " + fresh + ": " + s.ToString());
    std::unique_ptr<leveldb::DB> dst(raw);
    leveldb::ReadOptions ro;
    ro.verify_checksums = true;
    ro.fill_cache = false;
    std::unique_ptr<leveldb::Iterator> it(src->NewIterator(ro));
    leveldb::WriteBatch wb;
    std::size_t pending = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      wb.Put(it->key(), it->value());
      ++report.entries_copied;
      if (++pending == 10'000 || wb.ApproximateSize() > (8u << 20)) {
        if (s = dst->Write(leveldb::WriteOptions(), &wb); !s.ok()) return unavailable("cannot write " + fresh + ": " + s.ToString());
        wb.Clear();
        pending = 0;
      }
    }
    if (!it->status().ok()) report.unreadable = it->status().ToString();
    if (s = dst->Write(leveldb::WriteOptions(), &wb); !s.ok()) return unavailable("cannot write " + fresh + ": " + s.ToString());
    it.reset();

    // 3. the records are the truth: every index and count is rebuilt from them.
    std::string marker;
    s = dst->Get(leveldb::ReadOptions(), std::string(format_key), &marker);
    if (s.ok() && marker != format_value) {
      return data_loss("the store at " + path + " has format \"" + marker + "\", which this version does not read");
    }
    if (!s.ok()) {
      // The marker was in a lost part. Put it back only if fetchrelay records survived.
      std::unique_ptr<leveldb::Iterator> jobs(dst->NewIterator(leveldb::ReadOptions()));
      jobs->Seek("job/");
      if (!jobs->Valid() || !jobs->key().starts_with("job/")) {
        return data_loss("nothing of a fetchrelay store could be read at " + path + " (no meta/format, no jobs)");
      }
      if (s = dst->Put(leveldb::WriteOptions(), std::string(format_key), std::string(format_value)); !s.ok()) {
        return unavailable("cannot write the format marker: " + s.ToString());
      }
      report.format_marker_restored = true;
    }
    auto rebuilt = rebuild(*dst, std::move(report));
    if (!rebuilt) return rebuilt.error();
    report = std::move(*rebuilt);
  }

  // 4. the new database takes the store's place; the old one is kept beside it.
  std::string kept = path + ".before-repair";
  for (int i = 2; fs::exists(kept, ec); ++i) kept = path + ".before-repair-" + std::to_string(i);
  fs::rename(path, kept, ec);
  if (ec) return unavailable("cannot move " + path + " to " + kept + ": " + ec.message());
  fs::rename(fresh, path, ec);
  if (ec) return unavailable("cannot move " + fresh + " to " + path + ": " + ec.message() + " (the old store is in " + kept + ")");
  report.old_store = kept;
  return report;
}

}  // namespace fetchrelay::persistence
