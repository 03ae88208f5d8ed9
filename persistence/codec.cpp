#include "persistence/codec.h"

#include <cstring>

namespace fetchrelay::persistence {
namespace {

constexpr std::uint8_t version_1 = 0x01;
constexpr std::uint8_t record_version = 0x02;  // job_record

/// Encoders run twice over a value: once with a sizer to learn its exact length, once with a
/// writer into a string of that length (one allocation, no growth checks per byte).
class sizer {
 public:
  void byte(std::uint8_t) { ++n_; }
  void varint(std::uint64_t v) {
    do {
      ++n_;
      v >>= 7;
    } while (v != 0);
  }
  void string(std::string_view s) {
    varint(s.size());
    n_ += s.size();
  }
  std::size_t size() const { return n_; }

 private:
  std::size_t n_ = 0;
};

class writer {
 public:
  explicit writer(char* p) : p_(p) {}
  void byte(std::uint8_t b) { *p_++ = static_cast<char>(b); }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      *p_++ = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    *p_++ = static_cast<char>(v);
  }
  void string(std::string_view s) {
    varint(s.size());
    if (!s.empty()) std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }

 private:
  char* p_;
};

/// The bytes `f(w)` writes, for f callable with a sizer and a writer.
template <class F>
std::string build(F&& f) {
  sizer z;
  f(z);
  std::string out;
  out.resize(z.size());
  writer w(out.data());
  f(w);
  return out;
}

void put_be64(std::string& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
}

void put_be32(std::string& out, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
}

std::uint64_t get_be64(std::string_view s) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<std::uint8_t>(s[i]);
  return v;
}

/// Reads values in order; the first problem sticks and every later read fails.
class reader {
 public:
  explicit reader(std::string_view in) : in_(in) {}

  bool ok() const { return ok_; }
  bool at_end() const { return in_.empty(); }

  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift <= 63; shift += 7) {
      if (in_.empty()) return fail();
      auto b = static_cast<std::uint8_t>(in_.front());
      in_.remove_prefix(1);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return fail();
  }

  std::uint8_t byte() {
    if (in_.empty()) return static_cast<std::uint8_t>(fail());
    auto b = static_cast<std::uint8_t>(in_.front());
    in_.remove_prefix(1);
    return b;
  }

  std::string string() {
    std::uint64_t n = varint();
    if (!ok_ || n > in_.size()) {
      fail();
      return {};
    }
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }

  /// A string as a view into the input.
  std::string_view view() {
    std::uint64_t n = varint();
    if (!ok_ || n > in_.size()) {
      fail();
      return {};
    }
    std::string_view s = in_.substr(0, n);
    in_.remove_prefix(n);
    return s;
  }

  /// What is left to read.
  std::string_view rest() const { return in_; }

  /// Skips a string without copying it.
  void skip_string() {
    std::uint64_t n = varint();
    if (!ok_ || n > in_.size()) {
      fail();
      return;
    }
    in_.remove_prefix(n);
  }

  std::vector<header_pair> headers() {
    std::uint64_t n = varint();
    std::vector<header_pair> out;
    for (std::uint64_t i = 0; ok_ && i < n; ++i) {
      std::string name = string();
      std::string value = string();
      out.push_back({std::move(name), std::move(value)});
    }
    return out;
  }

  void version(const char* what) {
    std::uint8_t v = byte();
    if (ok_ && v != version_1) {
      ok_ = false;
      problem_ = std::string(what) + " has unknown format version " + std::to_string(v);
    }
  }

  status error(const char* what) const {
    return data_loss(problem_.empty() ? std::string(what) + " is truncated or malformed" : problem_);
  }

 private:
  std::uint64_t fail() {
    ok_ = false;
    return 0;
  }
  std::string_view in_;
  bool ok_ = true;
  std::string problem_;
};

template <class W>
void put_headers(W& w, const std::vector<header_pair>& headers) {
  w.varint(headers.size());
  for (const auto& h : headers) {
    w.string(h.name);
    w.string(h.value);
  }
}

}  // namespace

std::string job_key(std::string_view id) { return "job/" + std::string(id); }
std::string body_key(std::string_view id) { return "body/" + std::string(id); }

