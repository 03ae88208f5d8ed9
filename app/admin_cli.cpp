#include "app/admin_cli.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/units.h"
#include "http/client.h"

namespace fetchrelay::app {
namespace {

using json = nlohmann::json;

const std::vector<std::string> resources{"jobs", "schedules", "queues", "topics", "destinations", "stats", "events"};

/// The filters of GET /v1/jobs, as --flags (url-prefix is url_prefix in the API).
const std::vector<std::string> job_filters{"status", "queue", "schedule", "topic", "url-prefix", "since", "until"};

std::string api_name(const std::string& flag) {
  std::string s = flag;
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

std::string percent_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string query_of(const admin_command& c, const std::vector<std::string>& names) {
  std::string q;
  for (const auto& n : names) {
    auto it = c.options.find(n);
    if (it == c.options.end()) continue;
    q += (q.empty() ? "?" : "&") + api_name(n) + "=" + percent_encode(it->second);
  }
  return q;
}

/// The verbs each resource takes, and whether the verb needs a target.
struct verb_rule {
  const char* resource;
  const char* verb;
  bool target;
  const char* method;
  const char* suffix;  // appended to /v1/<resource>/<target>
};

constexpr verb_rule rules[] = {
    {"jobs", "get", true, "GET", ""},           {"jobs", "run", true, "POST", "/run"},
    {"schedules", "get", true, "GET", ""},      {"schedules", "pause", true, "POST", "/pause"},
    {"schedules", "resume", true, "POST", "/resume"}, {"schedules", "trigger", true, "POST", "/trigger"},
    {"schedules", "delete", true, "DELETE", ""}, {"queues", "get", true, "GET", ""},
    {"queues", "pause", true, "POST", "/pause"}, {"queues", "resume", true, "POST", "/resume"},
    {"queues", "delete", true, "DELETE", ""},   {"topics", "get", true, "GET", ""},
    {"topics", "delete", true, "DELETE", ""},
};

status usage_error(std::string m) { return invalid_argument(std::move(m)); }

/// Checks that only `allowed` options were given.
status only(const admin_command& c, const std::vector<std::string>& allowed) {
  for (const auto& [k, v] : c.options) {
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      return usage_error("--" + k + " does not apply to " + c.resource + (c.verb.empty() ? "" : " " + c.verb));
    }
  }
  return status::ok();
}

status build_call(admin_command& c) {
  const std::string& r = c.resource;
  std::string base = "/v1/" + r;
  if (r == "stats") {
    c.call = {"GET", base, ""};
    return only(c, {});
  }
  if (r == "destinations") {
    c.call = {"GET", base + query_of(c, {"limit", "cursor"}), ""};
    return only(c, {"limit", "cursor"});
  }
  if (r == "events") {
    c.call = {"GET", base + query_of(c, {"cursor", "limit", "job", "type"}), ""};
    return only(c, {"cursor", "limit", "job", "type"});
  }
  if (c.verb.empty()) return usage_error(r + " needs a verb (" + (r == "jobs" ? "list, get, cancel, retry, run" : "list, get, …") + ")");
  if (c.verb == "list") {
    if (!c.target.empty()) return usage_error(r + " list takes no id (did you mean " + r + " get?)");
    std::vector<std::string> allowed{"limit", "cursor"};
    if (r == "jobs") allowed.insert(allowed.end(), job_filters.begin(), job_filters.end());
    c.call = {"GET", base + query_of(c, allowed), ""};
    return only(c, allowed);
  }
  if (r == "jobs" && (c.verb == "retry" || c.verb == "cancel")) {
    if (!c.target.empty()) {
      c.call = {c.verb == "retry" ? "POST" : "DELETE", base + "/" + percent_encode(c.target) + (c.verb == "retry" ? "/retry" : ""), ""};
      return only(c, {});
    }
    c.bulk = true;
    json body = json::object();
    for (const auto& f : job_filters) {
      if (auto it = c.options.find(f); it != c.options.end()) body[api_name(f)] = it->second;
    }
    if (body.empty()) return usage_error("jobs " + c.verb + " needs a job id or filters (--status, --url-prefix, …)");
    c.call = {"POST", base + "/" + c.verb, body.dump()};
    std::vector<std::string> allowed = job_filters;
    allowed.push_back("cursor");
    if (auto it = c.options.find("cursor"); it != c.options.end()) {
      body["cursor"] = it->second;
      c.call.body = body.dump();
    }
    return only(c, allowed);
  }
  if (r == "queues" && c.verb == "set") {
    if (c.target.empty()) return usage_error("queues set needs a queue name");
    auto p = c.options.find("parallelism");
    if (p == c.options.end()) return usage_error("queues set NAME needs --parallelism N");
    json body = json::object();
    char* end = nullptr;
    long n = std::strtol(p->second.c_str(), &end, 10);
    if (p->second.empty() || *end) return usage_error("--parallelism must be a number");
    body["parallelism"] = n;
    c.call = {"PUT", base + "/" + percent_encode(c.target), body.dump()};
    return only(c, {"parallelism"});
  }
  for (const auto& rule : rules) {
    if (r != rule.resource || c.verb != rule.verb) continue;
    if (rule.target && c.target.empty()) return usage_error(r + " " + c.verb + " needs an id");
    c.call = {rule.method, base + "/" + percent_encode(c.target) + rule.suffix, ""};
    return only(c, {});
  }
  return usage_error("unknown command \"" + r + " " + c.verb + "\"");
}

// -- tables ----------------------------------------------------------------------------------

std::string cell(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", v.get<double>());
    return buf;
  }
  return v.dump();
}

/// `s` cut to `max` characters, with every control character (C0 and DEL: ESC, BEL, CR, LF, …)
/// shown as a space: what a target answered must never drive the operator's terminal.
std::string clip(std::string s, std::size_t max) {
  for (auto& ch : s) {
    auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u == 0x7f) ch = ' ';
  }
  if (s.size() > max) s = s.substr(0, max - 1) + "~";
  return s;
}

