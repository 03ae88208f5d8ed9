#include "app/qstash/api.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "app/qstash/message.h"
#include "app/submission.h"
#include "core/ascii.h"
#include "core/base64.h"
#include "core/log.h"
#include "core/qstash.h"
#include "core/text.h"
#include "core/ulid.h"

namespace fetchrelay::app::qstash_api {
namespace {

using http::response;
using json = nlohmann::json;

response v2_error(int status, std::string_view message) {
  return response::json(status, safe_dump({{"error", utf8_escaped(message)}}));
}

/// What one message's publish came to: the JSON of a 2xx, or an error's status and message.
struct outcome {
  int status = 200;
  json body;
  int retry_after_s = 0;
};
using outcome_fn = std::function<void(outcome)>;

response to_response(outcome o) {
  auto r = response::json(o.status, safe_dump(o.body));
  if (o.retry_after_s > 0) r.headers.push_back({"Retry-After", std::to_string(o.retry_after_s)});
  return r;
}

outcome failure(int status, std::string message, int retry_after_s = 0) {
  return {status, json{{"error", utf8_escaped(message)}}, retry_after_s};
}

/// The decoded query parameters in order (repeated names kept: messageIds=a&messageIds=b).
std::vector<std::pair<std::string, std::string>> query_of(std::string_view target) {
  std::vector<std::pair<std::string, std::string>> out;
  auto q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    auto eq = pair.find('=');
    if (!pair.empty()) {
      out.emplace_back(percent_decode(pair.substr(0, eq), true),
                       eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1), true));
    }
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return out;
}

/// The tenant of "Authorization: Bearer <key>" or of `?qstash_token=<key>`; every key is compared.
std::optional<std::string> tenant_of(const config::relay_config& cfg, const http::request& req) {
  std::string key;
  if (auto h = req.header("Authorization"); h && istarts_with(*h, "Bearer ")) {
    key = std::string(h->substr(7));
  } else {
    for (auto& [name, value] : query_of(req.target)) {
      if (name == "qstash_token") key = value;
    }
  }
  if (key.empty()) return std::nullopt;
  std::optional<std::string> tenant;
  for (const auto& k : cfg.keys) {
    if (constant_time_equal(key, k.key) && !tenant) tenant = k.tenant;
  }
  return tenant;
}

/// A matched /v2 request: the tenant and the path after the route's prefix.
struct call {
  const api_deps& deps;
  http::request& req;
  const http::responder& reply;
  std::string tenant;
  std::string rest;
};

// -- publishing ---------------------------------------------------------------------------------

json published_json(const actors::submit_answer& a, const std::string& url) {
  json j = {{"messageId", qstash::message_id(a.id)}, {"url", utf8_escaped(url)}};
  if (a.deduplicated) j["deduplicated"] = true;
  return j;
}

/// Submits the parsed messages (their URL groups read) in one manager message. The answer: an
/// array with, per message, {messageId, url[, deduplicated]} or for a URL group an array of
/// them; 202 when every message was a repeat (QStash's dedup answer). An answer that is not 202
/// fails the call with its status, naming the messages that were stored anyway.
void submit_all(const api_deps& d, std::vector<actors::submission> subs, std::map<std::string, topic_state> groups,
                outcome_fn done) {
  std::vector<std::size_t> first(subs.size()), count(subs.size());
  std::vector<bool> is_group(subs.size());
  std::vector<actors::submission> all;
  for (std::size_t i = 0; i < subs.size(); ++i) {
    first[i] = all.size();
    is_group[i] = !subs[i].topic.empty();
    if (!is_group[i]) {
      all.push_back(std::move(subs[i]));
    } else {
      bool repeat_any = subs[i].fingerprint == "qstash";
      const topic_state& group = groups.at(subs[i].topic);
      for (auto& e : expand_topic(*d.config, std::move(subs[i]), group, false)) {
        if (repeat_any) e.fingerprint = "qstash";  // QStash's dedup: a repeat matches whatever it carries
        all.push_back(std::move(e));
      }
    }
    count[i] = all.size() - first[i];
  }
  std::vector<std::string> urls;
  for (const auto& s : all) urls.push_back(s.spec.url);
  caf::anon_send(d.manager, actors::submit_atom::value, std::move(all),
                 actors::completion<std::vector<actors::submit_answer>>(
                     [done, urls, first, count, is_group](std::vector<actors::submit_answer> answers) {
                       std::string stored;
                       const actors::submit_answer* failed = nullptr;
                       std::size_t failed_at = 0;
                       bool all_repeats = true;
                       for (std::size_t k = 0; k < answers.size(); ++k) {
                         if (answers[k].http_status == 202) {
                           stored += (stored.empty() ? "" : ", ") + qstash::message_id(answers[k].id);
                           all_repeats = all_repeats && answers[k].deduplicated;
                         } else if (!failed) {
                           failed = &answers[k];
                           failed_at = k;
                         }
                       }
                       if (failed) {
                         std::size_t msg = 0;
                         while (msg + 1 < first.size() && first[msg + 1] <= failed_at) ++msg;
                         std::string text = (first.size() > 1 ? "message " + std::to_string(msg) + ": " : "") + failed->message;
                         if (!stored.empty()) text += " (stored and going ahead anyway: " + stored + ")";
                         return done(failure(failed->http_status, text, failed->retry_after_s));
                       }
                       json list = json::array();
                       for (std::size_t i = 0; i < first.size(); ++i) {
                         if (!is_group[i]) {
                           list.push_back(published_json(answers[first[i]], urls[first[i]]));
                           continue;
                         }
                         json group = json::array();
                         for (std::size_t k = first[i]; k < first[i] + count[i]; ++k) group.push_back(published_json(answers[k], urls[k]));
                         list.push_back(std::move(group));
                       }
                       done({all_repeats ? 202 : 200, std::move(list)});
                     }));
}

/// Reads the URL groups the messages name, then submit_all. `done` gets an array with one
/// answer per message.
void publish_all(const api_deps& d, std::vector<actors::submission> subs, outcome_fn done) {
  std::vector<std::string> names;
  for (const auto& s : subs) {
    if (!s.topic.empty() && std::find(names.begin(), names.end(), s.topic) == names.end()) names.push_back(s.topic);
  }
  if (names.empty()) return submit_all(d, std::move(subs), {}, std::move(done));
  struct gather {
    std::map<std::string, topic_state> groups;
    std::mutex mu;
    std::string missing, error;
    std::atomic<std::size_t> left;
  };
  auto g = std::make_shared<gather>();
  g->left = names.size();
  auto held = std::make_shared<std::vector<actors::submission>>(std::move(subs));
  for (const auto& name : names) {
    caf::anon_send(d.store, actors::topic_get_atom::value, held->front().tenant, name,
                   actors::completion<result<std::optional<topic_state>>>(
                       [g, held, name, d, done](result<std::optional<topic_state>> r) {
                         {
                           std::lock_guard lock(g->mu);
                           if (!r) g->error = r.error().message();
                           else if (!*r) g->missing = name;
                           else g->groups.emplace(name, **r);
                         }
                         if (--g->left > 0) return;
                         if (!g->error.empty()) return done(failure(503, g->error, 1));
                         if (!g->missing.empty()) return done(failure(404, "URL group " + g->missing + " not found"));
                         submit_all(d, std::move(*held), std::move(g->groups), done);
                       }));
  }
}

