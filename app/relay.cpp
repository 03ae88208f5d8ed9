#include "app/relay.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <future>
#include <limits>
#include <set>
#include <thread>

#include <unistd.h>

#include "actors/job_manager.h"
#include "actors/queues.h"
#include "actors/store_actor.h"
#include "actors/system.h"
#include "app/api.h"
#include "app/cluster.h"
#include "app/submission.h"
#include "core/version.h"
#include "http/client.h"
#include "http/server.h"
#include "plugins/host/plugin_host.h"

namespace fetchrelay::app {
namespace {

result<std::unique_ptr<http::client>> make_delivery_client(const config::relay_config& cfg) {
  http::client_options o;
  o.connect_timeout = cfg.delivery.connect_timeout;
  o.max_connections_per_origin = cfg.delivery.max_connections_per_origin;
  o.pool_idle_timeout = cfg.delivery.pool_idle_timeout;
  o.max_body_bytes = cfg.delivery.response_body_limit;
  o.ca_file = cfg.delivery.ca_file;
  o.allow_private_networks = cfg.delivery.allow_private_networks;
  o.allow_networks = cfg.delivery.allow_networks;
  o.user_agent = "fetchrelay/" + std::string(version());
  return http::client::create(std::move(o));
}

actors::manager_options manager_options_from(const config::relay_config& cfg) {
  actors::manager_options m;
  for (const auto& [name, p] : cfg.policies) {
    actors::policy_runtime r;
    r.timeout_ms = static_cast<std::uint32_t>(p.timeout.count());
    r.retry = p.retry;
    m.policies[name] = r;
  }
  m.intake.max_pending_per_tenant = cfg.limits.max_pending_per_tenant;
  m.max_in_flight_per_origin = cfg.delivery.max_connections_per_origin;
  m.max_in_flight = cfg.limits.max_in_flight;
  m.intake.idempotency_window = cfg.limits.idempotency_window;
  m.hibernate_after = cfg.delivery.hibernate_after;
  return m;
}

/// The QStash signing keys: those stored (a rotation's) win; the config's pairs seed the store
/// for tenants that have none stored; with no default pair anywhere, one is made and stored.
result<std::shared_ptr<qstash::key_ring>> load_signing_keys(const config::relay_config& cfg, persistence::store& store) {
  auto stored = store.signing_keys();
  if (!stored) return stored.error();
  auto ring = std::make_shared<qstash::key_ring>();
  std::set<std::string> have;
  for (const auto& k : *stored) {
    ring->set(k.tenant, {k.current, k.next});
    have.insert(k.tenant);
  }
  persistence::commit_batch seed;
  auto add = [&](const std::string& tenant, const std::string& current, const std::string& next) {
    if (have.count(tenant)) return;
    seed.signing_keys.push_back({tenant, current, next});
    ring->set(tenant, {current, next});
  };
  if (cfg.qstash.keys) add("", cfg.qstash.keys->current, cfg.qstash.keys->next);
  for (const auto& [tenant, pair] : cfg.qstash.tenants) add(tenant, pair.current, pair.next);
  if (!ring->pair_of("")) {
    add("", qstash::new_signing_key(), qstash::new_signing_key());
    spdlog::info("qstash: no signing keys configured; made a default pair (GET /v2/keys shows it)");
  }
  std::set<std::string> on_default;
  for (const auto& k : cfg.keys) {
    if (!ring->has_own(k.tenant)) on_default.insert(k.tenant);
  }
  if (on_default.size() > 1) {
    spdlog::warn("qstash: {} tenants share the default signing pair (each can read it with GET /v2/keys); give each "
                 "its own under qstash.tenants",
                 on_default.size());
  }
  if (!seed.signing_keys.empty()) {
    persistence::commit_batch batches[] = {std::move(seed)};
    if (auto s = store.commit(batches); !s) return s;
  }
  return ring;
}

}  // namespace

namespace {

/// Each policy's plugin steps, for the policies that have any.
std::map<std::string, std::vector<config::plugin_step>> pipelines_of(const config::relay_config& cfg) {
  std::map<std::string, std::vector<config::plugin_step>> out;
  for (const auto& [name, policy] : cfg.policies) {
    if (!policy.pipeline.empty()) out[name] = policy.pipeline;
  }
  return out;
}

}  // namespace

result<std::shared_ptr<const plugins::registry>> load_plugins(const config::relay_config& cfg) {
  auto r = plugins::registry::load(cfg.plugins.load, cfg.plugins.search_path);
  if (!r) return r.error();
  std::vector<config::config_error> errors;
  r.value()->check(pipelines_of(cfg), errors);
  if (!errors.empty()) {
    std::string text;
    for (const auto& e : errors) text += (text.empty() ? "" : "\n") + e.to_string();
    return status{status_code::invalid_argument, text};
  }
  return r;
}

struct relay::impl {
  config::relay_config cfg;
  std::shared_ptr<const wall_clock> clock = std::make_shared<system_wall_clock>();
  std::shared_ptr<std::atomic<bool>> ready = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<std::atomic<bool>> horizon_loaded = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<relay_metrics> metrics = std::make_shared<relay_metrics>();
  std::shared_ptr<actors::delivery_drain> drain = std::make_shared<actors::delivery_drain>();
  // steady_clock ns: the end of the grace given to shutdown() (the earliest, if called again).
  std::atomic<std::int64_t> drain_deadline_ns{std::numeric_limits<std::int64_t>::max()};
  caf::actor_system_config caf_cfg;
  std::unique_ptr<caf::actor_system> system;
  actors::health_actor health;
  actors::store_actor store;
  actors::manager_actor manager;
  actors::schedules_actor schedules;
  actors::queues_actor queues;
  actors::sampler_actor sampler;
  std::shared_ptr<metrics_history> history = std::make_shared<metrics_history>();
  std::unique_ptr<http::server> server;
  std::shared_ptr<persistence::shard_ownership> ownership;  // postgres only
  std::unique_ptr<cluster_member> cluster;                  // postgres only; goes before the actors

