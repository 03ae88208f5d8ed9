#include "app/qstash/message.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>

#include <cctype>
#include <optional>

#include "core/ascii.h"
#include "core/net.h"
#include "core/qstash.h"
#include "core/text.h"
#include "core/ulid.h"
#include "core/units.h"

namespace fetchrelay::app::qstash_api {
namespace {

/// The v1 header each Upstash-* header becomes (checked by parse_submission).
struct renamed {
  const char* upstash;
  const char* v1;
};
constexpr renamed translated[] = {
    {"Upstash-Method", "X-Fetch-Method"},     {"Upstash-Delay", "X-Delay"},
    {"Upstash-Not-Before", "X-Not-Before"},   {"Upstash-Retries", "X-Retries"},
    {"Upstash-Timeout", "X-Timeout"},         {"Upstash-Callback", "X-Callback"},
    {"Upstash-Failure-Callback", "X-Failure-Callback"}, {"Upstash-Queue-Name", "X-Queue"},
};

/// A v1 answer's header names, said as the /v2 caller wrote them.
std::string in_v2_words(std::string m) {
  static const std::pair<const char*, const char*> words[] = {
      {"X-Fetch-Forward-", "Upstash-Forward-"}, {"X-Fetch-Url", "the destination"}, {"X-Fetch-Topic", "the URL group"},
      {"X-Fetch-Method", "Upstash-Method"},     {"X-Delay", "Upstash-Delay"},      {"X-Not-Before", "Upstash-Not-Before"},
      {"X-Retries", "Upstash-Retries"},         {"X-Timeout", "Upstash-Timeout"},  {"X-Failure-Callback", "Upstash-Failure-Callback"},
      {"X-Callback", "Upstash-Callback"},       {"X-Queue", "the queue name"},
      {"X-Cron", "Upstash-Cron"},               {"X-Schedule-Id", "Upstash-Schedule-Id"},
  };
  for (const auto& [from, to] : words) {
    for (auto at = m.find(from); at != std::string::npos; at = m.find(from, at + std::string_view(to).size())) {
      m.replace(at, std::string_view(from).size(), to);
    }
  }
  return m;
}

/// A header name as QStash (a Go service) writes it: each dash-separated word capitalized,
/// e.g. upstash-forward-x-keep -> Upstash-Forward-X-Keep. The SDK sends names lower-cased.
std::string canonical(std::string_view name) {
  std::string out(name);
  bool start = true;
  for (char& c : out) {
    c = start ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : ascii_lower(c);
    start = c == '-';
  }
  return out;
}

/// "1.5s" (the SDK sends fractional seconds) as "1500ms"; anything else unchanged.
std::string whole_duration(std::string_view v) {
  auto dot = v.find('.');
  if (dot == std::string_view::npos || v.size() < 3 || v.back() != 's') return std::string(v);
  std::string_view whole = v.substr(0, dot), frac = v.substr(dot + 1, v.size() - dot - 2);
  auto digits = [](std::string_view s) { return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == s.npos; };
  if (!digits(whole) || !digits(frac)) return std::string(v);
  std::string ms(frac.substr(0, 3));
  while (ms.size() < 3) ms += '0';
  return std::to_string(std::stoll(std::string(whole)) * 1000 + std::stoll(ms)) + "ms";
}

/// Headers a client's HTTP stack adds, never forwarded by Upstash-Header-Forward.
bool is_transport_header(std::string_view name) {
  for (const char* h : {"Host", "Content-Length", "Authorization", "User-Agent", "Accept-Encoding", "Expect"}) {
    if (iequals(name, h)) return true;
  }
  return is_hop_by_hop(name);
}

std::optional<bad_request> check_retry_delay(std::string_view header, const std::string& v) {
  std::string why;
  if (qstash::retry_delay_expr::parse(v, &why)) return std::nullopt;
  return bad_request{400, "invalid_retry_delay", std::string(header) + " is not a valid expression: " + why};
}

/// The -Method, -Timeout, -Retries, -Retry-Delay and -Delay of a callback (`prefix` is
/// "Upstash-Callback-" or "Upstash-Failure-Callback-").
std::optional<bad_request> callback_option(const config::relay_config& cfg, std::string_view name, const std::string& v,
                                           bool failure, qstash::options& o) {
  std::string_view prefix = failure ? "Upstash-Failure-Callback-" : "Upstash-Callback-";
  std::string_view what = name.substr(prefix.size());
  std::string header = canonical(name);
  if (iequals(what, "Method")) {
    if (v != "GET" && v != "POST" && v != "PUT" && v != "PATCH" && v != "DELETE") {
      return bad_request{400, "invalid_method", header + " must be GET, POST, PUT, PATCH or DELETE"};
    }
    (failure ? o.failure_callback_method : o.callback_method) = v;
  } else if (iequals(what, "Timeout") || iequals(what, "Delay")) {
    auto d = parse_duration(whole_duration(v), {true});
    if (!d || d->count() < 0 || *d > cfg.limits.max_delay) {
      return bad_request{400, "invalid_duration", header + " must be a duration such as 30s"};
    }
    if (iequals(what, "Timeout") && d->count() == 0) return bad_request{400, "invalid_duration", header + " must be longer than 0s"};
    if (iequals(what, "Timeout")) (failure ? o.failure_callback_timeout_ms : o.callback_timeout_ms) = d->count();
    else (failure ? o.failure_callback_delay_ms : o.callback_delay_ms) = d->count();
  } else if (iequals(what, "Retries")) {
    bool digits = !v.empty() && v.size() < 8 && v.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoul(v) > static_cast<unsigned long>(cfg.limits.max_retries)) {
      return bad_request{400, "invalid_retries", header + " must be a whole number from 0 to " + std::to_string(cfg.limits.max_retries)};
    }
    (failure ? o.failure_callback_retries : o.callback_retries) = static_cast<std::uint32_t>(std::stoul(v));
  } else if (iequals(what, "Retry-Delay")) {
    if (auto bad = check_retry_delay(header, v)) return bad;
    (failure ? o.failure_callback_retry_delay : o.callback_retry_delay) = v;
  } else if (istarts_with(what, "Forward-") && what.size() > 8) {
    if (!is_header_name(what.substr(8)) || !is_header_value(v)) {
      return bad_request{400, "invalid_header", header + " is not a valid header name and value (no control characters)"};
    }
    (failure ? o.failure_callback_headers : o.callback_headers).push_back({canonical(what.substr(8)), v});
  }
  return std::nullopt;
}

/// Upstash-Flow-Control-Value: "parallelism=N, rate=N, period=<duration>", any of them.
bool valid_flow_control(std::string_view v) {
  bool any = false;
  while (!v.empty()) {
    auto comma = v.find(',');
    std::string_view part = v.substr(0, comma);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    auto eq = part.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view key = part.substr(0, eq), val = part.substr(eq + 1);
    if (key == "parallelism" || key == "rate") {
      if (val.empty() || val.size() > 9 || val.find_first_not_of("0123456789") != std::string_view::npos) return false;
    } else if (key == "period") {
      if (!parse_duration(val, {true})) return false;
    } else {
      return false;
    }
    any = true;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return any;
}

}  // namespace

bool is_url_destination(std::string_view d) { return d.find("://") != std::string_view::npos; }

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  auto hexval = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (std::tolower(c) - 'a' + 10); };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else {
      out += plus_is_space && s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

split_target split_destination(std::string_view rest, std::string_view query) {
  split_target out;
  out.destination = std::string(rest);
  std::string kept;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    auto eq = pair.find('=');
    std::string name = percent_decode(pair.substr(0, eq), true);
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "qstash_token") {
      // the caller's token: never part of the destination
    } else if (lower.starts_with("upstash-")) {
      out.query_headers.push_back({name, eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1), true)});
    } else if (!pair.empty()) {
      kept += (kept.empty() ? "" : "&") + std::string(pair);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  if (!kept.empty()) out.destination += "?" + kept;
  return out;
}

