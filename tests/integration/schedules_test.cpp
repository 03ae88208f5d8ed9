// Schedules end to end: the real relay on loopback, a real target, a real kill -9.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/time.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/relay_process.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::test::schedules_test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* key_a = "relay_sk_tenant_a_123";
constexpr const char* key_b = "relay_sk_tenant_b_456";

std::string config_text(const temp_dir& dir) {
  return loopback_config(dir, "{tenant: a, key: " + std::string(key_a) + "}, {tenant: b, key: " + std::string(key_b) + "}");
}

std::string target(const test_origin& o, const std::string& path) {
  return "X-Fetch-Url: http://127.0.0.1:" + std::to_string(o.port()) + path + "\r\n";
}

/// Fire time (ms) -> how many jobs carry it, from GET /v1/jobs?schedule=ID (every page).
std::map<std::int64_t, int> fires_of(relay_process& relay, const std::string& key, const std::string& schedule) {
  std::map<std::int64_t, int> out;
  std::string cursor;
  for (int page = 0; page < 50; ++page) {
    auto r = relay.call("GET", "/v1/jobs?limit=100&schedule=" + schedule + (cursor.empty() ? "" : "&cursor=" + cursor), key);
    if (!r || r->status != 200) break;
    auto j = json::parse(r->body);
    for (const auto& job : j["jobs"]) {
      EXPECT_EQ(job["schedule_id"], schedule);
      auto t = parse_rfc3339(job["fire_time"].get<std::string>());
      if (t) ++out[*t];
    }
    if (j["next_cursor"].is_null()) break;
    cursor = j["next_cursor"];
  }
  return out;
}

/// Polls until the schedule has made at least `n` jobs (bounded: `limit`).
std::map<std::int64_t, int> wait_fires(relay_process& relay, const std::string& schedule, std::size_t n,
                                       std::chrono::seconds limit = 15s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  auto fires = fires_of(relay, key_a, schedule);
  while (fires.size() < n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
    fires = fires_of(relay, key_a, schedule);
  }
  return fires;
}

TEST(Schedules, EveryTwoSecondsAcrossKillNineNoFireLostOrDoubledThenPauseResumeTrigger) {
  temp_dir dir;
  test_origin origin;
  auto relay = std::make_unique<relay_process>(dir, config_text(dir), key_a);
  ASSERT_NE(relay->port(), 0) << relay->log();
  auto created = relay->call("POST", "/v1/schedules", key_a,
                             target(origin, "/jobs/tick") + "X-Cron: */2 * * * * *\r\nX-Schedule-Id: tick\r\n", "{}");
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  auto body = json::parse(created->body);
  EXPECT_EQ(body["id"], "tick");
  EXPECT_EQ(body["cron"], "*/2 * * * * *");
  EXPECT_EQ(body["tz"], "UTC");
  auto next = parse_rfc3339(body["next_run_at"].get<std::string>());
  ASSERT_TRUE(next);
  EXPECT_EQ(*next % 2000, 0) << "fires on even seconds";

  auto before = wait_fires(*relay, "tick", 3);
  ASSERT_GE(before.size(), 3u) << relay->log();
  ASSERT_TRUE(relay->kill9());
  std::this_thread::sleep_for(5s);  // at least two fires are missed while it is down
  relay->start();
  ASSERT_NE(relay->port(), 0) << relay->log();
  ASSERT_TRUE(relay->wait_ready());
  auto after = wait_fires(*relay, "tick", before.size() + 3);
  ASSERT_GE(after.size(), before.size() + 3) << relay->log();

  int gaps = 0;
  std::int64_t prev = 0;
  for (const auto& [t, n] : after) {
    EXPECT_EQ(n, 1) << "fire " << format_rfc3339(t) << " made " << n << " jobs";
    EXPECT_EQ(t % 2000, 0) << format_rfc3339(t);
    if (prev && t - prev != 2000) {
      ++gaps;
      EXPECT_GE(t - prev, 4000) << "the downtime's gap is the only one, with the missed fires collapsed";
    }
    prev = t;
  }
  EXPECT_EQ(gaps, 1) << "one catch-up fire after the restart, carrying the last missed time";
  for (const auto& [t, n] : before) EXPECT_TRUE(after.count(t)) << "a fire made before the kill is gone";

  // Pause stops the fires; resume starts them again (no catch-up); trigger runs one now.
  auto paused = relay->call("POST", "/v1/schedules/tick/pause", key_a);
  ASSERT_TRUE(paused && paused->status == 200) << (paused ? paused->body : "");
  EXPECT_EQ(json::parse(paused->body)["paused"], true);
  auto at_pause = fires_of(*relay, key_a, "tick").size();
  std::this_thread::sleep_for(5s);
  EXPECT_EQ(fires_of(*relay, key_a, "tick").size(), at_pause) << "fired while paused";
  auto trig = relay->call("POST", "/v1/schedules/tick/trigger", key_a);
  ASSERT_TRUE(trig && trig->status == 202) << (trig ? trig->body : "");
  std::string job = json::parse(trig->body)["job_id"];
  auto j = relay->wait_terminal(job);
  EXPECT_EQ(j["status"], "delivered") << j.dump();
  EXPECT_EQ(j["schedule_id"], "tick");
  auto got = json::parse(relay->call("GET", "/v1/schedules/tick", key_a)->body);
  EXPECT_EQ(got["last_job_id"], job);
  EXPECT_EQ(got["paused"], true) << "a trigger leaves the timetable as it is";
  EXPECT_EQ(fires_of(*relay, key_a, "tick").size(), at_pause + 1);
  auto resumed = relay->call("POST", "/v1/schedules/tick/resume", key_a);
  ASSERT_TRUE(resumed && resumed->status == 200);
  EXPECT_FALSE(json::parse(resumed->body)["next_run_at"].is_null());
  EXPECT_GE(wait_fires(*relay, "tick", at_pause + 2).size(), at_pause + 2) << "no fire after resume";

  // Per tenant: another tenant neither sees nor replaces it, and gets its own under the same id.
  EXPECT_EQ(relay->call("GET", "/v1/schedules/tick", key_b)->status, 404);
  EXPECT_EQ(relay->call("POST", "/v1/schedules/tick/pause", key_b)->status, 404);
  auto theirs = relay->call("POST", "/v1/schedules", key_b, target(origin, "/b") + "X-Cron: @yearly\r\nX-Schedule-Id: tick\r\n");
  ASSERT_TRUE(theirs);
  EXPECT_EQ(theirs->status, 201) << theirs->body;
  auto list = json::parse(relay->call("GET", "/v1/schedules", key_b)->body);
  ASSERT_EQ(list["schedules"].size(), 1u);
  EXPECT_EQ(list["schedules"][0]["cron"], "@yearly");
  EXPECT_EQ(json::parse(relay->call("GET", "/v1/schedules/tick", key_a)->body)["cron"], "*/2 * * * * *");

  // The same id again replaces (200); delete keeps the jobs it made.
  auto replaced = relay->call("POST", "/v1/schedules", key_a, target(origin, "/jobs/tick2") + "X-Cron: 0 0 * * *\r\nX-Schedule-Id: tick\r\n");
  ASSERT_TRUE(replaced);
  EXPECT_EQ(replaced->status, 200) << replaced->body;
  EXPECT_EQ(json::parse(replaced->body)["request"]["url"], "http://127.0.0.1:" + std::to_string(origin.port()) + "/jobs/tick2");
  auto made = fires_of(*relay, key_a, "tick").size();
  EXPECT_EQ(relay->call("DELETE", "/v1/schedules/tick", key_a)->status, 200);
  EXPECT_EQ(relay->call("GET", "/v1/schedules/tick", key_a)->status, 404);
  EXPECT_EQ(relay->call("DELETE", "/v1/schedules/tick", key_a)->status, 404);
  EXPECT_EQ(fires_of(*relay, key_a, "tick").size(), made);
}

