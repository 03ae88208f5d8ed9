#include "core/qstash.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/job_json.h"
#include "core/text.h"
#include "core/ulid.h"

namespace fetchrelay::qstash {

// -- Upstash-Retry-Delay ------------------------------------------------------------------------

struct retry_delay_expr::node {
  enum kind_t { number, retried, add, sub, mul, div, neg, call } kind;
  double value = 0;
  std::string fn;  // for call
  std::vector<std::shared_ptr<const node>> args;

  double eval(double r) const {
    switch (kind) {
      case number: return value;
      case retried: return r;
      case add: return args[0]->eval(r) + args[1]->eval(r);
      case sub: return args[0]->eval(r) - args[1]->eval(r);
      case mul: return args[0]->eval(r) * args[1]->eval(r);
      case div: return args[0]->eval(r) / args[1]->eval(r);
      case neg: return -args[0]->eval(r);
      case call: break;
    }
    double a = args[0]->eval(r);
    if (fn == "pow") return std::pow(a, args[1]->eval(r));
    if (fn == "min") return std::min(a, args[1]->eval(r));
    if (fn == "max") return std::max(a, args[1]->eval(r));
    if (fn == "exp") return std::exp(a);
    if (fn == "sqrt") return std::sqrt(a);
    if (fn == "abs") return std::fabs(a);
    if (fn == "floor") return std::floor(a);
    if (fn == "ceil") return std::ceil(a);
    return std::round(a);
  }
};

namespace {

using node_ptr = std::shared_ptr<const retry_delay_expr::node>;
using node = retry_delay_expr::node;

/// Recursive descent over the expression; depth-bounded so no input exhausts the stack.
class expr_parser {
 public:
  explicit expr_parser(std::string_view s) : s_(s) {}

  node_ptr parse_all() {
    auto n = expr(0);
    skip_space();
    if (n && pos_ != s_.size()) return fail("unexpected '" + std::string(1, s_[pos_]) + "'");
    return n;
  }
  const std::string& error() const { return error_; }

 private:
  static constexpr int max_depth = 32;

  node_ptr fail(std::string m) {
    if (error_.empty()) error_ = m + " at offset " + std::to_string(pos_);
    return nullptr;
  }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == c) return ++pos_, true;
    return false;
  }
  static node_ptr make(node::kind_t k, std::vector<node_ptr> args, double v = 0, std::string fn = {}) {
    return std::make_shared<const node>(node{k, v, std::move(fn), std::move(args)});
  }

