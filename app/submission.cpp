#include "app/submission.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>

#include "core/address_policy.h"
#include "core/ascii.h"
#include "core/cron.h"
#include "core/text.h"
#include "core/ulid.h"
#include "core/units.h"
#include "core/time.h"

namespace fetchrelay::app {
namespace {

constexpr std::size_t max_url_bytes = 2048;
constexpr std::size_t max_idempotency_key_bytes = 256;
constexpr std::size_t max_cron_bytes = 256;  // a zone name and six fields fit many times over
constexpr const char* forward_prefix = "X-Fetch-Forward-";

/// The policy of the first route that matches the URL's host and path, else "default".
std::string route_policy(const config::relay_config& cfg, const parsed_url& url) {
  const std::string& host = url.host;
  const std::string& path = url.target;
  for (const auto& r : cfg.routes) {
    bool host_ok = r.host.rfind("*.", 0) == 0 ? (host.size() > r.host.size() - 1 &&
                                                 host.compare(host.size() - (r.host.size() - 1), std::string::npos,
                                                              r.host.substr(1)) == 0)
                                              : host == r.host;
    if (host_ok && path.rfind(r.path_prefix, 0) == 0) return r.policy;
  }
  return "default";
}

/// SHA-256 of what a job asks for: method, URL, forwarded headers (in order) and body. A repeat
/// with the same X-Idempotency-Key must ask for the same, or it is a conflict.
std::string fingerprint(const job_spec& spec) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  auto add = [&](std::string_view part) {
    std::uint64_t n = part.size();  // length-prefixed: no two different requests hash the same parts
    EVP_DigestUpdate(ctx.get(), &n, sizeof n);
    EVP_DigestUpdate(ctx.get(), part.data(), part.size());
  };
  add(spec.method);
  add(spec.url);
  for (const auto& h : spec.headers) {
    add(h.name);
    add(h.value);
  }
  add(spec.body);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  return std::string(reinterpret_cast<const char*>(digest), len);
}

/// The headers the API reads, each allowed once (X-Fetch-Forward-* are forwarded as given), in the
/// order their problems are reported.
enum single : std::size_t {
  h_url, h_method, h_delay, h_not_before, h_policy, h_retries, h_timeout, h_callback, h_failure_callback, h_idem,
  h_topic, h_queue, single_count
};
constexpr std::string_view single_valued[single_count] = {
    "X-Fetch-Url", "X-Fetch-Method", "X-Delay", "X-Not-Before", "X-Policy", "X-Retries", "X-Timeout",
    "X-Callback", "X-Failure-Callback", "X-Idempotency-Key", "X-Fetch-Topic", "X-Queue"};

/// The URL headers: parse_url checks their bytes, and names the URL in its answer.
constexpr bool is_url_header(std::size_t i) { return i == h_url || i == h_callback || i == h_failure_callback; }

/// One pass over the request's headers for the single-valued ones named in `names`: each given
/// at most once (400 duplicate_header, for the first of `names` given twice), and printable ASCII
/// unless `raw(i)` (400 invalid_header). values[i] is the value given, if any.
template <std::size_t N, class Raw>
std::optional<bad_request> read_single_valued(const http::request& req, const std::string_view (&names)[N],
                                              std::optional<std::string_view> (&values)[N], Raw raw) {
  int counts[N] = {};
  for (const auto& h : req.headers) {
    for (std::size_t i = 0; i < N; ++i) {
      if (!iequals(h.name, names[i])) continue;
      if (counts[i]++ == 0) values[i] = h.value;
      break;
    }
  }
  for (std::size_t i = 0; i < N; ++i) {
    if (counts[i] > 1) {
      return bad_request{400, "duplicate_header",
                         std::string(names[i]) + " was given " + std::to_string(counts[i]) + " times; give it once"};
    }
  }
  for (std::size_t i = 0; i < N; ++i) {
    if (raw(i) || !values[i]) continue;
    for (char ch : *values[i]) {
      auto c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c > 0x7e) return bad_request{400, "invalid_header", std::string(names[i]) + " must be printable ASCII"};
    }
  }
  return std::nullopt;
}