namespace {

std::string timed_key(std::string_view prefix, std::int64_t ms, std::string_view id) {
  std::string k(prefix);
  put_be64(k, static_cast<std::uint64_t>(ms));
  k.append(id);
  return k;
}

bool parse_timed_key(std::string_view prefix, std::string_view key, std::int64_t& ms, std::string& id) {
  if (key.size() < prefix.size() + 8 || key.substr(0, prefix.size()) != prefix) return false;
  ms = static_cast<std::int64_t>(get_be64(key.substr(prefix.size())));
  id = std::string(key.substr(prefix.size() + 8));
  return true;
}

}  // namespace

std::string due_key(std::int64_t due_ms, std::string_view id) { return timed_key(due_prefix, due_ms, id); }

bool parse_due_key(std::string_view key, std::int64_t& due_ms, std::string& id) {
  return parse_timed_key(due_prefix, key, due_ms, id);
}

std::string done_key(std::int64_t finished_ms, std::string_view id) { return timed_key(done_prefix, finished_ms, id); }

bool parse_done_key(std::string_view key, std::int64_t& finished_ms, std::string& id) {
  return parse_timed_key(done_prefix, key, finished_ms, id);
}

std::string tenant_key(std::string_view tenant) { return std::string(tenant_prefix) + std::string(tenant); }

std::string list_prefix(std::string_view tenant, job_status status) {
  std::string k = "list/";
  k.append(tenant);
  k.push_back('\0');
  k.push_back(static_cast<char>(status));
  return k;
}

std::string list_key(std::string_view tenant, job_status status, std::string_view id) {
  return list_prefix(tenant, status) + std::string(id);
}

std::string idem_key(std::string_view tenant, std::string_view key) {
  std::string k = "idem/";
  k.append(tenant);
  k.push_back('\0');
  k.append(key);
  return k;
}

std::string schedule_prefix(std::string_view tenant) {
  std::string k = "sched/";
  k.append(tenant);
  k.push_back('\0');
  return k;
}

std::string schedule_key(std::string_view tenant, std::string_view id) { return schedule_prefix(tenant) + std::string(id); }

std::string schedule_due_key(std::int64_t due_ms, std::string_view tenant, std::string_view id) {
  std::string rest(tenant);
  rest.push_back('\0');
  rest.append(id);
  return timed_key(schedule_due_prefix, due_ms, rest);
}

bool parse_schedule_due_key(std::string_view key, std::int64_t& due_ms, std::string& tenant, std::string& id) {
  std::string rest;
  if (!parse_timed_key(schedule_due_prefix, key, due_ms, rest)) return false;
  auto nul = rest.find('\0');
  if (nul == std::string::npos) return false;
  tenant = rest.substr(0, nul);
  id = rest.substr(nul + 1);
  return true;
}

std::string event_prefix(std::string_view tenant) {
  std::string k(event_prefix_all);
  k.append(tenant);
  k.push_back('\0');
  return k;
}

std::string event_key(std::string_view tenant, std::uint64_t seq) {
  std::string k = event_prefix(tenant);
  put_be64(k, seq);
  return k;
}

std::string event_job_prefix(std::string_view tenant, std::string_view job_id) {
  std::string k = "evj/";
  k.append(tenant);
  k.push_back('\0');
  k.append(job_id);
  return k;
}

std::string event_job_key(std::string_view tenant, std::string_view job_id, std::uint64_t seq) {
  std::string k = event_job_prefix(tenant, job_id);
  put_be64(k, seq);
  return k;
}

std::uint64_t key_seq(std::string_view key) { return key.size() < 8 ? 0 : get_be64(key.substr(key.size() - 8)); }

std::string topic_prefix(std::string_view tenant) {
  std::string k = "topic/";
  k.append(tenant);
  k.push_back('\0');
  return k;
}

std::string topic_key(std::string_view tenant, std::string_view name) { return topic_prefix(tenant) + std::string(name); }

namespace {
std::string tenant_name(std::string_view prefix, std::string_view tenant, std::string_view name) {
  std::string k(prefix);
  k.append(tenant);
  k.push_back('\0');
  k.append(name);
  return k;
}
}  // namespace

std::string queue_prefix(std::string_view tenant) { return tenant_name("queue/", tenant, ""); }
std::string queue_key(std::string_view tenant, std::string_view name) { return tenant_name("queue/", tenant, name); }
std::string queue_jobs_prefix(std::string_view tenant, std::string_view name) {
  std::string k = tenant_name("qjob/", tenant, name);
  k.push_back('\0');
  return k;
}
std::string queue_job_key(std::string_view tenant, std::string_view name, std::string_view id) {
  return queue_jobs_prefix(tenant, name) + std::string(id);
}
std::string queue_count_key(std::string_view tenant, std::string_view name) {
  return tenant_name(queue_count_prefix, tenant, name);
}

