// Destination actors and the global in-flight cap, against real Beast targets on loopback.
#include "actors/destination_actor.h"
#include "http/client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <thread>
#include <vector>

#include "actors/system.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::actors::destination_test {
namespace {

using namespace std::chrono_literals;

/// A delivery client allowed to reach loopback targets.
std::shared_ptr<http::client> loopback_client() {
  http::client_options o;
  o.allow_networks = {*parse_cidr("127.0.0.0/8")};
  return std::shared_ptr<http::client>(std::move(http::client::create(o).value()));
}

/// What a collector actor saw of the outcomes sent to it.
struct tally {
  std::atomic<int> outcomes{0}, ok{0}, timeouts{0};
};

caf::actor spawn_collector(caf::actor_system& sys, std::shared_ptr<tally> seen) {
  // `seen` goes as a spawn argument: CAF 0.17 binds a null tuple for an argument-less spawn (UBSan).
  return sys.spawn(
      [](caf::event_based_actor*, std::shared_ptr<tally> t) -> caf::behavior {
        return {[t](outcome_atom, const attempt_result& r) {
          if (r.status == 200) ++t->ok;
          if (r.kind == error_class::timeout) ++t->timeouts;
          ++t->outcomes;
        }};
      },
      std::move(seen));
}

TEST(Destination, TheGlobalCapHoldsAcrossOriginsAndEveryAttemptStillRuns) {
  test::test_origin a_origin, b_origin;
  auto client = loopback_client();
  caf::actor_system_config cfg;
  configure(cfg, {1, false});
  caf::actor_system sys(cfg);
  auto gate = std::make_shared<inflight_gate>(1);
  auto metrics = std::make_shared<relay_metrics>();
  auto clock = std::make_shared<system_wall_clock>();
  auto seen = std::make_shared<tally>();
  auto collector = spawn_collector(sys, seen);
  std::vector<destination_actor> dests;
  for (auto* origin : {&a_origin, &b_origin}) {
    std::string key = "http://127.0.0.1:" + std::to_string(origin->port());
    dests.push_back(sys.spawn(destination_actor_impl, destination_options{key, client, 8, gate, nullptr, clock, metrics}));
    for (int i = 0; i < 3; ++i) {
      attempt_request req;
      req.job_id = "job_" + std::to_string(i);
      req.method = "GET";
      req.url = key + "/hang";
      req.timeout = 200ms;
      req.reply_to = collector;
      caf::anon_send(dests.back(), deliver_atom::value, std::move(req));
    }
  }
  // At most one attempt is ever in flight. (Comparing what the targets received with the outcomes
  // the collector has counted is not a measure of it: the next attempt may reach its target before
  // the collector has read the last outcome, seen once under ASan.)
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (seen->outcomes.load() < 6 && std::chrono::steady_clock::now() < deadline) {
    EXPECT_LE(metrics->in_flight.load(), 1);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(seen->outcomes.load(), 6);
  EXPECT_EQ(seen->timeouts.load(), 6);
  // One at a time, each held until its 200 ms timeout: the six requests reached the targets one
  // after another, never two together (with two slots they would come in pairs).
  std::vector<std::chrono::system_clock::time_point> arrivals;
  for (auto* origin : {&a_origin, &b_origin}) {
    for (const auto& r : origin->received()) arrivals.push_back(r.at);
  }
  std::sort(arrivals.begin(), arrivals.end());
  for (std::size_t i = 1; i < arrivals.size(); ++i) {
    EXPECT_GE(arrivals[i] - arrivals[i - 1], 50ms) << "requests " << i - 1 << " and " << i << " overlapped";
  }
  EXPECT_EQ(a_origin.received().size(), 3u);
  EXPECT_EQ(b_origin.received().size(), 3u);
  EXPECT_EQ(gate->used(), 0) << "every slot came back";
  for (auto& d : dests) caf::anon_send_exit(d, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(collector, caf::exit_reason::user_shutdown);
}

// Attempts without plugins are settled on the client's thread; the destination hears of it only
// when it has a queue to pump. None may be left in the queue, and the origin's cap must hold.
TEST(Destination, AQueuePastTheOriginCapDrainsCompletelyAndTheCapHolds) {
  test::test_origin origin;
  auto client = loopback_client();
  caf::actor_system_config cfg;
  configure(cfg, {1, false});
  caf::actor_system sys(cfg);
  auto metrics = std::make_shared<relay_metrics>();
  auto clock = std::make_shared<system_wall_clock>();
  auto seen = std::make_shared<tally>();
  auto collector = spawn_collector(sys, seen);
  std::string key = "http://127.0.0.1:" + std::to_string(origin.port());
  auto dest = sys.spawn(destination_actor_impl, destination_options{key, client, 2, nullptr, nullptr, clock, metrics});
  constexpr int n = 200;
  for (int i = 0; i < n; ++i) {
    attempt_request req;
    req.job_id = "job_" + std::to_string(i);
    req.method = "GET";
    req.url = key + "/ok";
    req.timeout = 5s;
    req.reply_to = collector;
    caf::anon_send(dest, deliver_atom::value, std::move(req));
  }
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (seen->outcomes.load() < n && std::chrono::steady_clock::now() < deadline) {
    EXPECT_LE(metrics->in_flight.load(), 2);
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(seen->outcomes.load(), n) << "attempts left in the queue";
  EXPECT_EQ(seen->ok.load(), n);
  EXPECT_EQ(origin.received().size(), static_cast<std::size_t>(n));
  EXPECT_EQ(metrics->in_flight.load(), 0);
  EXPECT_EQ(static_cast<long long>(metrics->attempts[static_cast<size_t>(attempt_class::s2xx)].load()), n);
  caf::anon_send_exit(dest, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(collector, caf::exit_reason::user_shutdown);
}

TEST(Destination, PluginsChangeTheRequestOrStopItBeforeItIsSent) {
  test::test_origin origin;
  auto client = loopback_client();
  auto reg = plugins::registry::load({"stamp", "defer", "throws"}, {FETCHRELAY_TEST_PLUGIN_DIR});
  ASSERT_TRUE(reg.is_ok()) << reg.error().message();
  auto clock = std::make_shared<manual_wall_clock>(5'000);
  auto metrics = std::make_shared<relay_metrics>();
  auto pl = std::make_shared<pipeline_set>();
  pl->registry = reg.value();
  pl->steps["stamped"] = {{"stamp", config::json::object()}};
  pl->steps["slow"] = {{"stamp", config::json::object()}, {"defer", {{"for_ms", 700}}}};
  pl->steps["broken"] = {{"throws", config::json::object()}};
  pl->services = {clock, nullptr, metrics};

  caf::actor_system_config cfg;
  configure(cfg, {1, false});
  caf::actor_system sys(cfg);
  std::string key = "http://127.0.0.1:" + std::to_string(origin.port());
  auto dest = sys.spawn(destination_actor_impl, destination_options{key, client, 8, nullptr, pl, clock, metrics});
  std::vector<std::string> policies = {"default", "stamped", "slow", "broken"};
  // One attempt per policy, one at a time, each answered to an actor of its own.
  std::map<std::string, attempt_result> got;
  for (const auto& p : policies) {
    auto done = std::make_shared<std::promise<attempt_result>>();
    auto waiter = sys.spawn(
        [](caf::event_based_actor*, std::shared_ptr<std::promise<attempt_result>> d) -> caf::behavior {
          return {[d](outcome_atom, attempt_result& a) { d->set_value(std::move(a)); }};
        },
        done);
    attempt_request req;
    req.job_id = "job_" + p;
    req.method = "POST";
    req.url = key + "/echo";
    req.policy = p;
    req.attempt = 2;
    req.timeout = 5s;
    req.reply_to = waiter;
    caf::anon_send(dest, deliver_atom::value, std::move(req));
    auto f = done->get_future();
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready) << p;
    got[p] = f.get();
    caf::anon_send_exit(waiter, caf::exit_reason::user_shutdown);
  }
  auto received = origin.received();
  ASSERT_EQ(received.size(), 2u) << "only default and stamped were sent";
  EXPECT_EQ(received[0].headers.count("x-stamp"), 0u);
  EXPECT_EQ(received[1].headers["x-stamp"], "5000/2/stamped");
  EXPECT_EQ(got["stamped"].status, 200);
  EXPECT_TRUE(got["slow"].deferred);
  EXPECT_EQ(got["slow"].defer_until_ms, 5'700);
  EXPECT_EQ(got["slow"].defer_reason, "test: waiting");
  EXPECT_EQ(got["broken"].kind, error_class::rejected);
  EXPECT_EQ(got["broken"].error, "throws threw: boom");
  std::string text = metrics->render();
  std::string origin_label = "{origin=\"" + key + "\",policy=";
  EXPECT_NE(text.find("fetchrelay_plugin_stamp_succeeded_total" + origin_label + "\"stamped\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("fetchrelay_plugin_stamp_not_sent_total" + origin_label + "\"slow\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("fetchrelay_deferrals_total{plugin=\"defer\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("fetchrelay_attempts_total{outcome=\"rejected\"} 1\n"), std::string::npos) << text;
  caf::anon_send_exit(dest, caf::exit_reason::user_shutdown);
}

}  // namespace
}  // namespace fetchrelay::actors::destination_test