  /// Tells the actors to quit and drops the handles: a handle kept here would keep its actor,
  /// and so the actor system's shutdown, waiting.
  void stop_actors() {
    for (auto& a : {caf::actor_cast<caf::actor>(health), caf::actor_cast<caf::actor>(store),
                    caf::actor_cast<caf::actor>(manager), caf::actor_cast<caf::actor>(schedules),
                    caf::actor_cast<caf::actor>(queues), caf::actor_cast<caf::actor>(sampler)}) {
      if (a) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    }
    schedules = nullptr;
    queues = nullptr;
    sampler = nullptr;
    health = nullptr;
    store = nullptr;
    manager = nullptr;
  }
};

relay::relay(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

relay::~relay() {
  if (impl_->server) {
    impl_->server->shutdown(std::chrono::milliseconds(0));
    impl_->server->wait();
    impl_->server.reset();
    spdlog::info("server stopped; stopping actors (unfinished jobs stay due in the store)");
  }
  impl_->cluster.reset();  // its callback holds the manager
  impl_->stop_actors();
  impl_->system.reset();  // waits for every actor
}

namespace {

/// A node stops writing after 80 % of its lease without a renewal: before the lease can lapse.
std::chrono::milliseconds fence_after(std::chrono::milliseconds lease) { return lease * 4 / 5; }

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == 0) return "localhost";
  return buf;
}

persistence::postgres_options postgres_of(const config::relay_config& cfg,
                                         std::shared_ptr<persistence::shard_ownership> ownership) {
  return {cfg.storage.postgres_dsn, cfg.storage.sync, cfg.storage.postgres_schema, std::move(ownership)};
}

/// The store the config names: LevelDB in storage.path, or PostgreSQL (fenced by the node's
/// shard leases, which it does not hold yet: every write is refused until the first renewal).
result<std::unique_ptr<persistence::store>> open_store(const config::relay_config& cfg, const relay_hooks& hooks,
                                                       std::shared_ptr<persistence::shard_ownership> ownership) {
  if (cfg.storage.backend == config::storage_config::kind::postgres) {
    return persistence::open_postgres_store(postgres_of(cfg, std::move(ownership)));
  }
  return persistence::open_leveldb_store({cfg.storage.path, cfg.storage.sync, hooks.faults});
}

}  // namespace

