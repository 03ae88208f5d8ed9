// Shard leases and membership on PostgreSQL (see cluster.h). Every time is the database's
// (now()), except the self-fencing deadline, which is the node's monotonic clock.
#include <algorithm>

#include "persistence/cluster.h"
#include "persistence/pg.h"

namespace fetchrelay::persistence {

// -- shard_ownership ----------------------------------------------------------------------------

void shard_ownership::confirm(std::map<int, std::int64_t> owned, clock::time_point sent) {
  std::lock_guard<std::mutex> lock(mu_);
  owned_ = std::move(owned);
  order_.clear();
  for (const auto& [s, e] : owned_) order_.push_back(s);
  confirmed_at_ = sent;
}

void shard_ownership::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  owned_.clear();
  order_.clear();
}

std::map<int, std::int64_t> shard_ownership::owned() const {
  std::lock_guard<std::mutex> lock(mu_);
  return owned_;
}

std::vector<int> shard_ownership::shards() const {
  std::lock_guard<std::mutex> lock(mu_);
  return order_;
}

bool shard_ownership::fenced(clock::time_point now) const {
  std::lock_guard<std::mutex> lock(mu_);
  return owned_.empty() || now - confirmed_at_ > fence_after_;
}

void shard_ownership::set_node_id(std::string id) {
  std::lock_guard<std::mutex> lock(mu_);
  node_id_ = std::move(id);
}

std::string shard_ownership::node_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return node_id_;
}

bool shard_ownership::holds(int shard) const {
  std::lock_guard<std::mutex> lock(mu_);
  return owned_.count(shard) > 0;
}

std::int64_t shard_ownership::epoch(int shard) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = owned_.find(shard);
  return it == owned_.end() ? -1 : it->second;
}

bool shard_ownership::may_deliver(int shard, clock::time_point now) const {
  std::lock_guard<std::mutex> lock(mu_);
  return !owned_.empty() && now - confirmed_at_ <= fence_after_ && owned_.count(shard) > 0;
}

int named_shard(std::string_view tenant, std::string_view name) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
  auto mix = [&](std::string_view s) {
    for (unsigned char ch : s) {
      h ^= ch;
      h *= 1099511628211ULL;
    }
  };
  mix(tenant);
  mix(std::string_view("\0", 1));
  mix(name);
  return static_cast<int>(h % static_cast<std::uint64_t>(postgres_shards));
}

int shard_ownership::next_shard() {
  std::lock_guard<std::mutex> lock(mu_);
  if (order_.empty()) return -1;
  return order_[next_++ % order_.size()];
}

// -- lease keeper -------------------------------------------------------------------------------

/// A connection pointed at the store's schema.
result<std::unique_ptr<pg::connection>> connect_to_store(const postgres_options& store);

namespace {

using pg::params;

/// A PostgreSQL interval from milliseconds, as text ("10000 milliseconds").
std::string interval(std::chrono::milliseconds d) { return std::to_string(d.count()) + " milliseconds"; }

class postgres_lease_keeper final : public lease_keeper {
 public:
  postgres_lease_keeper(std::unique_ptr<pg::connection> db, postgres_options store, cluster_options o,
                        std::shared_ptr<shard_ownership> own)
      : db_(std::move(db)), store_(std::move(store)), options_(std::move(o)), ownership_(std::move(own)) {
    ownership_->set_node_id(options_.node_id);
  }

  status join() override {
    if (auto s = connected(); !s) return s;
    auto r = db_->exec(
        "SELECT extract(epoch FROM (heartbeat_at + $2::text::interval - now()))::float8 > 0, "
        "ceil(extract(epoch FROM (heartbeat_at + $2::text::interval - now())))::int8 FROM fr_nodes WHERE node_id = $1",
        params().text(options_.node_id).text(interval(options_.lease)));
    if (!r) return r.error();
    if (r->count() > 0 && r->boolean(0, 0)) {
      return status(status_code::failed_precondition,
                    "another live node has the id \"" + options_.node_id + "\" (its heartbeat is within the lease; it " +
                        "lapses in " + std::to_string(r->int8(0, 1)) +
                        " s): give each node its own cluster.node_id, or wait for the old one's lease to lapse");
    }
    auto up = db_->exec("INSERT INTO fr_nodes (node_id, addr, heartbeat_at) VALUES ($1, $2, now()) "
                        "ON CONFLICT (node_id) DO UPDATE SET addr = excluded.addr, heartbeat_at = now()",
                        params().text(options_.node_id).text(options_.addr));
    return up ? status::ok() : up.error();
  }

