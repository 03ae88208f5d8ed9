// W6's store filler: writes N hourly schedules straight into a fetchrelay LevelDB store through
// the store interface, their fire times spread over the hour (6-field crons "S M * * * *"), so
// the relay can be started on 100,000 of them without 100,000 HTTP calls.
//
//   fetchrelay_w6_fill --data DIR --schedules N [--tenant bench] [--url URL]
//
// Prints one JSON line: schedules written, seconds.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <variant>
#include <vector>

#include "core/cron.h"
#include "persistence/store.h"

int main(int argc, char** argv) {
  std::string data, tenant = "bench", url = "http://127.0.0.1:9/ok";
  long n = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--data") data = v;
    else if (a == "--schedules") n = std::atol(v.c_str());
    else if (a == "--tenant") tenant = v;
    else if (a == "--url") url = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (data.empty() || n <= 0) {
    std::fprintf(stderr, "usage: fetchrelay_w6_fill --data DIR --schedules N [--tenant T] [--url URL]\n");
    return 2;
  }
  auto opened = fetchrelay::persistence::open_leveldb_store({data, true, nullptr});
  if (!opened) {
    std::fprintf(stderr, "cannot open %s: %s\n", data.c_str(), opened.error().message().c_str());
    return 1;
  }
  auto& store = **opened;
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto start = std::chrono::steady_clock::now();
  constexpr long batch = 10'000;
  for (long done = 0; done < n;) {
    std::vector<fetchrelay::persistence::commit_batch> b(1);
    b[0].sync = false;
    for (long k = 0; k < batch && done < n; ++k, ++done) {
      fetchrelay::schedule_state s;
      s.id = "s" + std::to_string(done);
      s.tenant = tenant;
      s.cron = std::to_string(done % 60) + " " + std::to_string(done / 60 % 60) + " * * * *";
      s.request.spec = {"POST", url, {{"Content-Type", "application/json"}}, R"({"schedule":true})"};
      s.created_at_ms = now;
      auto parsed = fetchrelay::parse_cron(s.cron);
      s.next_run_at_ms = fetchrelay::next_fire(std::get<fetchrelay::cron_schedule>(parsed), now).value_or(0);
      b[0].schedules.push_back({std::move(s), false});
    }
    if (done >= n) b[0].sync = true;
    if (auto st = store.commit(b); !st.is_ok()) {
      std::fprintf(stderr, "commit failed after %ld schedules: %s\n", done, st.message().c_str());
      return 1;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"schedules\":%ld,\"seconds\":%.1f}\n", n, secs);
  return 0;
}
