#include "plugins/host/plugin_host.h"

#include <cmath>
#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <random>

#include "config/schema.h"
#include "core/ascii.h"

namespace fetchrelay::plugins {
namespace {

bool valid_name(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

attempt_data& data(fr_attempt* a) { return *reinterpret_cast<attempt_data*>(a); }
const attempt_data& data(const fr_attempt* a) { return *reinterpret_cast<const attempt_data*>(a); }
fr_str str(const std::string& s) { return {s.data(), s.size()}; }

}  // namespace

/// One pipeline step: the module, its instance and the host table handed to it (ctx = this).
struct chain::step {
  const module* m = nullptr;
  void* instance = nullptr;
  services svc;
  std::string bucket;  // its shared token bucket's key: <plugin>{<labels>}
  std::mt19937_64 rng{std::random_device{}()};
  fr_host_v1 host{};
};

namespace {

chain::step& step_of(void* ctx) { return *static_cast<chain::step*>(ctx); }

/// fetchrelay_plugin_<plugin>_<name><suffix>: the series a plugin's count, gauge or count_seconds writes.
std::string plugin_series(const chain::step& s, const char* name, const char* suffix) {
  return "fetchrelay_plugin_" + s.m->name + "_" + name + suffix;
}

fr_host_v1 make_host(chain::step* s) {
  fr_host_v1 h{};
  h.abi_version = FETCHRELAY_PLUGIN_ABI_VERSION | (FETCHRELAY_HOST_REVISION << 16);
  h.ctx = s;
  h.method = [](const fr_attempt* a) { return str(data(a).method); };
  h.url = [](const fr_attempt* a) { return str(data(a).url); };
  h.job_id = [](const fr_attempt* a) { return str(data(a).job_id); };
  h.attempt_number = [](const fr_attempt* a) { return data(a).number; };
  h.tenant = [](const fr_attempt* a) { return str(data(a).tenant); };
  h.policy = [](const fr_attempt* a) { return str(data(a).policy); };
  h.header_count = [](const fr_attempt* a) { return data(a).headers.size(); };
  h.header_at = [](const fr_attempt* a, size_t i, fr_str* name, fr_str* value) {
    const auto& hs = data(a).headers;
    if (i >= hs.size()) return 0;
    *name = str(hs[i].name);
    *value = str(hs[i].value);
    return 1;
  };
  h.get_header = [](const fr_attempt* a, const char* name, fr_str* value) {
    for (const auto& x : data(a).headers) {
      if (iequals(x.name, name)) {
        *value = str(x.value);
        return 1;
      }
    }
    return 0;
  };
  h.set_header = [](fr_attempt* a, const char* name, const char* value) {
    std::string_view n(name), v(value);
    // is_hop_by_hop covers Host and Content-Length too: the connection sets them.
    if (!is_header_name(n) || contains_any(v, "\r\n") || is_hop_by_hop(n)) {
      return -1;
    }
    auto& hs = data(a).headers;
    std::erase_if(hs, [&](const header_pair& x) { return iequals(x.name, n); });
    hs.push_back({std::string(n), std::string(v)});
    return 0;
  };
  h.remove_header = [](fr_attempt* a, const char* name) {
    return static_cast<size_t>(
        std::erase_if(data(a).headers, [&](const header_pair& x) { return iequals(x.name, name); }));
  };
  h.body = [](const fr_attempt* a) { return str(data(a).body); };
  h.set_body = [](fr_attempt* a, const char* bytes, size_t size) { data(a).body.assign(bytes, size); };
  h.now_ms = [](void* ctx) { return step_of(ctx).svc.clock->now_ms(); };
  h.random_u64 = [](void* ctx) {
    auto& s = step_of(ctx);
    return s.svc.random ? s.svc.random() : s.rng();
  };
  h.log = [](void* ctx, int32_t level, const char* message) {
    const std::string& name = step_of(ctx).m->name;
    switch (level) {
      case FR_LOG_DEBUG: spdlog::debug("plugin {}: {}", name, message); break;
      case FR_LOG_INFO: spdlog::info("plugin {}: {}", name, message); break;
      case FR_LOG_WARN: spdlog::warn("plugin {}: {}", name, message); break;
      default: spdlog::error("plugin {}: {}", name, message); break;
    }
  };
  h.count = [](void* ctx, const char* name, uint64_t delta) {
    auto& s = step_of(ctx);
    if (!s.svc.metrics || !valid_name(name)) return;
    s.svc.metrics->add_count(plugin_series(s, name, "_total"), s.svc.labels, static_cast<double>(delta),
                             "Counter " + std::string(name) + " of plugin " + s.m->name + ".");
  };
  h.gauge = [](void* ctx, const char* name, int64_t value) {
    auto& s = step_of(ctx);
    if (!valid_name(name)) return;
    if (s.svc.on_gauge) s.svc.on_gauge(s.m->name + "_" + name, value);
    if (!s.svc.metrics) return;
    s.svc.metrics->set_gauge(plugin_series(s, name, ""), s.svc.labels, value,
                             "Gauge " + std::string(name) + " of plugin " + s.m->name + ".");
  };
  h.describe = [](void* ctx, const char* name, const char* help) {
    auto& s = step_of(ctx);
    if (!s.svc.metrics || !valid_name(name) || !help) return;
    for (const char* suffix : {"", "_total", "_seconds_total"}) s.svc.metrics->describe(plugin_series(s, name, suffix), help);
  };
  h.take_tokens = [](void* ctx, int64_t want, double rate_per_s, int64_t burst) -> int64_t {
    auto& s = step_of(ctx);
    if (!s.svc.tokens) return -1;
    if (want <= 0 || !(rate_per_s > 0) || burst < 1) return 0;
    return s.svc.tokens->take(s.bucket, want, rate_per_s, burst);
  };
  h.pause_tokens = [](void* ctx, int64_t until_ms) {
    auto& s = step_of(ctx);
    if (s.svc.tokens) s.svc.tokens->pause(s.bucket, until_ms);
  };
  h.relay_count = [](void* ctx) -> int32_t {
    auto& s = step_of(ctx);
    return s.svc.tokens ? s.svc.tokens->live_nodes() : 1;
  };
  h.count_seconds = [](void* ctx, const char* name, double seconds) {
    auto& s = step_of(ctx);
    if (!s.svc.metrics || !valid_name(name) || !std::isfinite(seconds) || seconds < 0) return;
    s.svc.metrics->add_count(plugin_series(s, name, "_seconds_total"), s.svc.labels, seconds,
                             "Seconds counted as " + std::string(name) + " by plugin " + s.m->name + ".");
  };
  return h;
}

}  // namespace

result<module> load_module(const std::string& path, const std::string& expected_name) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* e = dlerror();
    return status{status_code::invalid_argument,
                  "cannot load plugin \"" + expected_name + "\" from " + path + ": " + (e ? e : "dlopen failed")};
  }
  // Never dlclose'd: instances may live until exit, and ASan needs the code mapped.
  dlerror();
  void* sym = dlsym(handle, FETCHRELAY_PLUGIN_ENTRY);
  if (!sym) {
    return status{status_code::invalid_argument,
                  path + " has no symbol " FETCHRELAY_PLUGIN_ENTRY
                         " (not a fetchrelay plugin, or built without FETCHRELAY_PLUGIN / the C entry point)"};
  }
  auto entry = reinterpret_cast<fr_plugin_entry_v1>(sym);
  const fr_plugin_v1* t = entry();
  if (!t) return status{status_code::invalid_argument, path + ": " FETCHRELAY_PLUGIN_ENTRY " returned no table"};
  if (t->abi_version != FETCHRELAY_PLUGIN_ABI_VERSION) {
    return status{status_code::invalid_argument,
                  path + ": plugin ABI version " + std::to_string(t->abi_version) + ", but this fetchrelay speaks " +
                      std::to_string(FETCHRELAY_PLUGIN_ABI_VERSION) + "; rebuild the plugin against this SDK"};
  }
  std::string name = t->name ? t->name : "";
  if (name != expected_name) {
    return status{status_code::invalid_argument,
                  path + ": the plugin calls itself \"" + name + "\" but was loaded as \"" + expected_name + "\""};
  }
  if (!t->create || !t->destroy || !t->on_attempt) {
    return status{status_code::invalid_argument, path + ": the plugin table lacks create, destroy or on_attempt"};
  }
  module m{name, path, t, config::json::object()};
  try {
    m.schema = config::json::parse(t->config_schema ? t->config_schema : "{}");
  } catch (const std::exception& e) {
    return status{status_code::invalid_argument, path + ": config_schema is not valid JSON: " + e.what()};
  }
  if (!m.schema.is_object()) return status{status_code::invalid_argument, path + ": config_schema is not a JSON object"};
  if (auto problem = config::check_schema(m.schema); !problem.empty()) {
    return status{status_code::invalid_argument, path + ": config_schema: " + problem};
  }
  return m;
}