  node_ptr expr(int depth) {
    if (depth > max_depth) return fail("expression nested too deeply");
    auto left = term(depth);
    while (left) {
      if (eat('+')) {
        auto right = term(depth);
        if (!right) return nullptr;
        left = make(node::add, {left, right});
      } else if (eat('-')) {
        auto right = term(depth);
        if (!right) return nullptr;
        left = make(node::sub, {left, right});
      } else {
        break;
      }
    }
    return left;
  }
  node_ptr term(int depth) {
    auto left = unary(depth);
    while (left) {
      if (eat('*')) {
        auto right = unary(depth);
        if (!right) return nullptr;
        left = make(node::mul, {left, right});
      } else if (eat('/')) {
        auto right = unary(depth);
        if (!right) return nullptr;
        left = make(node::div, {left, right});
      } else {
        break;
      }
    }
    return left;
  }
  node_ptr unary(int depth) {
    if (depth > max_depth) return fail("expression nested too deeply");
    if (eat('-')) {
      auto n = unary(depth + 1);
      return n ? make(node::neg, {n}) : nullptr;
    }
    if (eat('+')) return unary(depth + 1);
    return primary(depth);
  }
  node_ptr primary(int depth) {
    skip_space();
    if (pos_ >= s_.size()) return fail("expression ends early");
    char c = s_[pos_];
    if (c == '(') {
      ++pos_;
      auto n = expr(depth + 1);
      if (!n) return nullptr;
      if (!eat(')')) return fail("missing ')'");
      return n;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      std::size_t start = pos_;
      while (pos_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '.')) ++pos_;
      std::string text(s_.substr(start, pos_ - start));
      if (std::count(text.begin(), text.end(), '.') > 1 || text == ".") return fail("bad number '" + text + "'");
      return make(node::number, {}, std::strtod(text.c_str(), nullptr));
    }
    if (std::isalpha(static_cast<unsigned char>(c))) {
      std::size_t start = pos_;
      while (pos_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      std::string name(s_.substr(start, pos_ - start));
      if (name == "retried") return make(node::retried, {});
      static const char* one[] = {"exp", "sqrt", "abs", "floor", "ceil", "round"};
      static const char* two[] = {"pow", "min", "max"};
      int arity = 0;
      for (const char* f : one) arity = name == f ? 1 : arity;
      for (const char* f : two) arity = name == f ? 2 : arity;
      if (arity == 0) {
        return fail("unknown name '" + name.substr(0, 32) +
                    "' (use retried, pow, exp, sqrt, abs, floor, ceil, round, min, max)");
      }
      if (!eat('(')) return fail("'" + name + "' needs '('");
      std::vector<node_ptr> args;
      for (int i = 0; i < arity; ++i) {
        if (i > 0 && !eat(',')) return fail("'" + name + "' takes " + std::to_string(arity) + " arguments");
        auto a = expr(depth + 1);
        if (!a) return nullptr;
        args.push_back(std::move(a));
      }
      if (!eat(')')) return fail("'" + name + "' takes " + std::to_string(arity) + " argument" + (arity == 1 ? "" : "s"));
      return make(node::call, std::move(args), 0, std::move(name));
    }
    return fail("unexpected '" + std::string(1, c) + "'");
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  std::string error_;
};

}  // namespace

std::optional<retry_delay_expr> retry_delay_expr::parse(std::string_view text, std::string* error) {
  if (text.size() > max_retry_delay_expr) {
    if (error) *error = "longer than " + std::to_string(max_retry_delay_expr) + " bytes";
    return std::nullopt;
  }
  expr_parser p(text);
  auto root = p.parse_all();
  if (!root) {
    if (error) *error = p.error();
    return std::nullopt;
  }
  retry_delay_expr e;
  e.root_ = std::move(root);
  return e;
}

std::int64_t retry_delay_expr::delay_ms(std::uint32_t retried) const {
  double v = root_->eval(static_cast<double>(retried));
  constexpr double day_ms = 86'400'000.0;
  if (std::isnan(v) || v <= 0) return 0;
  return static_cast<std::int64_t>(std::min(v, day_ms));
}

std::int64_t default_backoff_ms(std::uint32_t retried) {
  double s = std::min(86'400.0, std::exp(2.5 * (static_cast<double>(retried) + 1)));
  return static_cast<std::int64_t>(s * 1000.0);
}

// -- the signature ------------------------------------------------------------------------------

std::string base64url(std::string_view bytes) {
  static constexpr char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 2 < bytes.size(); i += 3) {
    std::uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    for (int s : {18, 12, 6, 0}) out += table[(v >> s) & 63];
  }
  if (std::size_t rest = bytes.size() - i; rest > 0) {
    std::uint32_t v = at(i) << 16 | (rest == 2 ? at(i + 1) << 8 : 0);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    if (rest == 2) out += table[(v >> 6) & 63];
  }
  return out;
}