bool refuse_unready(const call& c) {
  if (!c.deps.ready || c.deps.ready->load()) return false;
  auto r = v2_error(503, "the store is unavailable; retry shortly");
  r.headers.push_back({"Retry-After", "1"});
  c.reply.send(std::move(r));
  return true;
}

/// POST /v2/publish/{destination} and /v2/enqueue/{queue}/{destination}.
void publish(call& c, std::string queue, std::string_view rest) {
  if (refuse_unready(c)) return;
  auto q = c.req.target.find('?');
  auto split = split_destination(rest, q == std::string::npos ? std::string_view() : std::string_view(c.req.target).substr(q + 1));
  message_input in;
  in.destination = std::move(split.destination);
  in.headers = std::move(c.req.headers);
  for (auto& h : split.query_headers) in.headers.push_back(std::move(h));
  in.body = std::move(c.req.body);
  in.queue = std::move(queue);
  auto parsed = parse_message(*c.deps.config, *c.deps.clock, c.tenant, std::move(in));
  if (auto* bad = std::get_if<bad_request>(&parsed)) return c.reply.send(v2_error(bad->status, bad->message));
  std::vector<actors::submission> one;
  one.push_back(std::get<actors::submission>(std::move(parsed)));
  publish_all(c.deps, std::move(one), [reply = c.reply](outcome o) {
    if (o.status < 300) o.body = std::move(o.body[0]);  // one message: its answer alone
    reply.send(to_response(std::move(o)));
  });
}

void publish_route(call& c) { publish(c, "", c.rest); }

void enqueue_route(call& c) {
  auto slash = c.rest.find('/');
  if (slash == std::string::npos || slash == 0) {
    return c.reply.send(v2_error(400, "use /v2/enqueue/<queue>/<destination>"));
  }
  std::string queue = percent_decode(std::string_view(c.rest).substr(0, slash), false);
  if (!is_valid_name(queue)) return c.reply.send(v2_error(400, "a queue name must be 1 to 64 of A-Z a-z 0-9 _ . -"));
  publish(c, std::move(queue), std::string_view(c.rest).substr(slash + 1));
}

/// POST /v2/batch: a JSON array of {destination, headers, body?, queue?}; the answers in order.
void batch(call& c) {
  if (refuse_unready(c)) return;
  auto j = json::parse(c.req.body, nullptr, false);
  if (j.is_discarded() || !j.is_array() || j.empty() || j.size() > 1000) {
    return c.reply.send(v2_error(400, "the body must be a JSON array of 1 to 1000 messages"));
  }
  std::vector<actors::submission> subs;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& m = j[i];
    auto bad = [&](const std::string& why) { c.reply.send(v2_error(400, "message " + std::to_string(i) + ": " + why)); };
    if (!m.is_object()) return bad("must be an object");
    message_input in;
    if (!m.contains("destination") || !m["destination"].is_string()) return bad("needs a destination string");
    in.destination = m["destination"].get<std::string>();
    if (m.contains("headers")) {
      if (!m["headers"].is_object()) return bad("headers must be an object of strings");
      for (const auto& [k, v] : m["headers"].items()) {
        if (!v.is_string()) return bad("header " + k.substr(0, 64) + " must be a string");
        in.headers.push_back({k, v.get<std::string>()});
      }
    }
    if (m.contains("body")) {
      if (!m["body"].is_string()) return bad("body must be a string");
      in.body = m["body"].get<std::string>();
    }
    if (m.contains("queue") && !m["queue"].is_null()) {
      if (!m["queue"].is_string() || !is_valid_name(m["queue"].get<std::string>())) return bad("queue must be a queue name");
      in.queue = m["queue"].get<std::string>();
    }
    auto parsed = parse_message(*c.deps.config, *c.deps.clock, c.tenant, std::move(in));
    if (auto* b = std::get_if<bad_request>(&parsed)) return c.reply.send(v2_error(b->status, "message " + std::to_string(i) + ": " + b->message));
    subs.push_back(std::get<actors::submission>(std::move(parsed)));
  }
  publish_all(c.deps, std::move(subs), [reply = c.reply](outcome o) {
    if (o.status == 202) o.status = 200;  // a batch answers 200 with each message's own answer
    reply.send(to_response(std::move(o)));
  });
}

// -- messages -----------------------------------------------------------------------------------

using qstash::header_object;

/// What a message and a schedule show alike: the body (as text, or base64 if it is not UTF-8),
/// callbacks, queue, and the QStash options that have a value.
void add_request_fields(json& j, const std::string& body, const std::string& callback, const std::string& failure_callback,
                        const std::string& queue, const qstash::options& o) {
  if (is_valid_utf8(body)) j["body"] = body;
  else j["bodyBase64"] = base64_encode(body);
  auto put = [&](const char* k, const std::string& v) {
    if (!v.empty()) j[k] = utf8_escaped(v);
  };
  put("callback", callback);
  put("failureCallback", failure_callback);
  put("queueName", queue);
  put("retryDelayExpression", o.retry_delay);
  put("callerIp", o.caller_ip);
  put("flowControlKey", o.flow_control_key);
  if (!o.label.empty()) {
    j["label"] = utf8_escaped(o.label);
    j["labels"] = json::array({utf8_escaped(o.label)});
  }
}

/// A job as QStash shows a message (GET /v2/messages/{id}); also the base of a DLQ entry.
json message_json(const job_state& s, const job_spec& spec) {
  auto o = qstash::decode_options(s.qstash).value_or(qstash::options{});
  json j = {{"messageId", qstash::message_id(s.id)},
            {"url", utf8_escaped(s.url)},
            {"method", s.method},
            {"header", header_object(spec.headers, true)},
            {"maxRetries", qstash::max_retries_in_run(s, o)},
            {"notBefore", o.not_before_ms > 0 ? o.not_before_ms : s.created_at_ms},
            {"createdAt", s.created_at_ms},
            {"state", qstash::state_name(s.status, s.attempts)}};
  add_request_fields(j, spec.body, s.callback_url, s.failure_callback_url, s.queue, o);
  if (!s.topic.empty()) {
    j["topicName"] = utf8_escaped(s.topic);
    j["endpointName"] = utf8_escaped(s.endpoint);
  }
  if (!s.schedule_id.empty()) j["scheduleId"] = utf8_escaped(s.schedule_id);
  return j;
}

void message_not_found(const http::responder& reply, const std::string& id) {
  reply.send(v2_error(404, "message " + id + " not found"));
}

void get_message(call& c) {
  std::string id = qstash::job_id_of_message(c.rest);
  if (id.empty()) return message_not_found(c.reply, c.rest);
  // The state from the job itself (live, or stored), the request from the store.
  caf::anon_send(
      c.deps.manager, actors::read_atom::value, c.tenant, id,
      actors::completion<result<std::optional<actors::job_view>>>(
          [reply = c.reply, store = c.deps.store, tenant = c.tenant, id, msg = c.rest](result<std::optional<actors::job_view>> v) {
            if (!v) return reply.send(v2_error(503, v.error().message()));
            if (!*v) return message_not_found(reply, msg);
            caf::anon_send(store, actors::retry_atom::value, tenant, id,
                           actors::completion<result<std::optional<actors::recovered_job>>>(
                               [reply, state = (*v)->state, msg](result<std::optional<actors::recovered_job>> r) {
                                 if (!r) return reply.send(v2_error(503, r.error().message()));
                                 if (!*r) return message_not_found(reply, msg);
                                 reply.send(response::json(200, safe_dump(message_json(state, (*r)->spec))));
                               }));
          }));
}