std::string tag_prefix(std::string_view tenant, tag_kind kind, std::string_view name) {
  std::string k = "tag/";
  k.append(tenant);
  k.push_back('\0');
  k.push_back(static_cast<char>(kind));
  k.append(name);
  k.push_back('\0');
  return k;
}

std::string tag_key(std::string_view tenant, tag_kind kind, std::string_view name, std::string_view id) {
  return tag_prefix(tenant, kind, name) + std::string(id);
}

std::string attempt_prefix(std::string_view id) { return "att/" + std::string(id); }

std::string attempt_key(std::string_view id, std::uint32_t n) {
  std::string k = attempt_prefix(id);
  put_be32(k, n);
  return k;
}

namespace {

template <class W>
void put_state(W& w, const job_state& s) {
  w.byte(version_1);
  w.string(s.id);
  w.string(s.tenant);
  w.byte(static_cast<std::uint8_t>(s.status));
  w.string(s.method);
  w.string(s.url);
  w.string(s.policy);
  w.varint(static_cast<std::uint64_t>(s.created_at_ms));
  w.varint(static_cast<std::uint64_t>(s.run_at_ms));
  w.varint(s.attempts);
  w.varint(s.max_attempts);
  w.varint(s.timeout_ms);
  w.varint(s.last_status_code);
  w.string(s.last_error);
  w.string(s.defer_reason);
  w.string(s.callback_url);
  w.string(s.failure_callback_url);
  w.string(s.parent_id);
  w.string(s.idempotency_key);
  w.varint(static_cast<std::uint64_t>(s.finished_at_ms));
  w.byte(static_cast<std::uint8_t>(s.response ? 1 : 0));
  if (s.response) {
    w.varint(s.response->status);
    put_headers(w, s.response->headers);
    w.string(s.response->body);
  }
  // Trailing sections, absent in most records and in older ones: where it came from, then its
  // QStash options (which need the section before them).
  // Written when any of its fields is set (fuzzing found a record with only an endpoint, or only a
  // queue stage, losing it on its next write).
  if (!s.schedule_id.empty() || s.fire_time_ms != 0 || !s.queue.empty() || !s.topic.empty() || !s.endpoint.empty() ||
      s.queue_stage != 0 || !s.qstash.empty()) {
    w.string(s.schedule_id);
    w.varint(static_cast<std::uint64_t>(s.fire_time_ms));
    w.string(s.queue);
    w.string(s.topic);
    w.string(s.endpoint);
    w.byte(static_cast<std::uint8_t>(s.queue_stage));
  }
  if (!s.qstash.empty()) w.string(s.qstash);
}

}  // namespace

std::string encode(const job_state& s) {
  return build([&](auto& w) { put_state(w, s); });
}

std::string encode_job_record(std::string_view spec, std::string_view attempt,
                              const std::vector<std::uint64_t>& event_seqs, const job_state& s) {
  return build([&](auto& w) {
    w.byte(record_version);
    w.string(spec);
    w.string(attempt);
    w.varint(event_seqs.size());
    std::uint64_t prev = 0;
    for (std::uint64_t seq : event_seqs) {
      w.varint(seq - prev);
      prev = seq;
    }
    put_state(w, s);
  });
}

result<job_record_view> split_job_record(std::string_view v) {
  job_record_view out;
  if (v.empty() || static_cast<std::uint8_t>(v[0]) != record_version) {  // format 1: a bare snapshot
    out.state = v;
    return out;
  }
  reader r(v.substr(1));
  out.spec = r.view();
  out.attempt = r.view();
  std::uint64_t n = r.varint();
  if (r.ok() && n > v.size()) return data_loss("job record lists more events than it has bytes");
  std::uint64_t seq = 0;
  for (std::uint64_t i = 0; r.ok() && i < n; ++i) {
    std::uint64_t d = r.varint();
    if (i > 0 && d == 0) return data_loss("job record lists an event twice");
    seq += d;
    out.event_seqs.push_back(seq);
  }
  if (!r.ok()) return r.error("job record");
  out.state = r.rest();
  return out;
}

result<job_state> decode_job_record_state(std::string_view v) {
  auto parts = split_job_record(v);
  if (!parts) return parts.error();
  return decode_job_state(parts->state);
}