  result<lease_change> renew() override {
    if (auto s = connected(); !s) return s;
    auto sent = shard_ownership::clock::now();
    auto before = ownership_->owned();
    pg::transaction tx(*db_);
    if (auto s = tx.begin(); !s) return s;
    const std::string lease = interval(options_.lease);
    auto beat = db_->exec("UPDATE fr_nodes SET heartbeat_at = now(), addr = $2 WHERE node_id = $1",
                          params().text(options_.node_id).text(options_.addr));
    if (!beat) return beat.error();
    // Every lease still ours is extended. One that lapsed but that nobody took is still ours
    // at the same epoch: no other node ran its recovery scan, so nothing was lost by waiting.
    auto held = db_->exec("UPDATE fr_shards SET lease_until = now() + $2::text::interval WHERE owner = $1 "
                          "RETURNING shard, epoch",
                          params().text(options_.node_id).text(lease));
    if (!held) return held.error();
    std::map<int, std::int64_t> owned;
    for (int i = 0; i < held->count(); ++i) owned[held->int4(i, 0)] = held->int8(i, 1);
    auto live = db_->exec("SELECT count(*) FROM fr_nodes WHERE heartbeat_at > now() - $1::text::interval",
                          params().text(lease));
    if (!live) return live.error();
    lease_change change;
    change.live_nodes = static_cast<int>(std::max<std::int64_t>(1, live->int8(0, 0)));
    std::size_t share = (postgres_shards + change.live_nodes - 1) / change.live_nodes;
    if (owned.size() > share) {
      // The highest numbers go, so that the shares settle the same way on every node.
      pg::array extras(pg::oid::int4);
      auto it = owned.end();
      for (std::size_t n = owned.size() - share; n > 0; --n) {
        --it;
        extras.add_int4(it->first);
        change.released.push_back(it->first);
      }
      auto r = db_->exec("UPDATE fr_shards SET owner = NULL, epoch = epoch + 1, lease_until = '-infinity' "
                         "WHERE owner = $1 AND shard = ANY($2::int4[])",
                         params().text(options_.node_id).arr(extras));
      if (!r) return r.error();
      for (int s : change.released) owned.erase(s);
    } else if (owned.size() < share) {
      auto r = db_->exec(
          "UPDATE fr_shards SET owner = $1, epoch = epoch + 1, lease_until = now() + $2::text::interval "
          "WHERE shard IN (SELECT shard FROM fr_shards WHERE owner IS NULL OR lease_until < now() "
          "ORDER BY shard LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING shard, epoch",
          params().text(options_.node_id).text(lease).int8(static_cast<std::int64_t>(share - owned.size())));
      if (!r) return r.error();
      for (int i = 0; i < r->count(); ++i) {
        owned[r->int4(i, 0)] = r->int8(i, 1);
        change.taken.push_back(r->int4(i, 0));
      }
    }
    if (auto s = tx.commit(); !s) return s;
    // A shard held before at another epoch was taken by another node meanwhile (then came back):
    // it is lost and taken, and needs its recovery scan again.
    for (const auto& [s, e] : before) {
      auto it = owned.find(s);
      bool released = std::find(change.released.begin(), change.released.end(), s) != change.released.end();
      if (released) continue;
      if (it == owned.end() || it->second != e) change.lost.push_back(s);
      if (it != owned.end() && it->second != e &&
          std::find(change.taken.begin(), change.taken.end(), s) == change.taken.end()) {
        change.taken.push_back(s);
      }
    }
    change.owned = owned.size();
    ownership_->confirm(std::move(owned), sent);
    return change;
  }

  status leave() override {
    ownership_->clear();
    if (auto s = connected(); !s) return s;
    pg::transaction tx(*db_);
    if (auto s = tx.begin(); !s) return s;
    auto r = db_->exec("UPDATE fr_shards SET owner = NULL, epoch = epoch + 1, lease_until = '-infinity' "
                       "WHERE owner = $1",
                       params().text(options_.node_id));
    if (!r) return r.error();
    auto n = db_->exec("DELETE FROM fr_nodes WHERE node_id = $1", params().text(options_.node_id));
    if (!n) return n.error();
    return tx.commit();
  }

 private:
  /// Connects again after a lost connection (the database restarted): the next renewal goes on.
  status connected() {
    if (db_ && !db_->broken()) return status::ok();
    auto c = connect_to_store(store_);
    if (!c) return c.error();
    db_ = std::move(c.value());
    return status::ok();
  }

  std::unique_ptr<pg::connection> db_;
  postgres_options store_;
  cluster_options options_;
  std::shared_ptr<shard_ownership> ownership_;
};

}  // namespace

result<std::unique_ptr<pg::connection>> connect_to_store(const postgres_options& store) {
  auto c = pg::connection::open(store.dsn);
  if (!c) return c.error();
  if (!store.schema.empty()) {
    if (auto s = (*c)->run("SET search_path TO " + store.schema); !s) return s;
  }
  return c;
}

result<std::unique_ptr<lease_keeper>> open_lease_keeper(const postgres_options& store, const cluster_options& cluster,
                                                        std::shared_ptr<shard_ownership> ownership) {
  if (cluster.node_id.empty()) return invalid_argument("cluster.node_id must not be empty");
  if (cluster.fence_after >= cluster.lease) return invalid_argument("the fencing deadline must be shorter than the lease");
  auto m = migrate_postgres(store);  // checks the schema's name, and that the tables are there
  if (!m) return m.error();
  auto c = connect_to_store(store);
  if (!c) return c.error();
  return std::unique_ptr<lease_keeper>(
      std::make_unique<postgres_lease_keeper>(std::move(c.value()), store, cluster, std::move(ownership)));
}

}  // namespace fetchrelay::persistence