void cancel_message(call& c) {
  std::string id = qstash::job_id_of_message(c.rest);
  if (id.empty()) return message_not_found(c.reply, c.rest);
  caf::anon_send(c.deps.manager, actors::cancel_atom::value, c.tenant, id,
                 actors::completion<actors::command_answer>([reply = c.reply, msg = c.rest](actors::command_answer a) {
                   switch (a) {
                     case actors::command_answer::not_found: return message_not_found(reply, msg);
                     case actors::command_answer::unavailable:
                       return reply.send(v2_error(503, "the store cannot be read now; retry shortly"));
                     case actors::command_answer::terminal:
                       return reply.send(v2_error(409, "message " + msg + " is already finished"));
                     case actors::command_answer::cancelled: break;
                   }
                   reply.send(response::json(200, R"({"cancelled":1})"));
                 }));
}

/// A bulk cancel's filter from QStash's query names; the unsupported ones are a 400.
std::variant<persistence::job_filter, std::string> filter_of(const std::vector<std::pair<std::string, std::string>>& q,
                                                            std::vector<std::string>& ids) {
  persistence::job_filter f;
  f.qstash_only = true;  // /v1 jobs of the tenant are not QStash messages
  for (const auto& [k, v] : q) {
    auto ms = [&](std::optional<std::int64_t>& to) -> bool {
      if (v.empty() || v.size() > 15 || v.find_first_not_of("0123456789") != std::string::npos) return false;
      to = std::stoll(v);
      return true;
    };
    if (k == "messageIds" || k == "messageId") {
      auto id = qstash::job_id_of_message(v);
      if (id.empty()) return "messageIds: " + v.substr(0, 64) + " is not a message id";
      ids.push_back(id);
    } else if (k == "topicName") {
      f.topic = v;
    } else if (k == "queueName") {
      f.queue = v;
    } else if (k == "scheduleId") {
      f.schedule = v;
    } else if (k == "url") {
      f.url_prefix = v;
    } else if (k == "fromDate") {
      if (!ms(f.since_ms)) return "fromDate must be unix milliseconds";
    } else if (k == "toDate") {
      if (!ms(f.until_ms)) return "toDate must be unix milliseconds";
    } else if (k == "count" || k == "cursor" || k == "qstash_token") {
      // a page size the relay does not need (it cancels every match); the token was read
    } else {
      return "the " + k.substr(0, 64) + " filter is not supported here (messageIds, url, topicName, queueName, "
             "scheduleId, fromDate, toDate)";
    }
  }
  return f;
}

/// Cancels page after page of the filter's unfinished jobs (at most 10,000 a page), then answers.
void cancel_pages(actors::manager_actor manager, std::int64_t now, std::string tenant, persistence::job_filter f,
                  std::string cursor, std::uint64_t total, int pages_left, http::responder reply) {
  caf::anon_send(manager, actors::bulk_atom::value, tenant, f, cursor, false, now,
                 actors::completion<result<persistence::purge_page>>(
                     [manager, now, tenant, f, total, pages_left, reply](result<persistence::purge_page> r) {
                       if (!r) return reply.send(v2_error(503, r.error().message()));
                       std::uint64_t sum = total + r->count;
                       if (r->next_cursor.empty() || pages_left <= 1) {
                         return reply.send(response::json(200, safe_dump({{"cancelled", sum}})));
                       }
                       cancel_pages(manager, now, tenant, f, r->next_cursor, sum, pages_left - 1, reply);
                     }));
}

/// DELETE /v2/messages?messageIds=…|<filter>: no filter cancels every unfinished message.
void cancel_messages(call& c) {
  std::vector<std::string> ids;
  auto parsed = filter_of(query_of(c.req.target), ids);
  if (auto* bad = std::get_if<std::string>(&parsed)) return c.reply.send(v2_error(400, *bad));
  if (ids.empty()) {
    return cancel_pages(c.deps.manager, c.deps.clock->now_ms(), c.tenant, std::get<persistence::job_filter>(parsed), "", 0,
                        100, c.reply);
  }
  struct tally {
    std::atomic<std::size_t> left;
    std::atomic<std::uint64_t> cancelled{0};
  };
  auto t = std::make_shared<tally>();
  t->left = ids.size();
  for (const auto& id : ids) {
    caf::anon_send(c.deps.manager, actors::cancel_atom::value, c.tenant, id,
                   actors::completion<actors::command_answer>([t, reply = c.reply](actors::command_answer a) {
                     if (a == actors::command_answer::cancelled) ++t->cancelled;
                     if (--t->left == 0) reply.send(response::json(200, safe_dump({{"cancelled", t->cancelled.load()}})));
                   }));
  }
}

// -- the dead-letter queue ----------------------------------------------------------------------
// A /v2 DLQ entry is a failed job; its id is "<finished ms>-<the job id's ULID>".

json dlq_json(const job_state& s, const job_spec& spec) {
  json j = message_json(s, spec);
  j["dlqId"] = qstash::dlq_id(s);
  if (s.response) {
    j["responseStatus"] = s.response->status;
    j["responseHeader"] = header_object(s.response->headers, false);
    if (is_valid_utf8(s.response->body)) j["responseBody"] = s.response->body;
    else j["responseBodyBase64"] = base64_encode(s.response->body);
  }
  if (!s.last_error.empty()) j["error"] = utf8_escaped(s.last_error);
  return j;
}

/// The jobs with their requests (one store read each), in the order given; those gone meanwhile
/// are left out.
void with_specs(actors::store_actor store, const std::string& tenant, std::vector<job_state> jobs,
                std::function<void(result<std::vector<std::pair<job_state, job_spec>>>)> done) {
  struct gather {
    std::vector<std::optional<std::pair<job_state, job_spec>>> got;
    std::atomic<std::size_t> left;
    std::atomic<bool> failed{false};
    std::string error;
  };
  if (jobs.empty()) return done(std::vector<std::pair<job_state, job_spec>>());
  auto g = std::make_shared<gather>();
  g->got.resize(jobs.size());
  g->left = jobs.size();
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    caf::anon_send(store, actors::retry_atom::value, tenant, jobs[i].id,
                   actors::completion<result<std::optional<actors::recovered_job>>>(
                       [g, i, done, state = jobs[i]](result<std::optional<actors::recovered_job>> r) {
                         if (!r) {
                           if (!g->failed.exchange(true)) g->error = r.error().message();
                         } else if (*r) {
                           g->got[i].emplace(state, std::move((*r)->spec));
                         }
                         if (--g->left > 0) return;
                         if (g->failed) return done(unavailable(g->error));
                         std::vector<std::pair<job_state, job_spec>> out;
                         for (auto& x : g->got) {
                           if (x) out.push_back(std::move(*x));
                         }
                         done(std::move(out));
                       }));
  }
}

/// The DLQ filters of QStash's query names (and count, cursor, dlqIds); the unsupported ones
/// are a 400.
struct dlq_query {
  persistence::job_filter filter;
  std::vector<std::string> ids;  // DLQ ids (dlqIds)
  std::uint32_t count = 100;
  std::string cursor;
};