std::uint32_t attempt_number(std::string_view encoded_attempt) {
  reader r(encoded_attempt);
  r.version("attempt record");
  auto n = static_cast<std::uint32_t>(r.varint());
  return r.ok() ? n : 0;
}

result<job_state> decode_job_state(std::string_view v) {
  reader r(v);
  job_state s;
  r.version("job snapshot");
  if (!r.ok()) return r.error("job snapshot");
  s.id = r.string();
  s.tenant = r.string();
  std::uint8_t st = r.byte();
  if (r.ok() && (st < 1 || st > 6)) return data_loss("job snapshot has unknown status " + std::to_string(st));
  s.status = static_cast<job_status>(st);
  s.method = r.string();
  s.url = r.string();
  s.policy = r.string();
  s.created_at_ms = static_cast<std::int64_t>(r.varint());
  s.run_at_ms = static_cast<std::int64_t>(r.varint());
  s.attempts = static_cast<std::uint32_t>(r.varint());
  s.max_attempts = static_cast<std::uint32_t>(r.varint());
  s.timeout_ms = static_cast<std::uint32_t>(r.varint());
  s.last_status_code = static_cast<std::uint16_t>(r.varint());
  s.last_error = r.string();
  s.defer_reason = r.string();
  s.callback_url = r.string();
  s.failure_callback_url = r.string();
  s.parent_id = r.string();
  s.idempotency_key = r.string();
  s.finished_at_ms = static_cast<std::int64_t>(r.varint());
  if (r.byte() == 1) {
    response_summary resp;
    resp.status = static_cast<std::uint16_t>(r.varint());
    resp.headers = r.headers();
    resp.body = r.string();
    s.response = std::move(resp);
  }
  if (r.ok() && !r.at_end()) {
    s.schedule_id = r.string();
    s.fire_time_ms = static_cast<std::int64_t>(r.varint());
    s.queue = r.string();
    s.topic = r.string();
    s.endpoint = r.string();
    s.queue_stage = r.byte();
    if (r.ok() && s.queue_stage > 3) return data_loss("job snapshot has unknown queue stage " + std::to_string(s.queue_stage));
  }
  if (r.ok() && !r.at_end()) s.qstash = r.string();
  if (!r.ok() || !r.at_end()) return r.error("job snapshot");
  return s;
}

result<job_position> decode_job_position(std::string_view v) {
  reader r(v);
  job_position p;
  r.version("job snapshot");
  r.skip_string();  // id
  r.skip_string();  // tenant
  std::uint8_t st = r.byte();
  if (r.ok() && (st < 1 || st > 6)) return data_loss("job snapshot has unknown status " + std::to_string(st));
  p.status = static_cast<job_status>(st);
  r.skip_string();  // method
  r.skip_string();  // url
  r.skip_string();  // policy
  r.varint();       // created_at_ms
  p.run_at_ms = static_cast<std::int64_t>(r.varint());
  if (!r.ok()) return r.error("job snapshot");
  return p;
}

std::string encode(const job_spec& s) {
  return build([&](auto& w) {
    w.byte(version_1);
    w.string(s.method);
    w.string(s.url);
    put_headers(w, s.headers);
    w.string(s.body);
  });
}

result<job_spec> decode_job_spec(std::string_view v) {
  reader r(v);
  job_spec s;
  r.version("job body");
  if (!r.ok()) return r.error("job body");
  s.method = r.string();
  s.url = r.string();
  s.headers = r.headers();
  s.body = r.string();
  if (!r.ok() || !r.at_end()) return r.error("job body");
  return s;
}

std::string encode(const attempt_record& a) {
  return build([&](auto& w) {
    w.byte(version_1);
    w.varint(a.n);
    w.varint(static_cast<std::uint64_t>(a.started_at_ms));
    w.varint(a.duration_ms);
    w.varint(a.status_code);
    w.string(a.error);
    // Trailing and optional, so older records (which end before them) still read.
    if (!a.response_excerpt.empty() || !a.node.empty()) w.string(a.response_excerpt);
    if (!a.node.empty()) w.string(a.node);
  });
}

result<attempt_record> decode_attempt(std::string_view v) {
  reader r(v);
  attempt_record a;
  r.version("attempt record");
  if (!r.ok()) return r.error("attempt record");
  a.n = static_cast<std::uint32_t>(r.varint());
  a.started_at_ms = static_cast<std::int64_t>(r.varint());
  a.duration_ms = static_cast<std::uint32_t>(r.varint());
  a.status_code = static_cast<std::uint16_t>(r.varint());
  a.error = r.string();
  if (r.ok() && !r.at_end()) a.response_excerpt = r.string();
  if (r.ok() && !r.at_end()) a.node = r.string();
  if (!r.ok() || !r.at_end()) return r.error("attempt record");
  return a;
}

