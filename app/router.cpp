#include "app/router.h"

#include <algorithm>

#include "core/ascii.h"
#include "core/text.h"

namespace fetchrelay::app {
namespace {

using http::response;

struct route {
  std::string_view method;
  std::string_view pattern;
  route_id id;
};

// Routes under /v1/ need an API key; a path that matches with another method answers 405 with
// Allow. HEAD is listed where GET's handler also answers it.
constexpr route routes[] = {
    {"GET", "/healthz", route_id::healthz},
    {"HEAD", "/healthz", route_id::healthz},
    {"GET", "/readyz", route_id::readyz},
    {"HEAD", "/readyz", route_id::readyz},
    {"GET", "/metrics", route_id::metrics},
    {"POST", "/v1/fetch", route_id::submit},
    {"GET", "/v1/jobs", route_id::list_jobs},
    {"DELETE", "/v1/jobs", route_id::purge_jobs},
    {"POST", "/v1/jobs/retry", route_id::bulk_retry},
    {"POST", "/v1/jobs/cancel", route_id::bulk_cancel},
    {"GET", "/v1/jobs/{id}", route_id::get_job},
    {"DELETE", "/v1/jobs/{id}", route_id::cancel_job},
    {"POST", "/v1/jobs/{id}/retry", route_id::retry_job},
    {"POST", "/v1/jobs/{id}/run", route_id::run_job},
    {"GET", "/v1/events", route_id::list_events},
    {"GET", "/v1/destinations", route_id::list_destinations},
    {"GET", "/v1/stats", route_id::stats},
    {"PUT", "/v1/topics/{id}", route_id::put_topic},
    {"GET", "/v1/topics", route_id::list_topics},
    {"GET", "/v1/topics/{id}", route_id::get_topic},
    {"DELETE", "/v1/topics/{id}", route_id::delete_topic},
    {"PUT", "/v1/queues/{id}", route_id::put_queue},
    {"GET", "/v1/queues", route_id::list_queues},
    {"GET", "/v1/queues/{id}", route_id::get_queue},
    {"DELETE", "/v1/queues/{id}", route_id::delete_queue},
    {"POST", "/v1/queues/{id}/pause", route_id::pause_queue},
    {"POST", "/v1/queues/{id}/resume", route_id::resume_queue},
    {"POST", "/v1/schedules", route_id::put_schedule},
    {"GET", "/v1/schedules", route_id::list_schedules},
    {"GET", "/v1/schedules/{id}", route_id::get_schedule},
    {"DELETE", "/v1/schedules/{id}", route_id::delete_schedule},
    {"POST", "/v1/schedules/{id}/pause", route_id::pause_schedule},
    {"POST", "/v1/schedules/{id}/resume", route_id::resume_schedule},
    {"POST", "/v1/schedules/{id}/trigger", route_id::trigger_schedule},
};

/// True if `path` fits `pattern`; the `{...}` segments go to `params`.
bool matches(std::string_view pattern, std::string_view path, std::vector<std::string>& params) {
  params.clear();
  while (!pattern.empty() && !path.empty()) {
    auto ps = pattern.find('/', 1), xs = path.find('/', 1);
    std::string_view p = pattern.substr(0, ps), x = path.substr(0, xs);
    if (p.size() > 2 && p[1] == '{') params.emplace_back(x.substr(1));
    else if (p != x) return false;
    pattern.remove_prefix(p.size());
    path.remove_prefix(x.size());
  }
  return pattern.empty() && path.empty();
}

routed answer(response r) {
  routed out;
  out.answer = std::move(r);
  return out;
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

routed route_request(const config::relay_config& cfg, const http::request& req) {
  if (!is_visible_ascii(req.target)) {
    return answer(response::error(400, "invalid_path", "the request path must be printable ASCII (percent-encode it)"));
  }
  std::string_view path = req.path();
  if (path.rfind("/v2/", 0) == 0) {  // the QStash-compatible API authenticates its own way
    if (!cfg.qstash.enabled) {
      return answer(response::error(404, "qstash_disabled", "the QStash-compatible API (/v2) is off: set qstash.enabled: true"));
    }
    routed out;
    out.what = routed::kind::qstash;
    return out;
  }
  routed out;
  if (path.rfind("/v1/", 0) == 0) {  // who asks comes first: an unknown caller learns no routes
    auto t = authenticate(cfg, req);
    if (!t) {
      auto r = response::error(401, "unauthorized", "send Authorization: Bearer <API key>");
      r.headers.push_back({"WWW-Authenticate", "Bearer"});
      out = answer(std::move(r));
      out.unauthorized = true;
      return out;
    }
    out.tenant = std::move(*t);
  }
  std::vector<std::string> params;
  std::string allow;
  for (const auto& r : routes) {
    if (!matches(r.pattern, path, params)) continue;
    if (r.method == req.method) {
      out.what = routed::kind::handler;
      out.id = r.id;
      out.params = std::move(params);
      return out;
    }
    if (r.method != "HEAD") allow += (allow.empty() ? "" : ", ") + std::string(r.method);
  }
  if (!allow.empty()) {
    auto r = response::error(405, "method_not_allowed",
                             req.method + " is not allowed on " + std::string(path) + "; use " + allow);
    r.headers.push_back({"Allow", allow});
    return answer(std::move(r));
  }
  return answer(response::error(404, "not_found", "no route for " + req.method + " " + std::string(path)));
}

}  // namespace fetchrelay::app
