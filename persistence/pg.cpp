#include "persistence/pg.h"

#include <libpq-fe.h>

#include <cstring>

namespace fetchrelay::persistence::pg {
namespace {

void put_be32(std::string& out, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
}

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
}

std::uint64_t get_be(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string be(std::uint64_t v, int bytes) {
  std::string s;
  put_be(s, v, bytes);
  return s;
}

/// libpq's messages span lines ("...failed: ...\n\tIs the server running...?\n"); a log line
/// holds one: line breaks become "; ", tabs go.
std::string trimmed(const char* m) {
  std::string in = m ? m : "", s;
  for (char c : in) {
    if (c == '\n') s += "; ";
    else if (c != '\t') s += c;
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == ';')) s.pop_back();
  return s;
}

}  // namespace

void array::add(std::string_view bytes) {
  put_be32(items_, static_cast<std::uint32_t>(bytes.size()));
  items_.append(bytes);
  ++count_;
}

void array::add(std::int64_t v) {
  put_be32(items_, 8);
  put_be(items_, static_cast<std::uint64_t>(v), 8);
  ++count_;
}

void array::add_int4(std::int32_t v) {
  put_be32(items_, 4);
  put_be(items_, static_cast<std::uint32_t>(v), 4);
  ++count_;
}

void array::add_int2(std::int16_t v) {
  put_be32(items_, 2);
  put_be(items_, static_cast<std::uint16_t>(v), 2);
  ++count_;
}

void array::add_null() {
  put_be32(items_, 0xffffffffu);  // length -1
  has_null_ = true;
  ++count_;
}

std::string array::bytes() const {
  // ndim, has-null flag, element type, then per dimension: size and lower bound; then the items.
  std::string out;
  if (count_ == 0) {  // an empty array has no dimension
    put_be32(out, 0);
    put_be32(out, 0);
    put_be32(out, static_cast<std::uint32_t>(element_));
    return out;
  }
  put_be32(out, 1);
  put_be32(out, has_null_ ? 1 : 0);
  put_be32(out, static_cast<std::uint32_t>(element_));
  put_be32(out, static_cast<std::uint32_t>(count_));
  put_be32(out, 1);
  out += items_;
  return out;
}

params& params::add(std::string v) {
  values_.push_back(std::move(v));
  nulls_.push_back(false);
  return *this;
}

params& params::int8(std::int64_t v) { return add(be(static_cast<std::uint64_t>(v), 8)); }
params& params::int4(std::int32_t v) { return add(be(static_cast<std::uint32_t>(v), 4)); }
params& params::int2(std::int16_t v) { return add(be(static_cast<std::uint16_t>(v), 2)); }

params& params::null() {
  values_.emplace_back();
  nulls_.push_back(true);
  return *this;
}

rows::rows(pg_result* r) : r_(r) {}
rows::rows(rows&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
rows& rows::operator=(rows&& o) noexcept {
  if (this != &o) {
    if (r_) PQclear(r_);
    r_ = o.r_;
    o.r_ = nullptr;
  }
  return *this;
}
rows::~rows() {
  if (r_) PQclear(r_);
}
int rows::count() const { return r_ ? PQntuples(r_) : 0; }
bool rows::is_null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
std::string_view rows::bytes(int row, int col) const {
  return {PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col))};
}
std::int64_t rows::int8(int row, int col) const {
  if (is_null(row, col)) return 0;
  return static_cast<std::int64_t>(get_be(PQgetvalue(r_, row, col), 8));
}
std::int32_t rows::int4(int row, int col) const {
  if (is_null(row, col)) return 0;
  return static_cast<std::int32_t>(get_be(PQgetvalue(r_, row, col), 4));
}
std::int16_t rows::int2(int row, int col) const {
  if (is_null(row, col)) return 0;
  return static_cast<std::int16_t>(get_be(PQgetvalue(r_, row, col), 2));
}
bool rows::boolean(int row, int col) const { return !is_null(row, col) && PQgetvalue(r_, row, col)[0] != 0; }

connection::connection(pg_conn* c) : c_(c) {
  const char* host = PQhost(c_);
  describe_ = std::string("database ") + PQdb(c_) + " on " + (host ? host : "?") + ":" + PQport(c_);
}

connection::~connection() { PQfinish(c_); }