std::string encode(const idem_record& i) {
  return build([&](auto& w) {
    w.byte(version_1);
    w.string(i.id);
    w.varint(static_cast<std::uint64_t>(i.expires_at_ms));
    if (!i.fingerprint.empty()) w.string(i.fingerprint);
  });
}

result<idem_record> decode_idem(std::string_view v) {
  reader r(v);
  idem_record i;
  r.version("idempotency record");
  if (!r.ok()) return r.error("idempotency record");
  i.id = r.string();
  i.expires_at_ms = static_cast<std::int64_t>(r.varint());
  if (r.ok() && !r.at_end()) i.fingerprint = r.string();
  if (!r.ok() || !r.at_end()) return r.error("idempotency record");
  return i;
}

std::string encode_count(std::int64_t n) {
  return build([&](auto& w) {
    w.byte(version_1);
    w.varint(static_cast<std::uint64_t>(n < 0 ? 0 : n));
  });
}

result<std::int64_t> decode_count(std::string_view v) {
  reader r(v);
  r.version("count");
  if (!r.ok()) return r.error("count");
  auto n = static_cast<std::int64_t>(r.varint());
  if (!r.ok() || !r.at_end()) return r.error("count");
  return n;
}

std::string encode(const status_counters& c) {
  return build([&](auto& w) {
    w.byte(version_1);
    w.varint(c.size());
    for (auto n : c) w.varint(static_cast<std::uint64_t>(n < 0 ? 0 : n));
  });
}

result<status_counters> decode_counters(std::string_view v) {
  reader r(v);
  status_counters c{};
  r.version("counters");
  if (!r.ok()) return r.error("counters");
  std::uint64_t n = r.varint();
  for (std::uint64_t i = 0; r.ok() && i < n; ++i) {
    std::uint64_t x = r.varint();
    if (x > static_cast<std::uint64_t>(INT64_MAX)) return r.error("counters");  // a count below zero: corrupt
    if (i < c.size()) c[i] = static_cast<std::int64_t>(x);
  }
  if (!r.ok() || !r.at_end()) return r.error("counters");
  return c;
}

std::string encode(const schedule_state& s) {
  return build([&](auto& w) {
    w.byte(version_1);
    w.string(s.id);
    w.string(s.tenant);
    w.string(s.cron);
    const schedule_request& r = s.request;
    w.string(r.spec.method);
    w.string(r.spec.url);
    put_headers(w, r.spec.headers);
    w.string(r.spec.body);
    w.string(r.policy);
    w.varint(r.max_attempts ? *r.max_attempts + 1ULL : 0);
    w.varint(r.timeout_ms ? *r.timeout_ms + 1ULL : 0);
    w.string(r.callback_url);
    w.string(r.failure_callback_url);
    w.string(r.queue);
    w.string(r.topic);
    w.byte(static_cast<std::uint8_t>(s.paused ? 1 : 0));
    w.varint(static_cast<std::uint64_t>(s.created_at_ms));
    w.varint(static_cast<std::uint64_t>(s.next_run_at_ms));
    w.varint(static_cast<std::uint64_t>(s.last_run_at_ms));
    w.string(s.last_job_id);
    if (!r.qstash.empty()) w.string(r.qstash);  // trailing: absent in v1 schedules and older records
  });
}

result<schedule_state> decode_schedule(std::string_view v) {
  reader r(v);
  schedule_state s;
  r.version("schedule");
  if (!r.ok()) return r.error("schedule");
  s.id = r.string();
  s.tenant = r.string();
  s.cron = r.string();
  schedule_request& q = s.request;
  q.spec.method = r.string();
  q.spec.url = r.string();
  q.spec.headers = r.headers();
  q.spec.body = r.string();
  q.policy = r.string();
  if (auto n = r.varint()) q.max_attempts = static_cast<std::uint32_t>(n - 1);
  if (auto n = r.varint()) q.timeout_ms = static_cast<std::uint32_t>(n - 1);
  q.callback_url = r.string();
  q.failure_callback_url = r.string();
  q.queue = r.string();
  q.topic = r.string();
  s.paused = r.byte() == 1;
  s.created_at_ms = static_cast<std::int64_t>(r.varint());
  s.next_run_at_ms = static_cast<std::int64_t>(r.varint());
  s.last_run_at_ms = static_cast<std::int64_t>(r.varint());
  s.last_job_id = r.string();
  if (r.ok() && !r.at_end()) q.qstash = r.string();
  if (!r.ok() || !r.at_end()) return r.error("schedule");
  return s;
}