namespace {

/// A message's headers said in v1 words (for parse_submission or parse_schedule), and what v1
/// has no header for.
struct translation {
  http::request v1;
  qstash::options o;
  std::string dedup_id;
  bool content_dedup = false;
};

std::variant<translation, bad_request> translate(const config::relay_config& cfg, message_input& in) {
  translation t;
  auto& v1 = t.v1;
  auto& o = t.o;
  auto& dedup_id = t.dedup_id;
  auto& content_dedup = t.content_dedup;
  v1.method = "POST";
  v1.target = "/v1/fetch";
  o.caller_ip = in.caller_ip;
  bool header_forward = false, retries_given = false;
  std::vector<http::header_field> others;
  for (auto& h : in.headers) {
    const std::string n = canonical(h.name);
    if (istarts_with(n, "Upstash-Forward-")) {
      v1.headers.push_back({"X-Fetch-Forward-" + n.substr(16), h.value});
    } else if (iequals(n, "Content-Type")) {
      v1.headers.push_back({"Content-Type", h.value});
    } else if (istarts_with(n, "Upstash-Callback-") || istarts_with(n, "Upstash-Failure-Callback-")) {
      if (auto bad = callback_option(cfg, n, h.value, istarts_with(n, "Upstash-Failure-Callback-"), o)) return *bad;
    } else if (iequals(n, "Upstash-Retry-Delay")) {
      if (auto bad = check_retry_delay(n, h.value)) return *bad;
      o.retry_delay = h.value;
    } else if (iequals(n, "Upstash-Deduplication-Id")) {
      if (h.value.empty() || h.value.size() > 256) return bad_request{400, "invalid_deduplication_id", "Upstash-Deduplication-Id must be 1 to 256 bytes"};
      dedup_id = h.value;
    } else if (iequals(n, "Upstash-Content-Based-Deduplication")) {
      content_dedup = iequals(h.value, "true");
    } else if (iequals(n, "Upstash-Header-Forward")) {
      header_forward = iequals(h.value, "true");
    } else if (iequals(n, "Upstash-Label")) {
      o.label = h.value;
    } else if (iequals(n, "Upstash-Flow-Control-Key")) {
      o.flow_control_key = h.value;
    } else if (iequals(n, "Upstash-Flow-Control-Value")) {
      if (!valid_flow_control(h.value)) {
        return bad_request{400, "invalid_flow_control", "Upstash-Flow-Control-Value must be parallelism=N, rate=N and/or period=<duration>"};
      }
    } else if (istarts_with(n, "Upstash-")) {
      // Those not translated (telemetry, Upstash-Redact-Fields, …) are accepted and not forwarded.
      for (const auto& t : translated) {
        if (!iequals(n, t.upstash)) continue;
        retries_given = retries_given || iequals(n, "Upstash-Retries");
        std::string value = iequals(n, "Upstash-Timeout") || iequals(n, "Upstash-Delay") ? whole_duration(h.value) : h.value;
        v1.headers.push_back({t.v1, std::move(value)});
      }
    } else {
      others.push_back(std::move(h));
    }
  }
  if (header_forward) {
    for (auto& h : others) {
      if (!is_transport_header(h.name)) v1.headers.push_back({"X-Fetch-Forward-" + canonical(h.name), std::move(h.value)});
    }
  }
  if (!retries_given) v1.headers.push_back({"X-Retries", "3"});  // QStash's default
  if (in.destination.empty()) return bad_request{400, "missing_destination", "the destination is missing: /v2/publish/<URL or URL group>"};
  v1.headers.push_back({is_url_destination(in.destination) ? "X-Fetch-Url" : "X-Fetch-Topic", in.destination});
  if (!in.queue.empty()) v1.headers.push_back({"X-Queue", in.queue});
  v1.body = std::move(in.body);
  return t;
}

/// A callback's -Timeout, as Upstash-Timeout: above 0 and within the policy's max_timeout.
std::optional<bad_request> check_callback_timeouts(const config::relay_config& cfg, const std::string& policy,
                                                   const qstash::options& o) {
  auto max = cfg.policies.at(policy).max_timeout.count();
  for (auto [name, ms] : {std::pair{"Upstash-Callback-Timeout", o.callback_timeout_ms},
                          std::pair{"Upstash-Failure-Callback-Timeout", o.failure_callback_timeout_ms}}) {
    if (ms > max) {
      return bad_request{400, "timeout_too_long", std::string(name) + " is over the policy's max_timeout (" +
                                                      format_duration(std::chrono::milliseconds(max)) + ")"};
    }
  }
  return std::nullopt;
}

}  // namespace

