// Hibernation at scale (issue: durable jobs): 1,000,000 jobs delayed by an hour, submitted
// through the job manager (not HTTP) into a real LevelDB store, on simulated time. While they
// wait no job actor is live and RSS stays under 300 MB; advancing time wakes the first of them
// and they are delivered (to a scripted target actor: simulated time cannot drive real sockets);
// then the real fetchrelay process, started on the same store, turns ready without bringing any
// job into memory and reports the rest as scheduled in /metrics.
//
// Labelled perf: it asserts memory, so it stays out of the sanitizer run.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "actors/job_manager.h"
#include "tests/support/caf_fixture.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/relay_process.h"
#include "tests/support/scripted_target.h"

namespace fetchrelay::actors::hibernation_test {
namespace {

using namespace std::chrono_literals;

constexpr int jobs = 1'000'000;
constexpr int chunk = 2'000;                   // submissions between coordinator runs
constexpr std::int64_t rss_limit = 300LL << 20;

std::int64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

TEST(Hibernation, AMillionJobsWaitOnDiskNotInMemoryAndARestartReadsNoneOfThem) {
  test::temp_dir dir;
  const std::int64_t t0 = system_wall_clock().now_ms();  // the real process sees them an hour ahead
  auto clock = std::make_shared<manual_wall_clock>(t0);
  auto metrics = std::make_shared<relay_metrics>();
  auto log = std::make_shared<test::target_log>();
  std::vector<std::string> sample;  // the ids due first
  std::int64_t peak_rss = 0;
  std::int64_t peak_live = 0;
  {
    test::caf_fixture f;
    auto opened = persistence::open_leveldb_store({dir.file("data"), true, nullptr});
    ASSERT_TRUE(opened.is_ok()) << opened.error().message();
    std::shared_ptr<persistence::store> store(std::move(opened.value()));
    store_actor_options so;
    so.metrics = metrics;
    auto store_actor = f.sys().spawn(store_actor_impl, store, so, nullptr);
    manager_options mo;
    mo.policies["default"] = policy_runtime{};
    mo.hibernate_after = 30s;
    mo.scheduler.horizon = 10min;
    mo.make_destination = [log, clock](caf::local_actor* m, const std::string&) {
      return caf::actor_cast<destination_actor>(
          m->spawn<caf::linked>(test::scripted_target, log, std::shared_ptr<const wall_clock>(clock)));
    };
    auto manager = f.sys().spawn(job_manager, mo, store_actor, std::shared_ptr<delivery_client>(), clock, metrics);
    f.run();

    auto started = std::chrono::steady_clock::now();
    int accepted = 0;
    for (int base = 0; base < jobs; base += chunk) {
      for (int i = base; i < base + chunk; ++i) {
        submission sub;
        sub.tenant = "acme";
        sub.spec = job_spec{"POST", "http://target.test/hook", {}, "{\"n\":" + std::to_string(i) + "}"};
        sub.run_at_ms = t0 + 3'600'000 + i;  // an hour, spread over the following ~17 min
        caf::anon_send(manager, submit_atom::value, std::move(sub),
                       completion<submit_answer>([&accepted, &sample, i](submit_answer a) {
                         if (a.http_status == 202) ++accepted;
                         if (i < 1000) sample.push_back(a.id);
                       }));
      }
      f.run();
      peak_live = std::max<std::int64_t>(peak_live, metrics->live_job_actors.load());
      if (base % 100'000 == 0) peak_rss = std::max(peak_rss, rss_bytes());
    }
    peak_rss = std::max(peak_rss, rss_bytes());
    auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf("[ hibernation ] %d jobs submitted in %.1f s (%.0f/s); RSS %.0f MB; store %.0f MB\n", jobs, seconds,
                jobs / seconds, rss_bytes() / 1048576.0, store->disk_usage_bytes() / 1048576.0);
    ASSERT_EQ(accepted, jobs);
    ASSERT_EQ(sample.size(), 1000u);
    EXPECT_EQ(peak_live, 0) << "every job waits on disk";
    EXPECT_EQ(metrics->due_index_size.load(), 0) << "an hour is past the horizon";
    EXPECT_EQ(metrics->jobs_by_status[static_cast<size_t>(job_status::scheduled)].load(), jobs);
    EXPECT_LT(peak_rss, rss_limit);

    // An hour and a second later the first 1,001 are due (i = 0..1000 ms past the hour).
    clock->advance(1h + 1s);
    f.sched().advance_time(1h + 1s);
    f.run();
    EXPECT_EQ(log->hits.size(), 1001u);
    for (const auto& id : sample) {
      auto s = store->get_job(id);
      ASSERT_TRUE(s.is_ok() && s.value().has_value());
      EXPECT_EQ((*s.value()).status, job_status::delivered) << id;
    }
    EXPECT_EQ(metrics->jobs_activated.load(), 1001u);
    EXPECT_EQ(metrics->live_job_actors.load(), 0) << "delivered jobs are forgotten";
    // The due index holds the coming horizon (10 min of the spread), not all pending jobs.
    EXPECT_GT(metrics->due_index_size.load(), 0);
    EXPECT_LT(metrics->due_index_size.load(), jobs - 1001);
    EXPECT_LT(rss_bytes(), rss_limit);
    std::printf("[ hibernation ] after waking: due index %lld entries, RSS %.0f MB\n",
                static_cast<long long>(metrics->due_index_size.load()), rss_bytes() / 1048576.0);

    caf::anon_send_exit(manager, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(store_actor, caf::exit_reason::user_shutdown);
    f.run();
  }

  // The real process on the same store, with the real clock: the jobs are ~an hour ahead.
  std::string cfg = dir.write("relay.yaml", "server: {listen: 127.0.0.1:0}\n"
                                            "storage: {path: " + dir.file("data") + "}\n"
                                            "auth: {keys: [{tenant: acme, key: relay_sk_acme_123}]}\n");
  auto t_start = std::chrono::steady_clock::now();
  test::process relay(FETCHRELAY_BIN, {"serve", "--config", cfg, "--port-file", dir.file("port")}, dir.file("relay.log"));
  auto port = test::wait_for_port_file(dir.file("port"), 60s);
  ASSERT_TRUE(port) << relay.log();
  bool ready = false;
  for (int i = 0; i < 600 && !ready; ++i) {
    auto r = test::http_request(*port, "GET", "/readyz", "", "");
    ready = r && r->status == 200;
    if (!ready) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(ready) << relay.log();
  auto ready_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_start).count();
  auto m = test::http_request(*port, "GET", "/metrics", "", "");
  ASSERT_TRUE(m && m->status == 200);
  std::printf("[ hibernation ] restart to /readyz: %.0f ms\n", ready_ms);
  EXPECT_EQ(test::metric_value(m->body, "fetchrelay_jobs{status=\"scheduled\"}"), jobs - 1001);
  EXPECT_EQ(test::metric_value(m->body, "fetchrelay_jobs{status=\"delivered\"}"), 1001);
  EXPECT_EQ(test::metric_value(m->body, "fetchrelay_jobs_activated_total"), 0) << "no job was read into memory";
  EXPECT_EQ(test::metric_value(m->body, "fetchrelay_due_index_size"), 0) << "none is due within the horizon";
  EXPECT_EQ(test::metric_value(m->body, "fetchrelay_live_job_actors"), 0);
  relay.signal(SIGTERM);
  EXPECT_TRUE(relay.wait(20s).exited);
}

}  // namespace
}  // namespace fetchrelay::actors::hibernation_test
