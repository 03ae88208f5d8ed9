// The HTTP routes (DESIGN §2): validate, turn requests into actor messages, and answers into
// responses. The actors never see HTTP types.
#pragma once

#include <atomic>
#include <memory>

#include "actors/job_manager.h"
#include "actors/queues.h"
#include "actors/schedules.h"
#include "actors/store_actor.h"
#include "actors/system.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/destinations.h"
#include "core/metrics.h"
#include "core/qstash.h"
#include "app/router.h"
#include "http/server.h"
#include "persistence/cluster.h"

namespace fetchrelay::app {

struct api_deps {
  caf::actor_system* system = nullptr;
  actors::health_actor health;
  actors::manager_actor manager;
  actors::store_actor store;  // reads that no live actor answers (events, schedule lists)
  actors::schedules_actor schedules;
  actors::queues_actor queues;
  const config::relay_config* config = nullptr;
  std::shared_ptr<const wall_clock> clock;
  std::shared_ptr<std::atomic<bool>> ready;   // the store is open and accepts writes
  std::shared_ptr<std::atomic<bool>> loaded;  // the due index of the coming horizon is loaded
  std::shared_ptr<relay_metrics> metrics;
  std::shared_ptr<qstash::key_ring> qstash_keys;  // /v2 signing keys; null when qstash is off
  std::shared_ptr<const destination_board> board; // GET /v1/destinations; may be null
  std::shared_ptr<const metrics_history> history; // GET /v1/stats' minutes; may be null
  /// Several relays on PostgreSQL: the shards this node holds; null otherwise. A node that
  /// holds none (or is fenced) answers submissions 503 no_shards and /readyz 503.
  std::shared_ptr<const persistence::shard_ownership> ownership;
};

http::handler make_api_handler(api_deps deps);


}  // namespace fetchrelay::app
