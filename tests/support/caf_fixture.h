// A deterministic CAF actor system for GoogleTest: the test coordinator with a simulated
// clock. (caf/test/dsl.hpp is not used: its expect() crashes under GoogleTest.)
#pragma once

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <memory>

#include "actors/system.h"

namespace fetchrelay::test {

class caf_fixture {
 public:
  caf_fixture() {
    actors::configure(cfg_, {1, true});
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    sched_ = &dynamic_cast<caf::scheduler::test_coordinator&>(sys_->scheduler());
  }

  caf::actor_system& sys() { return *sys_; }
  caf::scheduler::test_coordinator& sched() { return *sched_; }
  /// Runs every pending job; returns how many ran.
  size_t run() { return sched_->run(); }

 private:
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  caf::scheduler::test_coordinator* sched_ = nullptr;
};

}  // namespace fetchrelay::test