std::variant<actors::submission, bad_request> parse_message(const config::relay_config& cfg, const wall_clock& clock,
                                                            const std::string& tenant, message_input in) {
  auto translated = translate(cfg, in);
  if (auto* bad = std::get_if<bad_request>(&translated)) return *bad;
  auto& [v1, o, dedup_id, content_dedup] = std::get<translation>(translated);
  auto parsed = parse_submission(cfg, clock, tenant, v1);
  if (auto* bad = std::get_if<bad_request>(&parsed)) {
    bad->message = in_v2_words(std::move(bad->message));
    return *bad;
  }
  auto& sub = std::get<actors::submission>(parsed);
  if (!dedup_id.empty() || content_dedup) {
    // Repeats within the idempotency window get the first message's id, whatever they carry
    // (QStash does not compare them): one fingerprint for every /v2 repeat.
    std::string key = dedup_id;
    if (key.empty()) {
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      std::string content = sub.spec.method + '\n' + in.destination + '\n' + sub.spec.body;
      for (const auto& h : sub.spec.headers) content += '\n' + h.name + ':' + h.value;
      EVP_Digest(content.data(), content.size(), digest, &len, EVP_sha256(), nullptr);
      key = "content:" + hex_lower(std::string_view(reinterpret_cast<const char*>(digest), len));
    } else {
      key = "id:" + key;
    }
    o.dedup_id = dedup_id.empty() ? key.substr(8) : dedup_id;
    sub.idempotency_key = "fetchrelay:qstash:" + key;
    sub.fingerprint = "qstash";
  }
  o.run_attempts = sub.max_attempts.value_or(0);
  o.not_before_ms = sub.run_at_ms;  // when it was first due: QStash's notBefore
  if (auto bad = check_callback_timeouts(cfg, sub.policy, o)) return *bad;
  sub.qstash = qstash::encode_options(o);
  return std::move(sub);
}

