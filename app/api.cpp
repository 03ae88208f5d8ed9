#include "app/api.h"

#include "app/console.h"
#include "app/qstash/api.h"
#include "app/submission.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
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

/// A node of several on PostgreSQL that holds no shard (yet, or any more) takes no submission.
bool holds_no_shard(const api_deps& d) { return d.ownership && d.ownership->fenced(); }

response no_shards() {
  auto r = response::error(503, "no_shards",
                           "this relay holds no shard lease (it is joining, or lost its database); retry, or use another relay");
  r.headers.push_back({"Retry-After", "1"});
  return r;
}

void readyz(call& c) {
  if (holds_no_shard(c.deps)) return c.reply.send(no_shards());
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

/// POST /v1/fetch with X-Fetch-Topic: one job per endpoint, one 202 with them all.
void submit_to_topic(call& c, actors::submission sub) {
  std::string name = sub.topic;
  bool policy_given = c.req.header("X-Policy").has_value();
  auto held = std::make_shared<actors::submission>(std::move(sub));
  caf::anon_send(
      c.deps.store, actors::topic_get_atom::value, c.tenant, name,
      actors::completion<result<std::optional<topic_state>>>(
          [reply = c.reply, name, policy_given, held, manager = c.deps.manager,
           cfg = c.deps.config](result<std::optional<topic_state>> r) {
            if (!r) return reply.send(response::error(503, "store_unavailable", r.error().message()));
            if (!*r) return reply.send(response::error(400, "unknown_topic", "no topic " + name + " for this API key"));
            auto subs = expand_topic(*cfg, std::move(*held), **r, policy_given);
            std::vector<std::pair<std::string, std::string>> endpoints;
            for (const auto& s : subs) endpoints.emplace_back(s.spec.url, s.endpoint);
            caf::anon_send(manager, actors::submit_atom::value, std::move(subs),
                           actors::completion<std::vector<actors::submit_answer>>(
                               [reply, endpoints](std::vector<actors::submit_answer> all) {
                                 nlohmann::json jobs = nlohmann::json::array();
                                 for (std::size_t i = 0; i < all.size(); ++i) {
                                   const auto& a = all[i];
                                   if (a.http_status != 202) {
                                     auto r = response::error(a.http_status, a.error_code, a.message);
                                     if (a.retry_after_s > 0) r.headers.push_back({"Retry-After", std::to_string(a.retry_after_s)});
                                     return reply.send(std::move(r));
                                   }
                                   jobs.push_back({{"id", a.id},
                                                   {"url", utf8_escaped(endpoints[i].first)},
                                                   {"endpoint", utf8_escaped(endpoints[i].second)},
                                                   {"status", std::string(to_string(a.status))},
                                                   {"run_at", format_rfc3339(a.run_at_ms)},
                                                   {"deduplicated", a.deduplicated}});
                                 }
                                 reply.send(response::json(202, safe_dump({{"jobs", jobs}})));
                               }));
          }));
}

void submit(call& c) {
  if (holds_no_shard(c.deps)) return c.reply.send(no_shards());
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
  if (!std::get<actors::submission>(parsed).topic.empty()) return submit_to_topic(c, std::get<actors::submission>(std::move(parsed)));
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
    return response::error(400, "invalid_query", "unknown query parameter \"" + utf8_escaped(name.substr(0, 64)) + "\" (" +
                                                     std::string(route) + " takes " + (list.empty() ? "none" : list) + ")");
  }
  return std::nullopt;
}

/// GET /v1/jobs's query: the filter, limit and cursor; or the 400 that says what is wrong.
struct list_query {
  persistence::job_filter filter;
  std::uint32_t limit = 20;
  std::string cursor;
};

constexpr std::string_view list_params[] = {"status",   "limit",    "cursor", "url_prefix", "since",
                                            "until",    "schedule", "topic",  "queue"};