std::variant<dlq_query, std::string> dlq_query_of(std::string_view target) {
  dlq_query q;
  q.filter.status = job_status::failed;
  q.filter.qstash_only = true;
  for (const auto& [k, v] : query_of(target)) {
    auto ms = [&](std::optional<std::int64_t>& to) -> bool {
      if (v.empty() || v.size() > 15 || v.find_first_not_of("0123456789") != std::string::npos) return false;
      to = std::stoll(v);
      return true;
    };
    if (k == "dlqIds") {
      if (qstash::job_id_of_dlq(v).empty()) return "dlqIds: " + v.substr(0, 64) + " is not a DLQ id";
      q.ids.push_back(v);
    } else if (k == "count") {
      if (v.empty() || v.size() > 3 || v.find_first_not_of("0123456789") != std::string::npos || std::stoul(v) < 1 ||
          std::stoul(v) > 100) {
        return std::string("count must be 1 to 100");
      }
      q.count = static_cast<std::uint32_t>(std::stoul(v));
    } else if (k == "cursor") {
      if (!v.empty() && !is_job_id(v)) return std::string("cursor must be a cursor from a previous page");
      q.cursor = v;
    } else if (k == "url") {
      q.filter.url_prefix = v;
    } else if (k == "topicName") {
      q.filter.topic = v;
    } else if (k == "queueName") {
      q.filter.queue = v;
    } else if (k == "scheduleId") {
      q.filter.schedule = v;
    } else if (k == "fromDate") {
      if (!ms(q.filter.since_ms)) return std::string("fromDate must be unix milliseconds");
    } else if (k == "toDate") {
      if (!ms(q.filter.until_ms)) return std::string("toDate must be unix milliseconds");
    } else if (k != "qstash_token") {
      return "the " + k.substr(0, 64) + " filter is not supported (dlqIds, url, topicName, queueName, scheduleId, fromDate, toDate)";
    }
  }
  return q;
}

/// The failed /v2 jobs a DLQ call names: those of the DLQ ids (a DLQ id names one failure: after
/// a retry and a new failure the old id names nothing), or one page of the filter (and the next
/// cursor).
void dlq_jobs(call& c, const dlq_query& q, std::function<void(std::vector<job_state>, std::string)> then) {
  auto reply = c.reply;
  if (!q.ids.empty()) {
    // Each read through the manager: a job retried meanwhile is live, and is no longer failed.
    struct gather {
      std::vector<std::optional<job_state>> got;
      std::atomic<std::size_t> left;
    };
    auto g = std::make_shared<gather>();
    g->got.resize(q.ids.size());
    g->left = q.ids.size();
    for (std::size_t i = 0; i < q.ids.size(); ++i) {
      caf::anon_send(c.deps.manager, actors::read_atom::value, c.tenant, qstash::job_id_of_dlq(q.ids[i]),
                     actors::completion<result<std::optional<actors::job_view>>>(
                         [g, i, then, dlq = q.ids[i]](result<std::optional<actors::job_view>> v) {
                           if (v && *v && (*v)->state.status == job_status::failed && !(*v)->state.qstash.empty() &&
                               qstash::dlq_id((*v)->state) == dlq) {
                             g->got[i] = (*v)->state;
                           }
                           if (--g->left > 0) return;
                           std::vector<job_state> out;
                           for (auto& s : g->got) {
                             if (s) out.push_back(std::move(*s));
                           }
                           then(std::move(out), "");
                         }));
    }
    return;
  }
  caf::anon_send(c.deps.manager, actors::list_atom::value, c.tenant, q.filter, q.cursor, q.count,
                 actors::completion<result<persistence::job_page>>([reply, then](result<persistence::job_page> r) {
                   if (!r) return reply.send(v2_error(503, r.error().message()));
                   then(std::move(r->jobs), r->next_cursor);
                 }));
}

/// GET /v2/dlq: {"messages": [...], "cursor": …} (newest first).
void list_dlq(call& c) {
  auto q = dlq_query_of(c.req.target);
  if (auto* bad = std::get_if<std::string>(&q)) return c.reply.send(v2_error(400, *bad));
  dlq_jobs(c, std::get<dlq_query>(q), [reply = c.reply, store = c.deps.store, tenant = c.tenant](std::vector<job_state> jobs, std::string next) {
    with_specs(store, tenant, std::move(jobs), [reply, next](result<std::vector<std::pair<job_state, job_spec>>> r) {
      if (!r) return reply.send(v2_error(503, r.error().message()));
      json messages = json::array();
      for (const auto& [s, spec] : *r) messages.push_back(dlq_json(s, spec));
      json out = {{"messages", messages}};
      if (!next.empty()) out["cursor"] = next;
      reply.send(response::json(200, safe_dump(out)));
    });
  });
}

void get_dlq(call& c) {
  if (qstash::job_id_of_dlq(c.rest).empty()) return c.reply.send(v2_error(404, "DLQ message " + c.rest + " not found"));
  dlq_query q;
  q.ids = {c.rest};
  dlq_jobs(c, q, [reply = c.reply, store = c.deps.store, tenant = c.tenant, dlq = c.rest](std::vector<job_state> jobs, std::string) {
    with_specs(store, tenant, std::move(jobs), [reply, dlq](result<std::vector<std::pair<job_state, job_spec>>> r) {
      if (!r) return reply.send(v2_error(503, r.error().message()));
      if (r->empty()) return reply.send(v2_error(404, "DLQ message " + dlq + " not found"));
      reply.send(response::json(200, safe_dump(dlq_json(r->front().first, r->front().second))));
    });
  });
}

/// Deletes failed jobs page after page (purge), then answers {"deleted": n}.
void delete_pages(actors::manager_actor manager, std::string tenant, persistence::job_filter f, std::string cursor,
                  std::uint64_t total, int pages_left, http::responder reply) {
  caf::anon_send(manager, actors::purge_atom::value, tenant, f, cursor,
                 actors::completion<result<persistence::purge_page>>(
                     [manager, tenant, f, total, pages_left, reply](result<persistence::purge_page> r) {
                       if (!r) return reply.send(v2_error(503, r.error().message()));
                       std::uint64_t sum = total + r->count;
                       if (r->next_cursor.empty() || pages_left <= 1 || !f.ids.empty()) {
                         json out = {{"deleted", sum}};
                         if (!r->next_cursor.empty() && f.ids.empty()) out["cursor"] = r->next_cursor;
                         return reply.send(response::json(200, safe_dump(out)));
                       }
                       delete_pages(manager, tenant, f, r->next_cursor, sum, pages_left - 1, reply);
                     }));
}

/// DELETE /v2/dlq/{dlqId} and DELETE /v2/dlq?dlqIds=…|<filter> (no filter: every failed job).
void delete_dlq(call& c) {
  auto q = dlq_query_of(c.req.target);
  if (auto* bad = std::get_if<std::string>(&q)) return c.reply.send(v2_error(400, *bad));
  auto& dq = std::get<dlq_query>(q);
  if (!c.rest.empty()) {
    if (qstash::job_id_of_dlq(c.rest).empty()) return c.reply.send(v2_error(404, "DLQ message " + c.rest + " not found"));
    dq.ids = {c.rest};
  }
  if (dq.ids.empty()) return delete_pages(c.deps.manager, c.tenant, dq.filter, dq.cursor, 0, 100, c.reply);
  // Named failures: those that are still what their ids name, purged by job id.
  dlq_jobs(c, dq, [reply = c.reply, manager = c.deps.manager, tenant = c.tenant, f = dq.filter](std::vector<job_state> jobs,
                                                                                                 std::string) mutable {
    if (jobs.empty()) return reply.send(response::json(200, R"({"deleted":0})"));
    for (const auto& s : jobs) f.ids.push_back(s.id);
    delete_pages(manager, tenant, f, "", 0, 1, reply);
  });
}

