#include "config/config.h"

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace fetchrelay::config {
namespace {

// The values below were validated against the schema, so parsing cannot fail here.
millis dur(const json& j) { return *parse_duration(j.get<std::string>()); }
std::uint64_t size(const json& j) { return *parse_size(j.get<std::string>()); }

bool valid_queue_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char ch : s) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '.' && ch != '-') return false;
  }
  return true;
}

bool valid_name(const std::string& s) {
  static const std::regex re("[A-Za-z0-9_-]{1,64}");
  return std::regex_match(s, re);
}

class builder {
 public:
  explicit builder(std::vector<config_error>& errors) : errors_(errors) {}

  relay_config build(const json& v) {
    relay_config c;
    c.log.level = v["log"]["level"];
    c.log.format = v["log"]["format"];
    build_server(v["server"], c.server);
    build_storage(v["storage"], c.storage);
    c.storage.sync = v["storage"]["sync"];
    c.storage.retention = dur(v["storage"]["retention"]);
    c.cluster.node_id = v["cluster"]["node_id"];
    c.cluster.lease = dur(v["cluster"]["lease"]);
    if (c.cluster.lease < millis(2'000)) error("cluster.lease", "a lease shorter than 2s leaves no room for a renewal");
    if (c.storage.backend != storage_config::kind::postgres &&
        (!c.cluster.node_id.empty() || c.cluster.lease != millis(10'000))) {
      error("cluster", "cluster is for storage.backend: postgres (several relays on one database)");
    }
    build_keys(v["auth"]["keys"], c.keys);
    build_limits(v["limits"], c.limits);
    build_delivery(v["delivery"], c.delivery);
    c.plugins.search_path = v["plugins"]["search_path"].get<std::vector<std::string>>();
    c.plugins.load = v["plugins"]["load"].get<std::vector<std::string>>();
    std::set<std::string> seen;
    for (size_t i = 0; i < c.plugins.load.size(); ++i) {
      if (!seen.insert(c.plugins.load[i]).second) {
        error(index_path("plugins.load", i), "plugin \"" + c.plugins.load[i] + "\" is listed twice");
      }
    }
    for (auto it = v["policies"].begin(); it != v["policies"].end(); ++it) {
      c.policies[it.key()] = build_policy(it.key(), it.value(), c);
    }
    const json& routes = v["routes"];
    for (size_t i = 0; i < routes.size(); ++i) {
      c.routes.push_back(build_route(index_path("routes", i), routes[i], c));
    }
    std::set<std::pair<std::string, std::string>> queues;
    for (size_t i = 0; i < v["queues"].size(); ++i) {
      const json& q = v["queues"][i];
      queue_config out{q["tenant"], q["name"], q["parallelism"]};
      std::string path = index_path("queues", i);
      if (!valid_queue_name(out.name)) error(join_path(path, "name"), "queue names use letters, digits, _ . and -");
      if (!queues.insert({out.tenant, out.name}).second) {
        error(path, "queue \"" + out.name + "\" of tenant \"" + out.tenant + "\" is declared twice");
      }
      c.queues.push_back(std::move(out));
    }
    build_qstash(v["qstash"], c);
    return c;
  }

 private:
  void build_storage(const json& v, storage_config& s) {
    bool postgres = v["backend"] == "postgres";
    s.backend = postgres ? storage_config::kind::postgres : storage_config::kind::leveldb;
    if (v.contains("path")) s.path = v["path"];
    if (v.contains("postgres")) {
      s.postgres_dsn = v["postgres"]["dsn"];
      s.postgres_schema = v["postgres"]["schema"];
    }
    if (postgres) {
      if (!s.path.empty()) error("storage.path", "storage.path is for the leveldb backend; with postgres the database holds everything (remove it)");
      if (s.postgres_dsn.empty()) error("storage.postgres", "backend postgres needs storage.postgres.dsn");
      static const std::regex schema_re("([a-z_][a-z0-9_]{0,62})?");
      if (!std::regex_match(s.postgres_schema, schema_re)) {
        error("storage.postgres.schema", "use lower-case letters, digits and _, starting with a letter or _");
      }
    } else {
      if (s.path.empty()) error("storage.path", "the leveldb backend needs storage.path (the store's directory)");
      if (v.contains("postgres")) error("storage.postgres", "storage.postgres is for backend: postgres (set storage.backend, or remove it)");
    }
  }

  void build_qstash(const json& q, relay_config& c) {
    c.qstash.enabled = q["enabled"];
    bool has_current = q.contains("current_signing_key"), has_next = q.contains("next_signing_key");
    if (has_current != has_next) error("qstash", "current_signing_key and next_signing_key go together");
    if (has_current && has_next) c.qstash.keys = signing_pair{q["current_signing_key"], q["next_signing_key"]};
    std::set<std::string> tenants;
    for (const auto& k : c.keys) tenants.insert(k.tenant);
    for (auto it = q["tenants"].begin(); it != q["tenants"].end(); ++it) {
      if (!tenants.count(it.key())) {
        error(join_path("qstash.tenants", it.key()), "no API key of auth.keys belongs to tenant \"" + it.key() + "\"");
      }
      c.qstash.tenants[it.key()] = {it.value()["current_signing_key"], it.value()["next_signing_key"]};
    }
  }

  void error(std::string path, std::string message) {
    errors_.push_back({std::move(path), std::move(message)});
  }

  millis positive(const json& j, const std::string& path) {
    millis d = dur(j);
    if (d.count() <= 0) error(path, "must be longer than 0s");
    return d;
  }

  void build_server(const json& s, server_config& out) {
    out.listen = *parse_listen_address(s["listen"].get<std::string>());
    out.io_threads = s["io_threads"];
    out.worker_threads = s["worker_threads"];
    out.max_connections = s["max_connections"];
    out.header_timeout = positive(s["header_timeout"], "server.header_timeout");
    out.body_timeout = positive(s["body_timeout"], "server.body_timeout");
    out.idle_timeout = positive(s["idle_timeout"], "server.idle_timeout");
    out.shutdown_grace = dur(s["shutdown_grace"]);
  }

  void build_keys(const json& keys, std::vector<api_key>& out) {
    std::map<std::string, size_t> seen;
    for (size_t i = 0; i < keys.size(); ++i) {
      std::string path = index_path("auth.keys", i);
      api_key k{keys[i]["tenant"], keys[i]["key"]};
      if (!valid_name(k.tenant)) {
        error(join_path(path, "tenant"), "tenant names use letters, digits, _ and -");
      }
      auto [it, fresh] = seen.emplace(k.key, i);
      if (!fresh) {
        error(join_path(path, "key"),
              "the same key is already given at " + index_path("auth.keys", it->second));
      }
      out.push_back(std::move(k));
    }
  }

  void build_limits(const json& l, limits_config& out) {
    out.max_body = size(l["max_body"]);
    out.max_header_size = size(l["max_header_size"]);
    if (out.max_header_size < 1024) error("limits.max_header_size", "must be at least 1KiB");
    out.max_delay = dur(l["max_delay"]);
    out.max_retries = l["max_retries"];
    out.idempotency_window = dur(l["idempotency_window"]);
    out.max_pending_per_tenant = l["max_pending_per_tenant"];
    out.max_in_flight = l["max_in_flight"];
  }

  void build_delivery(const json& d, delivery_config& out) {
    out.connect_timeout = positive(d["connect_timeout"], "delivery.connect_timeout");
    out.max_connections_per_origin = d["max_connections_per_origin"];
    out.pool_idle_timeout = positive(d["pool_idle_timeout"], "delivery.pool_idle_timeout");
    out.response_body_limit = size(d["response_body_limit"]);
    if (out.response_body_limit < 4096) error("delivery.response_body_limit", "must be at least 4KiB");
    out.hibernate_after = dur(d["hibernate_after"]);
    if (!d["ca_file"].is_null()) out.ca_file = d["ca_file"].get<std::string>();
    out.allow_private_networks = d["allow_private_networks"];
    for (const auto& n : d["allow_networks"]) {
      out.allow_networks.push_back(*parse_cidr(n.get<std::string>()));
    }
  }

  policy_config build_policy(const std::string& name, const json& p, const relay_config& c) {
    std::string path = join_path("policies", name);
    policy_config out;
    out.name = name;
    if (!valid_name(name)) error(path, "policy names use letters, digits, _ and -");
    out.timeout = positive(p["timeout"], join_path(path, "timeout"));
    out.max_timeout = dur(p["max_timeout"]);
    if (out.timeout > out.max_timeout) {
      error(join_path(path, "timeout"), format_duration(out.timeout) + " exceeds max_timeout " +
                                            format_duration(out.max_timeout));
    }
    build_retry(join_path(path, "retry"), p["retry"], c, out.retry);
    out.retry.non_retryable = p["non_retryable"].get<std::vector<int>>();
    const json& pipeline = p["pipeline"];
    for (size_t i = 0; i < pipeline.size(); ++i) {
      std::string step_path = index_path(join_path(path, "pipeline"), i);
      const json& step = pipeline[i];
      if (step.size() != 1) {
        error(step_path, "expected a mapping with exactly one plugin name, got " +
                             std::to_string(step.size()) + " keys");
        continue;
      }
      plugin_step s{step.begin().key(), step.begin().value()};
      if (s.config.is_null()) s.config = json::object();
      const auto& load = c.plugins.load;
      if (std::find(load.begin(), load.end(), s.name) == load.end()) {
        error(join_path(step_path, s.name),
              "plugin \"" + s.name + "\" is not loaded (add it to plugins.load)");
      }
      out.pipeline.push_back(std::move(s));
    }
    return out;
  }

  /// Starts from retry_policy's defaults; the schema has filled in attempts and jitter.
  void build_retry(const std::string& path, const json& r, const relay_config& c, retry_policy& out) {
    int attempts = r["attempts"];
    out.attempts = static_cast<std::uint32_t>(attempts);
    out.jitter = r["jitter"];
    if (attempts > c.limits.max_retries + 1) {
      error(join_path(path, "attempts"),
            std::to_string(attempts) + " exceeds limits.max_retries + 1 (" + std::to_string(c.limits.max_retries + 1) + ")");
    }
    bool has_schedule = r.contains("schedule");
    bool has_backoff = r.contains("backoff");
    if (has_schedule && has_backoff) {
      error(path, "give either schedule or backoff, not both");
      return;
    }
    if (!has_backoff) {
      for (const char* key : {"base", "factor", "max"}) {
        if (r.contains(key)) error(join_path(path, key), "only used with backoff: exponential");
      }
      if (has_schedule) {
        out.schedule.clear();
        for (const auto& e : r["schedule"].get<std::vector<std::string>>()) out.schedule.push_back(*parse_duration(e));
      }
      return;
    }
    out.exponential = true;
    if (r.contains("base")) out.base = positive(r["base"], join_path(path, "base"));
    if (r.contains("factor")) out.factor = r["factor"];
    if (r.contains("max")) out.max = dur(r["max"]);
    if (out.max < out.base) {
      error(join_path(path, "max"), format_duration(out.max) + " is shorter than base " + format_duration(out.base));
    }
  }

  route_config build_route(const std::string& path, const json& r, const relay_config& c) {
    route_config out;
    out.host = r["match"]["host"];
    out.path_prefix = r["match"].value("path_prefix", "");
    out.policy = r["policy"];
    auto star = out.host.find('*');
    if (star != std::string::npos && (star != 0 || out.host.rfind("*.", 0) != 0 || out.host.size() < 3 ||
                                      out.host.find('*', 1) != std::string::npos)) {
      error(join_path(path, "match.host"), "a wildcard is allowed only as a leading \"*.\"");
    }
    if (!out.path_prefix.empty() && out.path_prefix[0] != '/') {
      error(join_path(path, "match.path_prefix"), "must start with /");
    }
    if (!c.policies.count(out.policy)) {
      error(join_path(path, "policy"), "unknown policy \"" + out.policy + "\"");
    }
    return out;
  }

  std::vector<config_error>& errors_;
};

/// A value of the schema's type that passes its checks, for a value already reported bad: its
/// default, else a neutral value (so the semantic round can look at everything else).
json stand_in(const json& schema) {
  if (schema.contains("default")) return schema["default"];
  std::string type = schema.contains("type") ? (schema["type"].is_array() ? schema["type"][0] : schema["type"])
                                                     .get<std::string>()
                                             : "null";
  if (type == "string") {
    std::string format = schema.value("format", "");
    if (format == "duration") return "1s";
    if (format == "size") return "1MiB";
    if (format == "listen-address") return "127.0.0.1:0";
    if (format == "cidr") return "127.0.0.1/32";
    if (format == "absolute-url") return "http://localhost/";
    return std::string(std::max<std::size_t>(1, schema.value("minLength", std::size_t{1})), 'x');
  }
  if (type == "integer" || type == "number") return schema.value("minimum", 1);
  if (type == "boolean") return false;
  if (type == "array") return json::array();
  if (type == "object") return json::object();
  return nullptr;
}

/// Replaces each value whose path is in `bad` (and each missing required one) by stand_in().
void repair(const json& schema, json& value, const std::string& path, const std::set<std::string>& bad) {
  if (bad.count(path)) {
    value = stand_in(schema);
    if (value.is_object()) apply_defaults(schema, value);
  }
  if (value.is_object() && schema.contains("properties")) {
    for (auto it = schema["properties"].begin(); it != schema["properties"].end(); ++it) {
      std::string child = join_path(path, it.key());
      if (!value.contains(it.key())) {
        if (!bad.count(child)) continue;
        value[it.key()] = nullptr;
      }
      repair(it.value(), value[it.key()], child, bad);
    }
  }
  if (value.is_object() && schema.contains("additionalProperties") && schema["additionalProperties"].is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (schema.contains("properties") && schema["properties"].contains(it.key())) continue;
      repair(schema["additionalProperties"], it.value(), join_path(path, it.key()), bad);
    }
  }
  if (value.is_array() && schema.contains("items")) {
    for (std::size_t i = 0; i < value.size(); ++i) repair(schema["items"], value[i], index_path(path, i), bad);
  }
}

}  // namespace

load_result load_config_text(const std::string& text, const std::string& source,
                             const env_lookup& env) {
  load_result out;
  yaml_document doc = parse_yaml(text, source, env);
  out.errors = std::move(doc.errors);
  // Every error in one round (an unset ${VAR}, the schema's, the semantic checks'), except that
  // broken YAML stops here: there is nothing to check. A later round leaves out what lies on
  // the path of an earlier error (a value already reported, or its parent).
  if (doc.value.is_null() && !out.errors.empty()) return out;
  auto already_reported = [&](const std::string& path, std::size_t before) {
    for (std::size_t i = 0; i < before; ++i) {
      const std::string& p = out.errors[i].path;
      auto under = [](const std::string& a, const std::string& b) {  // a is b or inside it
        return a.size() >= b.size() && a.compare(0, b.size(), b) == 0 &&
               (a.size() == b.size() || a[b.size()] == '.' || a[b.size()] == '[');
      };
      if (under(path, p) || under(p, path)) return true;
    }
    return false;
  };
  auto add_round = [&](std::vector<config_error> round) {
    std::size_t before = out.errors.size();
    for (auto& e : round) {
      if (!already_reported(e.path, before)) out.errors.push_back(std::move(e));
    }
  };
  if (!doc.value.is_object()) {
    out.errors.push_back({source, "expected a mapping at the top level, got " +
                                      (doc.value.is_null() ? std::string("an empty file")
                                                           : render_value(doc.value))});
    return out;
  }
  const json& schema = relay_schema();
  std::vector<config_error> schema_errors;
  validate(schema, doc.value, "", schema_errors);
  add_round(std::move(schema_errors));
  json& v = doc.value;
  if (!out.errors.empty()) {
    // Stand-ins for what is already reported, so the semantic checks can run on the rest; if
    // the document still does not fit the schema, they cannot.
    std::set<std::string> bad;
    for (const auto& e : out.errors) bad.insert(e.path);
    repair(schema, v, "", bad);
    std::vector<config_error> again;
    validate(schema, v, "", again);
    if (!again.empty()) return out;
  }
  apply_defaults(schema, v);
  if (!v["policies"].contains("default")) {
    v["policies"]["default"] = json::object();
    apply_defaults(schema, v);
  }
  std::vector<config_error> semantic;
  builder b(semantic);
  relay_config c = b.build(v);
  add_round(std::move(semantic));
  if (out.errors.empty()) out.config = std::move(c);
  return out;
}

load_result load_config_file(const std::string& path, const env_lookup& env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    load_result out;
    out.errors.push_back({path, "cannot read the file"});
    return out;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return load_config_text(buffer.str(), path, env);
}

}  // namespace fetchrelay::config
