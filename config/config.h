// The relay's typed configuration (DESIGN §6), built from YAML after schema validation and
// semantic checks. Every field has its default in config/config_schema.cpp; that schema is
// the reference, and examples/fetchrelay.yaml documents it.
//
// Thread-safety: an immutable value once loaded; share it by const reference.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/schema.h"
#include "config/yaml_source.h"
#include "core/net.h"
#include "core/retry.h"
#include "core/units.h"

namespace fetchrelay::config {

struct log_config {
  std::string level = "info";   // trace, debug, info, warn, error
  std::string format = "text";  // text or json
};

struct server_config {
  listen_address listen;
  int io_threads = 1;
  int worker_threads = 1;
  int max_connections = 10000;
  millis header_timeout{10'000};
  millis body_timeout{60'000};
  millis idle_timeout{60'000};
  millis shutdown_grace{10'000};
};

struct storage_config {
  enum class kind { leveldb, postgres };
  kind backend = kind::leveldb;
  std::string path;               // leveldb
  std::string postgres_dsn;       // postgres; secret: never logged
  std::string postgres_schema;    // postgres; "" = the DSN's search_path
  bool sync = true;
  millis retention{7LL * 86'400'000};
};

struct cluster_config {
  std::string node_id;  // "" = <hostname>:<port>
  millis lease{10'000};
};

struct api_key {
  std::string tenant;
  std::string key;  // secret: never logged
};

struct limits_config {
  std::uint64_t max_body = 1 << 20;
  std::uint64_t max_header_size = 32 << 10;
  millis max_delay{365LL * 86'400'000};
  int max_retries = 100;
  millis idempotency_window{86'400'000};
  std::int64_t max_pending_per_tenant = 10'000'000;
  int max_in_flight = 4096;
};

struct delivery_config {
  millis connect_timeout{5'000};
  int max_connections_per_origin = 64;
  millis pool_idle_timeout{4'000};
  std::uint64_t response_body_limit = 1 << 20;
  millis hibernate_after{30'000};
  std::optional<std::string> ca_file;
  bool allow_private_networks = false;
  std::vector<cidr> allow_networks;
};

struct plugins_config {
  std::vector<std::string> search_path;
  std::vector<std::string> load;
};

/// One entry of a policy's pipeline: a loaded plugin's name and its (unvalidated here)
/// config block; the plugin host validates the block against the plugin's own schema.
struct plugin_step {
  std::string name;
  json config;
};

struct policy_config {
  std::string name;
  millis timeout{15'000};
  millis max_timeout{600'000};
  /// Attempts, backoff and the statuses not retried, as the job actor applies them. The schema
  /// holds the defaults of attempts, jitter and non_retryable; those that apply only to one kind
  /// of backoff (schedule; base, factor, max) are retry_policy's own.
  retry_policy retry;
  std::vector<plugin_step> pipeline;
};

struct route_config {
  std::string host;         // exact, or "*.example.com" for any subdomain
  std::string path_prefix;  // empty: any path
  std::string policy;
};

/// A queue declared in the config (queues: [{tenant, name, parallelism}]).
struct queue_config {
  std::string tenant;
  std::string name;
  std::uint32_t parallelism = 1;
};

/// A QStash signing key pair (secrets: never logged).
struct signing_pair {
  std::string current;
  std::string next;
};

/// The QStash-compatible API (qstash:). The pairs seed the store; a rotation is stored there.
struct qstash_config {
  bool enabled = false;
  std::optional<signing_pair> keys;               // the default pair
  std::map<std::string, signing_pair> tenants;    // a pair per tenant
};

struct relay_config {
  log_config log;
  server_config server;
  storage_config storage;
  cluster_config cluster;
  std::vector<api_key> keys;
  limits_config limits;
  delivery_config delivery;
  plugins_config plugins;
  std::map<std::string, policy_config> policies;  // always holds "default"
  std::vector<route_config> routes;
  std::vector<queue_config> queues;
  qstash_config qstash;
};

/// The JSON schema of the whole config file.
const json& relay_schema();

struct load_result {
  std::optional<relay_config> config;  // set only when errors is empty
  std::vector<config_error> errors;
};

/// Parses, expands, validates and types a config held in memory. `source` names it in
/// syntax errors.
load_result load_config_text(const std::string& text, const std::string& source,
                             const env_lookup& env = process_env());

/// Reads the file and calls load_config_text.
load_result load_config_file(const std::string& path, const env_lookup& env = process_env());

}  // namespace fetchrelay::config