/// POST /v2/dlq/retry[/{dlqId}][?dlqIds=…|<filter>]: each failed job runs again now, as the same
/// message; 201 {"responses": [{"messageId"}], "cursor"?}.
void retry_dlq(call& c) {
  auto q = dlq_query_of(c.req.target);
  if (auto* bad = std::get_if<std::string>(&q)) return c.reply.send(v2_error(400, *bad));
  auto& dq = std::get<dlq_query>(q);
  if (!c.rest.empty()) {
    if (qstash::job_id_of_dlq(c.rest).empty()) return c.reply.send(v2_error(404, "DLQ message " + c.rest + " not found"));
    dq.ids = {c.rest};
  }
  dlq_jobs(c, dq, [reply = c.reply, manager = c.deps.manager, tenant = c.tenant, now = c.deps.clock->now_ms(),
                   single = !c.rest.empty()](std::vector<job_state> jobs, std::string next) {
    if (single && jobs.empty()) return reply.send(v2_error(404, "DLQ message not found"));
    struct gather {
      std::vector<std::string> ids;
      std::vector<char> ok;  // not vector<bool>: each slot is written from its own completion
      std::atomic<std::size_t> left;
    };
    auto g = std::make_shared<gather>();
    for (const auto& s : jobs) g->ids.push_back(s.id);
    g->ok.assign(jobs.size(), 0);
    g->left = jobs.size();
    auto answer = [g, reply, next] {
      json responses = json::array();
      for (std::size_t i = 0; i < g->ids.size(); ++i) {
        if (g->ok[i]) responses.push_back({{"messageId", qstash::message_id(g->ids[i])}});
      }
      json out = {{"responses", responses}};
      if (!next.empty()) out["cursor"] = next;
      reply.send(response::json(201, safe_dump(out)));
    };
    if (jobs.empty()) return answer();
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      caf::anon_send(manager, actors::retry_atom::value, tenant, jobs[i].id, now,
                     actors::completion<actors::retry_answer>([g, i, answer](actors::retry_answer a) {
                       g->ok[i] = a.result == actors::retry_answer::scheduled;
                       if (--g->left == 0) answer();
                     }));
    }
  });
}

// -- lists --------------------------------------------------------------------------------------

/// Every item of a paged store listing (QStash answers whole arrays): page after page of 100, at
/// most `max_pages`, each page's items turned into JSON by `items`.
template <class Page, class Atom, class Items>
void list_all(actors::store_actor store, Atom atom, std::string tenant, Items items, http::responder reply,
              std::string cursor = "", std::shared_ptr<json> acc = nullptr, int pages_left = 100) {
  if (!acc) acc = std::make_shared<json>(json::array());
  caf::anon_send(store, atom, tenant, cursor, std::uint32_t{100},
                 actors::completion<result<Page>>([=](result<Page> r) {
                   if (!r) return reply.send(v2_error(503, r.error().message()));
                   for (auto& j : items(*r)) acc->push_back(std::move(j));
                   if (r->next_cursor.empty() || pages_left <= 1) return reply.send(response::json(200, safe_dump(*acc)));
                   list_all<Page>(store, atom, tenant, items, reply, r->next_cursor, acc, pages_left - 1);
                 }));
}

/// A name from the path: one percent-decoded segment, `[A-Za-z0-9_.-]{1,64}`.
std::optional<std::string> name_of(std::string_view segment) {
  std::string name = percent_decode(segment, false);
  if (!is_valid_name(name)) return std::nullopt;
  return name;
}

// -- queues -------------------------------------------------------------------------------------

json queue_json(const actors::queue_view& v) {
  return {{"name", v.q.name},          {"parallelism", v.q.parallelism}, {"paused", v.q.paused},
          {"lag", v.waiting},          {"createdAt", v.q.created_at_ms}, {"updatedAt", v.q.created_at_ms},
          {"inProgress", v.in_progress}};
}

void queue_command(call& c, const std::string& name, actors::queue_command cmd) {
  caf::anon_send(c.deps.queues, actors::queue_op_atom::value, c.tenant, name, std::move(cmd),
                 actors::completion<actors::queue_answer>([reply = c.reply, name](actors::queue_answer a) {
                   if (a.http_status == 404) return reply.send(v2_error(404, "queue " + name + " not found"));
                   if (a.http_status >= 400) return reply.send(v2_error(a.http_status, a.message));
                   reply.send(response::json(200, safe_dump(a.view ? queue_json(*a.view) : json::object())));
                 }));
}

/// POST /v2/queues {"queueName", "parallelism", "paused"}: creates or updates.
void upsert_queue(call& c) {
  auto j = json::parse(c.req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("queueName") || !j["queueName"].is_string()) {
    return c.reply.send(v2_error(400, "the body must be {\"queueName\": \"…\", \"parallelism\": N, \"paused\": false}"));
  }
  std::string name = j["queueName"].get<std::string>();
  if (!is_valid_name(name)) return c.reply.send(v2_error(400, "a queue name must be 1 to 64 of A-Z a-z 0-9 _ . -"));
  actors::queue_command cmd{actors::queue_op::put, std::nullopt, std::nullopt};
  if (j.contains("parallelism") && !j["parallelism"].is_null()) {
    if (!j["parallelism"].is_number_integer() || j["parallelism"].get<std::int64_t>() < 1 ||
        j["parallelism"].get<std::int64_t>() > max_queue_parallelism) {
      return c.reply.send(v2_error(400, "parallelism must be a whole number from 1 to " + std::to_string(max_queue_parallelism)));
    }
    cmd.parallelism = static_cast<std::uint32_t>(j["parallelism"].get<std::int64_t>());
  }
  if (j.contains("paused") && !j["paused"].is_null()) {
    if (!j["paused"].is_boolean()) return c.reply.send(v2_error(400, "paused must be true or false"));
    cmd.paused = j["paused"].get<bool>();
  }
  queue_command(c, name, std::move(cmd));
}

template <actors::queue_op Op>
void queue_op(call& c) {
  auto name = name_of(c.rest);
  if (!name) return c.reply.send(v2_error(404, "queue " + c.rest + " not found"));
  queue_command(c, *name, {Op, std::nullopt, std::nullopt});
}

void get_queue(call& c) {
  auto name = name_of(c.rest);
  if (!name) return c.reply.send(v2_error(404, "queue " + c.rest + " not found"));
  caf::anon_send(c.deps.store, actors::queue_view_atom::value, c.tenant, *name,
                 actors::completion<result<std::optional<actors::queue_view>>>(
                     [reply = c.reply, name = *name](result<std::optional<actors::queue_view>> r) {
                       if (!r) return reply.send(v2_error(503, r.error().message()));
                       if (!*r) return reply.send(v2_error(404, "queue " + name + " not found"));
                       reply.send(response::json(200, safe_dump(queue_json(**r))));
                     }));
}