/// The filters, limit and cursor of a job listing (GET /v1/jobs, DELETE /v1/jobs, and the bodies
/// of the bulk operations), as name -> value.
std::variant<list_query, response> list_query_of(std::map<std::string, std::string> q, std::string_view route) {
  if (auto bad = unknown_param(q, list_params, route)) return std::move(*bad);
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
  if (q.count("topic")) {
    out.filter.topic = q["topic"];
    if (!is_valid_name(out.filter.topic)) return response::error(400, "invalid_topic", "topic must be a topic name");
  }
  if (q.count("queue")) {
    out.filter.queue = q["queue"];
    if (!is_valid_name(out.filter.queue)) return response::error(400, "invalid_queue", "queue must be a queue name");
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

std::variant<list_query, response> parse_list_query(std::string_view target) {
  return list_query_of(query_params(target), "GET /v1/jobs");
}

/// The answer of a purge or bulk operation: {"count":N,"next_cursor":…|null}.
actors::completion<result<persistence::purge_page>> count_answer(const http::responder& reply) {
  return actors::completion<result<persistence::purge_page>>([reply](result<persistence::purge_page> r) {
    if (!r) return reply.send(response::error(503, "store_unavailable", r.error().message()));
    nlohmann::json out = {{"count", r->count},
                          {"next_cursor", r->next_cursor.empty() ? nlohmann::json(nullptr) : nlohmann::json(r->next_cursor)}};
    reply.send(response::json(200, safe_dump(out)));
  });
}

/// POST /v1/jobs/retry and /v1/jobs/cancel: the listing's filters and cursor in a JSON body
/// (strings; since and until also as unix seconds).
void bulk_jobs(call& c, bool retry) {
  const char* route = retry ? "POST /v1/jobs/retry" : "POST /v1/jobs/cancel";
  std::map<std::string, std::string> q;
  if (!c.req.body.empty()) {
    auto j = nlohmann::json::parse(c.req.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return c.reply.send(response::error(400, "invalid_body", "the body must be a JSON object of filters, e.g. {\"status\":\"failed\"}"));
    }
    for (const auto& [k, v] : j.items()) {
      if (k == "limit") return c.reply.send(response::error(400, "invalid_query", std::string(route) + " takes no limit: a call handles up to 10,000 jobs"));
      if (v.is_string()) q[k] = v.get<std::string>();
      else if (v.is_number_integer() && (k == "since" || k == "until")) q[k] = std::to_string(v.get<std::int64_t>());
      else if (!v.is_null()) return c.reply.send(response::error(400, "invalid_body", "filter " + utf8_escaped(k.substr(0, 64)) + " must be a string"));
    }
  }
  auto parsed = list_query_of(std::move(q), route);
  if (auto* bad = std::get_if<response>(&parsed)) return c.reply.send(std::move(*bad));
  auto& lq = std::get<list_query>(parsed);
  const auto& f = lq.filter;
  if (retry && (!f.status || (*f.status != job_status::failed && *f.status != job_status::cancelled))) {
    return c.reply.send(response::error(400, "invalid_status", "a bulk retry needs status failed or cancelled"));
  }
  if (!retry && !f.status && f.queue.empty() && f.schedule.empty() && f.topic.empty() && f.url_prefix.empty() &&
      !f.since_ms && !f.until_ms) {
    return c.reply.send(response::error(400, "missing_filter", "a bulk cancel needs at least one filter (status, queue, schedule, topic, url_prefix, since, until)"));
  }
  caf::anon_send(c.deps.manager, actors::bulk_atom::value, c.tenant, lq.filter, lq.cursor, retry, c.deps.clock->now_ms(),
                 count_answer(c.reply));
}

void bulk_retry(call& c) { bulk_jobs(c, true); }
void bulk_cancel(call& c) { bulk_jobs(c, false); }

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
                 count_answer(c.reply));
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
                       const auto& v = *r.value();
                       reply.send(response::json(200, safe_dump(job_json(v.state, v.attempts, v.request ? &*v.request : nullptr))));
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
                   if (a == actors::command_answer::unavailable) {
                     return reply.send(response::error(503, "store_unavailable", "the store cannot be read now; retry shortly"));
                   }
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

/// GET /v1/schedules, /v1/topics, /v1/queues: one page in name order from the store, answered as
/// {"<field>":[…],"next_cursor":…|null}; `items` turns the page into the list.
template <class Page, class Atom, class Items>
void list_by_name(call& c, Atom atom, const std::string& field, const char* what, Items items) {
  auto q = query_params(c.req.target);
  if (auto bad = unknown_param(q, page_params, "GET /v1/" + field)) return c.reply.send(std::move(*bad));
  auto limit = parse_limit(q);
  if (auto* bad = std::get_if<response>(&limit)) return c.reply.send(std::move(*bad));
  std::string cursor = q.count("cursor") ? q["cursor"] : "";
  if (!cursor.empty() && !is_valid_name(cursor)) {
    return c.reply.send(response::error(400, "invalid_cursor", std::string("cursor must be a ") + what + " from next_cursor"));
  }
  caf::anon_send(c.deps.store, atom, c.tenant, cursor, std::get<std::uint32_t>(limit),
                 actors::completion<result<Page>>([reply = c.reply, field, items](result<Page> r) {
                   if (!r) return reply.send(response::error(503, "store_unavailable", r.error().message()));
                   nlohmann::json out = {
                       {field, items(*r)},
                       {"next_cursor", r->next_cursor.empty() ? nlohmann::json(nullptr) : nlohmann::json(r->next_cursor)}};
                   reply.send(response::json(200, safe_dump(out)));
                 }));
}

void list_schedules(call& c) {
  list_by_name<persistence::schedule_page>(c, actors::sched_list_atom::value, "schedules", "schedule id",
                                           [](const persistence::schedule_page& p) {
                                             nlohmann::json list = nlohmann::json::array();
                                             for (const auto& s : p.schedules) list.push_back(schedule_json(s));
                                             return list;
                                           });
}

// -- destinations -------------------------------------------------------------------------------

nlohmann::json destination_json(const destination_view& d) {
  auto when = [](std::int64_t ms) { return ms ? nlohmann::json(format_rfc3339(ms)) : nlohmann::json(nullptr); };
  nlohmann::json breakers = nlohmann::json::object();
  std::string worst;  // open over half_open over closed
  for (const auto& [policy, state] : d.breakers) {
    breakers[utf8_escaped(policy)] = state;
    if (state == "open" || (state == "half_open" && worst != "open") || worst.empty()) worst = state;
  }
  return {{"origin", utf8_escaped(d.origin)},
          {"breaker", worst.empty() ? nlohmann::json(nullptr) : nlohmann::json(worst)},
          {"breakers", breakers},
          {"in_flight", d.in_flight},
          {"attempts_recent", d.attempts_recent},
          {"failures_recent", d.failures_recent},
          {"error_rate", d.attempts_recent ? static_cast<double>(d.failures_recent) / static_cast<double>(d.attempts_recent) : 0.0},
          {"deferrals_recent", d.deferrals_recent},
          {"rate_limit_waits_recent", d.rate_limit_waits_recent},
          {"attempts_total", d.attempts_total},
          {"failures_total", d.failures_total},
          {"last_attempt_at", when(d.last_attempt_ms)},
          {"last_error", d.last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(utf8_escaped(d.last_error))},
          {"last_error_at", when(d.last_error_ms)}};
}

/// GET /v1/stats: the relay's own figures for the console's overview (relay-wide, as /metrics).
void stats(call& c) {
  auto q = query_params(c.req.target);
  if (auto bad = unknown_param(q, {}, "GET /v1/stats")) return c.reply.send(std::move(*bad));
  const relay_metrics& m = *c.deps.metrics;
  nlohmann::json jobs = nlohmann::json::object();
  for (auto s : {job_status::scheduled, job_status::active, job_status::retrying, job_status::delivered,
                 job_status::failed, job_status::cancelled}) {
    jobs[std::string(to_string(s))] = s == job_status::active ? m.in_flight.load() : m.jobs_by_status[static_cast<size_t>(s)].load();
  }
  auto ms = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  nlohmann::json minutes = nlohmann::json::array();
  if (c.deps.history) {
    for (const auto& row : c.deps.history->minutes(c.deps.clock->now_ms(), m)) {
      minutes.push_back({{"at", format_rfc3339(row.at_ms)},
                         {"attempts", row.attempts},
                         {"delivered", row.delivered},
                         {"failed", row.failed},
                         {"lateness_p99_ms", ms(row.lateness_p99_ms)}});
    }
  }
  nlohmann::json out = {{"scope", "relay"},
                        {"jobs", jobs},
                        {"in_flight", m.in_flight.load()},
                        {"lateness_p99_ms", ms(bucket_quantile(m.lateness.bounds(), m.lateness.counts(), 0.99))},
                        {"minutes", minutes}};
  c.reply.send(response::json(200, out.dump()));
}

/// GET /v1/destinations: the origins the tenant has sent to since start, in origin order.
void list_destinations(call& c) {
  auto q = query_params(c.req.target);
  if (auto bad = unknown_param(q, page_params, "GET /v1/destinations")) return c.reply.send(std::move(*bad));
  auto limit = parse_limit(q);
  if (auto* bad = std::get_if<response>(&limit)) return c.reply.send(std::move(*bad));
  std::string cursor = q.count("cursor") ? q["cursor"] : "";
  bool more = false;
  std::vector<destination_view> page;
  if (c.deps.board) page = c.deps.board->view(c.tenant, c.deps.clock->now_ms(), cursor, std::get<std::uint32_t>(limit), more);
  nlohmann::json list = nlohmann::json::array();
  for (const auto& d : page) list.push_back(destination_json(d));
  nlohmann::json out = {{"destinations", list},
                        {"window_s", origin_stats::window_minutes * 60},
                        {"next_cursor", more ? nlohmann::json(utf8_escaped(page.back().origin)) : nlohmann::json(nullptr)}};
  c.reply.send(response::json(200, safe_dump(out)));
}

// -- topics -------------------------------------------------------------------------------------

void not_found_topic(const http::responder& reply, const std::string& name) {
  reply.send(response::error(404, "topic_not_found", "no topic " + utf8_escaped(name) + " for this API key"));
}

nlohmann::json topic_json(const topic_state& t) {
  nlohmann::json eps = nlohmann::json::array();
  for (const auto& e : t.endpoints) eps.push_back({{"url", utf8_escaped(e.url)}, {"name", utf8_escaped(e.name)}});
  return {{"name", t.name},
          {"endpoints", eps},
          {"created_at", format_rfc3339(t.created_at_ms)},
          {"updated_at", format_rfc3339(t.updated_at_ms)}};
}

/// The endpoints of PUT /v1/topics/{name}: 1 to 100, each with a URL checked as X-Fetch-Url and
/// a unique name (default: the URL).
std::variant<std::vector<topic_endpoint>, response> parse_endpoints(const config::relay_config& cfg, const std::string& body) {
  auto bad = [](std::string m) { return response::error(400, "invalid_topic", std::move(m)); };
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("the body must be a JSON object: {\"endpoints\":[{\"url\":\"…\",\"name\":\"…\"}]}");
  for (const auto& [k, v] : j.items()) {
    if (k != "endpoints") return bad("unknown field \"" + utf8_escaped(k.substr(0, 64)) + "\" (a topic has endpoints only)");
  }
  if (!j.contains("endpoints") || !j["endpoints"].is_array() || j["endpoints"].empty() ||
      j["endpoints"].size() > max_topic_endpoints) {
    return bad("endpoints must be an array of 1 to " + std::to_string(max_topic_endpoints) + " endpoints");
  }
  std::vector<topic_endpoint> out;
  std::set<std::string> names;
  for (const auto& e : j["endpoints"]) {
    if (!e.is_object() || !e.contains("url") || !e["url"].is_string()) return bad("each endpoint needs a \"url\" string");
    for (const auto& [k, v] : e.items()) {
      if (k != "url" && k != "name") return bad("unknown endpoint field \"" + utf8_escaped(k.substr(0, 64)) + "\" (url, name)");
    }
    topic_endpoint ep{e["url"].get<std::string>(), ""};
    if (auto b = check_target_url(cfg, "endpoint url", ep.url)) return response::error(b->status, b->code, b->message);
    if (e.contains("name")) {
      if (!e["name"].is_string() || !is_valid_name(e["name"].get<std::string>())) {
        return bad("an endpoint name must be 1 to 64 of A-Z a-z 0-9 _ . -");
      }
      ep.name = e["name"].get<std::string>();
    } else {
      ep.name = ep.url;
    }
    if (!names.insert(ep.name).second) return bad("endpoint names must be unique: " + utf8_escaped(ep.name));
    out.push_back(std::move(ep));
  }
  return out;
}

void put_topic(call& c) {
  const std::string name = c.params[0];
  if (!is_valid_name(name)) return c.reply.send(response::error(400, "invalid_topic", "a topic name must be 1 to 64 of A-Z a-z 0-9 _ . -"));
  auto eps = parse_endpoints(*c.deps.config, c.req.body);
  if (auto* bad = std::get_if<response>(&eps)) return c.reply.send(std::move(*bad));
  topic_state t{c.tenant, name, std::get<std::vector<topic_endpoint>>(std::move(eps)), 0, c.deps.clock->now_ms()};
  auto store = c.deps.store;
  // Read first (201 or 200, and the creation time kept), then write synced.
  caf::anon_send(store, actors::topic_get_atom::value, c.tenant, name,
                 actors::completion<result<std::optional<topic_state>>>(
                     [reply = c.reply, store, t = std::move(t)](result<std::optional<topic_state>> r) mutable {
                       if (!r) return reply.send(response::error(503, "store_unavailable", r.error().message()));
                       bool fresh = !*r;
                       t.created_at_ms = fresh ? t.updated_at_ms : (*r)->created_at_ms;
                       persistence::commit_batch b;
                       b.topics.push_back({t, false});
                       caf::anon_send(store, actors::commit_atom::value, std::move(b),
                                      actors::completion<status>([reply, t, fresh](status s) {
                                        if (!s) return reply.send(response::error(503, "store_unavailable", s.message()));
                                        reply.send(response::json(fresh ? 201 : 200, safe_dump(topic_json(t))));
                                      }));
                     }));
}

void get_topic(call& c) {
  const std::string name = c.params[0];
  if (!is_valid_name(name)) return not_found_topic(c.reply, name);
  caf::anon_send(c.deps.store, actors::topic_get_atom::value, c.tenant, name,
                 actors::completion<result<std::optional<topic_state>>>([reply = c.reply, name](result<std::optional<topic_state>> r) {
                   if (!r) return reply.send(response::error(503, "store_unavailable", r.error().message()));
                   if (!*r) return not_found_topic(reply, name);
                   reply.send(response::json(200, safe_dump(topic_json(**r))));
                 }));
}

void delete_topic(call& c) {
  const std::string name = c.params[0];
  if (!is_valid_name(name)) return not_found_topic(c.reply, name);
  auto store = c.deps.store;
  caf::anon_send(store, actors::topic_get_atom::value, c.tenant, name,
                 actors::completion<result<std::optional<topic_state>>>([reply = c.reply, name, store](result<std::optional<topic_state>> r) {
                   if (!r) return reply.send(response::error(503, "store_unavailable", r.error().message()));
                   if (!*r) return not_found_topic(reply, name);
                   persistence::commit_batch b;
                   b.topics.push_back({**r, true});
                   caf::anon_send(store, actors::commit_atom::value, std::move(b),
                                  actors::completion<status>([reply, t = **r](status s) {
                                    if (!s) return reply.send(response::error(503, "store_unavailable", s.message()));
                                    reply.send(response::json(200, safe_dump(topic_json(t))));
                                  }));
                 }));
}


// -- queues -------------------------------------------------------------------------------------

void not_found_queue(const http::responder& reply, const std::string& name) {
  reply.send(response::error(404, "queue_not_found", "no queue " + utf8_escaped(name) + " for this API key"));
}

nlohmann::json queue_json(const actors::queue_view& v) {
  return {{"name", v.q.name},
          {"parallelism", v.q.parallelism},
          {"paused", v.q.paused},
          {"waiting", v.waiting},
          {"in_progress", v.in_progress},
          {"oldest_waiting_age_ms", v.oldest_waiting_age_ms},
          {"created_at", format_rfc3339(v.q.created_at_ms)}};
}

void queue_command(call& c, const std::string& name, actors::queue_command cmd) {
  caf::anon_send(c.deps.queues, actors::queue_op_atom::value, c.tenant, name, std::move(cmd),
                 actors::completion<actors::queue_answer>([reply = c.reply, name](actors::queue_answer a) {
                   if (a.http_status == 404) return not_found_queue(reply, name);
                   if (a.http_status >= 400) return reply.send(response::error(a.http_status, a.error_code, a.message));
                   reply.send(response::json(a.http_status, safe_dump(a.view ? queue_json(*a.view) : nlohmann::json::object())));
                 }));
}

/// PUT /v1/queues/{name} {"parallelism": N, "paused": bool}: creates or updates.
void put_queue(call& c) {
  const std::string name = c.params[0];
  if (!is_valid_name(name)) return c.reply.send(response::error(400, "invalid_queue", "a queue name must be 1 to 64 of A-Z a-z 0-9 _ . -"));
  actors::queue_command cmd{actors::queue_op::put, std::nullopt, std::nullopt};
  auto bad = [&](std::string m) { c.reply.send(response::error(400, "invalid_queue", std::move(m))); };
  if (!c.req.body.empty()) {
    auto j = nlohmann::json::parse(c.req.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return bad("the body must be a JSON object: {\"parallelism\":N,\"paused\":false}");
    for (const auto& [k, v] : j.items()) {
      if (k == "parallelism") {
        if (!v.is_number_integer() || v.get<std::int64_t>() < 1 || v.get<std::int64_t>() > max_queue_parallelism) {
          return bad("parallelism must be a whole number from 1 to " + std::to_string(max_queue_parallelism));
        }
        cmd.parallelism = static_cast<std::uint32_t>(v.get<std::int64_t>());
      } else if (k == "paused") {
        if (!v.is_boolean()) return bad("paused must be true or false");
        cmd.paused = v.get<bool>();
      } else {
        return bad("unknown field \"" + utf8_escaped(k.substr(0, 64)) + "\" (a queue has parallelism and paused)");
      }
    }
  }
  queue_command(c, name, std::move(cmd));
}

template <actors::queue_op Op>
void queue_op(call& c) {
  const std::string& name = c.params[0];
  if (!is_valid_name(name)) return not_found_queue(c.reply, name);
  queue_command(c, name, {Op, std::nullopt, std::nullopt});
}

void get_queue(call& c) {
  const std::string name = c.params[0];
  if (!is_valid_name(name)) return not_found_queue(c.reply, name);
  caf::anon_send(c.deps.store, actors::queue_view_atom::value, c.tenant, name,
                 actors::completion<result<std::optional<actors::queue_view>>>(
                     [reply = c.reply, name](result<std::optional<actors::queue_view>> r) {
                       if (!r) return reply.send(response::error(503, "store_unavailable", r.error().message()));
                       if (!*r) return not_found_queue(reply, name);
                       reply.send(response::json(200, safe_dump(queue_json(**r))));
                     }));
}


void list_topics(call& c) {
  list_by_name<persistence::topic_page>(c, actors::topic_list_atom::value, "topics", "topic name",
                                        [](const persistence::topic_page& p) {
                                          nlohmann::json list = nlohmann::json::array();
                                          for (const auto& t : p.topics) list.push_back(topic_json(t));
                                          return list;
                                        });
}

void list_queues(call& c) {
  list_by_name<actors::queue_view_page>(c, actors::queue_list_atom::value, "queues", "queue name",
                                        [](const actors::queue_view_page& p) {
                                          nlohmann::json list = nlohmann::json::array();
                                          for (const auto& v : p.queues) list.push_back(queue_json(v));
                                          return list;
                                        });
}

/// One handler per route_id (app/router.h), in its order (checked at compile time).
struct handler_entry {
  route_id id;
  void (*handle)(call&);
};

constexpr handler_entry handlers[] = {
    {route_id::healthz, healthz},
    {route_id::readyz, readyz},
    {route_id::metrics, metrics},
    {route_id::submit, submit},
    {route_id::list_jobs, list_jobs},
    {route_id::purge_jobs, purge_jobs},
    {route_id::bulk_retry, bulk_retry},
    {route_id::bulk_cancel, bulk_cancel},
    {route_id::get_job, get_job},
    {route_id::cancel_job, cancel_job},
    {route_id::retry_job, retry_job},
    {route_id::run_job, run_job},
    {route_id::list_events, list_events},
    {route_id::list_destinations, list_destinations},
    {route_id::stats, stats},
    {route_id::put_topic, put_topic},
    {route_id::list_topics, list_topics},
    {route_id::get_topic, get_topic},
    {route_id::delete_topic, delete_topic},
    {route_id::put_queue, put_queue},
    {route_id::list_queues, list_queues},
    {route_id::get_queue, get_queue},
    {route_id::delete_queue, queue_op<actors::queue_op::erase>},
    {route_id::pause_queue, queue_op<actors::queue_op::pause>},
    {route_id::resume_queue, queue_op<actors::queue_op::resume>},
    {route_id::put_schedule, put_schedule},
    {route_id::list_schedules, list_schedules},
    {route_id::get_schedule, schedule_op<actors::schedule_op::get>},
    {route_id::delete_schedule, schedule_op<actors::schedule_op::erase>},
    {route_id::pause_schedule, schedule_op<actors::schedule_op::pause>},
    {route_id::resume_schedule, schedule_op<actors::schedule_op::resume>},
    {route_id::trigger_schedule, schedule_op<actors::schedule_op::trigger>},
};

constexpr bool handlers_in_order() {
  for (std::size_t i = 0; i < std::size(handlers); ++i) {
    if (handlers[i].id != static_cast<route_id>(i)) return false;
  }
  return std::size(handlers) == static_cast<std::size_t>(route_id::count_);
}
static_assert(handlers_in_order(), "handlers must list every route_id once, in order");

}  // namespace

http::handler make_api_handler(api_deps deps) {
  return [deps](http::request&& req, http::responder reply) {
    if (is_visible_ascii(req.target)) {
      if (auto page = console_response(req.method, std::string(req.path()), req.header("If-None-Match"))) {
        return reply.send(std::move(*page));
      }
    }
    routed r = route_request(*deps.config, req);
    switch (r.what) {
      case routed::kind::qstash:
        return qstash_api::handle(deps, std::move(req), reply);
      case routed::kind::answer:
        if (r.unauthorized) log_unauthorized(req, req.header("Authorization").has_value());
        return reply.send(std::move(r.answer));
      case routed::kind::handler: {
        call c{deps, req, reply, r.tenant, std::move(r.params)};
        return handlers[static_cast<std::size_t>(r.id)].handle(c);
      }
    }
  };
}

}  // namespace fetchrelay::app
