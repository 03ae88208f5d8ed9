#include "app/api.h"

#include "app/submission.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <span>
#include <nlohmann/json.hpp>
#include <variant>
#include <vector>

#include "core/ascii.h"
#include "core/job_json.h"
#include "core/log.h"
#include "core/text.h"
#include "core/ulid.h"
#include "core/units.h"
#include "core/time.h"

namespace fetchrelay::app {
namespace {

using http::response;

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

void not_found_job(const http::responder& reply, const std::string& id) {
  reply.send(response::error(404, "job_not_found", "no job " + id + " for this API key"));
}

// -- the routes -------------------------------------------------------------------------------

/// A matched request: its tenant (for /v1 routes) and the `{id}` segments of its pattern.
struct call {
  const api_deps& deps;
  http::request& req;
  const http::responder& reply;
  const std::string& tenant;
  std::vector<std::string> params;
};

void healthz(call& c) {
  caf::anon_send(c.deps.health, actors::ping_atom::value,
                 actors::completion<actors::health_report>([reply = c.reply](actors::health_report h) {
                   nlohmann::json j = {{"status", "ok"}, {"version", h.version}, {"uptime_ms", h.uptime_ms}};
                   reply.send(response::json(200, safe_dump(j)));
                 }));
}

void readyz(call& c) {
  if (c.deps.ready && c.deps.ready->load() && (!c.deps.loaded || c.deps.loaded->load())) {
    return c.reply.send(response::json(200, R"({"status":"ready"})"));
  }
  c.reply.send(response::error(503, "not_ready", "the store is not open or recovery is not finished"));
}

void metrics(call& c) {
  response r;
  r.status = 200;
  r.content_type = "text/plain; version=0.0.4";
  r.body = c.deps.metrics ? c.deps.metrics->render() : std::string();
  c.reply.send(std::move(r));
}

/// The 202 of POST /v1/fetch, formatted by hand: the id is a ULID and the time RFC 3339, so
/// nothing needs escaping, and nlohmann::json here cost 16k instructions a job.
std::string accepted_body(const actors::submit_answer& a) {
  return "{\"id\":\"" + a.id + "\",\"status\":\"" + std::string(to_string(a.status)) + "\",\"run_at\":\"" +
         format_rfc3339(a.run_at_ms) + "\",\"deduplicated\":" + (a.deduplicated ? "true}" : "false}");
}

void submit(call& c) {
  if (c.deps.ready && !c.deps.ready->load()) {
    auto r = response::error(503, "not_ready", "the store is unavailable; retry shortly");
    r.headers.push_back({"Retry-After", "1"});
    return c.reply.send(std::move(r));
  }
  auto parsed = parse_submission(*c.deps.config, *c.deps.clock, c.tenant, c.req);
  if (auto* bad = std::get_if<bad_request>(&parsed)) {
    log::event(spdlog::level::debug, {{"tenant", c.tenant}, {"status_code", bad->status}, {"code", bad->code}},
               "submission refused");
    return c.reply.send(response::error(bad->status, bad->code, bad->message));
  }
  caf::anon_send(c.deps.manager, actors::submit_atom::value, std::get<actors::submission>(std::move(parsed)),
                 actors::completion<actors::submit_answer>([reply = c.reply](actors::submit_answer a) {
                   if (a.http_status == 202) return reply.send(response::json(202, accepted_body(a)));
                   auto r = response::error(a.http_status, a.error_code, a.message);
                   if (a.retry_after_s > 0) r.headers.push_back({"Retry-After", std::to_string(a.retry_after_s)});
                   reply.send(std::move(r));
                 }));
}

/// A `limit` query value: 1 to 100, default 20.
std::variant<std::uint32_t, response> parse_limit(const std::map<std::string, std::string>& q) {
  auto it = q.find("limit");
  if (it == q.end()) return 20u;
  const auto& l = it->second;
  if (l.empty() || l.size() > 3 || l.find_first_not_of("0123456789") != std::string::npos || std::stoi(l) < 1 ||
      std::stoi(l) > 100) {
    return response::error(400, "invalid_limit", "limit must be 1 to 100");
  }
  return static_cast<std::uint32_t>(std::stoi(l));
}

/// The first query parameter not in `known`, as a 400; nullopt if there is none.
std::optional<response> unknown_param(const std::map<std::string, std::string>& q, std::span<const std::string_view> known,
                                      std::string_view route) {
  for (const auto& [name, value] : q) {
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    std::string list;
    for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    return response::error(400, "invalid_query", "unknown query parameter \"" + utf8_escaped(name.substr(0, 64)) +
                                                     "\" (" + std::string(route) + " takes " + list + ")");
  }
  return std::nullopt;
}

/// GET /v1/jobs's query: the filter, limit and cursor; or the 400 that says what is wrong.
struct list_query {
  persistence::job_filter filter;
  std::uint32_t limit = 20;
  std::string cursor;
};

constexpr std::string_view list_params[] = {"status", "limit", "cursor", "url_prefix", "since", "until", "schedule"};

std::variant<list_query, response> parse_list_query(std::string_view target) {
  auto q = query_params(target);
  if (auto bad = unknown_param(q, list_params, "GET /v1/jobs")) return std::move(*bad);
  list_query out;
  for (const char* bound : {"since", "until"}) {
    if (!q.count(bound)) continue;
    auto t = parse_not_before(q[bound]);
    if (!t) return response::error(400, std::string("invalid_") + bound, std::string(bound) + " must be unix seconds or an RFC 3339 date-time");
    (std::string_view(bound) == "since" ? out.filter.since_ms : out.filter.until_ms) = *t;
  }
  if (q.count("url_prefix")) out.filter.url_prefix = q["url_prefix"];
  if (q.count("schedule")) {
    out.filter.schedule = q["schedule"];
    if (!is_valid_name(out.filter.schedule)) return response::error(400, "invalid_schedule", "schedule must be a schedule id");
  }
  if (q.count("status") && !q["status"].empty()) {
    out.filter.status = parse_job_status(q["status"]);
    if (!out.filter.status) {
      return response::error(400, "invalid_status", "status must be scheduled, active, retrying, delivered, failed or cancelled");
    }
  }
  auto limit = parse_limit(q);
  if (auto* bad = std::get_if<response>(&limit)) return std::move(*bad);
  out.limit = std::get<std::uint32_t>(limit);
  out.cursor = q.count("cursor") ? q["cursor"] : "";
  if (!out.cursor.empty() && !is_job_id(out.cursor)) {
    return response::error(400, "invalid_cursor", "cursor must be a job id from next_cursor");
  }
  return out;
}

void list_jobs(call& c) {
  auto parsed = parse_list_query(c.req.target);
  if (auto* bad = std::get_if<response>(&parsed)) return c.reply.send(std::move(*bad));
  auto& q = std::get<list_query>(parsed);
  caf::anon_send(c.deps.manager, actors::list_atom::value, c.tenant, q.filter, q.cursor, q.limit,
                 actors::completion<result<persistence::job_page>>([reply = c.reply](result<persistence::job_page> r) {
                   if (!r) return reply.send(response::error(503, "store_unavailable", r.error().message()));
                   nlohmann::json jobs = nlohmann::json::array();
                   for (const auto& s : r->jobs) {
                     auto j = job_json(s, {});
                     j.erase("attempts");
                     j["attempt_count"] = s.attempts;
                     jobs.push_back(std::move(j));
                   }
                   nlohmann::json out = {
                       {"jobs", jobs},
                       {"next_cursor", r->next_cursor.empty() ? nlohmann::json(nullptr) : nlohmann::json(r->next_cursor)}};
                   reply.send(response::json(200, safe_dump(out)));
                 }));
}

/// DELETE /v1/jobs?status=(delivered|failed|cancelled)&…: the finished jobs the filter names go now.
void purge_jobs(call& c) {
  auto parsed = parse_list_query(c.req.target);
  if (auto* bad = std::get_if<response>(&parsed)) return c.reply.send(std::move(*bad));
  auto& q = std::get<list_query>(parsed);
  if (!q.filter.status || !is_terminal(*q.filter.status)) {
    return c.reply.send(response::error(400, "invalid_status", "purging needs status delivered, failed or cancelled"));
  }
  caf::anon_send(c.deps.manager, actors::purge_atom::value, c.tenant, q.filter, q.cursor,
                 actors::completion<result<persistence::purge_page>>([reply = c.reply](result<persistence::purge_page> r) {
                   if (!r) return reply.send(response::error(503, "store_unavailable", r.error().message()));
                   nlohmann::json out = {
                       {"count", r->count},
                       {"next_cursor", r->next_cursor.empty() ? nlohmann::json(nullptr) : nlohmann::json(r->next_cursor)}};
                   reply.send(response::json(200, safe_dump(out)));
                 }));
}

constexpr std::string_view event_params[] = {"cursor", "limit", "job", "type"};

/// GET /v1/events?cursor=&limit=&job=&type=: ascending from the cursor, or the newest `limit`.
void list_events(call& c) {
  auto q = query_params(c.req.target);
  if (auto bad = unknown_param(q, event_params, "GET /v1/events")) return c.reply.send(std::move(*bad));
  auto limit = parse_limit(q);
  if (auto* bad = std::get_if<response>(&limit)) return c.reply.send(std::move(*bad));
  persistence::event_filter f;
  if (q.count("type") && !q["type"].empty()) {
    f.type = parse_event_type(q["type"]);
    if (!f.type) {
      return c.reply.send(response::error(
          400, "invalid_type", "type must be created, retrying, deferred, delivered, failed, cancelled or retried"));
    }
  }
  if (q.count("job")) {
    f.job_id = q["job"];
    if (!is_job_id(f.job_id)) return c.reply.send(response::error(400, "invalid_job", "job must be a job id"));
  }
  std::string cursor = q.count("cursor") ? q["cursor"] : "";
  if (!cursor.empty() && !parse_event_id(cursor)) {
    return c.reply.send(response::error(400, "invalid_cursor", "cursor must be an event id (from next_cursor or an event's id)"));
  }
  caf::anon_send(c.deps.store, actors::events_atom::value, c.tenant, f, cursor, std::get<std::uint32_t>(limit),
                 actors::completion<result<persistence::event_page>>([reply = c.reply](result<persistence::event_page> r) {
                   if (!r) return reply.send(response::error(503, "store_unavailable", r.error().message()));
                   nlohmann::json events = nlohmann::json::array();
                   for (const auto& e : r->events) events.push_back(event_json(e));
                   nlohmann::json out = {
                       {"events", events},
                       {"next_cursor", r->next_cursor.empty() ? nlohmann::json(nullptr) : nlohmann::json(r->next_cursor)}};
                   reply.send(response::json(200, safe_dump(out)));
                 }));
}

void get_job(call& c) {
  const std::string& id = c.params[0];
  if (!is_job_id(id)) return not_found_job(c.reply, id);
  caf::anon_send(c.deps.manager, actors::read_atom::value, c.tenant, id,
                 actors::completion<result<std::optional<actors::job_view>>>(
                     [reply = c.reply, id](result<std::optional<actors::job_view>> r) {
                       if (!r) return reply.send(response::error(503, "store_unavailable", r.error().message()));
                       if (!r.value()) return not_found_job(reply, id);
                       reply.send(response::json(200, safe_dump(job_json(r.value()->state, r.value()->attempts))));
                     }));
}

/// DELETE /v1/jobs/{id} (200 cancelled) and POST /v1/jobs/{id}/run (202 active): a command to one job.
template <class Atom>
void command_job(call& c, Atom atom, int ok_status, const char* ok_state) {
  const std::string& id = c.params[0];
  if (!is_job_id(id)) return not_found_job(c.reply, id);
  caf::anon_send(c.deps.manager, atom, c.tenant, id,
                 actors::completion<actors::command_answer>([reply = c.reply, id, ok_status, ok_state](actors::command_answer a) {
                   if (a == actors::command_answer::not_found) return not_found_job(reply, id);
                   if (a == actors::command_answer::terminal) {
                     return reply.send(response::error(409, "job_finished", "job " + id + " is already finished"));
                   }
                   reply.send(response::json(ok_status, safe_dump({{"id", id}, {"status", ok_state}})));
                 }));
}

void cancel_job(call& c) { command_job(c, actors::cancel_atom::value, 200, "cancelled"); }
void run_job(call& c) { command_job(c, actors::run_atom::value, 202, "active"); }

void retry_job(call& c) {
  const std::string& id = c.params[0];
  if (!is_job_id(id)) return not_found_job(c.reply, id);
  auto run_at = parse_run_at(*c.deps.config, *c.deps.clock, c.req);
  if (auto* bad = std::get_if<bad_request>(&run_at)) return c.reply.send(response::error(bad->status, bad->code, bad->message));
  caf::anon_send(c.deps.manager, actors::retry_atom::value, c.tenant, id, std::get<std::int64_t>(run_at),
                 actors::completion<actors::retry_answer>([reply = c.reply, id](actors::retry_answer a) {
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
}

// -- schedules ----------------------------------------------------------------------------------

void not_found_schedule(const http::responder& reply, const std::string& id) {
  reply.send(response::error(404, "schedule_not_found", "no schedule " + utf8_escaped(id) + " for this API key"));
}

/// An operation on one schedule; the answer is the schedule (or, for a trigger, its job too).
void schedule_command(call& c, const std::string& id, actors::schedule_command cmd) {
  caf::anon_send(c.deps.schedules, actors::sched_atom::value, c.tenant, id, std::move(cmd),
                 actors::completion<actors::schedule_answer>([reply = c.reply, id](actors::schedule_answer a) {
                   if (a.http_status == 404) return not_found_schedule(reply, id);
                   if (a.http_status >= 400) return reply.send(response::error(a.http_status, a.error_code, a.message));
                   nlohmann::json j = a.state ? schedule_json(*a.state) : nlohmann::json::object();
                   if (!a.job_id.empty()) j["job_id"] = a.job_id;
                   reply.send(response::json(a.http_status, safe_dump(j)));
                 }));
}

void put_schedule(call& c) {
  auto parsed = parse_schedule(*c.deps.config, *c.deps.clock, c.tenant, c.req);
  if (auto* bad = std::get_if<bad_request>(&parsed)) return c.reply.send(response::error(bad->status, bad->code, bad->message));
  auto& def = std::get<schedule_state>(parsed);
  std::string id = def.id;
  schedule_command(c, id, {actors::schedule_op::put, std::move(def)});
}

/// GET, DELETE /v1/schedules/{id} and POST …/pause, …/resume, …/trigger.
template <actors::schedule_op Op>
void schedule_op(call& c) {
  const std::string& id = c.params[0];
  if (!is_valid_name(id)) return not_found_schedule(c.reply, id);
  schedule_command(c, id, {Op, std::nullopt});
}

constexpr std::string_view page_params[] = {"cursor", "limit"};

void list_schedules(call& c) {
  auto q = query_params(c.req.target);
  if (auto bad = unknown_param(q, page_params, "GET /v1/schedules")) return c.reply.send(std::move(*bad));
  auto limit = parse_limit(q);
  if (auto* bad = std::get_if<response>(&limit)) return c.reply.send(std::move(*bad));
  std::string cursor = q.count("cursor") ? q["cursor"] : "";
  if (!cursor.empty() && !is_valid_name(cursor)) {
    return c.reply.send(response::error(400, "invalid_cursor", "cursor must be a schedule id from next_cursor"));
  }
  caf::anon_send(c.deps.store, actors::sched_list_atom::value, c.tenant, cursor, std::get<std::uint32_t>(limit),
                 actors::completion<result<persistence::schedule_page>>([reply = c.reply](result<persistence::schedule_page> r) {
                   if (!r) return reply.send(response::error(503, "store_unavailable", r.error().message()));
                   nlohmann::json list = nlohmann::json::array();
                   for (const auto& s : r->schedules) list.push_back(schedule_json(s));
                   nlohmann::json out = {
                       {"schedules", list},
                       {"next_cursor", r->next_cursor.empty() ? nlohmann::json(nullptr) : nlohmann::json(r->next_cursor)}};
                   reply.send(response::json(200, safe_dump(out)));
                 }));
}

/// The API (DESIGN §2): method and pattern (`{id}` matches one path segment) to handler. Routes
/// under /v1/ need an API key; a path that matches with another method answers 405 with Allow.
struct route {
  std::string_view method;
  std::string_view pattern;
  void (*handle)(call&);
};

constexpr route routes[] = {
    {"GET", "/healthz", healthz},
    {"HEAD", "/healthz", healthz},
    {"GET", "/readyz", readyz},
    {"HEAD", "/readyz", readyz},
    {"GET", "/metrics", metrics},
    {"POST", "/v1/fetch", submit},
    {"GET", "/v1/jobs", list_jobs},
    {"DELETE", "/v1/jobs", purge_jobs},
    {"GET", "/v1/jobs/{id}", get_job},
    {"DELETE", "/v1/jobs/{id}", cancel_job},
    {"POST", "/v1/jobs/{id}/retry", retry_job},
    {"POST", "/v1/jobs/{id}/run", run_job},
    {"GET", "/v1/events", list_events},
    {"POST", "/v1/schedules", put_schedule},
    {"GET", "/v1/schedules", list_schedules},
    {"GET", "/v1/schedules/{id}", schedule_op<actors::schedule_op::get>},
    {"DELETE", "/v1/schedules/{id}", schedule_op<actors::schedule_op::erase>},
    {"POST", "/v1/schedules/{id}/pause", schedule_op<actors::schedule_op::pause>},
    {"POST", "/v1/schedules/{id}/resume", schedule_op<actors::schedule_op::resume>},
    {"POST", "/v1/schedules/{id}/trigger", schedule_op<actors::schedule_op::trigger>},
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

http::handler make_api_handler(api_deps deps) {
  return [deps](http::request&& req, http::responder reply) {
    if (!is_visible_ascii(req.target)) {
      return reply.send(response::error(400, "invalid_path", "the request path must be printable ASCII (percent-encode it)"));
    }
    std::string path(req.path());
    std::string tenant;
    if (path.rfind("/v1/", 0) == 0) {  // who asks comes first: an unknown caller learns no routes
      auto t = authenticate(*deps.config, req);
      if (!t) {
        log_unauthorized(req, req.header("Authorization").has_value());
        auto r = response::error(401, "unauthorized", "send Authorization: Bearer <API key>");
        r.headers.push_back({"WWW-Authenticate", "Bearer"});
        return reply.send(std::move(r));
      }
      tenant = std::move(*t);
    }
    std::vector<std::string> params;
    std::string allow;
    for (const auto& r : routes) {
      if (!matches(r.pattern, path, params)) continue;
      if (r.method == req.method) {
        call c{deps, req, reply, tenant, std::move(params)};
        return r.handle(c);
      }
      if (r.method != "HEAD") allow += (allow.empty() ? "" : ", ") + std::string(r.method);
    }
    if (!allow.empty()) return reply.send(method_not_allowed(req, allow.c_str()));
    reply.send(response::error(404, "not_found", "no route for " + req.method + " " + path));
  };
}

}  // namespace fetchrelay::app
