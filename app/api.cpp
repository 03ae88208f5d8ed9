#include "app/api.h"

#include <nlohmann/json.hpp>

#include "core/ascii.h"
#include "core/job_json.h"
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

std::variant<actors::submission, bad_request> parse_submission(const config::relay_config& cfg, const wall_clock& clock,
                                                               const std::string& tenant, http::request& req) {
  actors::submission s;
  s.tenant = tenant;
  auto url = req.header("X-Fetch-Url");
  if (!url || url->empty()) return bad_request{400, "missing_url", "X-Fetch-Url is required: the absolute http(s) URL to call"};
  if (url->size() > max_url_bytes) {
    return bad_request{400, "url_too_long", "X-Fetch-Url is " + std::to_string(url->size()) + " bytes; at most 2048"};
  }
  if (auto o = http::url_origin(std::string(*url)); !o) {
    return bad_request{400, "invalid_url", "X-Fetch-Url: " + o.error().message()};
  }
  s.spec.url = std::string(*url);
  if (auto m = req.header("X-Fetch-Method")) {
    std::string method(*m);
    if (method != "GET" && method != "POST" && method != "PUT" && method != "PATCH" && method != "DELETE") {
      return bad_request{400, "invalid_method", "X-Fetch-Method must be GET, POST, PUT, PATCH or DELETE"};
    }
    s.spec.method = method;
  }
  std::int64_t now = clock.now_ms();
  auto delay = req.header("X-Delay");
  auto not_before = req.header("X-Not-Before");
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
    if (!t) return bad_request{400, "invalid_not_before", "X-Not-Before must be unix seconds or RFC 3339"};
    if (*t - now > cfg.limits.max_delay.count()) {
      return bad_request{400, "delay_too_long", "X-Not-Before is further than limits.max_delay (" + format_duration(cfg.limits.max_delay) + ")"};
    }
    s.run_at_ms = std::max(*t, now);
  }
  if (auto p = req.header("X-Policy")) {
    if (!cfg.policies.count(std::string(*p))) return bad_request{400, "unknown_policy", "X-Policy names no policy: " + std::string(*p)};
    s.policy = std::string(*p);
  } else {
    s.policy = route_policy(cfg, s.spec.url);
  }
  const auto& policy = cfg.policies.at(s.policy);
  if (auto r = req.header("X-Retries")) {
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
  if (auto t = req.header("X-Timeout")) {
    auto d = parse_duration(*t, {true});
    if (!d || d->count() <= 0) return bad_request{400, "invalid_timeout", "X-Timeout must be a duration such as 30s"};
    if (*d > policy.max_timeout) {
      return bad_request{400, "timeout_too_long", "X-Timeout is over the policy's max_timeout (" + format_duration(policy.max_timeout) + ")"};
    }
    s.timeout_ms = static_cast<std::uint32_t>(d->count());
  }
  for (const char* name : {"X-Callback", "X-Failure-Callback"}) {
    if (auto c = req.header(name)) {
      if (c->size() > max_url_bytes || !http::url_origin(std::string(*c))) {
        return bad_request{400, "invalid_callback", std::string(name) + " must be an absolute http(s) URL of at most 2048 bytes"};
      }
      (std::string(name) == "X-Callback" ? s.callback_url : s.failure_callback_url) = std::string(*c);
    }
  }
  if (auto k = req.header("X-Idempotency-Key")) {
    if (k->empty() || k->size() > max_idempotency_key_bytes) {
      return bad_request{400, "invalid_idempotency_key", "X-Idempotency-Key must be 1 to 256 bytes"};
    }
    s.idempotency_key = std::string(*k);
  }
  for (const auto& h : req.headers) {
    if (istarts_with(h.name, forward_prefix)) {
      std::string name = h.name.substr(std::string_view(forward_prefix).size());
      if (name.empty()) return bad_request{400, "invalid_header", "X-Fetch-Forward- needs a header name after it"};
      if (!is_hop_by_hop(name)) s.spec.headers.push_back({name, h.value});
    } else if (iequals(h.name, "Content-Type")) {
      s.spec.headers.push_back({"Content-Type", h.value});
    }
  }
  s.spec.body = std::move(req.body);
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
  std::string s(v);
  std::tm tm{};
  const char* p = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (p == nullptr) return std::nullopt;
  std::int64_t ms = static_cast<std::int64_t>(timegm(&tm)) * 1000;
  if (*p == '.') {
    ++p;
    int digits = 0;
    std::int64_t frac = 0;
    while (std::isdigit(static_cast<unsigned char>(*p))) {
      if (digits < 3) frac = frac * 10 + (*p - '0');
      ++digits;
      ++p;
    }
    if (digits == 0) return std::nullopt;
    for (int d = digits; d < 3; ++d) frac *= 10;
    ms += frac;
  }
  if (*p == 'Z' || *p == 'z') {
    ++p;
  } else if (*p == '+' || *p == '-') {
    int sign = *p == '+' ? 1 : -1;
    int hh = 0, mm = 0;
    if (std::sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2) return std::nullopt;
    ms -= sign * (hh * 3600LL + mm * 60LL) * 1000;
    p += 6;
  } else {
    return std::nullopt;
  }
  if (*p != '\0') return std::nullopt;
  return ms;
}

http::handler make_api_handler(api_deps deps) {
  return [deps](http::request&& req, http::responder reply) {
    std::string path(req.path());
    if (path == "/healthz") {
      if (req.method != "GET" && req.method != "HEAD") return reply.send(method_not_allowed(req, "GET"));
      caf::anon_send(deps.health, actors::ping_atom::value,
                     actors::completion<actors::health_report>([reply](actors::health_report h) {
                       nlohmann::json j = {{"status", "ok"}, {"version", h.version}, {"uptime_ms", h.uptime_ms}};
                       reply.send(response::json(200, j.dump()));
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
                         r.headers.push_back({"Retry-After", std::to_string(std::max(1, a.retry_after_s))});
                         return reply.send(std::move(r));
                       }
                       // Formatted by hand: the id is a ULID and the time RFC 3339, so nothing needs
                       // escaping, and nlohmann::json here cost 16k instructions a job on the manager's thread.
                       std::string body = "{\"id\":\"" + a.id + "\",\"status\":\"scheduled\",\"run_at\":\"" +
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
                       reply.send(response::json(200, out.dump()));
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
                               202, nlohmann::json({{"id", id}, {"status", "scheduled"}, {"run_at", format_rfc3339(a.run_at_ms)}}).dump()));
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
                               reply.send(response::json(200, job_json(r.value()->state, r.value()->attempts).dump()));
                             }));
          return;
        }
        caf::anon_send(deps.manager, actors::cancel_atom::value, *tenant, id,
                       actors::completion<actors::cancel_answer>([reply, id](actors::cancel_answer a) {
                         if (a == actors::cancel_answer::not_found) return not_found_job(reply, id);
                         if (a == actors::cancel_answer::terminal) {
                           return reply.send(response::error(409, "job_finished", "job " + id + " is already finished"));
                         }
                         reply.send(response::json(200, nlohmann::json({{"id", id}, {"status", "cancelled"}}).dump()));
                       }));
        return;
      }
      return reply.send(method_not_allowed(req, "GET, DELETE"));
    }
    reply.send(response::error(404, "not_found", "no route for " + req.method + " " + path));
  };
}

}  // namespace fetchrelay::app