namespace {

std::string sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

/// base64url, with or without padding, to bytes; nullopt on any other character.
std::optional<std::string> base64url_decode(std::string_view s) {
  while (!s.empty() && s.back() == '=') s.remove_suffix(1);
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    int v = c >= 'A' && c <= 'Z'   ? c - 'A'
            : c >= 'a' && c <= 'z' ? c - 'a' + 26
            : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '-'             ? 62
            : c == '_'             ? 63
                                   : -1;
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

constexpr std::string_view jwt_header = R"({"alg":"HS256","typ":"JWT"})";

}  // namespace

std::string sign(std::string_view signing_key, const signature_claims& c) {
  nlohmann::json claims = {{"iss", "Upstash"},        {"sub", c.url},  {"exp", c.now_s + 300}, {"nbf", c.now_s},
                           {"iat", c.now_s},          {"jti", c.jti},  {"body", base64url(sha256(c.body))}};
  std::string signing_input = base64url(jwt_header) + "." +
                              base64url(claims.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return signing_input + "." + base64url(hmac_sha256(signing_key, signing_input));
}

bool verify(std::string_view signing_key, std::string_view jwt, std::string_view body, std::string_view url,
            std::int64_t now_s) {
  auto d1 = jwt.find('.');
  auto d2 = d1 == std::string_view::npos ? d1 : jwt.find('.', d1 + 1);
  if (d2 == std::string_view::npos) return false;
  std::string_view input = jwt.substr(0, d2);
  auto mac = base64url_decode(jwt.substr(d2 + 1));
  auto expected = hmac_sha256(signing_key, input);
  if (!mac || mac->size() != expected.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) diff |= static_cast<unsigned char>((*mac)[i] ^ expected[i]);
  if (diff != 0) return false;
  auto payload = base64url_decode(jwt.substr(d1 + 1, d2 - d1 - 1));
  if (!payload) return false;
  auto claims = nlohmann::json::parse(*payload, nullptr, false);
  if (!claims.is_object()) return false;
  auto str = [&](const char* k) { return claims.contains(k) && claims[k].is_string() ? claims[k].get<std::string>() : ""; };
  auto num = [&](const char* k) { return claims.contains(k) && claims[k].is_number() ? claims[k].get<std::int64_t>() : -1; };
  if (str("iss") != "Upstash") return false;
  if (!url.empty() && str("sub") != url) return false;
  // As the SDK's Receiver (jose): exp and nbf are checked when present, exp == now has expired.
  if (claims.contains("exp") && num("exp") <= now_s) return false;
  if (claims.contains("nbf") && num("nbf") > now_s) return false;
  return str("body") == base64url(sha256(body));
}

std::string new_jti() {
  unsigned char bytes[16];
  RAND_bytes(bytes, sizeof bytes);
  return "jwt_" + hex_lower(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

std::optional<key_pair> key_ring::pair_of(const std::string& tenant) const {
  std::lock_guard lock(mu_);
  if (auto it = pairs_.find(tenant); it != pairs_.end()) return it->second;
  if (auto it = pairs_.find(""); it != pairs_.end()) return it->second;
  return std::nullopt;
}

bool key_ring::has_own(const std::string& tenant) const {
  std::lock_guard lock(mu_);
  return pairs_.count(tenant) > 0;
}

void key_ring::set(const std::string& tenant, key_pair p) {
  std::lock_guard lock(mu_);
  pairs_[tenant] = std::move(p);
}

key_pair key_ring::rotate(const std::string& tenant,
                          const std::function<void(const key_pair&, const std::optional<key_pair>&)>& write) {
  std::lock_guard lock(mu_);
  std::optional<key_pair> before;
  if (auto it = pairs_.find(tenant); it != pairs_.end()) before = it->second;
  auto base = before ? before : (pairs_.count("") ? std::optional<key_pair>(pairs_.at("")) : std::nullopt);
  key_pair next{base ? base->next : new_signing_key(), new_signing_key()};
  pairs_[tenant] = next;
  write(next, before);
  return next;
}

void key_ring::restore(const std::string& tenant, const key_pair& rotated, const std::optional<key_pair>& before) {
  std::lock_guard lock(mu_);
  auto it = pairs_.find(tenant);
  if (it == pairs_.end() || !(it->second == rotated)) return;  // rotated again meanwhile
  if (before) it->second = *before;
  else pairs_.erase(it);
}

std::string new_signing_key() {
  static constexpr char alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  unsigned char bytes[28];
  RAND_bytes(bytes, sizeof bytes);
  std::string key = "sig_";
  for (unsigned char b : bytes) key += alphabet[b % 58];  // the bias of 256 % 58 is harmless for 160+ bits
  return key;
}

// -- ids and states -----------------------------------------------------------------------------

std::string_view state_name(job_status s, std::uint32_t attempts) {
  switch (s) {
    case job_status::scheduled: return attempts == 0 ? "CREATED" : "RETRY";
    case job_status::active: return "ACTIVE";
    case job_status::retrying: return "RETRY";
    case job_status::delivered: return "DELIVERED";
    case job_status::failed: return "FAILED";
    case job_status::cancelled: return "CANCELLED";
  }
  return "CREATED";
}

std::string message_id(std::string_view job_id) {
  return "msg_" + std::string(job_id.substr(job_id.rfind("job_", 0) == 0 ? 4 : 0));
}

std::string job_id_of_message(std::string_view message_id) {
  if (message_id.rfind("msg_", 0) != 0) return "";
  std::string id = "job_" + std::string(message_id.substr(4));
  return is_job_id(id) ? id : "";
}

std::string dlq_id(const job_state& s) { return std::to_string(s.finished_at_ms) + "-" + s.id.substr(4); }

std::string job_id_of_dlq(std::string_view dlq) {
  auto dash = dlq.rfind('-');
  if (dash == std::string_view::npos) return "";
  std::string id = "job_" + std::string(dlq.substr(dash + 1));
  return is_job_id(id) ? id : "";
}

nlohmann::json header_object(const std::vector<header_pair>& headers, bool mask_secrets) {
  nlohmann::json h = nlohmann::json::object();
  for (const auto& p : headers) {
    h[utf8_escaped(p.name)].push_back(utf8_escaped(mask_secrets ? masked_header_value(p.name, p.value) : p.value));
  }
  return h;
}

std::string callback_body(const job_state& s, const job_spec& source) {
  auto o = decode_options(s.qstash).value_or(options{});
  std::uint32_t made = retries_in_run(s, o);  // attempts in this run
  nlohmann::json j = {{"status", s.response ? s.response->status : 0},
                      {"header", header_object(s.response ? s.response->headers : std::vector<header_pair>{}, false)},
                      {"body", base64_encode(s.response ? s.response->body : "")},
                      {"retried", made > 0 ? made - 1 : 0},
                      {"maxRetries", max_retries_in_run(s, o)},
                      {"sourceMessageId", message_id(s.id)},
                      {"url", utf8_escaped(s.url)},
                      {"method", s.method},
                      {"sourceHeader", header_object(source.headers, true)},
                      {"sourceBody", base64_encode(source.body)},
                      {"notBefore", o.not_before_ms > 0 ? o.not_before_ms : s.created_at_ms},
                      {"createdAt", s.created_at_ms}};
  if (!s.topic.empty()) j["topicName"] = utf8_escaped(s.topic);
  if (!s.topic.empty()) j["endpointName"] = utf8_escaped(s.endpoint);
  if (!s.schedule_id.empty()) j["scheduleId"] = utf8_escaped(s.schedule_id);
  if (!s.queue.empty()) j["queueName"] = utf8_escaped(s.queue);
  if (s.status == job_status::failed) j["dlqId"] = dlq_id(s);
  return safe_dump(j);
}

// -- options ------------------------------------------------------------------------------------

namespace {

nlohmann::json headers_json(const std::vector<header_pair>& hs) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& h : hs) a.push_back({h.name, h.value});
  return a;
}

std::vector<header_pair> headers_of(const nlohmann::json& a) {
  std::vector<header_pair> out;
  if (!a.is_array()) return out;
  for (const auto& p : a) {
    if (p.is_array() && p.size() == 2 && p[0].is_string() && p[1].is_string()) out.push_back({p[0], p[1]});
  }
  return out;
}

}  // namespace

std::string encode_options(const options& o) {
  nlohmann::json j = nlohmann::json::object();
  auto put = [&](const char* k, const std::string& v) {
    if (!v.empty()) j[k] = v;
  };
  auto put_n = [&](const char* k, std::int64_t v) {
    if (v != 0) j[k] = v;
  };
  auto put_h = [&](const char* k, const std::vector<header_pair>& v) {
    if (!v.empty()) j[k] = headers_json(v);
  };
  put("retry_delay", o.retry_delay);
  put("label", o.label);
  put("dedup_id", o.dedup_id);
  put("caller_ip", o.caller_ip);
  put("flow_control_key", o.flow_control_key);
  put("cb_method", o.callback_method);
  put("fcb_method", o.failure_callback_method);
  put_n("cb_timeout", o.callback_timeout_ms);
  put_n("fcb_timeout", o.failure_callback_timeout_ms);
  if (o.callback_retries) j["cb_retries"] = *o.callback_retries;
  if (o.failure_callback_retries) j["fcb_retries"] = *o.failure_callback_retries;
  put("cb_retry_delay", o.callback_retry_delay);
  put("fcb_retry_delay", o.failure_callback_retry_delay);
  put_n("cb_delay", o.callback_delay_ms);
  put_n("fcb_delay", o.failure_callback_delay_ms);
  put_h("cb_headers", o.callback_headers);
  put_h("fcb_headers", o.failure_callback_headers);
  put_n("not_before", o.not_before_ms);
  put("callback_of", o.callback_of);
  put_n("run_attempts", o.run_attempts);
  put_n("attempts_base", o.attempts_base);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<options> decode_options(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  options o;
  auto get = [&](const char* k, std::string& v) {
    if (j.contains(k) && j[k].is_string()) v = j[k].get<std::string>();
  };
  auto get_n = [&](const char* k, std::int64_t& v) {
    if (j.contains(k) && j[k].is_number_integer()) v = j[k].get<std::int64_t>();
  };
  auto get_r = [&](const char* k, std::optional<std::uint32_t>& v) {
    if (j.contains(k) && j[k].is_number_unsigned()) v = j[k].get<std::uint32_t>();
  };
  get("retry_delay", o.retry_delay);
  get("label", o.label);
  get("dedup_id", o.dedup_id);
  get("caller_ip", o.caller_ip);
  get("flow_control_key", o.flow_control_key);
  get("cb_method", o.callback_method);
  get("fcb_method", o.failure_callback_method);
  get_n("cb_timeout", o.callback_timeout_ms);
  get_n("fcb_timeout", o.failure_callback_timeout_ms);
  get_r("cb_retries", o.callback_retries);
  get_r("fcb_retries", o.failure_callback_retries);
  get("cb_retry_delay", o.callback_retry_delay);
  get("fcb_retry_delay", o.failure_callback_retry_delay);
  get_n("cb_delay", o.callback_delay_ms);
  get_n("fcb_delay", o.failure_callback_delay_ms);
  if (j.contains("cb_headers")) o.callback_headers = headers_of(j["cb_headers"]);
  if (j.contains("fcb_headers")) o.failure_callback_headers = headers_of(j["fcb_headers"]);
  get_n("not_before", o.not_before_ms);
  get("callback_of", o.callback_of);
  std::int64_t run_attempts = 0, base = 0;
  get_n("run_attempts", run_attempts);
  get_n("attempts_base", base);
  o.run_attempts = static_cast<std::uint32_t>(std::clamp<std::int64_t>(run_attempts, 0, 1'000'000));
  o.attempts_base = static_cast<std::uint32_t>(std::clamp<std::int64_t>(base, 0, 1'000'000'000));
  return o;
}

std::uint32_t retries_in_run(const job_state& s, const options& o) {
  return s.attempts > o.attempts_base ? s.attempts - o.attempts_base : 0;
}

std::uint32_t max_retries_in_run(const job_state& s, const options& o) {
  return s.max_attempts > o.attempts_base + 1 ? s.max_attempts - o.attempts_base - 1 : 0;
}

}  // namespace fetchrelay::qstash