struct column {
  const char* title;
  std::string (*get)(const json&);
  std::size_t max = 40;
  std::size_t min = 0;  // fixed widths keep the rows of events --follow aligned, one table a line
};

std::string table(const json& rows, const std::vector<column>& cols) {
  std::vector<std::vector<std::string>> cells;
  std::vector<std::size_t> width;
  for (const auto& c : cols) width.push_back(std::max(std::string(c.title).size(), c.min));
  for (const auto& row : rows) {
    std::vector<std::string> line;
    for (std::size_t i = 0; i < cols.size(); ++i) {
      line.push_back(clip(cols[i].get(row), cols[i].max));
      width[i] = std::max(width[i], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  std::string out;
  auto put = [&](const std::vector<std::string>& line) {
    std::string l;
    for (std::size_t i = 0; i < line.size(); ++i) {
      l += line[i];
      if (i + 1 < line.size()) l += std::string(width[i] - line[i].size() + 2, ' ');
    }
    out += l + "\n";
  };
  std::vector<std::string> head;
  for (const auto& c : cols) head.emplace_back(c.title);
  put(head);
  for (const auto& line : cells) put(line);
  return out;
}

#define FIELD(name) [](const json& j) { return cell(j.value(name, json())); }

std::string key_values(const json& j) {
  std::string out;
  for (const auto& [k, v] : j.items()) {
    if (v.is_structured()) continue;
    out += k + ": " + clip(cell(v), 200) + "\n";
  }
  return out;
}

std::string footer(const json& j) {
  if (j.contains("next_cursor") && !j["next_cursor"].is_null()) return "more: --cursor " + j["next_cursor"].get<std::string>() + "\n";
  return "";
}

std::string render_job(const json& j) {
  std::string out = key_values(j);
  if (j.contains("request") && j["request"].is_object()) {
    out += "request headers:\n";
    for (const auto& [k, v] : j["request"]["headers"].items()) out += "  " + k + ": " + clip(cell(v), 200) + "\n";
  }
  if (j.contains("attempts") && j["attempts"].is_array() && !j["attempts"].empty()) {
    out += "attempts:\n" + table(j["attempts"], {{"N", FIELD("n")},
                                                 {"STARTED", FIELD("started_at")},
                                                 {"MS", FIELD("duration_ms")},
                                                 {"STATUS", FIELD("status_code")},
                                                 {"ERROR", FIELD("error"), 50},
                                                 {"RESPONSE", FIELD("response_excerpt"), 50}});
  }
  return out;
}

}  // namespace

bool is_admin_command(const std::string& word) {
  return std::find(resources.begin(), resources.end(), word) != resources.end();
}

std::string admin_usage() {
  return "  fetchrelay jobs list [--status S] [--queue Q] [--schedule ID] [--topic T] [--url-prefix P]\n"
         "                      [--since T] [--until T] [--limit N] [--cursor C]\n"
         "  fetchrelay jobs get|cancel|retry|run ID\n"
         "  fetchrelay jobs retry|cancel --status S [--url-prefix P …]   (every job the filter names)\n"
         "  fetchrelay schedules list|get|pause|resume|trigger|delete [ID]\n"
         "  fetchrelay queues list|get|pause|resume|delete [NAME]   fetchrelay queues set NAME --parallelism N\n"
         "  fetchrelay topics list|get|delete [NAME]\n"
         "  fetchrelay destinations [--limit N] [--cursor C]     fetchrelay stats\n"
         "  fetchrelay events [--follow] [--job ID] [--type T] [--cursor C] [--limit N] [--interval 1s]\n"
         "    with --url URL (default $FETCHRELAY_URL, else http://127.0.0.1:8080), --key KEY (default\n"
         "    $FETCHRELAY_KEY), --json (the API's answer unchanged), before or after the subcommand.\n"
         "    Exit codes: 0 ok, 1 API error or relay unreachable, 2 usage.\n";
}

result<admin_command> parse_admin(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
  admin_command c;
  if (auto u = env.find("FETCHRELAY_URL"); u != env.end() && !u->second.empty()) c.url = u->second;
  if (auto k = env.find("FETCHRELAY_KEY"); k != env.end()) c.key = k->second;
  std::vector<std::string> words;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a.rfind("--", 0) != 0) {
      words.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (name == "json" || name == "follow") {
      if (has_value) return usage_error("--" + name + " takes no value");
      (name == "json" ? c.json : c.follow) = true;
      continue;
    }
    if (!has_value) {
      if (i + 1 >= args.size()) return usage_error(a + " needs a value");
      value = args[++i];
    }
    if (name == "url") {
      c.url = value;
    } else if (name == "key") {
      c.key = value;
    } else if (name == "interval") {
      auto d = parse_duration(value);
      if (!d || d->count() < 100) return usage_error("--interval must be a duration of at least 100ms, e.g. 1s");
      c.interval_ms = d->count();
    } else if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz-") != std::string::npos) {
      return usage_error("unknown option " + a);
    } else {
      c.options[name] = value;
    }
  }
  if (words.empty() || !is_admin_command(words[0])) return usage_error("unknown command");
  c.resource = words[0];
  bool verbless = c.resource == "destinations" || c.resource == "stats" || c.resource == "events";
  std::size_t used = 1;
  if (!verbless && words.size() > 1) c.verb = words[used++];
  if (!verbless && words.size() > used) c.target = words[used++];
  if (words.size() > used) return usage_error("unexpected argument \"" + words[used] + "\"");
  if (c.follow && c.resource != "events") return usage_error("--follow applies to events only");
  while (!c.url.empty() && c.url.back() == '/') c.url.pop_back();
  if (c.url.size() >= 3 && c.url.substr(c.url.size() - 3) == "/v1") {
    return usage_error("--url is the relay's base URL, without /v1 (e.g. http://127.0.0.1:8080)");
  }
  if (c.url.rfind("http://", 0) != 0 && c.url.rfind("https://", 0) != 0) {
    return usage_error("--url must start with http:// or https://");
  }
  if (auto s = build_call(c); !s) return s;
  return c;
}

