#include "app/serve.h"

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include "actors/job_manager.h"
#include "actors/store_actor.h"
#include "actors/system.h"
#include "app/api.h"
#include "app/logging.h"
#include "config/config.h"
#include "core/version.h"
#include "http/server.h"
#include "persistence/store.h"

namespace fetchrelay::app {
namespace {

// Descriptors kept besides client connections and outbound sockets: LevelDB files, logs,
// plugins, the listening socket.
constexpr std::uint64_t reserved_fds = 1024;

void print_errors(const std::vector<config::config_error>& errors) {
  for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
}

status write_port_file(const std::string& path, std::uint16_t port) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out) return unavailable("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return unavailable("cannot rename " + tmp + " to " + path + ": " + ec.message());
  return status::ok();
}

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
    r.retry.attempts = static_cast<std::uint32_t>(p.retry.attempts);
    r.retry.exponential = p.retry.kind == config::backoff_kind::exponential;
    r.retry.schedule = p.retry.schedule;
    r.retry.base = p.retry.base;
    r.retry.factor = p.retry.factor;
    r.retry.max = p.retry.max;
    r.retry.jitter = p.retry.jitter;
    r.retry.non_retryable = p.non_retryable;
    m.policies[name] = r;
  }
  m.max_pending_per_tenant = cfg.limits.max_pending_per_tenant;
  m.max_in_flight_per_origin = cfg.delivery.max_connections_per_origin;
  m.idempotency_window = cfg.limits.idempotency_window;
  m.hibernate_after = cfg.delivery.hibernate_after;
  return m;
}

}  // namespace

int check_config(const std::string& path) {
  auto loaded = config::load_config_file(path);
  if (!loaded.errors.empty()) {
    print_errors(loaded.errors);
    std::fprintf(stderr, "%s: invalid (%zu error%s)\n", path.c_str(), loaded.errors.size(),
                 loaded.errors.size() == 1 ? "" : "s");
    return 2;
  }
  std::fprintf(stderr, "%s: ok\n", path.c_str());
  return 0;
}

status raise_fd_limit(std::uint64_t needed, const std::string& why) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return unavailable("getrlimit(RLIMIT_NOFILE) failed");
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur >= needed) return status::ok();
  rlimit want = lim;
  want.rlim_cur = needed;
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < needed) want.rlim_max = needed;
  if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
    return {status_code::resource_exhausted,
            why + " need " + std::to_string(needed) +
                " file descriptors, but the limit cannot be raised above " +
                std::to_string(lim.rlim_max) +
                " (RLIMIT_NOFILE hard limit); raise it (ulimit -Hn, systemd LimitNOFILE=) or "
                "lower server.max_connections"};
  }
  return status::ok();
}

