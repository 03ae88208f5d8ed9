// The running relay: store, actors and HTTP server wired from a config (DESIGN §1). `serve`
// adds the process concerns (logging, descriptor limit, signals, port file); tests start a
// relay in-process when they need a hook the process does not have (an injected store fault).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "config/config.h"
#include "core/status.h"
#include "persistence/store.h"

namespace fetchrelay::plugins {
class registry;
}

namespace fetchrelay::app {

/// Loads plugins.load from plugins.search_path and checks every pipeline block against its
/// plugin's schema; the error's message has one line per problem.
result<std::shared_ptr<const plugins::registry>> load_plugins(const config::relay_config& cfg);

struct relay_hooks {
  std::shared_ptr<persistence::fault_injection> faults;  // tests only
  std::chrono::milliseconds reopen_every{1000};           // after a failed store write
};

class relay {
 public:
  /// Opens the store, starts the actors (the scheduler loads the coming horizon) and the
  /// listener. Errors: the store cannot be opened (with what to do), the listener cannot bind,
  /// the delivery client cannot be set up.
  static result<std::unique_ptr<relay>> start(const config::relay_config& cfg, relay_hooks hooks = {});
  ~relay();  // stops the listener at once if still running, then the actors, and waits for them

  relay(const relay&) = delete;
  relay& operator=(const relay&) = delete;

  std::uint16_t port() const;
  std::string bound_address() const;
  /// Stops accepting; requests and attempts in flight get `grace` to finish. Any thread; a
  /// second call with a shorter grace hurries.
  void shutdown(std::chrono::milliseconds grace);
  /// Blocks until the server has stopped.
  void wait();
  /// Graceful stop of delivery (DESIGN §8): no new attempt starts; attempts in flight may finish
  /// and their outcomes are written, until `deadline`. An attempt still running then is
  /// abandoned: its job stays due and runs again after a restart. The deadline is the end of
  /// the grace given to shutdown(). Call after wait().
  void drain_deliveries();

  struct impl;

 private:
  explicit relay(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace fetchrelay::app