result<std::shared_ptr<const registry>> registry::load(const std::vector<std::string>& names,
                                                       const std::vector<std::string>& search_path) {
  auto r = std::make_shared<registry>();
  for (const auto& name : names) {
    std::string found;
    for (const auto& dir : search_path) {
      std::string candidate = (std::filesystem::path(dir) / (name + ".so")).string();
      std::error_code ec;
      if (std::filesystem::is_regular_file(candidate, ec)) {
        found = candidate;
        break;
      }
    }
    if (found.empty()) {
      std::string dirs;
      for (const auto& d : search_path) dirs += (dirs.empty() ? "" : ", ") + d;
      return status{status_code::not_found, "plugin \"" + name + "\" not found: no " + name + ".so in plugins.search_path [" +
                                                dirs + "]"};
    }
    auto m = load_module(found, name);
    if (!m) return m.error();
    spdlog::info("plugin {} loaded from {}", name, found);
    r->add(std::move(*m));
  }
  return std::shared_ptr<const registry>(std::move(r));
}

const module* registry::find(std::string_view name) const {
  auto it = modules_.find(name);
  return it == modules_.end() ? nullptr : &it->second;
}

void registry::check(const std::map<std::string, std::vector<config::plugin_step>>& pipelines,
                     std::vector<config::config_error>& errors) const {
  for (const auto& [policy, steps] : pipelines) {
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const auto& s = steps[i];
      const module* m = find(s.name);
      if (!m) continue;  // the config check already named a plugin that is not loaded
      std::string path = config::join_path(config::index_path("policies." + policy + ".pipeline", i), s.name);
      std::size_t before = errors.size();
      config::json block = s.config.is_null() ? config::json::object() : s.config;
      config::validate(m->schema, block, path, errors);
      if (errors.size() != before) continue;
      // The schema cannot say everything (a rate's syntax, a secret's encoding): the plugin
      // itself must accept the block, now rather than at the first attempt.
      auto c = chain::create(*this, policy, {s}, {std::make_shared<system_wall_clock>(), nullptr, nullptr});
      if (!c) errors.push_back({path, c.error().message().substr(c.error().message().find("): ") + 3)});
    }
  }
}