TEST(Schedules, BadDefinitionsAre400WithTheFieldNamed) {
  temp_dir dir;
  test_origin origin;
  relay_process relay(dir, config_text(dir), key_a);
  struct want {
    std::string headers;
    const char* code;
    const char* says;
  };
  for (const want& w : {want{"X-Cron: 61 * * * *\r\n", "invalid_cron", "minute"},
                        want{"X-Cron: * 25 * * *\r\n", "invalid_cron", "hour"},
                        want{"X-Cron: * * * * MOO\r\n", "invalid_cron", "day-of-week"},
                        want{"X-Cron: CRON_TZ=Mars/Olympus * * * * *\r\n", "invalid_cron", "timezone"},
                        want{"", "missing_cron", "X-Cron"},
                        want{"X-Cron: " + std::string(300, '1') + " * * * *\r\n", "invalid_cron", "at most 256 bytes"},
                        want{"X-Cron: * * * * *\r\nX-Schedule-Id: no spaces\r\n", "invalid_schedule_id", "X-Schedule-Id"},
                        want{"X-Cron: * * * * *\r\nX-Delay: 5s\r\n", "not_for_schedules", "X-Delay"},
                        want{"X-Cron: * * * * *\r\nX-Cron: * * * * *\r\n", "duplicate_header", "X-Cron"}}) {
    auto r = relay.call("POST", "/v1/schedules", key_a, target(origin, "/x") + w.headers);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << w.headers << r->body;
    auto e = json::parse(r->body)["error"];
    EXPECT_EQ(e["code"], w.code) << w.headers;
    EXPECT_NE(e["message"].get<std::string>().find(w.says), std::string::npos) << e.dump();
  }
  auto no_url = relay.call("POST", "/v1/schedules", key_a, "X-Cron: * * * * *\r\n");
  EXPECT_EQ(no_url->status, 400) << no_url->body;
  EXPECT_EQ(relay.call("GET", "/v1/schedules?color=red", key_a)->status, 400);
  EXPECT_EQ(relay.call("GET", "/v1/schedules/nope", key_a)->status, 404);
  EXPECT_EQ(relay.call("GET", "/v1/jobs?schedule=no%20spaces", key_a)->status, 400);
  auto ny = relay.call("POST", "/v1/schedules", key_a, target(origin, "/ny") + "X-Cron: CRON_TZ=America/New_York 30 9 * * MON-FRI\r\n");
  ASSERT_TRUE(ny);
  ASSERT_EQ(ny->status, 201) << ny->body;
  auto s = json::parse(ny->body);
  EXPECT_EQ(s["tz"], "America/New_York");
  EXPECT_EQ(s["id"].get<std::string>().rfind("sched_", 0), 0u);
}

}  // namespace
}  // namespace fetchrelay::test::schedules_test
