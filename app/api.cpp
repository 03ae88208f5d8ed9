#include "app/api.h"

#include "app/submission.h"

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>

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
      if (auto* bad = std::get_if<bad_request>(&parsed)) {
        log::event(spdlog::level::debug, {{"tenant", *tenant}, {"status_code", bad->status}, {"code", bad->code}},
                   "submission refused");
        return reply.send(response::error(bad->status, bad->code, bad->message));
      }
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
