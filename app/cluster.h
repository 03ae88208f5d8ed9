// A relay's membership of a PostgreSQL cluster: joins under its node id, holds its shard leases
// with a renewal every tenth of the lease on a thread of its own (never behind a commit), and
// tells the relay what changed, so that the scheduler scans shards it took.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "persistence/cluster.h"

namespace fetchrelay::app {

class cluster_member {
 public:
  using on_change = std::function<void(const persistence::lease_change&)>;

  /// Joins (waiting up to a lease and a second while a previous instance with the same id is
  /// still live, as after a kill -9 and a quick restart), renews once so the node holds its
  /// share before it serves, then keeps renewing. `changed` runs on the renewal thread (and once
  /// here) whenever shards were taken, lost or released.
  static result<std::unique_ptr<cluster_member>> start(const persistence::postgres_options& store,
                                                       const persistence::cluster_options& cluster,
                                                       std::shared_ptr<persistence::shard_ownership> ownership,
                                                       on_change changed);
  ~cluster_member();  // stops renewing; the leases lapse by themselves

  /// Stops renewing and gives every shard back at once (a graceful stop): another node takes
  /// them on its next renewal instead of waiting for the lease to lapse.
  void leave();

  cluster_member(std::unique_ptr<persistence::lease_keeper> keeper, persistence::cluster_options options,
                 on_change changed);

 private:
  void run();
  void stop();

  std::unique_ptr<persistence::lease_keeper> keeper_;
  persistence::cluster_options options_;
  on_change changed_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fetchrelay::app