std::string render_table(const admin_command& c, const std::string& answer_json) {
  json j = json::parse(answer_json, nullptr, false);
  if (j.is_discarded()) return answer_json + "\n";
  const std::string& r = c.resource;
  if (r == "jobs" && c.verb == "list") {
    return table(j["jobs"], {{"ID", FIELD("id")},
                             {"STATUS", FIELD("status")},
                             {"ATTEMPTS", FIELD("attempt_count")},
                             {"CREATED", FIELD("created_at")},
                             {"NEXT ATTEMPT", FIELD("next_attempt_at")},
                             {"URL", FIELD("url"), 60}}) +
           footer(j);
  }
  if (r == "jobs" && c.verb == "get") return render_job(j);
  if (r == "schedules" && c.verb == "list") {
    return table(j["schedules"], {{"ID", FIELD("id")},
                                  {"CRON", FIELD("cron")},
                                  {"PAUSED", FIELD("paused")},
                                  {"NEXT RUN", FIELD("next_run_at")},
                                  {"URL", [](const json& s) { return cell(s["request"].value("url", json())); }, 60}}) +
           footer(j);
  }
  if (r == "queues" && c.verb == "list") {
    return table(j["queues"], {{"NAME", FIELD("name")},
                               {"PARALLELISM", FIELD("parallelism")},
                               {"PAUSED", FIELD("paused")},
                               {"WAITING", FIELD("waiting")},
                               {"IN PROGRESS", FIELD("in_progress")},
                               {"OLDEST WAITING MS", FIELD("oldest_waiting_age_ms")}}) +
           footer(j);
  }
  if (r == "topics" && c.verb == "list") {
    return table(j["topics"], {{"NAME", FIELD("name")},
                               {"ENDPOINTS", [](const json& t) { return std::to_string(t["endpoints"].size()); }},
                               {"UPDATED", FIELD("updated_at")}}) +
           footer(j);
  }
  if (r == "destinations") {
    return table(j["destinations"], {{"ORIGIN", FIELD("origin"), 50},
                                     {"BREAKER", FIELD("breaker")},
                                     {"IN FLIGHT", FIELD("in_flight")},
                                     {"ATTEMPTS 5M", FIELD("attempts_recent")},
                                     {"ERROR RATE", [](const json& d) { return std::to_string(static_cast<int>(d.value("error_rate", 0.0) * 100 + 0.5)) + "%"; }},
                                     {"RATE WAITS", FIELD("rate_limit_waits_recent")},
                                     {"LAST ERROR", FIELD("last_error"), 50}}) +
           footer(j);
  }
  if (r == "events") {
    return table(j["events"], {{"AT", FIELD("at"), 24, 24},
                               {"TYPE", FIELD("type"), 9, 9},
                               {"JOB", FIELD("job_id"), 40, 30},
                               {"ATTEMPT", FIELD("attempt"), 7, 7},
                               {"STATUS", FIELD("status_code"), 6, 6},
                               {"ERROR", [](const json& e) { return cell(e.value("error", e.value("reason", json()))); }, 50}});
  }
  if (r == "stats") {
    std::string out = "relay-wide figures\n";
    for (const auto& [k, v] : j["jobs"].items()) out += k + ": " + cell(v) + "\n";
    return out + "lateness p99 ms: " + cell(j.value("lateness_p99_ms", json())) + "\n";
  }
  return key_values(j);
}