std::variant<schedule_state, bad_request> parse_schedule_message(const config::relay_config& cfg, const wall_clock& clock,
                                                                const std::string& tenant, message_input in) {
  std::string cron, id;
  for (const auto& h : in.headers) {
    if (iequals(h.name, "Upstash-Cron")) cron = h.value;
    if (iequals(h.name, "Upstash-Schedule-Id")) id = h.value;
  }
  auto translated = translate(cfg, in);
  if (auto* bad = std::get_if<bad_request>(&translated)) return *bad;
  auto& t = std::get<translation>(translated);
  if (!t.dedup_id.empty() || t.content_dedup) {
    return bad_request{400, "not_for_schedules", "deduplication does not apply to a schedule (each fire has a key of its own)"};
  }
  if (cron.empty()) return bad_request{400, "missing_cron", "Upstash-Cron is required, e.g. Upstash-Cron: */5 * * * *"};
  t.v1.headers.push_back({"X-Cron", cron});
  if (id.empty()) {
    std::array<std::uint8_t, 10> random{};
    RAND_bytes(random.data(), static_cast<int>(random.size()));
    id = "scd_" + encode_ulid(clock.now_ms(), random);
  }
  t.v1.headers.push_back({"X-Schedule-Id", id});
  auto parsed = parse_schedule(cfg, clock, tenant, t.v1);
  if (auto* bad = std::get_if<bad_request>(&parsed)) {
    bad->message = in_v2_words(std::move(bad->message));
    return *bad;
  }
  auto& s = std::get<schedule_state>(parsed);
  t.o.run_attempts = s.request.max_attempts.value_or(0);
  if (auto bad = check_callback_timeouts(cfg, s.request.policy, t.o)) return *bad;
  s.request.qstash = qstash::encode_options(t.o);
  return std::move(s);
}

}  // namespace fetchrelay::app::qstash_api
