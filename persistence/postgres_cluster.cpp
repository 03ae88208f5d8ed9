// Shard leases and membership on PostgreSQL (see cluster.h). Every time is the database's
// (now()), except the self-fencing deadline, which is the node's monotonic clock.
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

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
  // Runs of 64 jobs per shard: a group commit then touches a few shards, not one per job, so it
  // updates a few counter rows and reads a few epochs (evenly spread all the same).
  return order_[(next_++ / 64) % order_.size()];
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
    // Rows are locked in shard order, as a commit's fencing read locks them (FOR SHARE ... ORDER
    // BY shard): two orders would deadlock a renewal with a commit of the same node.
    auto held = db_->exec("UPDATE fr_shards SET lease_until = now() + $2::text::interval WHERE shard IN (SELECT shard "
                          "FROM fr_shards WHERE owner = $1 ORDER BY shard FOR NO KEY UPDATE) RETURNING shard, epoch",
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
    ownership_->set_live_nodes(change.live_nodes);
    return change;
  }

  status leave() override {
    ownership_->clear();
    if (auto s = connected(); !s) return s;
    pg::transaction tx(*db_);
    if (auto s = tx.begin(); !s) return s;
    auto r = db_->exec("UPDATE fr_shards SET owner = NULL, epoch = epoch + 1, lease_until = '-infinity' "
                       "WHERE shard IN (SELECT shard FROM fr_shards WHERE owner = $1 ORDER BY shard FOR NO KEY UPDATE)",
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


// -- shared token buckets -----------------------------------------------------------------------

/// What a node holds of one bucket, and what it asks of the database next.
struct bucket_lease {
  std::int64_t tokens = 0;                         // leased here and not spent
  std::chrono::steady_clock::time_point expires{};  // leased tokens go then (one second after the ask)
  double rate = 0;
  std::int64_t burst = 1;
  bool asking = false;           // a lease is wanted
  std::int64_t pause_until = 0;  // a pause to write (0: none)
};

class postgres_shared_tokens final : public shared_tokens {
 public:
  postgres_shared_tokens(postgres_options store, std::shared_ptr<const shard_ownership> own)
      : store_(std::move(store)), ownership_(std::move(own)) {
    worker_ = std::thread([this] { run(); });
  }
  ~postgres_shared_tokens() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  std::int64_t take(const std::string& key, std::int64_t want, double rate_per_s, std::int64_t burst) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto& b = buckets_[key];
    b.rate = rate_per_s;
    b.burst = burst;
    if (std::chrono::steady_clock::now() >= b.expires) b.tokens = 0;
    std::int64_t n = std::min(want, b.tokens);
    b.tokens -= n;
    if (b.tokens == 0 && !b.asking) {
      b.asking = true;
      cv_.notify_one();
    }
    return n;
  }

  void pause(const std::string& key, std::int64_t until_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto& b = buckets_[key];
    b.tokens = 0;  // what is leased here is not spent either
    b.pause_until = std::max(b.pause_until, until_ms);
    cv_.notify_one();
  }

  int live_nodes() const override { return ownership_ ? ownership_->live_nodes() : 1; }

 private:
  struct ask {
    std::string key;
    double rate;
    std::int64_t burst;
    bool lease;
    std::int64_t pause_until;
  };

  /// Leases in rounds: every bucket that ran dry (or has a pause to write) in one pass, at most
  /// one pass per 10 ms; a failure waits a second (nothing is granted meanwhile).
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stop_ || pending(); });
      if (stop_) break;
      std::vector<ask> asks;
      for (auto& [key, b] : buckets_) {
        if (!b.asking && b.pause_until == 0) continue;
        asks.push_back({key, b.rate, b.burst, b.asking, b.pause_until});
        b.pause_until = 0;
      }
      lock.unlock();
      auto sent = std::chrono::steady_clock::now();
      std::vector<std::pair<std::string, std::int64_t>> granted;
      status s = round(asks, granted);
      lock.lock();
      for (const auto& [key, n] : granted) {
        auto& b = buckets_[key];
        b.tokens = n;  // what is left of an older lease goes: no token outlives its second
        b.expires = sent + std::chrono::seconds(1);
        b.asking = n == 0;  // none to be had: ask again next round
      }
      if (!s) {
        if (failures_++ % 10 == 0) spdlog::warn("rate limits: cannot lease tokens ({}); nothing is sent meanwhile", s.message());
        cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; });
      } else {
        if (failures_ > 0) spdlog::info("rate limits: leasing tokens works again");
        failures_ = 0;
        cv_.wait_for(lock, std::chrono::milliseconds(10), [this] { return stop_; });
      }
    }
  }

  bool pending() const {
    for (const auto& [key, b] : buckets_) {
      if (b.asking || b.pause_until != 0) return true;
    }
    return false;
  }

  /// One statement per bucket, each its own transaction (the row is locked only for it).
  status round(const std::vector<ask>& asks, std::vector<std::pair<std::string, std::int64_t>>& granted) {
    if (!db_ || db_->broken()) {
      auto c = connect_to_store(store_);
      if (!c) return c.error();
      db_ = std::move(c.value());
      if (auto s = db_->run("SET synchronous_commit = off"); !s) return s;  // a lost lease only slows
    }
    for (const auto& a : asks) {
      std::string rate = std::to_string(a.rate), burst = std::to_string(a.burst);
      if (a.pause_until != 0) {
        auto r = db_->exec("INSERT INTO fr_buckets (key, tokens, updated_at, paused_until) VALUES ($1, 0, now(), "
                           "to_timestamp($2::int8 / 1000.0)) ON CONFLICT (key) DO UPDATE SET paused_until = "
                           "greatest(fr_buckets.paused_until, excluded.paused_until)",
                           params().text(a.key).int8(a.pause_until));
        if (!r) return r.error();
      }
      if (!a.lease) continue;
      // A node leases max(32, rate × 1 s) at most, of what the bucket has refilled since its last
      // lease (a new bucket starts full); nothing while it is paused.
      std::int64_t want = std::max<std::int64_t>(32, static_cast<std::int64_t>(std::ceil(a.rate)));
      const std::string avail = "least($3::text::float8, tokens + $2::text::float8 * "
                                "extract(epoch FROM now() - updated_at)::float8)";
      const std::string grant = "CASE WHEN paused_until > now() THEN 0 ELSE least($4::int8, floor(" + avail + ")::int8) END";
      const std::string lease = "UPDATE fr_buckets SET granted = " + grant + ", tokens = " + avail + " - " + grant +
                                ", updated_at = now() WHERE key = $1 RETURNING granted";
      auto p = params().text(a.key).text(rate).text(burst).int8(want);
      auto r = db_->exec(lease, p);
      if (r && r->count() == 0) {  // a new bucket: it starts full
        auto ins = db_->exec("INSERT INTO fr_buckets (key, tokens, updated_at) VALUES ($1, $2::text::float8, now()) "
                             "ON CONFLICT (key) DO NOTHING",
                             params().text(a.key).text(burst));
        if (!ins) return ins.error();
        r = db_->exec(lease, p);
      }
      if (!r) return r.error();
      granted.emplace_back(a.key, r->count() ? r->int8(0, 0) : 0);
    }
    return status::ok();
  }

  postgres_options store_;
  std::shared_ptr<const shard_ownership> ownership_;
  std::unique_ptr<pg::connection> db_;  // the worker's own
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, bucket_lease> buckets_;
  bool stop_ = false;
  int failures_ = 0;
  std::thread worker_;
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

result<std::unique_ptr<shared_tokens>> open_shared_tokens(const postgres_options& store,
                                                          std::shared_ptr<const shard_ownership> ownership) {
  auto m = migrate_postgres(store);  // checks the schema's name, and that the tables are there
  if (!m) return m.error();
  return std::unique_ptr<shared_tokens>(std::make_unique<postgres_shared_tokens>(store, std::move(ownership)));
}

}  // namespace fetchrelay::persistence