void list_queues(call& c) {
  list_all<actors::queue_view_page>(c.deps.store, actors::queue_list_atom::value, c.tenant,
                                    [](const actors::queue_view_page& p) {
                                      std::vector<json> out;
                                      for (const auto& v : p.queues) out.push_back(queue_json(v));
                                      return out;
                                    },
                                    c.reply);
}

// -- schedules ----------------------------------------------------------------------------------

json schedule_json(const schedule_state& s) {
  const auto& r = s.request;
  auto o = qstash::decode_options(r.qstash).value_or(qstash::options{});
  json j = {{"scheduleId", s.id},
            {"cron", s.cron},
            {"createdAt", s.created_at_ms},
            {"destination", utf8_escaped(r.topic.empty() ? r.spec.url : r.topic)},
            {"method", r.spec.method},
            {"header", header_object(r.spec.headers, true)},
            {"retries", r.max_attempts && *r.max_attempts > 0 ? *r.max_attempts - 1 : 3},
            {"isPaused", s.paused}};
  add_request_fields(j, r.spec.body, r.callback_url, r.failure_callback_url, r.queue, o);
  if (r.timeout_ms) j["timeout"] = *r.timeout_ms / 1000;
  if (s.last_run_at_ms > 0) j["lastScheduleTime"] = s.last_run_at_ms;
  if (s.next_run_at_ms > 0) j["nextScheduleTime"] = s.next_run_at_ms;
  return j;
}

/// An operation on one schedule, answered with `ok` (or the error).
void schedule_command(call& c, const std::string& id, actors::schedule_command cmd,
                      std::function<json(const actors::schedule_answer&)> ok) {
  caf::anon_send(c.deps.schedules, actors::sched_atom::value, c.tenant, id, std::move(cmd),
                 actors::completion<actors::schedule_answer>([reply = c.reply, id, ok](actors::schedule_answer a) {
                   if (a.http_status == 404) return reply.send(v2_error(404, "schedule " + id + " not found"));
                   if (a.http_status >= 400) return reply.send(v2_error(a.http_status, a.message));
                   reply.send(response::json(200, safe_dump(ok(a))));
                 }));
}

/// POST /v2/schedules/{destination} with Upstash-Cron: creates, or replaces the schedule of
/// Upstash-Schedule-Id; {"scheduleId"}.
void create_schedule(call& c) {
  auto q = c.req.target.find('?');
  auto split = split_destination(c.rest, q == std::string::npos ? std::string_view() : std::string_view(c.req.target).substr(q + 1));
  message_input in;
  in.destination = std::move(split.destination);
  in.headers = std::move(c.req.headers);
  for (auto& h : split.query_headers) in.headers.push_back(std::move(h));
  in.body = std::move(c.req.body);
  auto parsed = parse_schedule_message(*c.deps.config, *c.deps.clock, c.tenant, std::move(in));
  if (auto* bad = std::get_if<bad_request>(&parsed)) return c.reply.send(v2_error(bad->status, bad->message));
  auto& def = std::get<schedule_state>(parsed);
  std::string id = def.id;
  schedule_command(c, id, {actors::schedule_op::put, std::move(def)},
                   [id](const actors::schedule_answer&) { return json{{"scheduleId", id}}; });
}

template <actors::schedule_op Op>
void schedule_op(call& c) {
  auto id = name_of(c.rest);
  if (!id) return c.reply.send(v2_error(404, "schedule " + c.rest + " not found"));
  schedule_command(c, *id, {Op, std::nullopt}, [](const actors::schedule_answer& a) {
    return Op == actors::schedule_op::get && a.state ? schedule_json(*a.state) : json::object();
  });
}

void list_schedules(call& c) {
  list_all<persistence::schedule_page>(c.deps.store, actors::sched_list_atom::value, c.tenant,
                                       [](const persistence::schedule_page& p) {
                                         std::vector<json> out;
                                         for (const auto& s : p.schedules) out.push_back(schedule_json(s));
                                         return out;
                                       },
                                       c.reply);
}

// -- URL groups (topics) ------------------------------------------------------------------------

json group_json(const topic_state& t) {
  json eps = json::array();
  for (const auto& e : t.endpoints) {
    json ep = {{"url", utf8_escaped(e.url)}};
    if (e.name != e.url) ep["name"] = utf8_escaped(e.name);  // no name given: the URL stands for it
    eps.push_back(std::move(ep));
  }
  return {{"name", t.name}, {"endpoints", eps}, {"createdAt", t.created_at_ms}, {"updatedAt", t.updated_at_ms}};
}

/// Runs the changes of one key one after another (a read, a change and a write each, all
/// asynchronous): two endpoint changes to one URL group at once would otherwise both read the
/// same group and the second write would drop the first's endpoints.
class one_at_a_time {
 public:
  using task = std::function<void(std::function<void()> done)>;

  void run(const std::string& key, task t) {
    {
      std::lock_guard lock(mu_);
      auto& q = waiting_[key];
      q.push_back(std::move(t));
      if (q.size() > 1) return;  // the one running starts it when done
    }
    start(key);
  }

 private:
  void start(const std::string& key) {
    task t;
    {
      std::lock_guard lock(mu_);
      t = waiting_[key].front();
    }
    t([this, key] {
      {
        std::lock_guard lock(mu_);
        auto& q = waiting_[key];
        q.pop_front();
        if (q.empty()) {
          waiting_.erase(key);
          return;
        }
      }
      start(key);
    });
  }

  std::mutex mu_;
  std::map<std::string, std::deque<task>> waiting_;
};

one_at_a_time& group_changes() {
  static one_at_a_time serial;  // the relay's lifetime: one per process
  return serial;
}

void group_not_found(const http::responder& reply, const std::string& name) {
  reply.send(v2_error(404, "URL group " + name + " not found"));
}

