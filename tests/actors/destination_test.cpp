// Destination actors and the global in-flight cap, against real Beast targets on loopback.
#include "actors/destination_actor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "actors/system.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::actors {
namespace {

using namespace std::chrono_literals;

TEST(Destination, TheGlobalCapHoldsAcrossOriginsAndEveryAttemptStillRuns) {
  test::test_origin a_origin, b_origin;
  http::client_options o;
  o.allow_networks = {*parse_cidr("127.0.0.0/8")};
  auto client = std::shared_ptr<http::client>(std::move(http::client::create(o).value()));
  caf::actor_system_config cfg;
  configure(cfg, {1, false});
  caf::actor_system sys(cfg);
  auto gate = std::make_shared<inflight_gate>(1);
  auto metrics = std::make_shared<relay_metrics>();
  auto clock = std::make_shared<system_wall_clock>();
  auto outcomes = std::make_shared<std::atomic<int>>(0);
  auto timeouts = std::make_shared<std::atomic<int>>(0);
  auto collector = sys.spawn(
      [](caf::event_based_actor*, std::shared_ptr<std::atomic<int>> n, std::shared_ptr<std::atomic<int>> t) -> caf::behavior {
        return {[n, t](outcome_atom, const attempt_result& r) {
          if (r.error_class == "timeout") ++*t;
          ++*n;
        }};
      },
      outcomes, timeouts);
  std::vector<caf::actor> dests;
  for (auto* origin : {&a_origin, &b_origin}) {
    std::string key = "http://127.0.0.1:" + std::to_string(origin->port());
    dests.push_back(sys.spawn(destination_actor, key, client, 8, gate, clock, metrics));
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
  // At most one attempt is ever in flight: what the targets received never runs more than one
  // ahead of what has finished.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  int max_ahead = 0;
  while (outcomes->load() < 6 && std::chrono::steady_clock::now() < deadline) {
    int received = static_cast<int>(a_origin.received().size() + b_origin.received().size());
    max_ahead = std::max(max_ahead, received - outcomes->load());
    EXPECT_LE(metrics->in_flight.load(), 1);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(outcomes->load(), 6);
  EXPECT_EQ(timeouts->load(), 6);
  EXPECT_EQ(max_ahead, 1);
  EXPECT_EQ(a_origin.received().size(), 3u);
  EXPECT_EQ(b_origin.received().size(), 3u);
  EXPECT_EQ(gate->used(), 0) << "every slot came back";
  for (auto& d : dests) caf::anon_send_exit(d, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(collector, caf::exit_reason::user_shutdown);
}

}  // namespace
}  // namespace fetchrelay::actors
