// The plugin host (DESIGN §5): the loader and registry of plugin modules, and the chain runner
// that calls one policy's plugins for one origin.
//
// Modules are loaded once at start-up with RTLD_NOW | RTLD_LOCAL and never unloaded (which also
// keeps AddressSanitizer's reports and stack traces whole). A chain owns one instance per
// pipeline step and is used by one destination actor, so plugins need no locks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/clock.h"
#include "core/job.h"
#include "core/metrics.h"
#include "core/shared_tokens.h"
#include "core/status.h"
#include "fetchrelay/plugin.h"

namespace fetchrelay::plugins {

/// A loaded plugin module.
struct module {
  std::string name;
  std::string path;
  const fr_plugin_v1* table = nullptr;
  config::json schema;
};

/// Loads one module from `path` and checks it: the entry symbol, the ABI version, that it calls
/// itself `expected_name`, and that its config schema is JSON. Errors name the file and what to do.
result<module> load_module(const std::string& path, const std::string& expected_name);

class registry {
 public:
  /// Loads each of `names` from the first directory of `search_path` holding <name>.so. A name
  /// that is found nowhere is an error naming every directory searched.
  static result<std::shared_ptr<const registry>> load(const std::vector<std::string>& names,
                                                      const std::vector<std::string>& search_path);
  static std::shared_ptr<const registry> empty() { return std::make_shared<registry>(); }

  const module* find(std::string_view name) const;
  void add(module m) { modules_[m.name] = std::move(m); }

  /// Checks each policy's pipeline blocks (policy name → steps) against their plugin's schema,
  /// and has the plugin accept them; errors carry the config path
  /// (policies.<name>.pipeline[i].<plugin>.<field>).
  void check(const std::map<std::string, std::vector<config::plugin_step>>& pipelines,
             std::vector<config::config_error>& errors) const;

 private:
  std::map<std::string, module, std::less<>> modules_;
};

/// What the plugins see of one attempt; fr_attempt points at one of these.
struct attempt_data {
  std::string method = "POST";
  std::string url;
  std::string job_id;
  std::string tenant;
  std::string policy = "default";
  std::uint32_t number = 1;
  std::vector<header_pair> headers;
  std::string body;
};

struct outcome_data {
  int status = 0;
  std::string error_class;
  std::int64_t retry_after_ms = -1;  // absolute; -1: none
  std::int64_t duration_ms = 0;
};

/// What plugins may use of the host.
struct services {
  std::shared_ptr<const wall_clock> clock;
  std::function<std::uint64_t()> random;    // null: a per-chain generator seeded from random_device
  std::shared_ptr<relay_metrics> metrics;   // plugin counters; may be null
  std::string labels;                       // on every plugin metric, e.g. origin="…",policy="…"
  /// Told every gauge the plugins set, as `<plugin>_<name>` (the destinations board shows a
  /// circuit breaker's state from it); may be null.
  std::function<void(std::string_view name, std::int64_t value)> on_gauge;
  /// Token buckets shared by the relays of a cluster (take_tokens); null: one relay on its own.
  std::shared_ptr<shared_tokens> tokens;
};

class chain {
 public:
  struct verdict {
    fr_verdict_kind kind = FR_PROCEED;
    std::int64_t defer_until_ms = 0;
    std::string reason;
    std::size_t proceeded = 0;  // plugins whose on_attempt proceeded: they get on_outcome
    std::string by;             // the plugin that deferred or rejected
  };

  /// One instance per step, configured by its block (defaults applied). An error names the
  /// policy, the step and the plugin's message.
  static result<std::unique_ptr<chain>> create(const registry& r, const std::string& policy,
                                               const std::vector<config::plugin_step>& steps, services s);
  ~chain();
  chain(const chain&) = delete;
  chain& operator=(const chain&) = delete;

  bool empty() const { return steps_.empty(); }
  /// on_attempt in pipeline order until a verdict is not FR_PROCEED.
  verdict on_attempt(attempt_data& a);
  /// on_outcome in reverse order for the first `proceeded` plugins.
  void on_outcome(const attempt_data& a, const outcome_data& o, std::size_t proceeded);

  struct step;  // public for the host callbacks

 private:
  chain() = default;
  std::vector<std::unique_ptr<step>> steps_;
};

}  // namespace fetchrelay::plugins