namespace {

struct answer {
  int status = 0;
  std::string body;
  std::string error;  // the relay could not be reached
};

class relay_api {
 public:
  explicit relay_api(const admin_command& c) : c_(c) {
    http::client_options o;
    o.allow_private_networks = true;  // the operator names the relay: it is usually local
    o.kept_body_bytes = 64u << 20;
    o.max_body_bytes = 64u << 20;
    o.user_agent = "fetchrelay-cli";
    auto made = http::client::create(o);
    if (made) client_ = std::move(made.value());
    else error_ = made.error().message();
  }

  answer call(const admin_call& a) {
    if (!client_) return {0, "", error_};
    outbound_request r;
    r.method = a.method;
    r.url = c_.url + a.path;
    if (!c_.key.empty()) r.headers.push_back({"Authorization", "Bearer " + c_.key});
    if (!a.body.empty()) r.headers.push_back({"Content-Type", "application/json"});
    r.body = a.body;
    std::promise<outbound_result> done;
    auto f = done.get_future();
    client_->send(std::move(r), std::chrono::seconds(30), [&done](outbound_result res) { done.set_value(std::move(res)); });
    auto res = f.get();
    if (!res.response) return {0, "", res.error ? res.error->message : "no answer"};
    return {res.response->status, std::move(res.response->body), ""};
  }