int serve(const cli_options& options) {
  auto loaded = config::load_config_file(options.config_path);
  if (!loaded.errors.empty()) {
    print_errors(loaded.errors);
    std::fprintf(stderr, "%s: invalid config, not starting\n", options.config_path.c_str());
    return 2;
  }
  const config::relay_config& cfg = *loaded.config;
  setup_logging(options.log_format.value_or(cfg.log.format), options.log_level.value_or(cfg.log.level));
  spdlog::info("{} starting (config {})", version_line(), options.config_path);

  std::uint64_t needed = static_cast<std::uint64_t>(cfg.server.max_connections) +
                         static_cast<std::uint64_t>(cfg.limits.max_in_flight) + reserved_fds;
  if (auto s = raise_fd_limit(needed, "server.max_connections (" +
                                          std::to_string(cfg.server.max_connections) +
                                          ") + limits.max_in_flight (" +
                                          std::to_string(cfg.limits.max_in_flight) + ") + " +
                                          std::to_string(reserved_fds) + " reserved");
      !s) {
    spdlog::critical("{}", s.message());
    return 1;
  }

  // Signals are taken by a dedicated thread with sigwait; every other thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto opened = persistence::open_leveldb_store({cfg.storage.path, cfg.storage.sync, nullptr});
  if (!opened) {
    spdlog::critical("{}", opened.error().message());
    return 1;
  }
  std::shared_ptr<persistence::store> store(std::move(opened.value()));
  auto initial_pending = store->pending_by_tenant();
  auto counters = store->counters();
  spdlog::info("store open at {}: {} scheduled, {} active, {} retrying", cfg.storage.path,
               counters[static_cast<size_t>(job_status::scheduled)], counters[static_cast<size_t>(job_status::active)],
               counters[static_cast<size_t>(job_status::retrying)]);

  auto client = make_delivery_client(cfg);
  if (!client) {
    spdlog::critical("{}", client.error().message());
    return 1;
  }
  auto clock = std::make_shared<system_wall_clock>();
  auto ready = std::make_shared<std::atomic<bool>>(false);
  auto horizon_loaded = std::make_shared<std::atomic<bool>>(false);
  auto metrics = std::make_shared<relay_metrics>();

  caf::actor_system_config caf_cfg;
  actors::configure(caf_cfg, {cfg.server.worker_threads, false});
  int exit_code = 0;
  {
    caf::actor_system system(caf_cfg);
    auto health = system.spawn(actors::health, std::chrono::steady_clock::now());
    actors::store_actor_options store_options;
    store_options.ready = ready;
    store_options.metrics = metrics;
    store_options.retention = cfg.storage.retention;
    store_options.clock = clock;
    // Detached: it blocks on fsync and must not hold one of the few scheduler threads.
    auto store_actor = system.spawn<caf::detached>(actors::store_actor_impl, store, store_options,
                                                   std::shared_ptr<actors::store_actor_stats>());
    // Recovery (DESIGN §4): the scheduler loads the due index of the coming horizon, jobs that
    // were active included (their due time has passed); /readyz waits for it.
    auto mo = manager_options_from(cfg);
    mo.initial_pending = std::move(initial_pending);
    mo.scheduler.loaded = horizon_loaded;
    auto manager = system.spawn(actors::job_manager, std::move(mo), store_actor,
                                std::shared_ptr<http::client>(std::move(client.value())), clock, metrics);
    auto stop_actors = [&] {
      caf::anon_send_exit(manager, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(store_actor, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(health, caf::exit_reason::user_shutdown);
    };

    http::server_options so;
    so.host = cfg.server.listen.host;
    so.port = cfg.server.listen.port;
    so.io_threads = cfg.server.io_threads;
    so.max_connections = cfg.server.max_connections;
    so.header_timeout = cfg.server.header_timeout;
    so.body_timeout = cfg.server.body_timeout;
    so.idle_timeout = cfg.server.idle_timeout;
    so.max_header_size = cfg.limits.max_header_size;
    so.max_body = cfg.limits.max_body;
    http::server server(so, make_api_handler({&system, health, manager, &cfg, clock, ready, horizon_loaded, metrics}));
    if (auto s = server.start(); !s) {
      spdlog::critical("{}", s.message());
      stop_actors();
      return 1;
    }
    spdlog::info("listening on {}", server.bound_address());
    if (!options.port_file.empty()) {
      if (auto s = write_port_file(options.port_file, server.port()); !s) {
        spdlog::critical("{}", s.message());
        server.shutdown(http::millis(0));
        server.wait();
        stop_actors();
        return 1;
      }
    }

    std::atomic<bool> finished{false};
    std::thread signal_thread([&] {
      int count = 0;
      while (true) {
        int sig = 0;
        if (sigwait(&signals, &sig) != 0) continue;
        if (finished.load()) return;
        if (++count == 1) {
          spdlog::info("{} received: shutting down, grace {}ms", sig == SIGINT ? "SIGINT" : "SIGTERM",
                       cfg.server.shutdown_grace.count());
          server.shutdown(cfg.server.shutdown_grace);
        } else {
          spdlog::warn("second signal: closing all connections now");
          server.shutdown(http::millis(0));
        }
      }
    });
    server.wait();
    finished.store(true);
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    signal_thread.join();
    spdlog::info("server stopped; stopping actors (unfinished jobs stay due in the store)");
    stop_actors();
  }  // the actor system waits for its actors here
  spdlog::info("bye");
  return exit_code;
}

}  // namespace fetchrelay::app