result<std::unique_ptr<relay>> relay::start(const config::relay_config& cfg, relay_hooks hooks) {
  std::shared_ptr<persistence::shard_ownership> ownership;
  if (cfg.storage.backend == config::storage_config::kind::postgres) {
    ownership = std::make_shared<persistence::shard_ownership>(fence_after(cfg.cluster.lease));
  }
  auto opened = open_store(cfg, hooks, ownership);
  if (!opened) return opened.error();
  std::shared_ptr<persistence::store> store(std::move(opened.value()));
  auto initial_pending = store->pending_by_tenant();
  auto counters = store->counters();
  spdlog::info("store open at {}: {} scheduled, {} active, {} retrying", store->location(),
               counters[static_cast<size_t>(job_status::scheduled)], counters[static_cast<size_t>(job_status::active)],
               counters[static_cast<size_t>(job_status::retrying)]);
  auto client = make_delivery_client(cfg);
  if (!client) return client.error();
  auto registry = load_plugins(cfg);
  if (!registry) return registry.error();
  std::shared_ptr<qstash::key_ring> qstash_keys;
  if (cfg.qstash.enabled) {
    auto keys = load_signing_keys(cfg, *store);
    if (!keys) return keys.error();
    qstash_keys = std::move(keys.value());
  }

  auto p = std::make_unique<impl>();
  p->cfg = cfg;
  p->ownership = ownership;
  actors::configure(p->caf_cfg, {cfg.server.worker_threads, false});
  p->system = std::make_unique<caf::actor_system>(p->caf_cfg);
  p->health = p->system->spawn(actors::health, std::chrono::steady_clock::now());
  p->sampler = p->system->spawn(actors::metrics_sampler, p->history, std::shared_ptr<const relay_metrics>(p->metrics),
                                p->clock, std::chrono::milliseconds(10'000));
  // Set here, before the server starts: the store actor sets it again when it starts on its own
  // thread, which may be after the first requests (they got 503 not_ready for a moment).
  p->ready->store(store->health().is_ok());
  actors::store_actor_options so;
  so.ready = p->ready;
  so.metrics = p->metrics;
  so.retention = cfg.storage.retention;
  so.clock = p->clock;
  so.reopen_every = hooks.reopen_every;
  // Detached: it blocks on fsync and must not hold one of the few scheduler threads.
  p->store = p->system->spawn<caf::detached>(actors::store_actor_impl, store, so,
                                             std::shared_ptr<actors::store_actor_stats>());
  // Recovery (DESIGN §4): the scheduler loads the due index of the coming horizon, jobs that
  // were active included (their due time has passed); /readyz waits for it.
  auto mo = manager_options_from(cfg);
  mo.ownership = p->ownership;
  mo.intake.ownership = p->ownership;
  mo.initial_pending = std::move(initial_pending);
  mo.scheduler.loaded = p->horizon_loaded;
  auto pl = std::make_shared<actors::pipeline_set>();
  pl->registry = registry.value();
  pl->steps = pipelines_of(cfg);
  pl->services = {p->clock, nullptr, p->metrics};
  if (ownership) {  // several relays: the rate limits share their buckets through the database
    auto tokens = persistence::open_shared_tokens(postgres_of(cfg, ownership), ownership);
    if (!tokens) return tokens.error();
    pl->services.tokens = std::shared_ptr<shared_tokens>(std::move(tokens.value()));
  }
  mo.pipelines = std::move(pl);
  mo.drain = p->drain;
  mo.qstash_keys = qstash_keys;
  auto board = std::make_shared<destination_board>();
  mo.board = board;
  p->queues = p->system->spawn(actors::queue_manager, p->store, p->clock);
  mo.queues = caf::actor_cast<caf::actor>(p->queues);
  p->manager = p->system->spawn(actors::job_manager, std::move(mo), p->store,
                                std::shared_ptr<delivery_client>(std::move(client.value())), p->clock, p->metrics);

  caf::anon_send(p->queues, actors::init_atom::value, p->manager);
  for (const auto& q : p->cfg.queues) {  // declared queues: made, or set to this parallelism
    caf::anon_send(p->queues, actors::queue_op_atom::value, q.tenant, q.name,
                   actors::queue_command{actors::queue_op::put, q.parallelism, std::nullopt},
                   actors::completion<actors::queue_answer>([name = q.name](actors::queue_answer a) {
                     if (a.http_status >= 400) spdlog::warn("queue {} from the config not stored: {}", name, a.message);
                   }));
  }
  actors::schedules_options sched;
  sched.hibernate_after = cfg.delivery.hibernate_after;
  sched.policy_of_url = route_policy_of(p->cfg);
  p->schedules = p->system->spawn(actors::schedule_manager, sched, p->manager, p->store, p->clock);

  http::server_options o;
  o.host = cfg.server.listen.host;
  o.port = cfg.server.listen.port;
  o.io_threads = cfg.server.io_threads;
  o.max_connections = cfg.server.max_connections;
  o.header_timeout = cfg.server.header_timeout;
  o.body_timeout = cfg.server.body_timeout;
  o.idle_timeout = cfg.server.idle_timeout;
  o.max_header_size = cfg.limits.max_header_size;
  o.max_body = cfg.limits.max_body;
  o.metrics = p->metrics;
  api_deps deps;
  deps.system = p->system.get();
  deps.health = p->health;
  deps.manager = p->manager;
  deps.store = p->store;
  deps.schedules = p->schedules;
  deps.queues = p->queues;
  deps.config = &p->cfg;
  deps.clock = p->clock;
  deps.ready = p->ready;
  deps.loaded = p->horizon_loaded;
  deps.metrics = p->metrics;
  deps.qstash_keys = qstash_keys;
  deps.board = board;
  deps.history = p->history;
  deps.ownership = p->ownership;
  p->server = std::make_unique<http::server>(o, make_api_handler(std::move(deps)));
  std::unique_ptr<relay> r(new relay(std::move(p)));
  if (auto s = r->impl_->server->start(); !s) {
    r->impl_->server.reset();  // never started: nothing to wait for
    return s;                  // ~relay stops the actors
  }
  spdlog::info("listening on {}", r->bound_address());
  if (auto& own = r->impl_->ownership) {
    // The node's id needs the bound port (listen port 0): it joins once the server is up, and
    // answers 503 no_shards until its first renewal gave it a share.
    persistence::cluster_options co;
    co.addr = r->bound_address();
    co.node_id = cfg.cluster.node_id.empty() ? host_name() + ":" + std::to_string(r->port()) : cfg.cluster.node_id;
    co.lease = cfg.cluster.lease;
    co.fence_after = fence_after(cfg.cluster.lease);
    actors::manager_actor manager = r->impl_->manager;
    auto m = cluster_member::start(postgres_of(cfg, own), co, own, [manager](const persistence::lease_change& c) {
      if (!c.taken.empty()) caf::anon_send(manager, actors::recover_atom::value);
    });
    if (!m) return m.error();  // ~relay stops the server and the actors
    r->impl_->cluster = std::move(m.value());
  }
  return r;
}

std::uint16_t relay::port() const { return impl_->server->port(); }
std::string relay::bound_address() const { return impl_->server->bound_address(); }
void relay::shutdown(std::chrono::milliseconds grace) {
  auto end = (std::chrono::steady_clock::now() + grace).time_since_epoch().count();
  auto cur = impl_->drain_deadline_ns.load();
  while (end < cur && !impl_->drain_deadline_ns.compare_exchange_weak(cur, end)) {
  }
  impl_->server->shutdown(grace);
}
void relay::wait() { impl_->server->wait(); }

void relay::drain_deliveries() {
  using namespace std::chrono;
  auto deadline = [this] { return steady_clock::time_point(steady_clock::duration(impl_->drain_deadline_ns.load())); };
  auto& d = *impl_->drain;
  d.draining.store(true, std::memory_order_release);
  if (impl_->manager) caf::anon_send(impl_->manager, actors::drain_atom::value);
  auto n = d.unsettled.load();
  if (n > 0) {
    spdlog::info("waiting up to {} ms for {} attempt(s) in flight",
                 std::max<std::int64_t>(0, duration_cast<milliseconds>(deadline() - steady_clock::now()).count()), n);
  }
  while (d.unsettled.load(std::memory_order_acquire) > 0 && steady_clock::now() < deadline()) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  if (auto left = d.unsettled.load(); left > 0) {
    spdlog::warn("shutdown grace over: {} attempt(s) still in flight are abandoned; their jobs stay due", left);
  }
  // Every outcome handled so far has sent its commit: write them before the actors go.
  if (!impl_->store) return;
  auto done = std::make_shared<std::promise<status>>();
  auto written = done->get_future();
  caf::anon_send(impl_->store, actors::sync_atom::value,
                 actors::completion<status>([done](status s) { done->set_value(std::move(s)); }));
  if (written.wait_for(seconds(10)) != std::future_status::ready) {
    spdlog::warn("the store did not confirm the last writes within 10 s");
  } else if (auto s = written.get(); !s.is_ok()) {
    spdlog::warn("the last writes failed: {}", s.message());
  }
  // Every outcome is written: the shards go back now, so a rolling restart never waits for a
  // lease to lapse.
  if (impl_->cluster) impl_->cluster->leave();
}

}  // namespace fetchrelay::app