/// A target or callback URL: valid (core/url.h), and if its host is an IP literal, one that
/// delivery may reach (names are checked at delivery, after resolution).
std::variant<parsed_url, bad_request> check_destination(const config::relay_config& cfg, const char* name,
                                                        std::string_view url, const char* invalid_code) {
  if (url.size() > max_url_bytes) {
    return bad_request{400, std::string_view(invalid_code) == "invalid_url" ? "url_too_long" : invalid_code,
                       std::string(name) + " is " + std::to_string(url.size()) + " bytes; at most 2048"};
  }
  auto u = parse_url(url);
  if (!u) return bad_request{400, invalid_code, std::string(name) + ": " + u.error().message()};
  if (u->ip) {
    address_policy policy(cfg.delivery.allow_private_networks, cfg.delivery.allow_networks);
    if (!policy.permits(*u->ip)) {
      return bad_request{400, "blocked_destination",
                         std::string(name) + ": " + u->host + " is in a " + address_policy::restricted_range(*u->ip) +
                             " range, which delivery may not reach (delivery.allow_networks / allow_private_networks)"};
    }
  }
  return std::move(*u);
}

/// X-Delay or X-Not-Before (at most one) as the time to run; neither: `now`.
std::variant<std::int64_t, bad_request> run_at_of(const config::relay_config& cfg, std::int64_t now,
                                                  std::optional<std::string_view> delay,
                                                  std::optional<std::string_view> not_before) {
  if (delay && not_before) {
    return bad_request{400, "delay_and_not_before", "give either X-Delay or X-Not-Before, not both"};
  }
  if (delay) {
    auto d = parse_duration(*delay, {true});
    if (!d) return bad_request{400, "invalid_delay", "X-Delay: " + d.error().message() + " (e.g. 30s, 5m, 1d2h)"};
    if (*d > cfg.limits.max_delay) {
      return bad_request{400, "delay_too_long", "X-Delay is over limits.max_delay (" + format_duration(cfg.limits.max_delay) + ")"};
    }
    return now + d->count();
  }
  if (not_before) {
    auto t = parse_not_before(*not_before);
    if (!t) {
      return bad_request{400, "invalid_not_before",
                         "X-Not-Before must be unix seconds or an RFC 3339 date-time that exists "
                         "(e.g. 2026-11-28T10:00:00Z or 2026-11-28T11:00:00.250+01:00)"};
    }
    if (*t - now > cfg.limits.max_delay.count()) {
      return bad_request{400, "delay_too_long", "X-Not-Before is further than limits.max_delay (" + format_duration(cfg.limits.max_delay) + ")"};
    }
    return std::max(*t, now);
  }
  return now;
}

}  // namespace

