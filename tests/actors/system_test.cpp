#include "actors/system.h"

#include <gtest/gtest.h>

#include "core/version.h"
#include "tests/support/caf_fixture.h"

namespace fetchrelay::actors::system_test {
namespace {

TEST(Configure, SetsWorkerThreadsFromConfig) {
  caf::actor_system_config cfg;
  configure(cfg, {3, false});
  EXPECT_EQ(caf::get_or(cfg, "scheduler.max-threads", size_t{0}), 3u);
}

TEST(HealthActor, AnswersPingThroughTheCompletion) {
  test::caf_fixture f;
  auto start = std::chrono::steady_clock::now();
  auto h = f.sys().spawn(health, start);
  std::optional<health_report> got;
  caf::anon_send(h, ping_atom::value, completion<health_report>([&](health_report r) { got = r; }));
  EXPECT_FALSE(got.has_value()) << "answered before the scheduler ran";
  f.run();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->version, std::string(version()));
  EXPECT_GE(got->uptime_ms, 0);
  caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
  f.run();
}

}  // namespace
}  // namespace fetchrelay::actors::system_test
