// Several relays on one PostgreSQL database: shard leases, fencing and membership.
//
// The job space is cut into postgres_shards logical shards (fr_shards). A node holds a lease on
// some of them, renewed in one statement every second with the database's clock (never a
// node's): lease_until = now() + lease. Taking a shard bumps its epoch. The store of a node
//   * gives each new job one of the node's own shards (round robin), so intake never hops nodes;
//   * scans only its own shards for due jobs and schedules;
//   * fences every write: the transaction first reads the epochs of the shards it touches
//     FOR SHARE and rolls back if one moved, so nothing a stale owner writes lands after the new
//     owner's recovery scan; and it writes nothing once fence_after has passed (monotonic clock)
//     since the last renewal it sent that succeeded (self-fencing, before the lease can expire).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/shared_tokens.h"
#include "core/status.h"
#include "persistence/store.h"

namespace fetchrelay::persistence {

/// The shards a node holds and their epochs, shared by its lease keeper (which writes it) and its
/// store (which reads it). Thread-safe.
class shard_ownership {
 public:
  using clock = std::chrono::steady_clock;

  explicit shard_ownership(std::chrono::milliseconds fence_after) : fence_after_(fence_after) {}

  /// What the renewal sent at `sent` confirmed (the node holds exactly these, at these epochs).
  void confirm(std::map<int, std::int64_t> owned, clock::time_point sent);
  /// Forgets every shard at once (a release, or a renewal that found none).
  void clear();

  std::map<int, std::int64_t> owned() const;
  std::vector<int> shards() const;
  /// True when no write may start: nothing held, or fence_after passed since the last
  /// confirmed renewal was sent.
  bool fenced(clock::time_point now = clock::now()) const;
  /// The next shard of the node's own for a new job (round robin); -1 if it holds none.
  int next_shard();
  /// The node's id (cluster.node_id), known once it joined; "" before.
  void set_node_id(std::string id);
  std::string node_id() const;
  /// True if the node holds `shard` (fenced or not).
  bool holds(int shard) const;
  /// The epoch at which the node holds `shard`; -1 if it does not. A job actor remembers it: a
  /// different one later means the shard was lost and taken again meanwhile, and the actor's
  /// memory of its job may be older than what another node wrote.
  std::int64_t epoch(int shard) const;
  /// True if the node may deliver a job of `shard` now: it holds the shard and is not fenced.
  bool may_deliver(int shard, clock::time_point now = clock::now()) const;
  /// The nodes alive at the last renewal (this one included; 1 before the first).
  void set_live_nodes(int n) { live_nodes_.store(std::max(1, n), std::memory_order_relaxed); }
  int live_nodes() const { return live_nodes_.load(std::memory_order_relaxed); }

 private:
  mutable std::mutex mu_;
  std::chrono::milliseconds fence_after_;
  std::map<int, std::int64_t> owned_;
  std::vector<int> order_;  // owned_'s keys, for the round robin
  std::string node_id_;
  std::size_t next_ = 0;
  clock::time_point confirmed_at_{};
  std::atomic<int> live_nodes_{1};
};

/// The shard of a named thing (a queue or a schedule): the same on every node, so that one owner
/// keeps a queue's order.
int named_shard(std::string_view tenant, std::string_view name);

struct cluster_options {
  std::string node_id;  // unique among live nodes; default <hostname>:<port>
  std::string addr;     // where other nodes reach this node's API (host:port)
  std::chrono::milliseconds lease{10'000};
  std::chrono::milliseconds fence_after{8'000};  // < lease: stop writing before the lease can lapse
};

/// What one renewal changed.
struct lease_change {
  std::vector<int> taken;     // new to this node: run the recovery scan for them
  std::vector<int> lost;      // taken by another node (or lapsed and moved) since the last renewal
  std::vector<int> released;  // given up to even out the shares
  std::size_t owned = 0;      // held after the renewal
  int live_nodes = 0;         // nodes with a heartbeat within the lease, this one included
};

/// One node's membership and leases, on a connection of its own (a renewal never waits behind
/// a commit). Not thread-safe: one thread (or actor) drives it.
class lease_keeper {
 public:
  virtual ~lease_keeper() = default;
  /// Registers the node. Refused (failed_precondition, saying how long to wait) while another
  /// live node has its id: a heartbeat within the lease.
  virtual status join() = 0;
  /// One round: the heartbeat, the renewal of every lease held, then shards taken (free or
  /// lapsed) up to ⌈shards / live nodes⌉, or the extras released. Confirms the ownership.
  virtual result<lease_change> renew() = 0;
  /// Gives every shard up at once (after a graceful stop) and leaves the membership.
  virtual status leave() = 0;
};

result<std::unique_ptr<lease_keeper>> open_lease_keeper(const postgres_options& store, const cluster_options& cluster,
                                                        std::shared_ptr<shard_ownership> ownership);

/// The token buckets of the relays' rate limits (core/shared_tokens.h) in fr_buckets, leased in
/// the background by a thread with a connection of its own; `ownership` tells the live nodes.
result<std::unique_ptr<shared_tokens>> open_shared_tokens(const postgres_options& store,
                                                          std::shared_ptr<const shard_ownership> ownership);

}  // namespace fetchrelay::persistence
