#include "core/job_json.h"

#include "core/ascii.h"
#include "core/base64.h"
#include "core/cron.h"
#include "core/clock.h"
#include "core/text.h"
#include "core/time.h"

#include <cctype>

namespace fetchrelay {
namespace {

/// A stored string as JSON: bytes that are not UTF-8 are shown escaped (\xFF), never thrown on.
nlohmann::json text(const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(utf8_escaped(s)); }

}  // namespace

nlohmann::json report_json(const job_state& s) {
  nlohmann::json r;
  r["id"] = utf8_escaped(s.id);
  r["status"] = std::string(to_string(s.status));
  r["attempts"] = s.attempts;
  r["last_status_code"] = s.last_status_code ? nlohmann::json(s.last_status_code) : nlohmann::json(nullptr);
  r["last_error"] = text(s.last_error);
  if (s.response) {
    nlohmann::json headers = nlohmann::json::object();
    for (const auto& h : s.response->headers) headers[utf8_escaped(h.name)] = utf8_escaped(h.value);
    r["response"] = {{"status", s.response->status}, {"headers", headers},
                     {"body_base64", base64_encode(s.response->body)}};
  } else {
    r["response"] = nullptr;
  }
  r["finished_at"] = s.finished_at_ms ? nlohmann::json(format_rfc3339(s.finished_at_ms)) : nlohmann::json(nullptr);
  return r;
}

namespace {

/// Request body bytes a job answer shows at most (the job keeps all of it).
constexpr std::size_t shown_body_bytes = 64 * 1024;

nlohmann::json request_json(const job_spec& r) {
  nlohmann::json headers = nlohmann::json::object();
  for (const auto& h : r.headers) headers[utf8_escaped(h.name)] = utf8_escaped(masked_header_value(h.name, h.value));
  bool cut = r.body.size() > shown_body_bytes;
  return {{"headers", headers},
          {"body_base64", base64_encode(cut ? r.body.substr(0, shown_body_bytes) : r.body)},
          {"body_bytes", r.body.size()},
          {"body_truncated", cut}};
}

}  // namespace

nlohmann::json job_json(const job_state& s, const std::vector<attempt_record>& attempts, const job_spec* request) {
  nlohmann::json j;
  j["id"] = utf8_escaped(s.id);
  j["status"] = std::string(to_string(s.status));
  j["url"] = utf8_escaped(s.url);
  j["method"] = utf8_escaped(s.method);
  j["policy"] = utf8_escaped(s.policy);
  j["created_at"] = format_rfc3339(s.created_at_ms);
  j["run_at"] = format_rfc3339(s.run_at_ms);
  bool waiting = !is_terminal(s.status) && s.status != job_status::active;
  j["next_attempt_at"] = waiting ? nlohmann::json(format_rfc3339(s.run_at_ms)) : nlohmann::json(nullptr);
  j["max_attempts"] = s.max_attempts;
  nlohmann::json list = nlohmann::json::array();
  for (const auto& a : attempts) {
    list.push_back({{"n", a.n},
                    {"started_at", format_rfc3339(a.started_at_ms)},
                    {"duration_ms", a.duration_ms},
                    {"status_code", a.status_code ? nlohmann::json(a.status_code) : nlohmann::json(nullptr)},
                    {"error", text(a.error)},
                    {"response_excerpt", text(a.response_excerpt)}});
    if (!a.node.empty()) list.back()["node"] = utf8_escaped(a.node);
  }
  j["attempts"] = list;
  j["last_error"] = text(s.last_error);
  j["defer_reason"] = text(s.defer_reason);
  if (!s.parent_id.empty()) j["parent_id"] = utf8_escaped(s.parent_id);
  if (!s.schedule_id.empty()) {
    j["schedule_id"] = utf8_escaped(s.schedule_id);
    j["fire_time"] = format_rfc3339(s.fire_time_ms);
  }
  if (!s.queue.empty()) j["queue"] = utf8_escaped(s.queue);
  if (!s.topic.empty()) {
    j["topic"] = utf8_escaped(s.topic);
    j["endpoint"] = utf8_escaped(s.endpoint);
  }
  j["report"] = is_terminal(s.status) ? report_json(s) : nlohmann::json(nullptr);
  if (request) j["request"] = request_json(*request);
  return j;
}

nlohmann::json event_json(const event_record& e) {
  nlohmann::json j;
  j["id"] = event_id(e.seq);
  j["at"] = format_rfc3339(e.at_ms);
  j["type"] = std::string(to_string(e.type));
  j["job_id"] = utf8_escaped(e.job_id);
  j["url"] = utf8_escaped(e.url);
  if (e.attempt) {
    j["attempt"] = e.attempt;
    j["status_code"] = e.status_code ? nlohmann::json(e.status_code) : nlohmann::json(nullptr);
    j["duration_ms"] = e.duration_ms;
  }
  if (e.next_at_ms) j["next_attempt_at"] = format_rfc3339(e.next_at_ms);
  if (!e.detail.empty()) j[e.type == event_type::deferred ? "reason" : "error"] = utf8_escaped(e.detail);
  return j;
}

std::string masked_header_value(std::string_view name, const std::string& value) {
  auto ends = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && iequals(name.substr(name.size() - suffix.size()), suffix);
  };
  std::string lower(name);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (iequals(name, "Cookie") || iequals(name, "Set-Cookie") || lower.find("auth") != std::string::npos ||
      ends("Key") || ends("Token") || ends("Secret") || ends("Password") || ends("Signature") || ends("Credential") ||
      ends("Credentials")) {
    return "***";
  }
  return value;
}

nlohmann::json schedule_json(const schedule_state& s) {
  nlohmann::json j;
  j["id"] = utf8_escaped(s.id);
  j["cron"] = utf8_escaped(s.cron);
  auto parsed = parse_cron(s.cron);
  auto* c = std::get_if<cron_schedule>(&parsed);
  j["tz"] = c ? c->zone : std::string("UTC");
  j["paused"] = s.paused;
  j["created_at"] = s.created_at_ms ? nlohmann::json(format_rfc3339(s.created_at_ms)) : nlohmann::json(nullptr);
  j["next_run_at"] = s.next_run_at_ms && !s.paused ? nlohmann::json(format_rfc3339(s.next_run_at_ms)) : nlohmann::json(nullptr);
  j["last_run_at"] = s.last_run_at_ms ? nlohmann::json(format_rfc3339(s.last_run_at_ms)) : nlohmann::json(nullptr);
  j["last_job_id"] = text(s.last_job_id);
  const schedule_request& r = s.request;
  nlohmann::json headers = nlohmann::json::object();
  for (const auto& h : r.spec.headers) headers[utf8_escaped(h.name)] = utf8_escaped(masked_header_value(h.name, h.value));
  j["request"] = {{"method", utf8_escaped(r.spec.method)},
                  {"url", utf8_escaped(r.spec.url)},
                  {"headers", headers},
                  {"body_base64", base64_encode(r.spec.body)},
                  {"policy", utf8_escaped(r.policy)},
                  {"retries", r.max_attempts ? nlohmann::json(*r.max_attempts - 1) : nlohmann::json(nullptr)},
                  {"timeout_ms", r.timeout_ms ? nlohmann::json(*r.timeout_ms) : nlohmann::json(nullptr)},
                  {"callback", text(r.callback_url)},
                  {"failure_callback", text(r.failure_callback_url)},
                  {"queue", text(r.queue)}};
  return j;
}

}  // namespace fetchrelay
