#include "actors/system.h"

#include <algorithm>

#include "core/version.h"

namespace fetchrelay::actors {

void configure(caf::actor_system_config& cfg, const system_options& options) {
  cfg.set("scheduler.max-threads", static_cast<caf::config_value::integer>(options.worker_threads));
  if (options.deterministic) cfg.set("scheduler.policy", caf::atom("testing"));
}

health_actor::behavior_type health(health_actor::pointer self,
                                   std::chrono::steady_clock::time_point started) {
  (void)self;
  return {
      [started](ping_atom, const completion<health_report>& reply) {
        // The clock is read here, not passed in: uptime is informational, not tested for time.
        auto up = std::chrono::steady_clock::now() - started;
        reply(health_report{std::string(version()),
                            std::chrono::duration_cast<std::chrono::milliseconds>(up).count()});
      },
  };
}

sampler_actor::behavior_type metrics_sampler(sampler_actor::pointer self, std::shared_ptr<metrics_history> history,
                                             std::shared_ptr<const relay_metrics> metrics,
                                             std::shared_ptr<const wall_clock> clock, std::chrono::milliseconds every) {
  // Every `every`, and just after each minute starts, so a minute's snapshot is its start's.
  auto tick = [self, history, metrics, clock, every] {
    std::int64_t now = clock->now_ms();
    history->sample(now, *metrics);
    auto to_next_minute = std::chrono::milliseconds(60'000 - now % 60'000 + 20);
    self->delayed_send(self, std::min(every, to_next_minute), sample_atom::value);
  };
  tick();
  return {
      [tick](sample_atom) { tick(); },
  };
}

}  // namespace fetchrelay::actors
