#include "app/api.h"

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "core/ascii.h"
#include "core/address_policy.h"
#include "core/job_json.h"
#include "core/log.h"
#include "core/text.h"
#include "core/url.h"
#include "core/ulid.h"
#include "core/units.h"
#include "http/client.h"

namespace fetchrelay::app {
namespace {

using http::response;

constexpr std::size_t max_url_bytes = 2048;
constexpr std::size_t max_idempotency_key_bytes = 256;
constexpr const char* forward_prefix = "X-Fetch-Forward-";

http::response method_not_allowed(const http::request& req, const char* allow) {
  auto r = response::error(405, "method_not_allowed",
                           req.method + " is not allowed on " + std::string(req.path()) + "; use " + allow);
  r.headers.push_back({"Allow", allow});
  return r;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> query_params(std::string_view target) {
  std::map<std::string, std::string> out;
  auto q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    auto eq = pair.find('=');
    out[percent_decode(pair.substr(0, eq))] = eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return out;
}

/// host and path of an absolute URL already checked by http::url_origin.
std::pair<std::string, std::string> host_and_path(const std::string& url) {
  auto start = url.find("://") + 3;
  auto end = url.find_first_of("/?#", start);
  std::string authority = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  std::string host = authority;
  if (!host.empty() && host[0] == '[') host = host.substr(1, host.find(']') - 1);
  else if (auto c = host.rfind(':'); c != std::string::npos) host = host.substr(0, c);
  for (auto& ch : host) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::string path = end == std::string::npos ? "/" : url.substr(end);
  if (path.empty() || path[0] != '/') path = "/" + path;
  return {host, path};
}

std::string route_policy(const config::relay_config& cfg, const std::string& url) {
  auto [host, path] = host_and_path(url);
  for (const auto& r : cfg.routes) {
    bool host_ok = r.host.rfind("*.", 0) == 0 ? (host.size() > r.host.size() - 1 &&
                                                 host.compare(host.size() - (r.host.size() - 1), std::string::npos,
                                                              r.host.substr(1)) == 0)
                                              : host == r.host;
    if (host_ok && path.rfind(r.path_prefix, 0) == 0) return r.policy;
  }
  return "default";
}

struct bad_request {
  int status;
  std::string code;
  std::string message;
};

/// A refused API key at info, at most one line a second (a scan must not flood the log); the
/// key itself is never logged.
void log_unauthorized(const http::request& req, bool had_key) {
  static std::atomic<std::int64_t> last_ms{-1'000'000};
  static std::atomic<std::int64_t> suppressed{0};
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now().time_since_epoch()).count();
  auto prev = last_ms.load(std::memory_order_relaxed);
  if (now - prev < 1000 || !last_ms.compare_exchange_strong(prev, now)) {
    suppressed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  log::event(spdlog::level::info,
             {{"method", req.method}, {"path", req.path()}, {"reason", had_key ? "unknown key" : "no bearer key"},
              {"status_code", 401}, {"suppressed", suppressed.exchange(0)}},
             "request refused: unauthorized");
}

/// The tenant of a valid "Authorization: Bearer <key>", or nullopt.
std::optional<std::string> authenticate(const config::relay_config& cfg, const http::request& req) {
  auto h = req.header("Authorization");
  if (!h || !istarts_with(*h, "Bearer ")) return std::nullopt;
  std::string_view key = h->substr(7);
  std::optional<std::string> tenant;
  for (const auto& k : cfg.keys) {  // every key is compared, so timing does not tell which matched
    if (constant_time_equal(key, k.key) && !tenant) tenant = k.tenant;
  }
  return tenant;
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

/// The headers the API reads, each allowed once (X-Fetch-Forward-* are forwarded as given).
constexpr const char* single_valued[] = {"X-Fetch-Url", "X-Fetch-Method", "X-Delay", "X-Not-Before",
                                         "X-Policy", "X-Retries", "X-Timeout", "X-Callback",
                                         "X-Failure-Callback", "X-Idempotency-Key"};

bool is_url_header(std::string_view name) {
  return name == "X-Fetch-Url" || name == "X-Callback" || name == "X-Failure-Callback";
}

/// A header's value, checked as bytes before anything converts it: printable ASCII and spaces.
std::variant<std::optional<std::string_view>, bad_request> ascii_header(const http::request& req, const char* name) {
  auto v = req.header(name);
  if (!v) return std::optional<std::string_view>();
  for (char ch : *v) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7e) {
      return bad_request{400, "invalid_header", std::string(name) + " must be printable ASCII"};
    }
  }
  return v;
}

/// A target or callback URL: valid (core/url.h), and if its host is an IP literal, one that
/// delivery may reach (names are checked at delivery, after resolution).
std::optional<bad_request> check_destination(const config::relay_config& cfg, const char* name, std::string_view url,
                                             const char* invalid_code) {
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
  return std::nullopt;
}

std::variant<actors::submission, bad_request> parse_submission(const config::relay_config& cfg, const wall_clock& clock,
                                                               const std::string& tenant, http::request& req) {
  for (const char* name : single_valued) {
    int n = 0;
    for (const auto& h : req.headers) n += iequals(h.name, name) ? 1 : 0;
    if (n > 1) return bad_request{400, "duplicate_header", std::string(name) + " was given " + std::to_string(n) + " times; give it once"};
  }
  std::map<std::string_view, std::string_view> h;  // every header read below, checked as bytes
  for (const char* name : single_valued) {
    if (is_url_header(name)) {  // parse_url checks the bytes, and names the URL in its answer
      if (auto v = req.header(name)) h[name] = *v;
      continue;
    }
    auto v = ascii_header(req, name);
    if (auto* bad = std::get_if<bad_request>(&v)) return *bad;
    if (auto value = std::get<std::optional<std::string_view>>(v)) h[name] = *value;
  }
  auto header = [&](const char* name) -> std::optional<std::string_view> {
    auto it = h.find(name);
    return it == h.end() ? std::nullopt : std::optional<std::string_view>(it->second);
  };
  actors::submission s;
  s.tenant = tenant;
  auto url = header("X-Fetch-Url");
  if (!url || url->empty()) return bad_request{400, "missing_url", "X-Fetch-Url is required: the absolute http(s) URL to call"};
  if (auto bad = check_destination(cfg, "X-Fetch-Url", *url, "invalid_url")) return *bad;
  s.spec.url = std::string(*url);
  if (auto m = header("X-Fetch-Method")) {
    std::string method(*m);
    if (method != "GET" && method != "POST" && method != "PUT" && method != "PATCH" && method != "DELETE") {
      return bad_request{400, "invalid_method", "X-Fetch-Method must be GET, POST, PUT, PATCH or DELETE"};
    }
    s.spec.method = method;
  }
  std::int64_t now = clock.now_ms();
  auto delay = header("X-Delay");
  auto not_before = header("X-Not-Before");
  if (delay && not_before) {
    return bad_request{400, "delay_and_not_before", "give either X-Delay or X-Not-Before, not both"};
  }
  s.run_at_ms = now;
  if (delay) {
    auto d = parse_duration(*delay, {true});
    if (!d) return bad_request{400, "invalid_delay", "X-Delay: " + d.error().message() + " (e.g. 30s, 5m, 1d2h)"};
    if (*d > cfg.limits.max_delay) {
      return bad_request{400, "delay_too_long", "X-Delay is over limits.max_delay (" + format_duration(cfg.limits.max_delay) + ")"};
    }
    s.run_at_ms = now + d->count();
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
    s.run_at_ms = std::max(*t, now);
  }
  if (auto p = header("X-Policy")) {
    if (!cfg.policies.count(std::string(*p))) return bad_request{400, "unknown_policy", "X-Policy names no policy: " + std::string(*p)};
    s.policy = std::string(*p);
  } else {
    s.policy = route_policy(cfg, s.spec.url);
  }
  const auto& policy = cfg.policies.at(s.policy);
  if (auto r = header("X-Retries")) {
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
  if (auto t = header("X-Timeout")) {
    auto d = parse_duration(*t, {true});
    if (!d || d->count() <= 0) return bad_request{400, "invalid_timeout", "X-Timeout must be a duration such as 30s"};
    if (*d > policy.max_timeout) {
      return bad_request{400, "timeout_too_long", "X-Timeout is over the policy's max_timeout (" + format_duration(policy.max_timeout) + ")"};
    }
    s.timeout_ms = static_cast<std::uint32_t>(d->count());
  }
  for (const char* name : {"X-Callback", "X-Failure-Callback"}) {
    if (auto c = header(name)) {
      if (auto bad = check_destination(cfg, name, *c, "invalid_callback")) return *bad;
      (std::string(name) == "X-Callback" ? s.callback_url : s.failure_callback_url) = std::string(*c);
    }
  }
  if (auto k = header("X-Idempotency-Key")) {
    if (k->empty() || k->size() > max_idempotency_key_bytes) {
      return bad_request{400, "invalid_idempotency_key", "X-Idempotency-Key must be 1 to 256 bytes"};
    }
    s.idempotency_key = std::string(*k);
  }
  for (const auto& f : req.headers) {
    if (istarts_with(f.name, forward_prefix)) {
      std::string name = f.name.substr(std::string_view(forward_prefix).size());
      if (name.empty()) return bad_request{400, "invalid_header", "X-Fetch-Forward- needs a header name after it"};
      if (!is_hop_by_hop(name)) s.spec.headers.push_back({name, f.value});
    } else if (iequals(f.name, "Content-Type")) {
      s.spec.headers.push_back({"Content-Type", f.value});
    }
  }
  s.spec.body = std::move(req.body);
  if (!s.idempotency_key.empty()) s.fingerprint = fingerprint(s.spec);
  return s;
}

std::string job_id_from(std::string_view path, std::string_view prefix, std::string_view suffix = "") {
  if (path.size() < prefix.size() + suffix.size()) return "";
  std::string_view id = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
  if (path.substr(path.size() - suffix.size()) != suffix) return "";
  return std::string(id);
}

void not_found_job(const http::responder& reply, const std::string& id) {
  reply.send(response::error(404, "job_not_found", "no job " + id + " for this API key"));
}

}  // namespace

bool constant_time_equal(std::string_view a, std::string_view b) {
  std::size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

std::optional<std::int64_t> parse_not_before(std::string_view v) {
  if (v.empty()) return std::nullopt;
  if (v.find_first_not_of("0123456789") == std::string_view::npos) {
    if (v.size() > 12) return std::nullopt;
    return static_cast<std::int64_t>(std::stoll(std::string(v))) * 1000;
  }
  // RFC 3339 §5.6, checked against the calendar: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM).
  std::size_t i = 0;
  auto number = [&](std::size_t digits, int& out) {
    if (i + digits > v.size()) return false;
    out = 0;
    for (std::size_t k = 0; k < digits; ++k, ++i) {
      if (v[i] < '0' || v[i] > '9') return false;
      out = out * 10 + (v[i] - '0');
    }
    return true;
  };
  auto expect = [&](char c) { return i < v.size() && ascii_lower(v[i]) == c ? (++i, true) : false; };
  int year, month, day, hour, minute, second;
  if (!number(4, year) || !expect('-') || !number(2, month) || !expect('-') || !number(2, day) || !expect('t') ||
      !number(2, hour) || !expect(':') || !number(2, minute) || !expect(':') || !number(2, second)) {
    return std::nullopt;
  }
  static constexpr int days_in[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month < 1 || month > 12 || day < 1 || day > days_in[month - 1] + (month == 2 && leap ? 1 : 0) ||
      hour > 23 || minute > 59 || second > 59) {
    return std::nullopt;
  }
  std::int64_t frac = 0;
  if (expect('.')) {
    std::size_t digits = 0;
    for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i, ++digits) {
      if (digits < 3) frac = frac * 10 + (v[i] - '0');
    }
    if (digits == 0) return std::nullopt;
    for (std::size_t d = digits; d < 3; ++d) frac *= 10;
  }
  std::int64_t offset_s = 0;
  if (!expect('z')) {
    if (i >= v.size() || (v[i] != '+' && v[i] != '-')) return std::nullopt;
    int sign = v[i++] == '+' ? 1 : -1;
    int oh, om;
    if (!number(2, oh) || !expect(':') || !number(2, om) || oh > 23 || om > 59) return std::nullopt;
    offset_s = sign * (oh * 3600LL + om * 60LL);
  }
  if (i != v.size()) return std::nullopt;
  // Days from civil (proleptic Gregorian), as in Howard Hinnant's days_from_civil.
  int y = year - (month <= 2 ? 1 : 0);
  int era = (y >= 0 ? y : y - 399) / 400;
  int yoe = y - era * 400;
  int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  std::int64_t days = static_cast<std::int64_t>(era) * 146097 + doe - 719468;
  return (days * 86400 + hour * 3600LL + minute * 60LL + second - offset_s) * 1000 + frac;
}

http::handler make_api_handler(api_deps deps) {
  return [deps](http::request&& req, http::responder reply) {
    if (!is_visible_ascii(req.target)) {
      return reply.send(response::error(400, "invalid_path", "the request path must be printable ASCII (percent-encode it)"));
    }
    std::string path(req.path());
    if (path == "/healthz") {
      if (req.method != "GET" && req.method != "HEAD") return reply.send(method_not_allowed(req, "GET"));
      caf::anon_send(deps.health, actors::ping_atom::value,
                     actors::completion<actors::health_report>([reply](actors::health_report h) {
                       nlohmann::json j = {{"status", "ok"}, {"version", h.version}, {"uptime_ms", h.uptime_ms}};
                       reply.send(response::json(200, safe_dump(j)));
                     }));
      return;
    }
    if (path == "/readyz") {
      if (req.method != "GET" && req.method != "HEAD") return reply.send(method_not_allowed(req, "GET"));
      if (deps.ready && deps.ready->load() && (!deps.loaded || deps.loaded->load())) {
        return reply.send(response::json(200, R"({"status":"ready"})"));
      }
      return reply.send(response::error(503, "not_ready", "the store is not open or recovery is not finished"));
    }
    if (path == "/metrics") {
      if (req.method != "GET") return reply.send(method_not_allowed(req, "GET"));
      response r;
      r.status = 200;
      r.content_type = "text/plain; version=0.0.4";
      r.body = deps.metrics ? deps.metrics->render() : std::string();
      return reply.send(std::move(r));
    }
    if (path.rfind("/v1/", 0) != 0) {
      return reply.send(response::error(404, "not_found", "no route for " + req.method + " " + path));
    }
    const config::relay_config& cfg = *deps.config;
    auto tenant = authenticate(cfg, req);
    if (!tenant) {
      log_unauthorized(req, req.header("Authorization").has_value());
      auto r = response::error(401, "unauthorized", "send Authorization: Bearer <API key>");
      r.headers.push_back({"WWW-Authenticate", "Bearer"});
      return reply.send(std::move(r));
    }
    if (path == "/v1/fetch") {
      if (req.method != "POST") return reply.send(method_not_allowed(req, "POST"));
      if (deps.ready && !deps.ready->load()) {
        auto r = response::error(503, "not_ready", "the store is unavailable; retry shortly");
        r.headers.push_back({"Retry-After", "1"});
        return reply.send(std::move(r));
      }
      auto parsed = parse_submission(cfg, *deps.clock, *tenant, req);
      if (auto* bad = std::get_if<bad_request>(&parsed)) return reply.send(response::error(bad->status, bad->code, bad->message));
      caf::anon_send(deps.manager, actors::submit_atom::value, std::get<actors::submission>(std::move(parsed)),
                     actors::completion<actors::submit_answer>([reply](actors::submit_answer a) {
                       if (a.http_status != 202) {
                         auto r = response::error(a.http_status, a.error_code, a.message);
                         if (a.retry_after_s > 0) r.headers.push_back({"Retry-After", std::to_string(a.retry_after_s)});
                         return reply.send(std::move(r));
                       }
                       // Formatted by hand: the id is a ULID and the time RFC 3339, so nothing needs
                       // escaping, and nlohmann::json here cost 16k instructions a job on the manager's thread.
                       std::string body = "{\"id\":\"" + a.id + "\",\"status\":\"" + std::string(to_string(a.status)) +
                                          "\",\"run_at\":\"" +
                                          format_rfc3339(a.run_at_ms) + "\",\"deduplicated\":" +
                                          (a.deduplicated ? "true}" : "false}");
                       reply.send(response::json(202, std::move(body)));
                     }));
      return;
    }
    if (path == "/v1/jobs") {
      if (req.method != "GET") return reply.send(method_not_allowed(req, "GET"));
      auto q = query_params(req.target);
      std::optional<job_status> status;
      if (q.count("status") && !q["status"].empty()) {
        status = parse_job_status(q["status"]);
        if (!status) {
          return reply.send(response::error(400, "invalid_status",
                                            "status must be scheduled, active, retrying, delivered, failed or cancelled"));
        }
      }
      std::uint32_t limit = 20;
      if (q.count("limit")) {
        const auto& l = q["limit"];
        if (l.empty() || l.size() > 3 || l.find_first_not_of("0123456789") != std::string::npos || std::stoi(l) < 1 ||
            std::stoi(l) > 100) {
          return reply.send(response::error(400, "invalid_limit", "limit must be 1 to 100"));
        }
        limit = static_cast<std::uint32_t>(std::stoi(l));
      }
      std::string cursor = q.count("cursor") ? q["cursor"] : "";
      if (!cursor.empty() && !is_job_id(cursor)) return reply.send(response::error(400, "invalid_cursor", "cursor must be a job id from next_cursor"));
      caf::anon_send(deps.manager, actors::list_atom::value, *tenant, status, cursor, limit,
                     actors::completion<result<persistence::job_page>>([reply](result<persistence::job_page> r) {
                       if (!r) return reply.send(response::error(503, "store_unavailable", r.error().message()));
                       nlohmann::json jobs = nlohmann::json::array();
                       for (const auto& s : r->jobs) {
                         auto j = job_json(s, {});
                         j.erase("attempts");
                         j["attempt_count"] = s.attempts;
                         jobs.push_back(std::move(j));
                       }
                       nlohmann::json out = {{"jobs", jobs},
                                             {"next_cursor", r->next_cursor.empty() ? nlohmann::json(nullptr) : nlohmann::json(r->next_cursor)}};
                       reply.send(response::json(200, safe_dump(out)));
                     }));
      return;
    }
    if (path.rfind("/v1/jobs/", 0) == 0 && path.size() > 6 && path.compare(path.size() - 6, 6, "/retry") == 0) {
      std::string id = job_id_from(path, "/v1/jobs/", "/retry");
      if (req.method != "POST") return reply.send(method_not_allowed(req, "POST"));
      if (!is_job_id(id)) return not_found_job(reply, id);
      caf::anon_send(deps.manager, actors::retry_atom::value, *tenant, id,
                     actors::completion<actors::retry_answer>([reply, id](actors::retry_answer a) {
                       switch (a.result) {
                         case actors::retry_answer::scheduled:
                           return reply.send(response::json(
                               202, safe_dump({{"id", id}, {"status", "scheduled"}, {"run_at", format_rfc3339(a.run_at_ms)}})));
                         case actors::retry_answer::not_retryable:
                           return reply.send(response::error(409, "job_not_retryable", a.message));
                         case actors::retry_answer::not_found:
                           return not_found_job(reply, id);
                         case actors::retry_answer::unavailable:
                           return reply.send(response::error(503, "store_unavailable", a.message));
                       }
                     }));
      return;
    }
    if (path.rfind("/v1/jobs/", 0) == 0) {
      std::string id = job_id_from(path, "/v1/jobs/");
      if (req.method == "GET" || req.method == "DELETE") {
        if (!is_job_id(id)) return not_found_job(reply, id);
        if (req.method == "GET") {
          caf::anon_send(deps.manager, actors::read_atom::value, *tenant, id,
                         actors::completion<result<std::optional<actors::job_view>>>(
                             [reply, id](result<std::optional<actors::job_view>> r) {
                               if (!r) return reply.send(response::error(503, "store_unavailable", r.error().message()));
                               if (!r.value()) return not_found_job(reply, id);
                               reply.send(response::json(200, safe_dump(job_json(r.value()->state, r.value()->attempts))));
                             }));
          return;
        }
        caf::anon_send(deps.manager, actors::cancel_atom::value, *tenant, id,
                       actors::completion<actors::cancel_answer>([reply, id](actors::cancel_answer a) {
                         if (a == actors::cancel_answer::not_found) return not_found_job(reply, id);
                         if (a == actors::cancel_answer::terminal) {
                           return reply.send(response::error(409, "job_finished", "job " + id + " is already finished"));
                         }
                         reply.send(response::json(200, safe_dump({{"id", id}, {"status", "cancelled"}})));
                       }));
        return;
      }
      return reply.send(method_not_allowed(req, "GET, DELETE"));
    }
    reply.send(response::error(404, "not_found", "no route for " + req.method + " " + path));
  };
}

}  // namespace fetchrelay::app