result<std::unique_ptr<connection>> connection::open(const std::string& dsn) {
  // Parse first: a malformed string is the user's mistake, not an unreachable server.
  char* err = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(dsn.c_str(), &err);
  if (!parsed) {
    std::string why = err ? trimmed(err) : "out of memory";
    PQfreemem(err);
    return invalid_argument("storage.postgres.dsn is not a libpq connection string: " + why);
  }
  PQconninfoFree(parsed);
  // A server that does not answer must not hold the store actor for TCP's own timeout: 5 s
  // unless the DSN says otherwise (its own connect_timeout comes later and wins).
  const char* keys[] = {"connect_timeout", "dbname", nullptr};
  const char* values[] = {"5", dsn.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, 1);
  if (!c) return unavailable("cannot connect to PostgreSQL: out of memory");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string why = trimmed(PQerrorMessage(c));
    PQfinish(c);
    return unavailable("cannot connect to PostgreSQL: " + why);
  }
  auto conn = std::unique_ptr<connection>(new connection(c));
  // Our statements print nothing to the server log at notice level; keep libpq's default
  // notice processor from writing to stderr.
  PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
  return conn;
}

bool connection::broken() const { return PQstatus(c_) != CONNECTION_OK; }

status connection::failed(pg_result* r, const std::string& what) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  sqlstate_ = state ? state : "";
  std::string why = trimmed(r ? PQresultErrorMessage(r) : nullptr);
  if (why.empty()) why = trimmed(PQerrorMessage(c_));
  if (r) PQclear(r);
  return unavailable("PostgreSQL " + what + " failed" + (sqlstate_.empty() ? "" : " (SQLSTATE " + sqlstate_ + ")") +
                     ": " + why);
}

result<rows> connection::exec(const std::string& sql, const params& p) {
  sqlstate_.clear();
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = "s" + std::to_string(prepared_.size() + 1);
    if (pipelining_) {  // its answer is read with the others'
      if (PQsendPrepare(c_, name.c_str(), sql.c_str(), 0, nullptr) != 1) return failed(nullptr, "prepare");
    } else {
      PGresult* r = PQprepare(c_, name.c_str(), sql.c_str(), 0, nullptr);
      if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) return failed(r, "prepare");
      PQclear(r);
    }
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  return send(&it->second, sql, p);
}

status connection::begin_pipeline() {
  if (PQenterPipelineMode(c_) != 1) return failed(nullptr, "pipeline");
  pipelining_ = true;
  return status::ok();
}

status connection::end_pipeline() {
  pipelining_ = false;
  status first = status::ok();
  if (PQpipelineSync(c_) != 1) first = failed(nullptr, "pipeline");
  // Each statement's results end with a null, and the sync's own result ends the pipeline. A
  // lost connection (or a sync never sent) answers nulls only: bounded.
  int nulls = 0;
  for (;;) {
    PGresult* r = PQgetResult(c_);
    if (!r) {
      if (broken() || !first.is_ok() || ++nulls > 10'000) {
        if (first.is_ok()) first = failed(nullptr, "pipeline");
        break;
      }
      continue;
    }
    auto st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_SYNC) {
      PQclear(r);
      break;
    }
    if (st == PGRES_FATAL_ERROR && first.is_ok()) {
      first = failed(r, "statement");  // clears r
      continue;
    }
    PQclear(r);
  }
  if (PQexitPipelineMode(c_) != 1 && first.is_ok()) first = failed(nullptr, "pipeline");
  return first;
}

result<rows> connection::exec_planned(const std::string& sql, const params& p) {
  sqlstate_.clear();
  return send(nullptr, sql, p);
}

result<rows> connection::send(const std::string* prepared, const std::string& sql, const params& p) {
  std::vector<const char*> values(p.values_.size());
  std::vector<int> lengths(p.values_.size()), formats(p.values_.size(), 1);
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = p.nulls_[i] ? nullptr : p.values_[i].data();
    lengths[i] = static_cast<int>(p.values_[i].size());
  }
  if (pipelining_) {
    int sent = prepared ? PQsendQueryPrepared(c_, prepared->c_str(), static_cast<int>(values.size()), values.data(),
                                              lengths.data(), formats.data(), 1)
                        : PQsendQueryParams(c_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                                            lengths.data(), formats.data(), 1);
    if (sent != 1) return failed(nullptr, "statement");
    return rows();
  }
  // The unnamed statement (PQexecParams) is planned with the parameters' values, each time.
  PGresult* r = prepared ? PQexecPrepared(c_, prepared->c_str(), static_cast<int>(values.size()), values.data(),
                                          lengths.data(), formats.data(), 1)
                         : PQexecParams(c_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                                        lengths.data(), formats.data(), 1);
  if (!r) return failed(nullptr, "statement");
  auto st = PQresultStatus(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) return failed(r, "statement");
  return rows(r);
}

status connection::run(const std::string& sql) {
  sqlstate_.clear();
  PGresult* r = PQexec(c_, sql.c_str());
  if (!r) return failed(nullptr, "statement");
  auto st = PQresultStatus(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) return failed(r, "statement");
  PQclear(r);
  return status::ok();
}

}  // namespace fetchrelay::persistence::pg
