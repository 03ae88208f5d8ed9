// W5's store filler: writes N pending jobs, due hours from now, straight into a fetchrelay
// LevelDB store through the store interface (the same code the relay commits with), so a
// 10,000,000-job backlog takes minutes rather than the hours HTTP would (DESIGN §7 allows it).
//
//   fetchrelay_w5_fill --data DIR --jobs N [--tenant bench] [--url URL] [--batch 10000]
//                      [--min-delay-ms 3600000] [--max-delay-ms 21600000]
//
// Prints one JSON line: jobs written, seconds, jobs/s, and the store's bytes on disk.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/ulid.h"
#include "persistence/store.h"

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string data, tenant = "bench", url = "http://127.0.0.1:9/ok";
  long jobs = 0, batch = 10'000;
  std::int64_t min_delay = 3'600'000, max_delay = 21'600'000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s needs a value\n", a.c_str());
      return 2;
    }
    std::string v = argv[++i];
    if (a == "--data") data = v;
    else if (a == "--jobs") jobs = std::atol(v.c_str());
    else if (a == "--tenant") tenant = v;
    else if (a == "--url") url = v;
    else if (a == "--batch") batch = std::atol(v.c_str());
    else if (a == "--min-delay-ms") min_delay = std::atoll(v.c_str());
    else if (a == "--max-delay-ms") max_delay = std::atoll(v.c_str());
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (data.empty() || jobs <= 0 || batch <= 0 || max_delay < min_delay) {
    std::fprintf(stderr, "usage: fetchrelay_w5_fill --data DIR --jobs N [--tenant T] [--url URL] [--batch B] "
                         "[--min-delay-ms MS] [--max-delay-ms MS]\n");
    return 2;
  }
  auto opened = fetchrelay::persistence::open_leveldb_store({data, true, nullptr});
  if (!opened) {
    std::fprintf(stderr, "cannot open %s: %s\n", data.c_str(), opened.error().message().c_str());
    return 1;
  }
  auto& store = **opened;
  std::mt19937_64 rng{7};
  fetchrelay::ulid_generator ids([&rng] { return rng(); });
  std::uniform_int_distribution<std::int64_t> delay(min_delay, max_delay);
  const fetchrelay::job_spec spec{"POST", url, {{"Content-Type", "application/json"}}, R"({"userId":"user_456"})"};
  auto start = std::chrono::steady_clock::now();
  for (long done = 0; done < jobs;) {
    std::vector<fetchrelay::persistence::commit_batch> b(1);
    b[0].sync = false;
    std::int64_t now = now_ms();
    for (long k = 0; k < batch && done < jobs; ++k, ++done) {
      fetchrelay::job_state s;
      s.id = "job_" + ids.next(now);
      s.tenant = tenant;
      s.url = url;
      s.created_at_ms = now;
      s.run_at_ms = now + delay(rng);
      s.max_attempts = 10;
      s.timeout_ms = 15'000;
      b[0].jobs.push_back({std::move(s), spec, std::nullopt});
    }
    if (done >= jobs) b[0].sync = true;
    if (auto st = store.commit(b); !st.is_ok()) {
      std::fprintf(stderr, "commit failed after %ld jobs: %s\n", done, st.message().c_str());
      return 1;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"jobs\":%ld,\"seconds\":%.1f,\"rate\":%.0f,\"disk_bytes\":%llu}\n", jobs, secs,
              static_cast<double>(jobs) / secs, static_cast<unsigned long long>(store.disk_usage_bytes()));
  return 0;
}