/// POST (add) and DELETE (remove) /v2/topics/{name}/endpoints {"endpoints":[{"url","name"}]}:
/// the group is read, changed and written synced; adding makes it if missing, removing its last
/// endpoint deletes it.
void change_endpoints(call& c, bool add) {
  auto name = name_of(c.rest);
  if (!name) return c.reply.send(v2_error(400, "a URL group name must be 1 to 64 of A-Z a-z 0-9 _ . -"));
  auto j = json::parse(c.req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("endpoints") || !j["endpoints"].is_array() || j["endpoints"].empty()) {
    return c.reply.send(v2_error(400, "the body must be {\"endpoints\": [{\"url\": \"…\", \"name\": \"…\"}]}"));
  }
  std::vector<topic_endpoint> given;
  for (const auto& e : j["endpoints"]) {
    if (!e.is_object()) return c.reply.send(v2_error(400, "each endpoint must be an object with a url and/or a name"));
    topic_endpoint ep;
    if (e.contains("url") && e["url"].is_string()) ep.url = e["url"].get<std::string>();
    if (e.contains("name") && e["name"].is_string()) ep.name = e["name"].get<std::string>();
    if (ep.url.empty() && ep.name.empty()) return c.reply.send(v2_error(400, "each endpoint needs a url or a name"));
    if (add) {
      if (ep.url.empty()) return c.reply.send(v2_error(400, "an endpoint to add needs a url"));
      if (auto bad = check_target_url(*c.deps.config, "endpoint url", ep.url)) return c.reply.send(v2_error(bad->status, bad->message));
      if (!ep.name.empty() && !is_valid_name(ep.name)) return c.reply.send(v2_error(400, "an endpoint name must be 1 to 64 of A-Z a-z 0-9 _ . -"));
      if (ep.name.empty()) ep.name = ep.url;
    }
    given.push_back(std::move(ep));
  }
  auto store = c.deps.store;
  auto clock = c.deps.clock;
  std::string tenant = c.tenant;
  group_changes().run(tenant + '\0' + *name, [=, reply = c.reply, name = *name](std::function<void()> next) {
    // Every answer below ends this change and lets the next one of this group start.
    caf::anon_send(
      store, actors::topic_get_atom::value, tenant, name,
      actors::completion<result<std::optional<topic_state>>>([reply, next, store, tenant, name, given,
                                                             add, now = clock->now_ms()](result<std::optional<topic_state>> r) {
        auto finish = [&](response res) {
          reply.send(std::move(res));
          next();
        };
        if (!r) return finish(v2_error(503, r.error().message()));
        if (!*r && !add) return finish(v2_error(404, "URL group " + name + " not found"));
        topic_state t = *r ? **r : topic_state{tenant, name, {}, now, now};
        t.updated_at_ms = now;
        for (const auto& g : given) {
          auto same = [&](const topic_endpoint& e) {
            return add ? (e.url == g.url || e.name == g.name)
                       : ((g.url.empty() || e.url == g.url) && (g.name.empty() || e.name == g.name));
          };
          std::erase_if(t.endpoints, same);
          if (add) t.endpoints.push_back(g);
        }
        if (t.endpoints.size() > max_topic_endpoints) {
          return finish(v2_error(400, "a URL group has at most " + std::to_string(max_topic_endpoints) + " endpoints"));
        }
        persistence::commit_batch b;
        b.topics.push_back({t, t.endpoints.empty()});
        caf::anon_send(store, actors::commit_atom::value, std::move(b), actors::completion<status>([reply, next](status s) {
                         reply.send(s ? response::json(200, "{}") : v2_error(503, s.message()));
                         next();
                       }));
      }));
  });
}

void add_endpoints(call& c) { change_endpoints(c, true); }
void remove_endpoints(call& c) { change_endpoints(c, false); }

void get_group(call& c) {
  auto name = name_of(c.rest);
  if (!name) return group_not_found(c.reply, c.rest);
  caf::anon_send(c.deps.store, actors::topic_get_atom::value, c.tenant, *name,
                 actors::completion<result<std::optional<topic_state>>>([reply = c.reply, name = *name](result<std::optional<topic_state>> r) {
                   if (!r) return reply.send(v2_error(503, r.error().message()));
                   if (!*r) return group_not_found(reply, name);
                   reply.send(response::json(200, safe_dump(group_json(**r))));
                 }));
}

void delete_group(call& c) {
  auto name = name_of(c.rest);
  if (!name) return group_not_found(c.reply, c.rest);
  auto store = c.deps.store;
  std::string tenant = c.tenant;
  group_changes().run(tenant + '\0' + *name, [=, reply = c.reply, name = *name](std::function<void()> next) {
    caf::anon_send(store, actors::topic_get_atom::value, tenant, name,
                   actors::completion<result<std::optional<topic_state>>>([reply, next, name, store](result<std::optional<topic_state>> r) {
                     if (!r || !*r) {
                       reply.send(!r ? v2_error(503, r.error().message()) : v2_error(404, "URL group " + name + " not found"));
                       return next();
                     }
                     persistence::commit_batch b;
                     b.topics.push_back({**r, true});
                     caf::anon_send(store, actors::commit_atom::value, std::move(b), actors::completion<status>([reply, next](status s) {
                                      reply.send(s ? response::json(200, "{}") : v2_error(503, s.message()));
                                      next();
                                    }));
                   }));
  });
}

void list_groups(call& c) {
  list_all<persistence::topic_page>(c.deps.store, actors::topic_list_atom::value, c.tenant,
                                    [](const persistence::topic_page& p) {
                                      std::vector<json> out;
                                      for (const auto& t : p.topics) out.push_back(group_json(t));
                                      return out;
                                    },
                                    c.reply);
}

// -- signing keys -------------------------------------------------------------------------------

void get_keys(call& c) {
  auto p = c.deps.qstash_keys ? c.deps.qstash_keys->pair_of(c.tenant) : std::nullopt;
  if (!p) return c.reply.send(v2_error(503, "no signing keys are set"));
  c.reply.send(response::json(200, safe_dump({{"current", p->current}, {"next", p->next}})));
}

/// POST /v2/keys/rotate: next becomes current and a new next is made, for this tenant only (a
/// tenant on the default pair gets a pair of its own); written synced before it is used.
void rotate_keys(call& c) {
  auto ring = c.deps.qstash_keys;
  if (!ring || !ring->pair_of(c.tenant)) return c.reply.send(v2_error(503, "no signing keys are set"));
  // The ring changes and the write is queued under one lock: concurrent rotations chain (each
  // from the pair the one before made) and reach the store in that order. Signing with the new
  // current at once is safe: it was the old next, which receivers already accept.
  ring->rotate(c.tenant, [&](const qstash::key_pair& next, const std::optional<qstash::key_pair>& before) {
    persistence::commit_batch b;
    b.signing_keys.push_back({c.tenant, next.current, next.next});
    caf::anon_send(c.deps.store, actors::commit_atom::value, std::move(b),
                   actors::completion<status>([reply = c.reply, ring, tenant = c.tenant, next, before](status s) {
                     if (!s) {
                       ring->restore(tenant, next, before);
                       return reply.send(v2_error(503, "the new keys were not stored: " + s.message()));
                     }
                     log::event(spdlog::level::info, {{"tenant", tenant}}, "QStash signing keys rotated");
                     reply.send(response::json(200, safe_dump({{"current", next.current}, {"next", next.next}})));
                   }));
  });
}

// -- logs ---------------------------------------------------------------------------------------

std::string_view log_state(event_type t) {
  switch (t) {
    case event_type::created: return "CREATED";
    case event_type::retrying: return "ERROR";
    case event_type::deferred: return "RETRY";
    case event_type::delivered: return "DELIVERED";
    case event_type::failed: return "FAILED";
    case event_type::cancelled: return "CANCELLED";
    case event_type::retried: return "CREATED";
  }
  return "CREATED";
}

json log_json(const event_record& e) {
  json j = {{"time", e.at_ms}, {"state", log_state(e.type)}, {"messageId", qstash::message_id(e.job_id)},
            {"url", utf8_escaped(e.url)}};
  if (e.next_at_ms > 0) j["nextDeliveryTime"] = e.next_at_ms;
  if (e.status_code != 0) j["responseStatus"] = e.status_code;
  if (!e.detail.empty() && e.type != event_type::delivered) j["error"] = utf8_escaped(e.detail);
  return j;
}

