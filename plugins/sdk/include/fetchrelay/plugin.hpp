// The C++ plugin SDK: a header-only layer over the C ABI in plugin.h, so a plugin is a small
// class. Nothing here crosses the ABI but C types; every hook is wrapped so no exception
// escapes (a throwing on_attempt becomes a reject carrying the message).
//
//   class stamp final : public fetchrelay::sdk::plugin {
//    public:
//     stamp(const fetchrelay::sdk::host& host, std::string_view config_json) : host_(host) {}
//     fetchrelay::sdk::verdict on_attempt(fetchrelay::sdk::attempt& a) override {
//       a.set_header("X-Stamp", std::to_string(host_.now_ms()));
//       return fetchrelay::sdk::verdict::proceed();
//     }
//    private:
//     fetchrelay::sdk::host host_;
//   };
//   FETCHRELAY_PLUGIN(stamp, "stamp", R"({"type": "object", "additionalProperties": false})")
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fetchrelay/plugin.h"

namespace fetchrelay::sdk {

inline std::string_view view(fr_str s) { return {s.data, s.size}; }

/// "250ms", "30s", "5m", "2h", "1d", or a sequence such as "1m30s", in milliseconds; nullopt
/// if it is not one (the host's schema format "duration" accepts exactly these).
inline std::optional<std::int64_t> parse_duration_ms(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::int64_t total = 0;
  while (!s.empty()) {
    std::size_t i = 0;
    std::int64_t n = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (n > 1'000'000'000'000LL) return std::nullopt;
      n = n * 10 + (s[i++] - '0');
    }
    if (i == 0) return std::nullopt;
    s.remove_prefix(i);
    std::int64_t unit = 0;
    if (s.substr(0, 2) == "ms") unit = 1, s.remove_prefix(2);
    else if (!s.empty() && s[0] == 's') unit = 1000, s.remove_prefix(1);
    else if (!s.empty() && s[0] == 'm') unit = 60'000, s.remove_prefix(1);
    else if (!s.empty() && s[0] == 'h') unit = 3'600'000, s.remove_prefix(1);
    else if (!s.empty() && s[0] == 'd') unit = 86'400'000, s.remove_prefix(1);
    else return std::nullopt;
    total += n * unit;
  }
  return total;
}

/// The host's services: clock, randomness, logging, counters. Cheap to copy.
class host {
 public:
  explicit host(const fr_host_v1* h) : h_(h) {}
  std::int64_t now_ms() const { return h_->now_ms(h_->ctx); }
  std::uint64_t random_u64() const { return h_->random_u64(h_->ctx); }
  /// A uniform draw in [0, 1).
  double random_unit() const { return static_cast<double>(random_u64() >> 11) * 0x1.0p-53; }
  void log(fr_log_level level, const std::string& message) const { h_->log(h_->ctx, level, message.c_str()); }
  /// Adds to fetchrelay_plugin_<plugin>_<name>_total.
  void count(const char* name, std::uint64_t delta = 1) const { h_->count(h_->ctx, name, delta); }
  /// Sets fetchrelay_plugin_<plugin>_<name> (a gauge).
  void gauge(const char* name, std::int64_t value) const { h_->gauge(h_->ctx, name, value); }
  /// The HELP text of series `name` in /metrics (call it from the constructor).
  /// Nothing on a host too old to have it (revision 0).
  void describe(const char* name, const char* help) const {
    if (FR_HOST_REVISION(h_) >= 1) h_->describe(h_->ctx, name, help);
  }
  /// Adds seconds to fetchrelay_plugin_<plugin>_<name>_seconds_total (nothing on a revision 0 host).
  void count_seconds(const char* name, double seconds) const {
    if (FR_HOST_REVISION(h_) >= 1) h_->count_seconds(h_->ctx, name, seconds);
  }
  /// Up to `want` tokens of the bucket shared with every relay (see fr_host_v1::take_tokens);
  /// -1 without a shared bucket (one relay, or a host older than revision 2).
  std::int64_t take_tokens(std::int64_t want, double rate_per_s, std::int64_t burst) const {
    return FR_HOST_REVISION(h_) >= 2 ? h_->take_tokens(h_->ctx, want, rate_per_s, burst) : -1;
  }
  /// Pauses the shared bucket until `until_ms` (nothing without one).
  void pause_tokens(std::int64_t until_ms) const {
    if (FR_HOST_REVISION(h_) >= 2) h_->pause_tokens(h_->ctx, until_ms);
  }
  /// The relays alive now (1 on a host older than revision 2).
  int relay_count() const { return FR_HOST_REVISION(h_) >= 2 ? std::max(1, h_->relay_count(h_->ctx)) : 1; }
  const fr_host_v1* raw() const { return h_; }

