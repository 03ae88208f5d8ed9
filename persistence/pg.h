// A thin layer over libpq for the PostgreSQL store. Internal to persistence/: no libpq type
// leaves this folder.
//
// Every statement is prepared once per connection and sent with binary parameters and binary
// results, so values are bytes, never quoted text: a job id, a tenant or a request body goes in
// and comes back byte for byte. Arrays (for multi-row statements through unnest) use the binary
// array format of PostgreSQL's array_recv.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"

struct pg_conn;    // libpq's PGconn
struct pg_result;  // libpq's PGresult

namespace fetchrelay::persistence::pg {

/// PostgreSQL type ids of the values we send (pg_type.dat).
enum class oid : std::uint32_t { boolean = 16, bytea = 17, int8 = 20, int2 = 21, int4 = 23, text = 25 };

/// One array parameter, built element by element.
class array {
 public:
  explicit array(oid element) : element_(element) {}
  void add(std::string_view bytes);  // text or bytea
  void add(std::int64_t v);          // int8
  void add_int4(std::int32_t v);
  void add_int2(std::int16_t v);
  void add_null();
  std::size_t size() const { return count_; }
  /// The binary array value (array_recv's format).
  std::string bytes() const;

 private:
  oid element_;
  std::size_t count_ = 0;
  bool has_null_ = false;
  std::string items_;
};

/// The parameters of one statement, all in binary format.
class params {
 public:
  params& text(std::string_view v) { return add(std::string(v)); }
  params& bytea(std::string_view v) { return add(std::string(v)); }
  params& int8(std::int64_t v);
  params& int4(std::int32_t v);
  params& int2(std::int16_t v);
  params& null();
  params& arr(const array& a) { return add(a.bytes()); }
  std::size_t size() const { return values_.size(); }

 private:
  friend class connection;
  params& add(std::string v);
  std::vector<std::string> values_;
  std::vector<bool> nulls_;
};

/// A statement's rows; values are read in binary format.
class rows {
 public:
  rows() = default;
  explicit rows(pg_result* r);
  rows(rows&&) noexcept;
  rows& operator=(rows&&) noexcept;
  ~rows();
  int count() const;
  bool is_null(int row, int col) const;
  std::string_view bytes(int row, int col) const;  // text or bytea
  std::string str(int row, int col) const { return std::string(bytes(row, col)); }
  std::int64_t int8(int row, int col) const;
  std::int32_t int4(int row, int col) const;
  std::int16_t int2(int row, int col) const;
  bool boolean(int row, int col) const;

 private:
  pg_result* r_ = nullptr;
};

/// One connection. Not thread-safe: one store actor uses it.
class connection {
 public:
  /// Connects with a libpq connection string (URI or key=value). The message of a failure
  /// names the server but never the password.
  static result<std::unique_ptr<connection>> open(const std::string& dsn);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Runs a statement (prepared on first use) and returns its rows. SQL errors and a lost
  /// connection come back as unavailable, with PostgreSQL's own message and SQLSTATE.
  result<rows> exec(const std::string& sql, const params& p = {});
  /// Runs a statement planned for these very parameters, every time (not prepared): for a
  /// look-up by `= ANY($1)` of a table that grows, whose generic plan, made while the table
  /// was small, would scan all of it for the connection's life.
  result<rows> exec_planned(const std::string& sql, const params& p);
  /// Pipeline (libpq's pipeline mode): statements exec() and exec_planned() send between
  /// begin_pipeline() and end_pipeline() go out without waiting for each answer, and answer
  /// empty rows at once; end_pipeline() reads every answer and returns the first failure (the
  /// statements after a failed one are skipped by the server). For writes whose rows are not
  /// read: one round trip for all of them.
  status begin_pipeline();
  status end_pipeline();
  /// Runs statements without parameters (schema, transaction control), in text form.
  status run(const std::string& sql);
  /// SQLSTATE of the last failed statement ("" if none), e.g. "40001".
  const std::string& last_sqlstate() const { return sqlstate_; }
  /// "database fetchrelay on /tmp/x:5432" (no password).
  const std::string& describe() const { return describe_; }
  bool broken() const;

 private:
  explicit connection(pg_conn* c);
  status failed(pg_result* r, const std::string& what);
  result<rows> send(const std::string* prepared, const std::string& sql, const params& p);
  pg_conn* c_;
  bool pipelining_ = false;
  std::unordered_map<std::string, std::string> prepared_;  // sql -> statement name
  std::string sqlstate_;
  std::string describe_;
};

/// A transaction: BEGIN now, ROLLBACK at destruction unless committed.
class transaction {
 public:
  explicit transaction(connection& c) : c_(c) {}
  status begin() {
    auto s = c_.run("BEGIN");
    open_ = s.is_ok();
    return s;
  }
  status commit() {
    open_ = false;
    return c_.run("COMMIT");
  }
  ~transaction() {
    if (open_ && !c_.broken()) (void)c_.run("ROLLBACK");
  }

 private:
  connection& c_;
  bool open_ = false;
};

}  // namespace fetchrelay::persistence::pg