/// GET /v2/events and /v2/logs: newest first; {"cursor", "events", "logs"} (the same list twice:
/// the SDK reads `events`, QStash's docs say `logs`).
void list_logs(call& c) {
  persistence::event_filter f;
  f.descending = true;
  std::uint32_t count = 100;
  std::string cursor;
  bool never = false;  // a state no event has (ACTIVE, CANCEL_REQUESTED): an empty page
  for (const auto& [k, v] : query_of(c.req.target)) {
    if (k == "count") {
      if (v.empty() || v.size() > 4 || v.find_first_not_of("0123456789") != std::string::npos || std::stoul(v) < 1 ||
          std::stoul(v) > 1000) {
        return c.reply.send(v2_error(400, "count must be 1 to 1000"));
      }
      count = static_cast<std::uint32_t>(std::stoul(v));
    } else if (k == "cursor") {
      if (!v.empty() && !parse_event_id(v)) return c.reply.send(v2_error(400, "cursor must be a cursor from a previous page"));
      cursor = v;
    } else if (k == "messageId" || k == "messageIds") {
      if (!f.job_id.empty()) return c.reply.send(v2_error(400, "one messageId at a time"));
      f.job_id = qstash::job_id_of_message(v);
      if (f.job_id.empty()) return c.reply.send(v2_error(400, "messageId: " + v.substr(0, 64) + " is not a message id"));
    } else if (k == "state") {
      if (v == "CREATED") f.type = event_type::created;
      else if (v == "ERROR") f.type = event_type::retrying;
      else if (v == "RETRY") f.type = event_type::deferred;
      else if (v == "DELIVERED") f.type = event_type::delivered;
      else if (v == "FAILED") f.type = event_type::failed;
      else if (v == "CANCELLED" || v == "CANCELED") f.type = event_type::cancelled;
      else if (v == "ACTIVE" || v == "IN_PROGRESS" || v == "CANCEL_REQUESTED") never = true;
      else return c.reply.send(v2_error(400, "state must be CREATED, ACTIVE, RETRY, ERROR, DELIVERED, FAILED, CANCEL_REQUESTED or CANCELLED"));
    } else if (k != "qstash_token") {
      return c.reply.send(v2_error(400, "the " + k.substr(0, 64) + " filter is not supported (count, cursor, messageId, state)"));
    }
  }
  if (never) return c.reply.send(response::json(200, R"({"cursor":"","events":[],"logs":[]})"));
  caf::anon_send(c.deps.store, actors::events_atom::value, c.tenant, f, cursor, count,
                 actors::completion<result<persistence::event_page>>([reply = c.reply](result<persistence::event_page> r) {
                   if (!r) return reply.send(v2_error(503, r.error().message()));
                   json list = json::array();
                   for (const auto& e : r->events) list.push_back(log_json(e));
                   reply.send(response::json(200, safe_dump({{"cursor", r->next_cursor}, {"events", list}, {"logs", list}})));
                 }));
}

void not_implemented(call& c) {
  c.reply.send(v2_error(501, std::string(c.req.path()) + " is not implemented by fetchrelay (docs/qstash.md)"));
}

// -- routing ------------------------------------------------------------------------------------

/// A route: method and path. A '*' at the end of a pattern matches the non-empty rest of the
/// path, slashes included (a destination); in the middle, one segment. Either goes to call.rest.
struct route {
  std::string_view method;
  std::string_view pattern;
  void (*handle)(call&);
};

constexpr route routes[] = {
    {"POST", "/v2/publish/*", publish_route},
    {"POST", "/v2/enqueue/*", enqueue_route},
    {"POST", "/v2/batch", batch},
    {"GET", "/v2/messages/*", get_message},
    {"DELETE", "/v2/messages/*", cancel_message},
    {"DELETE", "/v2/messages", cancel_messages},
    {"POST", "/v2/queues", upsert_queue},
    {"GET", "/v2/queues", list_queues},
    {"POST", "/v2/queues/*/pause", queue_op<actors::queue_op::pause>},
    {"POST", "/v2/queues/*/resume", queue_op<actors::queue_op::resume>},
    {"GET", "/v2/queues/*", get_queue},
    {"DELETE", "/v2/queues/*", queue_op<actors::queue_op::erase>},
    {"PATCH", "/v2/schedules/*/pause", schedule_op<actors::schedule_op::pause>},
    {"POST", "/v2/schedules/*/pause", schedule_op<actors::schedule_op::pause>},
    {"PATCH", "/v2/schedules/*/resume", schedule_op<actors::schedule_op::resume>},
    {"POST", "/v2/schedules/*/resume", schedule_op<actors::schedule_op::resume>},
    {"POST", "/v2/schedules/*", create_schedule},
    {"GET", "/v2/schedules", list_schedules},
    {"GET", "/v2/schedules/*", schedule_op<actors::schedule_op::get>},
    {"DELETE", "/v2/schedules/*", schedule_op<actors::schedule_op::erase>},
    {"POST", "/v2/topics/*/endpoints", add_endpoints},
    {"DELETE", "/v2/topics/*/endpoints", remove_endpoints},
    {"GET", "/v2/topics", list_groups},
    {"GET", "/v2/topics/*", get_group},
    {"DELETE", "/v2/topics/*", delete_group},
    {"GET", "/v2/dlq", list_dlq},
    {"DELETE", "/v2/dlq", delete_dlq},
    {"POST", "/v2/dlq/retry", retry_dlq},
    {"POST", "/v2/dlq/retry/*", retry_dlq},
    {"GET", "/v2/dlq/*", get_dlq},
    {"DELETE", "/v2/dlq/*", delete_dlq},
    {"GET", "/v2/keys", get_keys},
    {"POST", "/v2/keys/rotate", rotate_keys},
    {"GET", "/v2/events", list_logs},
    {"GET", "/v2/logs", list_logs},
    {"GET", "/v2/flowControl", not_implemented},
    {"GET", "/v2/flowControl/*", not_implemented},
    {"POST", "/v2/flowControl/*", not_implemented},
    {"GET", "/v2/globalParallelism", not_implemented},
};

bool matches(std::string_view pattern, std::string_view path, std::string& rest) {
  auto star = pattern.find('*');
  if (star == std::string_view::npos) return pattern == path;
  std::string_view head = pattern.substr(0, star), tail = pattern.substr(star + 1);
  if (!path.starts_with(head) || path.size() == head.size()) return false;
  std::string_view mid = path.substr(head.size());
  if (!tail.empty()) {
    auto slash = mid.find('/');
    if (slash == std::string_view::npos || slash == 0 || mid.substr(slash) != tail) return false;
    mid = mid.substr(0, slash);
  }
  rest = std::string(mid);
  return true;
}

}  // namespace

void handle(const api_deps& deps, http::request&& req, const http::responder& reply) {
  auto tenant = tenant_of(*deps.config, req);
  if (!tenant) {
    auto r = v2_error(401, "Unauthorized: send Authorization: Bearer <token> (an API key of auth.keys)");
    r.headers.push_back({"WWW-Authenticate", "Bearer"});
    return reply.send(std::move(r));
  }
  std::string_view path = req.path();
  bool path_known = false;
  for (const auto& r : routes) {
    std::string rest;
    if (!matches(r.pattern, path, rest)) continue;
    path_known = true;
    if (r.method != req.method) continue;
    call c{deps, req, reply, std::move(*tenant), std::move(rest)};
    return r.handle(c);
  }
  if (path_known) return reply.send(v2_error(405, req.method + " is not allowed on " + std::string(path)));
  reply.send(v2_error(404, "no route for " + req.method + " " + std::string(path) + " (docs/qstash.md lists the /v2 endpoints)"));
}

}  // namespace fetchrelay::app::qstash_api
