#include "app/serve.h"

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "app/logging.h"
#include "app/relay.h"
#include "config/config.h"
#include "core/log.h"
#include "core/version.h"
#include "persistence/store.h"

namespace fetchrelay::app {
namespace {

// Descriptors kept besides client connections and outbound sockets: LevelDB files, logs,
// plugins, the listening socket.
constexpr std::uint64_t reserved_fds = 1024;

/// Every config error, one line each, in the format --log-format asks for.
void log_errors(const std::string& file, const std::vector<config::config_error>& errors) {
  for (const auto& e : errors) {
    log::event(spdlog::level::err, {{"config", file}, {"key", e.path}}, "{}", e.to_string());
  }
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

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

/// A one-shot command's logging and config; nullopt (the errors logged) if the config is invalid.
std::optional<config::relay_config> load_for_command(const cli_options& options) {
  setup_logging(options.log_format.value_or("text"), "info");
  auto loaded = config::load_config_file(options.config_path);
  if (!loaded.errors.empty()) {
    log_errors(options.config_path, loaded.errors);
    return std::nullopt;
  }
  return std::move(loaded.config);
}

}  // namespace

int check_config(const cli_options& options) {
  const std::string& path = options.config_path;
  setup_logging(options.log_format.value_or("text"), "info");
  auto loaded = config::load_config_file(path);
  if (!loaded.errors.empty()) {
    log_errors(path, loaded.errors);
    log::event(spdlog::level::err, {{"config", path}, {"errors", loaded.errors.size()}}, "{}: invalid ({} error{})",
               path, loaded.errors.size(), loaded.errors.size() == 1 ? "" : "s");
    return 2;
  }
  // The pipeline blocks are checked against the plugins' own schemas: load them.
  if (auto plugins = load_plugins(*loaded.config); !plugins) {
    for (const auto& line : split_lines(plugins.error().message())) {
      log::event(spdlog::level::err, {{"config", path}}, "{}", line);
    }
    log::event(spdlog::level::err, {{"config", path}}, "{}: invalid (plugins)", path);
    return 2;
  }
  log::event(spdlog::level::info, {{"config", path}}, "{}: ok", path);
  return 0;
}

int migrate(const cli_options& options) {
  const std::string& path = options.config_path;
  auto loaded = load_for_command(options);
  if (!loaded) return 2;
  const auto& st = loaded->storage;
  if (st.backend != config::storage_config::kind::postgres) {
    log::event(spdlog::level::err, {{"config", path}},
               "migrate is for storage.backend: postgres; the LevelDB store needs no migration");
    return 2;
  }
  auto r = persistence::migrate_postgres({st.postgres_dsn, st.sync, st.postgres_schema});
  if (!r) {
    log::event(spdlog::level::err, {{"config", path}}, "migrate failed: {}", r.error().message());
    return 1;
  }
  if (*r == 0) {
    log::event(spdlog::level::info, {{"config", path}}, "created the fetchrelay tables (schema version {})",
               persistence::postgres_schema_version);
  } else {
    log::event(spdlog::level::info, {{"config", path}}, "the fetchrelay tables are at schema version {}: nothing to do",
               *r);
  }
  return 0;
}

int repair(const cli_options& options) {
  const std::string& path = options.config_path;
  auto loaded = load_for_command(options);
  if (!loaded) return 2;
  if (loaded->storage.backend == config::storage_config::kind::postgres) {
    log::event(spdlog::level::err, {{"config", path}},
               "repair is for the LevelDB store; this config uses PostgreSQL, whose own tools (backups, "
               "point-in-time recovery, a standby) restore a damaged database");
    return 2;
  }
  const std::string& store = loaded->storage.path;
  log::event(spdlog::level::info, {{"store", store}}, "repairing the store at {} (LevelDB's repair, then every index rebuilt)", store);
  auto r = persistence::repair_leveldb_store(store);
  if (!r) {
    log::event(spdlog::level::err, {{"store", store}}, "repair failed: {}", r.error().message());
    return 1;
  }
  for (const auto& f : r->damaged) {
    log::event(spdlog::level::warn, {{"store", store}, {"file", f.name}}, "damaged before the repair: {} ({})", f.name, f.problem);
  }
  if (!r->unreadable.empty()) {
    log::event(spdlog::level::warn, {{"store", store}}, "blocks that failed their checksum were skipped ({})", r->unreadable);
  }
  if (r->format_marker_restored) log::event(spdlog::level::warn, {{"store", store}}, "the store's format marker was lost and is written again");
  std::string by_status;
  for (std::size_t i = 0; i < r->by_status.size(); ++i) {
    if (r->by_status[i] == 0) continue;
    if (!by_status.empty()) by_status += ", ";
    by_status += std::to_string(r->by_status[i]) + " " + std::string(to_string(static_cast<job_status>(i)));
  }
  log::event(spdlog::level::info,
             {{"store", store}, {"jobs", r->jobs}, {"schedules", r->schedules}, {"requests_lost", r->requests_lost},
              {"records_dropped", r->records_dropped}},
             "repair done: kept {} job(s){}, {} schedule(s); {} unfinished job(s) lost their request and are now "
             "failed; {} unreadable record(s) and {} idempotency key(s) of lost jobs dropped. The store as it was is "
             "kept in {}; delete it once satisfied",
             r->jobs, by_status.empty() ? "" : " (" + by_status + ")", r->schedules, r->requests_lost, r->records_dropped,
             r->idempotency_keys_dropped, r->old_store);
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
  // Until the config is read, lines follow --log-format (text if not given).
  setup_logging(options.log_format.value_or("text"), options.log_level.value_or("info"));
  auto loaded = config::load_config_file(options.config_path);
  if (!loaded.errors.empty()) {
    log_errors(options.config_path, loaded.errors);
    log::event(spdlog::level::err, {{"config", options.config_path}}, "{}: invalid config, not starting",
               options.config_path);
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

  int exit_code = 0;
  {
    auto started = relay::start(cfg);
    if (!started) {
      spdlog::critical("{}", started.error().message());
      return 1;
    }
    relay& server = *started.value();
    if (!options.port_file.empty()) {
      if (auto s = write_port_file(options.port_file, server.port()); !s) {
        spdlog::critical("{}", s.message());
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
          spdlog::warn("second signal: closing all connections now, abandoning attempts in flight");
          server.shutdown(std::chrono::milliseconds(0));
        }
      }
    });
    server.wait();
    server.drain_deliveries();
    finished.store(true);
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    signal_thread.join();
  }  // ~relay stops the actors and waits for them
  spdlog::info("bye");
  return exit_code;
}

}  // namespace fetchrelay::app
