// The throwaway PostgreSQL of the test run (ctest's fixture `postgres` starts it with
// scripts/pg-up.sh in FETCHRELAY_TEST_PG_DIR), or the one FETCHRELAY_TEST_PG_DSN names.
#pragma once

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

namespace fetchrelay::test {

/// The DSN, or nullopt when no PostgreSQL is running for the tests (the fixture found no server
/// installed: the tests skip, saying so).
inline std::optional<std::string> test_postgres_dsn() {
  if (const char* e = std::getenv("FETCHRELAY_TEST_PG_DSN"); e && *e) return std::string(e);
  std::ifstream f(std::string(FETCHRELAY_TEST_PG_DIR) + "/dsn");
  std::string line;
  if (std::getline(f, line) && !line.empty()) return line;
  return std::nullopt;
}

inline const char* no_postgres_message() {
  return "no PostgreSQL for the tests: the ctest fixture runs scripts/pg-up.sh " FETCHRELAY_TEST_PG_DIR
         " (it needs postgresql-15: scripts/install-deps.sh), or set FETCHRELAY_TEST_PG_DSN";
}

/// A schema name of its own for a test's folder, so tests never see each other's tables.
inline std::string schema_for(const std::string& dir) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : dir) h = (h ^ c) * 1099511628211ULL;
  char buf[24];
  std::snprintf(buf, sizeof buf, "t_%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace fetchrelay::test