 private:
  const fr_host_v1* h_;
};

/// The attempt a hook is looking at. Views stay valid until the hook returns.
class attempt {
 public:
  attempt(const fr_host_v1* h, const fr_attempt* a) : h_(h), a_(const_cast<fr_attempt*>(a)) {}

  std::string_view method() const { return view(h_->method(a_)); }
  std::string_view url() const { return view(h_->url(a_)); }
  std::string_view job_id() const { return view(h_->job_id(a_)); }
  std::uint32_t number() const { return h_->attempt_number(a_); }
  std::string_view tenant() const { return view(h_->tenant(a_)); }
  std::string_view policy() const { return view(h_->policy(a_)); }

  std::optional<std::string_view> header(const std::string& name) const {
    fr_str v{};
    if (h_->get_header(a_, name.c_str(), &v) == 1) return view(v);
    return std::nullopt;
  }
  std::vector<std::pair<std::string_view, std::string_view>> headers() const {
    std::vector<std::pair<std::string_view, std::string_view>> out;
    fr_str n{}, v{};
    for (std::size_t i = 0; h_->header_at(a_, i, &n, &v) == 1; ++i) out.emplace_back(view(n), view(v));
    return out;
  }
  /// False if the host refused the header (CR/LF/NUL, hop-by-hop, Host, Content-Length).
  bool set_header(const std::string& name, const std::string& value) {
    return h_->set_header(a_, name.c_str(), value.c_str()) == 0;
  }
  std::size_t remove_header(const std::string& name) { return h_->remove_header(a_, name.c_str()); }

  std::string_view body() const { return view(h_->body(a_)); }
  void set_body(std::string_view b) { h_->set_body(a_, b.data(), b.size()); }

 private:
  const fr_host_v1* h_;
  fr_attempt* a_;
};

/// What happened to the attempt.
struct outcome {
  int status = 0;                 // 0: no response
  std::string_view error_class;   // "" or dns, connect, tls, timeout, reset, protocol, blocked, unusable, rejected, deferred
  std::optional<std::int64_t> retry_after_ms;  // absolute host time
  std::int64_t duration_ms = 0;

  bool success() const { return status >= 200 && status < 300; }
  /// Network errors, timeouts, 5xx and 429: what a circuit breaker counts as failure.
  bool target_failure() const {
    if (status == 429 || status >= 500) return true;
    return status == 0 && (error_class == "dns" || error_class == "connect" || error_class == "tls" ||
                           error_class == "timeout" || error_class == "reset" || error_class == "protocol");
  }
  /// The attempt was never sent (a later plugin deferred or rejected it).
  bool not_sent() const { return error_class == "deferred" || error_class == "rejected"; }
};

/// What on_attempt decides.
struct verdict {
  fr_verdict_kind kind = FR_PROCEED;
  std::int64_t until_ms = 0;
  std::string reason;