std::string encode(const event_record& e) {
  return build([&](auto& w) {
    w.byte(version_1);
    w.varint(static_cast<std::uint64_t>(e.at_ms));
    w.byte(static_cast<std::uint8_t>(e.type));
    w.string(e.job_id);
    w.string(e.url);
    w.varint(e.attempt);
    w.varint(e.status_code);
    w.varint(e.duration_ms);
    w.varint(static_cast<std::uint64_t>(e.next_at_ms));
    w.string(e.detail);
  });
}

result<event_record> decode_event(std::string_view v, std::uint64_t seq) {
  reader r(v);
  event_record e;
  e.seq = seq;
  r.version("event");
  if (!r.ok()) return r.error("event");
  e.at_ms = static_cast<std::int64_t>(r.varint());
  std::uint8_t type = r.byte();
  if (!parse_event_type(to_string(static_cast<event_type>(type)))) return data_loss("event: unknown type " + std::to_string(type));
  e.type = static_cast<event_type>(type);
  e.job_id = r.string();
  e.url = r.string();
  e.attempt = static_cast<std::uint32_t>(r.varint());
  e.status_code = static_cast<std::uint16_t>(r.varint());
  e.duration_ms = static_cast<std::uint32_t>(r.varint());
  e.next_at_ms = static_cast<std::int64_t>(r.varint());
  e.detail = r.string();
  if (!r.ok() || !r.at_end()) return r.error("event");
  return e;
}

std::string encode(const topic_state& t) {
  return build([&](auto& w) {
    w.byte(version_1);
    w.string(t.tenant);
    w.string(t.name);
    w.varint(static_cast<std::uint64_t>(t.created_at_ms));
    w.varint(static_cast<std::uint64_t>(t.updated_at_ms));
    w.varint(t.endpoints.size());
    for (const auto& e : t.endpoints) {
      w.string(e.url);
      w.string(e.name);
    }
  });
}

result<topic_state> decode_topic(std::string_view v) {
  reader r(v);
  topic_state t;
  r.version("topic");
  if (!r.ok()) return r.error("topic");
  t.tenant = r.string();
  t.name = r.string();
  t.created_at_ms = static_cast<std::int64_t>(r.varint());
  t.updated_at_ms = static_cast<std::int64_t>(r.varint());
  std::uint64_t n = r.varint();
  for (std::uint64_t i = 0; r.ok() && i < n; ++i) {
    topic_endpoint e;
    e.url = r.string();
    e.name = r.string();
    t.endpoints.push_back(std::move(e));
  }
  if (!r.ok() || !r.at_end()) return r.error("topic");
  return t;
}

std::string encode(const queue_state& q) {
  return build([&](auto& w) {
    w.byte(version_1);
    w.string(q.tenant);
    w.string(q.name);
    w.varint(q.parallelism);
    w.byte(static_cast<std::uint8_t>(q.paused ? 1 : 0));
    w.varint(static_cast<std::uint64_t>(q.created_at_ms));
  });
}

result<queue_state> decode_queue(std::string_view v) {
  reader r(v);
  queue_state q;
  r.version("queue");
  if (!r.ok()) return r.error("queue");
  q.tenant = r.string();
  q.name = r.string();
  q.parallelism = static_cast<std::uint32_t>(r.varint());
  q.paused = r.byte() == 1;
  q.created_at_ms = static_cast<std::int64_t>(r.varint());
  if (!r.ok() || !r.at_end()) return r.error("queue");
  return q;
}

std::string encode(const queue_counts& c) {
  return build([&](auto& w) {
    w.byte(version_1);
    w.varint(static_cast<std::uint64_t>(c.waiting));
    w.varint(static_cast<std::uint64_t>(c.started));
  });
}

result<queue_counts> decode_queue_counts(std::string_view v) {
  reader r(v);
  queue_counts c;
  r.version("queue counts");
  c.waiting = static_cast<std::int64_t>(r.varint());
  c.started = static_cast<std::int64_t>(r.varint());
  if (!r.ok() || !r.at_end()) return r.error("queue counts");
  return c;
}

}  // namespace fetchrelay::persistence