std::variant<actors::submission, bad_request> parse_submission(const config::relay_config& cfg, const wall_clock& clock,
                                                               const std::string& tenant, http::request& req) {
  std::optional<std::string_view> given[single_count];
  if (auto bad = read_single_valued(req, single_valued, given, is_url_header)) return *bad;
  auto header = [&](single i) { return given[i]; };
  actors::submission s;
  s.tenant = tenant;
  auto url = header(h_url);
  auto topic = header(h_topic);
  std::optional<parsed_url> target;
  if (topic) {  // the URLs are the topic's endpoints (expand_topic)
    if (url) return bad_request{400, "url_and_topic", "give either X-Fetch-Url or X-Fetch-Topic, not both"};
    if (!is_valid_name(*topic)) return bad_request{400, "invalid_topic", "X-Fetch-Topic must be 1 to 64 of A-Z a-z 0-9 _ . -"};
    s.topic = std::string(*topic);
  } else {
    if (!url || url->empty()) return bad_request{400, "missing_url", "X-Fetch-Url is required: the absolute http(s) URL to call"};
    auto checked = check_destination(cfg, "X-Fetch-Url", *url, "invalid_url");
    if (auto* bad = std::get_if<bad_request>(&checked)) return *bad;
    target = std::get<parsed_url>(std::move(checked));
    s.spec.url = std::string(*url);
  }
  if (auto m = header(h_method)) {
    std::string method(*m);
    if (method != "GET" && method != "POST" && method != "PUT" && method != "PATCH" && method != "DELETE") {
      return bad_request{400, "invalid_method", "X-Fetch-Method must be GET, POST, PUT, PATCH or DELETE"};
    }
    s.spec.method = method;
  }
  std::int64_t now = clock.now_ms();
  auto run_at = run_at_of(cfg, now, header(h_delay), header(h_not_before));
  if (auto* bad = std::get_if<bad_request>(&run_at)) return *bad;
  s.run_at_ms = std::get<std::int64_t>(run_at);
  if (auto p = header(h_policy)) {
    if (!cfg.policies.count(std::string(*p))) return bad_request{400, "unknown_policy", "X-Policy names no policy: " + std::string(*p)};
    s.policy = std::string(*p);
  } else {
    s.policy = target ? route_policy(cfg, *target) : "default";
  }
  const auto& policy = cfg.policies.at(s.policy);
  if (auto r = header(h_retries)) {
    unsigned long n = 0;
    std::string v(*r);
    bool digits = !v.empty() && v.size() < 8 && v.find_first_not_of("0123456789") == std::string::npos;
    if (digits) n = std::stoul(v);
    if (!digits || n > static_cast<unsigned long>(cfg.limits.max_retries)) {
      return bad_request{400, "invalid_retries",
                         "X-Retries must be a whole number from 0 to " + std::to_string(cfg.limits.max_retries)};
    }
    s.max_attempts = static_cast<std::uint32_t>(n + 1);
  }
  if (auto t = header(h_timeout)) {
    auto d = parse_duration(*t, {true});
    if (!d || d->count() <= 0) return bad_request{400, "invalid_timeout", "X-Timeout must be a duration such as 30s"};
    if (*d > policy.max_timeout) {
      return bad_request{400, "timeout_too_long", "X-Timeout is over the policy's max_timeout (" + format_duration(policy.max_timeout) + ")"};
    }
    s.timeout_ms = static_cast<std::uint32_t>(d->count());
  }
  for (single i : {h_callback, h_failure_callback}) {
    if (auto c = header(i)) {
      auto callback = check_destination(cfg, single_valued[i].data(), *c, "invalid_callback");
      if (auto* bad = std::get_if<bad_request>(&callback)) return *bad;
      (i == h_callback ? s.callback_url : s.failure_callback_url) = std::string(*c);
    }
  }
  if (auto q = header(h_queue)) {
    if (!is_valid_name(*q)) return bad_request{400, "invalid_queue", "X-Queue must be 1 to 64 of A-Z a-z 0-9 _ . -"};
    s.queue = std::string(*q);
  }
  if (auto k = header(h_idem)) {
    if (k->empty() || k->size() > max_idempotency_key_bytes) {
      return bad_request{400, "invalid_idempotency_key", "X-Idempotency-Key must be 1 to 256 bytes"};
    }
    if (k->starts_with("fetchrelay:")) {
      return bad_request{400, "invalid_idempotency_key", "X-Idempotency-Key values starting with fetchrelay: are the relay's own"};
    }
    s.idempotency_key = std::string(*k);
  }
  for (const auto& f : req.headers) {
    bool forwarded = istarts_with(f.name, forward_prefix);
    if (!forwarded && !iequals(f.name, "Content-Type")) continue;
    // The HTTP parser checked these on /v1; a /v2 batch or query value comes from JSON or
    // percent-decoding, and a CR or LF in it would write headers of its own.
    if (!is_header_value(f.value)) {
      return bad_request{400, "invalid_header", utf8_escaped(f.name.substr(0, 64)) + " has a control character (CR, LF, NUL, …) in its value"};
    }
    if (forwarded) {
      std::string name = f.name.substr(std::string_view(forward_prefix).size());
      if (name.empty()) return bad_request{400, "invalid_header", "X-Fetch-Forward- needs a header name after it"};
      if (!is_header_name(name)) return bad_request{400, "invalid_header", "X-Fetch-Forward-" + utf8_escaped(name.substr(0, 64)) + " is not a valid header name"};
      if (!is_hop_by_hop(name)) s.spec.headers.push_back({name, f.value});
    } else {
      s.spec.headers.push_back({"Content-Type", f.value});
    }
  }
  s.spec.body = std::move(req.body);
  if (!s.idempotency_key.empty()) s.fingerprint = fingerprint(s.spec);
  return s;
}

std::optional<bad_request> check_target_url(const config::relay_config& cfg, const char* name, std::string_view url) {
  auto checked = check_destination(cfg, name, url, "invalid_url");
  if (auto* bad = std::get_if<bad_request>(&checked)) return *bad;
  return std::nullopt;
}

