// SQL on a connection of the test's own (never the store's), for tests that link libpq.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <string>

namespace fetchrelay::test {

/// Runs `text` (one or more statements); returns the first value of the last one's result ("" if
/// none). A failure is a test failure naming the statement.
inline std::string run_sql(const std::string& dsn, const std::string& text) {
  PGconn* c = PQconnectdb(dsn.c_str());
  EXPECT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
  PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
  PGresult* r = PQexec(c, text.c_str());
  auto st = PQresultStatus(r);
  EXPECT_TRUE(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) << text << ": " << PQresultErrorMessage(r);
  std::string out = st == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
  PQclear(r);
  PQfinish(c);
  return out;
}

}  // namespace fetchrelay::test