result<std::unique_ptr<chain>> chain::create(const registry& r, const std::string& policy,
                                             const std::vector<config::plugin_step>& steps, services s) {
  std::unique_ptr<chain> c(new chain());
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const module* m = r.find(steps[i].name);
    std::string where = "policies." + policy + ".pipeline[" + std::to_string(i) + "] (" + steps[i].name + ")";
    if (!m) return status{status_code::invalid_argument, where + ": plugin not loaded"};
    config::json cfg = steps[i].config.is_null() ? config::json::object() : steps[i].config;
    config::apply_defaults(m->schema, cfg);
    auto st = std::make_unique<step>();
    st->m = m;
    st->svc = s;
    st->bucket = m->name + "{" + s.labels + "}";
    st->host = make_host(st.get());
    char error[512] = {0};
    st->instance = m->table->create(&st->host, cfg.dump().c_str(), error, sizeof error);
    if (!st->instance) return status{status_code::invalid_argument, where + ": " + (error[0] ? error : "create failed")};
    c->steps_.push_back(std::move(st));
  }
  return c;
}

chain::~chain() {
  for (auto& s : steps_) s->m->table->destroy(s->instance);
}

chain::verdict chain::on_attempt(attempt_data& a) {
  verdict v;
  auto* fa = reinterpret_cast<fr_attempt*>(&a);
  for (auto& s : steps_) {
    fr_verdict out{};
    s->m->table->on_attempt(s->instance, fa, &out);
    out.reason[sizeof out.reason - 1] = '\0';
    if (out.kind == FR_PROCEED) {
      ++v.proceeded;
      continue;
    }
    v.kind = out.kind == FR_DEFER ? FR_DEFER : FR_REJECT;
    v.by = s->m->name;
    v.defer_until_ms = out.defer_until_ms;
    v.reason = out.reason;
    if (v.reason.empty()) v.reason = s->m->name + (v.kind == FR_DEFER ? " deferred the attempt" : " rejected the attempt");
    break;
  }
  return v;
}

void chain::on_outcome(const attempt_data& a, const outcome_data& o, std::size_t proceeded) {
  const auto* fa = reinterpret_cast<const fr_attempt*>(&a);
  fr_outcome fo{o.status, str(o.error_class), o.retry_after_ms, o.duration_ms};
  for (std::size_t i = std::min(proceeded, steps_.size()); i-- > 0;) {
    if (steps_[i]->m->table->on_outcome) steps_[i]->m->table->on_outcome(steps_[i]->instance, fa, &fo);
  }
}

}  // namespace fetchrelay::plugins
