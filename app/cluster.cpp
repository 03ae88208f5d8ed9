#include "app/cluster.h"

#include <spdlog/spdlog.h>

namespace fetchrelay::app {
namespace {

void log_change(const persistence::lease_change& c) {
  if (c.taken.empty() && c.lost.empty() && c.released.empty()) return;
  spdlog::info("cluster: took {} shard(s), lost {}, released {}; holding {} of {} with {} live node(s)", c.taken.size(),
               c.lost.size(), c.released.size(), c.owned, persistence::postgres_shards, c.live_nodes);
}

}  // namespace

cluster_member::cluster_member(std::unique_ptr<persistence::lease_keeper> keeper, persistence::cluster_options options,
                               on_change changed)
    : keeper_(std::move(keeper)), options_(std::move(options)), changed_(std::move(changed)) {}

result<std::unique_ptr<cluster_member>> cluster_member::start(const persistence::postgres_options& store,
                                                              const persistence::cluster_options& cluster,
                                                              std::shared_ptr<persistence::shard_ownership> ownership,
                                                              on_change changed) {
  auto k = persistence::open_lease_keeper(store, cluster, std::move(ownership));
  if (!k) return k.error();
  auto deadline = std::chrono::steady_clock::now() + cluster.lease + std::chrono::seconds(1);
  bool said = false;
  for (;;) {
    status s = (*k)->join();
    if (s.is_ok()) break;
    if (s.code() != status_code::failed_precondition || std::chrono::steady_clock::now() >= deadline) return s;
    if (!said) spdlog::warn("cluster: {}; waiting", s.message());
    said = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  auto first = (*k)->renew();
  if (!first) return first.error();
  spdlog::info("cluster: joined as \"{}\"", cluster.node_id);
  log_change(*first);
  if (changed) changed(*first);
  auto m = std::make_unique<cluster_member>(std::move(k.value()), cluster, std::move(changed));
  m->thread_ = std::thread([p = m.get()] { p->run(); });
  return m;
}

cluster_member::~cluster_member() { stop(); }

void cluster_member::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void cluster_member::leave() {
  stop();
  if (auto s = keeper_->leave(); !s) {
    spdlog::warn("cluster: could not hand the shards back ({}); they move when the lease lapses", s.message());
  } else {
    spdlog::info("cluster: left; every shard handed back");
  }
}

void cluster_member::run() {
  auto every = std::max(options_.lease / 10, std::chrono::milliseconds(100));
  int failures = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, every, [this] { return stopping_; })) {
    lock.unlock();
    auto r = keeper_->renew();
    if (!r) {
      // Logged the first time and then every tenth: the node fences itself meanwhile.
      if (failures++ % 10 == 0) spdlog::warn("cluster: lease renewal failed: {}", r.error().message());
    } else {
      if (failures > 0) spdlog::info("cluster: lease renewal works again after {} failure(s)", failures);
      failures = 0;
      log_change(*r);
      if (changed_ && (!r->taken.empty() || !r->lost.empty() || !r->released.empty())) changed_(*r);
    }
    lock.lock();
  }
}

}  // namespace fetchrelay::app