 private:
  const admin_command& c_;
  std::unique_ptr<http::client> client_;
  std::string error_;
};

/// Prints an API error and returns 1; 0 for a 2xx.
int check(const admin_command& c, const answer& a) {
  if (!a.error.empty()) {
    std::fprintf(stderr, "fetchrelay: cannot reach %s: %s\n", c.url.c_str(), a.error.c_str());
    return 1;
  }
  if (a.status >= 200 && a.status < 300) return 0;
  json j = json::parse(a.body, nullptr, false);
  std::string code = "http_" + std::to_string(a.status), message = a.body.substr(0, 300);
  if (!j.is_discarded() && j.contains("error") && j["error"].is_object()) {
    code = j["error"].value("code", code);
    message = j["error"].value("message", message);
  }
  if (c.json) std::printf("%s\n", a.body.c_str());
  std::fprintf(stderr, "fetchrelay: %s: %s (HTTP %d)\n", clip(code, 100).c_str(), clip(message, 500).c_str(), a.status);
  return 1;
}

int run_bulk(admin_command& c, relay_api& api) {
  json body = json::parse(c.call.body);
  std::uint64_t total = 0;
  for (int pages = 0; pages < 100'000; ++pages) {
    c.call.body = body.dump();
    answer a = api.call(c.call);
    if (int rc = check(c, a)) return rc;
    json j = json::parse(a.body, nullptr, false);
    if (c.json) std::printf("%s\n", a.body.c_str());
    total += j.value("count", 0u);
    if (!j.contains("next_cursor") || j["next_cursor"].is_null()) break;
    body["cursor"] = j["next_cursor"];
  }
  if (!c.json) std::printf("%s %llu jobs\n", c.verb == "retry" ? "retried" : "cancelled", static_cast<unsigned long long>(total));
  return 0;
}

int run_follow(admin_command& c, relay_api& api) {
  std::string cursor = c.options.count("cursor") ? c.options["cursor"] : "";
  bool header = false;
  for (;;) {
    c.options["cursor"] = cursor;
    if (cursor.empty()) c.options.erase("cursor");
    // The same options as the parse checked, plus the cursor events take: it cannot fail.
    if (status s = build_call(c); !s) return 2;
    answer a = api.call(c.call);
    if (int rc = check(c, a)) return rc;
    json j = json::parse(a.body, nullptr, false);
    const json& events = j["events"];
    for (const auto& e : events) {
      if (c.json) {
        std::printf("%s\n", e.dump().c_str());
      } else {
        std::string t = render_table(c, json{{"events", json::array({e})}}.dump());
        std::printf("%s", header ? t.substr(t.find('\n') + 1).c_str() : t.c_str());
        header = true;
      }
    }
    std::fflush(stdout);
    if (!events.empty()) cursor = events.back()["id"].get<std::string>();
    if (events.empty() || j["next_cursor"].is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(c.interval_ms));
  }
}

}  // namespace

int run_admin(const std::vector<std::string>& args) {
  std::map<std::string, std::string> env;
  for (const char* name : {"FETCHRELAY_URL", "FETCHRELAY_KEY"}) {
    if (const char* v = std::getenv(name)) env[name] = v;
  }
  auto parsed = parse_admin(args, env);
  if (!parsed) {
    std::fprintf(stderr, "fetchrelay: %s\nusage:\n%s", parsed.error().message().c_str(), admin_usage().c_str());
    return 2;
  }
  admin_command& c = *parsed;
  if (c.key.empty()) {
    std::fprintf(stderr, "fetchrelay: no API key: give --key or set FETCHRELAY_KEY\n");
    return 2;
  }
  relay_api api(c);
  if (c.bulk) return run_bulk(c, api);
  if (c.follow) return run_follow(c, api);
  answer a = api.call(c.call);
  if (int rc = check(c, a)) return rc;
  if (c.json) std::printf("%s\n", a.body.c_str());
  else std::printf("%s", render_table(c, a.body).c_str());
  return 0;
}

}  // namespace fetchrelay::app