std::vector<actors::submission> expand_topic(const config::relay_config& cfg, actors::submission sub,
                                             const topic_state& topic, bool policy_given) {
  if (!sub.idempotency_key.empty()) sub.idempotency_key = "fetchrelay:topic:" + sub.idempotency_key;
  std::function<std::string(const std::string&)> policy_of;
  if (!policy_given) policy_of = route_policy_of(cfg);
  auto out = actors::expand_topic(sub, topic, policy_of);
  for (auto& one : out) {
    if (!one.idempotency_key.empty()) one.fingerprint = fingerprint(one.spec);
  }
  return out;
}

std::function<std::string(const std::string&)> route_policy_of(const config::relay_config& cfg) {
  return [&cfg](const std::string& url) {
    auto u = parse_url(url);
    return u ? route_policy(cfg, *u) : std::string("default");
  };
}

bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

std::variant<schedule_state, bad_request> parse_schedule(const config::relay_config& cfg, const wall_clock& clock,
                                                        const std::string& tenant, http::request& req) {
  for (const char* name : {"X-Delay", "X-Not-Before", "X-Idempotency-Key"}) {
    if (req.header(name)) {
      return bad_request{400, "not_for_schedules",
                         std::string(name) + " does not apply to a schedule (each fire runs at once, with a key of its own)"};
    }
  }
  for (const char* name : {"X-Cron", "X-Schedule-Id"}) {
    int n = 0;
    for (const auto& h : req.headers) n += iequals(h.name, name) ? 1 : 0;
    if (n > 1) return bad_request{400, "duplicate_header", std::string(name) + " was given " + std::to_string(n) + " times; give it once"};
  }
  auto cron = req.header("X-Cron");
  if (!cron || cron->empty()) return bad_request{400, "missing_cron", "X-Cron is required, e.g. X-Cron: */5 * * * *"};
  if (cron->size() > max_cron_bytes) {
    return bad_request{400, "invalid_cron", "X-Cron is at most " + std::to_string(max_cron_bytes) + " bytes"};
  }
  for (char c : *cron) {
    auto b = static_cast<unsigned char>(c);
    if ((b < 0x20 && c != '\t') || b >= 0x7f) return bad_request{400, "invalid_cron", "X-Cron must be printable ASCII"};
  }
  auto parsed_cron = parse_cron(*cron);
  if (auto* bad = std::get_if<cron_error>(&parsed_cron)) {
    return bad_request{400, "invalid_cron", "X-Cron: the " + bad->field + " field: " + bad->message};
  }
  schedule_state out;
  out.tenant = tenant;
  out.cron = std::string(*cron);
  if (auto id = req.header("X-Schedule-Id")) {
    if (!is_valid_name(*id)) return bad_request{400, "invalid_schedule_id", "X-Schedule-Id must be 1 to 64 of A-Z a-z 0-9 _ . -"};
    out.id = std::string(*id);
  } else {
    std::array<std::uint8_t, 10> random{};
    RAND_bytes(random.data(), static_cast<int>(random.size()));
    out.id = "sched_" + encode_ulid(clock.now_ms(), random);
  }
  auto sub = parse_submission(cfg, clock, tenant, req);
  if (auto* bad = std::get_if<bad_request>(&sub)) return *bad;
  out.request = actors::request_of(std::get<actors::submission>(sub));
  return out;
}

std::variant<std::int64_t, bad_request> parse_run_at(const config::relay_config& cfg, const wall_clock& clock,
                                                     const http::request& req) {
  std::optional<std::string_view> values[2];
  constexpr std::string_view names[2] = {"X-Delay", "X-Not-Before"};
  if (auto bad = read_single_valued(req, names, values, [](std::size_t) { return false; })) return *bad;
  return run_at_of(cfg, clock.now_ms(), values[0], values[1]);
}

std::optional<std::int64_t> parse_not_before(std::string_view v) {
  if (v.empty()) return std::nullopt;
  if (v.find_first_not_of("0123456789") == std::string_view::npos) {
    if (v.size() > 12) return std::nullopt;
    return static_cast<std::int64_t>(std::stoll(std::string(v))) * 1000;
  }
  return parse_rfc3339(v);
}

}  // namespace fetchrelay::app