  static verdict proceed() { return {}; }
  /// Run the job again at `until_ms` (host clock); no attempt is counted.
  static verdict defer(std::int64_t until_ms, std::string reason) { return {FR_DEFER, until_ms, std::move(reason)}; }
  /// Fail the job now.
  static verdict reject(std::string reason) { return {FR_REJECT, 0, std::move(reason)}; }
};

/// Base class of a plugin. The constructor takes (const host&, std::string_view config_json);
/// config_json is the pipeline block, validated against the schema, defaults applied. Throw
/// from the constructor to refuse a configuration.
class plugin {
 public:
  virtual ~plugin() = default;
  virtual verdict on_attempt(attempt&) { return verdict::proceed(); }
  virtual void on_outcome(const attempt&, const outcome&) {}
};

namespace detail {

inline void copy_text(char* out, std::size_t size, std::string_view text) {
  if (size == 0) return;
  std::size_t n = text.size() < size - 1 ? text.size() : size - 1;
  std::memcpy(out, text.data(), n);
  out[n] = '\0';
}

template <class P>
struct instance {
  const fr_host_v1* host;
  std::unique_ptr<P> impl;
};

template <class P>
struct adapter {
  static const char*& name() {
    static const char* n = "";
    return n;
  }

  static void* create(const fr_host_v1* h, const char* config_json, char* error, std::size_t error_size) {
    try {
      auto p = std::make_unique<P>(host(h), std::string_view(config_json ? config_json : "{}"));
      return new instance<P>{h, std::move(p)};
    } catch (const std::exception& e) {
      copy_text(error, error_size, e.what());
    } catch (...) {
      copy_text(error, error_size, "unknown exception");
    }
    return nullptr;
  }

  static void destroy(void* inst) { delete static_cast<instance<P>*>(inst); }

  static void on_attempt(void* inst, fr_attempt* a, fr_verdict* out) {
    auto* i = static_cast<instance<P>*>(inst);
    verdict v;
    try {
      attempt at(i->host, a);
      v = i->impl->on_attempt(at);
    } catch (const std::exception& e) {
      v = verdict::reject(std::string(name()) + " threw: " + e.what());
    } catch (...) {
      v = verdict::reject(std::string(name()) + " threw an unknown exception");
    }
    out->kind = v.kind;
    out->defer_until_ms = v.until_ms;
    copy_text(out->reason, sizeof out->reason, v.reason);
  }

  static void on_outcome(void* inst, const fr_attempt* a, const fr_outcome* o) {
    auto* i = static_cast<instance<P>*>(inst);
    try {
      outcome oc;
      oc.status = o->status;
      oc.error_class = view(o->error_class);
      if (o->retry_after_ms >= 0) oc.retry_after_ms = o->retry_after_ms;
      oc.duration_ms = o->duration_ms;
      attempt at(i->host, a);
      i->impl->on_outcome(at, oc);
    } catch (const std::exception& e) {
      i->host->log(i->host->ctx, FR_LOG_ERROR, (std::string("on_outcome threw: ") + e.what()).c_str());
    } catch (...) {
      i->host->log(i->host->ctx, FR_LOG_ERROR, "on_outcome threw an unknown exception");
    }
  }

  static fr_plugin_v1 table(const char* plugin_name, const char* schema) {
    name() = plugin_name;
    return fr_plugin_v1{FETCHRELAY_PLUGIN_ABI_VERSION, plugin_name, schema, &create, &destroy, &on_attempt, &on_outcome};
  }
};

}  // namespace detail
}  // namespace fetchrelay::sdk

/// Defines the entry symbol for plugin class `Class`, named `name` (as in plugins.load), with
/// config schema `schema` (JSON text). Use once per shared object.
#define FETCHRELAY_PLUGIN(Class, name, schema)                                                  \
  extern "C" __attribute__((visibility("default"))) const fr_plugin_v1* fetchrelay_plugin_v1(void) { \
    static const fr_plugin_v1 table = ::fetchrelay::sdk::detail::adapter<Class>::table(name, schema); \
    return &table;                                                                              \
  }
