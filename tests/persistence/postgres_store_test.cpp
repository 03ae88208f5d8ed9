// What only the PostgreSQL store has: its connection string, its schema and migrations, and a
// lost connection. The behaviour every store shares is in store_conformance_test.cpp, run on
// both backends.
#include <gtest/gtest.h>


#include "persistence/store.h"
#include "tests/support/pg_sql.h"
#include "tests/support/postgres.h"

namespace fetchrelay::persistence::postgres_store_test {
namespace {

class PostgresStore : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dsn = test::test_postgres_dsn();
    if (!dsn) GTEST_SKIP() << test::no_postgres_message();
    dsn_ = *dsn;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    schema_ = test::schema_for(std::string("pg-") + info->name());
    sql("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
  }

  postgres_options options() const { return {dsn_, true, schema_}; }

  /// Runs SQL on a connection of the test's own (not the store's); returns the first value.
  std::string sql(const std::string& text) { return test::run_sql(dsn_, text); }

  static job_state job(const std::string& id, job_status st) {
    job_state s;
    s.id = id;
    s.tenant = "acme";
    s.url = "http://example.com/";
    s.status = st;
    s.run_at_ms = 5'000;
    s.finished_at_ms = is_terminal(st) ? 6'000 : 0;
    return s;
  }

  static commit_batch new_job(const std::string& id) {
    commit_batch b;
    b.jobs.push_back({job(id, job_status::scheduled), job_spec{"POST", "http://example.com/", {}, "body"}, std::nullopt});
    return b;
  }

  std::string dsn_;
  std::string schema_;
};

TEST_F(PostgresStore, MigratesOnceAndRefusesASchemaNewerThanItReads) {
  auto first = migrate_postgres(options());
  ASSERT_TRUE(first.is_ok()) << first.error().message();
  EXPECT_EQ(*first, 0) << "the tables were created now";
  auto second = migrate_postgres(options());
  ASSERT_TRUE(second.is_ok());
  EXPECT_EQ(*second, postgres_schema_version) << "nothing to do the second time";
  EXPECT_EQ(sql("SELECT count(*) FROM " + schema_ + ".fr_shards"), std::to_string(postgres_shards));
  // Tables of version 1 (before the shared rate-limit buckets, with the due table fr_due), holding
  // an unfinished job, are brought to the current one; the job is still due.
  {
    auto opened = open_postgres_store(options());
    ASSERT_TRUE(opened.is_ok()) << opened.error().message();
    commit_batch a = new_job("job_a");
    ASSERT_TRUE(opened.value()->commit(std::span<const commit_batch>(&a, 1)).is_ok());
  }
  const std::string& t = schema_;
  sql("DROP TABLE " + t + ".fr_buckets; ALTER TABLE " + t + ".fr_idempotency DROP COLUMN job_id, DROP COLUMN expires_ms; " +
      "CREATE TABLE " + t + ".fr_due (id bytea PRIMARY KEY, shard integer NOT NULL, due_ms bigint NOT NULL); " +
      "INSERT INTO " + t + ".fr_due SELECT id, shard, due_ms FROM " + t + ".fr_jobs WHERE due_ms IS NOT NULL; " +
      "ALTER TABLE " + t + ".fr_jobs DROP COLUMN due_ms; DROP INDEX " + t + ".fr_events_at; " +
      "CREATE INDEX fr_events_at ON " + t + ".fr_events (at_ms); DROP INDEX " + t + ".fr_jobs_finished; " +
      "CREATE INDEX fr_jobs_finished ON " + t + ".fr_jobs (finished_at_ms) WHERE status >= 4; " +
      "CREATE INDEX fr_jobs_by_tenant ON " + t + ".fr_jobs (tenant, id); " +
      "UPDATE " + t + ".fr_meta SET value = 1 WHERE key = 'schema_version'");
  ASSERT_EQ(sql("SELECT count(*) FROM " + t + ".fr_due"), "1");
  auto from_v1 = migrate_postgres(options());
  ASSERT_TRUE(from_v1.is_ok()) << from_v1.error().message();
  EXPECT_EQ(*from_v1, 1);
  EXPECT_EQ(sql("SELECT count(*) FROM " + t + ".fr_buckets"), "0");
  EXPECT_EQ(sql("SELECT count(*) FROM pg_tables WHERE schemaname = '" + t + "' AND tablename = 'fr_due'"), "0");
  EXPECT_EQ(sql("SELECT value FROM " + t + ".fr_meta WHERE key = 'schema_version'"),
            std::to_string(postgres_schema_version));
  {
    auto opened = open_postgres_store(options());
    ASSERT_TRUE(opened.is_ok()) << opened.error().message();
    auto due = opened.value()->scan_due(std::nullopt, 10'000, 10);
    ASSERT_TRUE(due.is_ok());
    ASSERT_EQ(due->size(), 1u) << "the job kept its due time";
    EXPECT_EQ((*due)[0].id, "job_a");
    EXPECT_EQ((*due)[0].due_ms, 5'000);
  }

  sql("UPDATE " + schema_ + ".fr_meta SET value = 99 WHERE key = 'schema_version'");
  auto newer = open_postgres_store(options());
  ASSERT_FALSE(newer.is_ok());
  EXPECT_EQ(newer.error().code(), status_code::failed_precondition);
  EXPECT_NE(newer.error().message().find("schema version 99"), std::string::npos) << newer.error().message();
}

TEST_F(PostgresStore, ABadConnectionStringOrAnUnreachableServerIsRefusedWithoutThePassword) {
  auto bad = open_postgres_store({"this is = not valid", true, schema_});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.error().code(), status_code::invalid_argument);

  auto down = open_postgres_store({"host=/nonexistent port=5432 user=u password=hunter2 dbname=x", true, schema_});
  ASSERT_FALSE(down.is_ok());
  EXPECT_EQ(down.error().code(), status_code::unavailable);
  EXPECT_NE(down.error().message().find("cannot connect to PostgreSQL"), std::string::npos);
  EXPECT_EQ(down.error().message().find("hunter2"), std::string::npos) << down.error().message();
  EXPECT_EQ(down.error().message().find('\n'), std::string::npos) << "one log line";

  auto schema = open_postgres_store({dsn_, true, "Robert'); DROP TABLE x;--"});
  ASSERT_FALSE(schema.is_ok());
  EXPECT_EQ(schema.error().code(), status_code::invalid_argument);
}

TEST_F(PostgresStore, AFailedCommitWritesNothingAndALostConnectionIsMadeAgain) {
  // Named, so that only this store's session is ended (tests run in parallel processes).
  postgres_options o = options();
  o.dsn += " application_name=" + schema_;
  auto opened = open_postgres_store(o);
  ASSERT_TRUE(opened.is_ok()) << opened.error().message();
  auto& store = *opened.value();
  commit_batch a = new_job("job_a");
  ASSERT_TRUE(store.commit(std::span<const commit_batch>(&a, 1)).is_ok());

  // The server ends the store's session between two commits (a database restart): the next
  // commit connects again instead of failing.
  EXPECT_EQ(sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '" + schema_ + "'"),
            "1");
  commit_batch b = new_job("job_b");
  ASSERT_TRUE(store.commit(std::span<const commit_batch>(&b, 1)).is_ok());

  // A statement fails half way through a commit (the events insert, after the jobs'): nothing
  // of it lands, and the store is unavailable until reopened.
  sql("CREATE FUNCTION " + schema_ + ".refuse() RETURNS trigger LANGUAGE plpgsql AS "
      "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$");
  sql("CREATE TRIGGER refuse BEFORE INSERT ON " + schema_ + ".fr_events FOR EACH ROW EXECUTE FUNCTION " + schema_ +
      ".refuse()");
  commit_batch c = new_job("job_c");
  status failed = store.commit(std::span<const commit_batch>(&c, 1));
  ASSERT_FALSE(failed.is_ok());
  EXPECT_EQ(failed.code(), status_code::unavailable);
  EXPECT_NE(failed.message().find("refused by the test"), std::string::npos) << failed.message();
  EXPECT_FALSE(store.health().is_ok()) << "answers 503 until reopened";
  EXPECT_FALSE(store.commit(std::span<const commit_batch>(&c, 1)).is_ok()) << "no write while unhealthy";
  EXPECT_EQ(sql("SELECT count(*) FROM " + schema_ + ".fr_jobs WHERE id = 'job_c'"), "0") << "the job row rolled back";

  sql("DROP TRIGGER refuse ON " + schema_ + ".fr_events");
  ASSERT_TRUE(store.reopen().is_ok());
  EXPECT_TRUE(store.health().is_ok());
  EXPECT_TRUE(store.get_job("job_a")->has_value());
  EXPECT_FALSE(store.get_job("job_c")->has_value());
  EXPECT_EQ(store.counters()[static_cast<std::size_t>(job_status::scheduled)], 2) << "counts as committed";
  ASSERT_TRUE(store.commit(std::span<const commit_batch>(&c, 1)).is_ok());
  EXPECT_EQ(store.counters()[static_cast<std::size_t>(job_status::scheduled)], 3);
}

TEST_F(PostgresStore, NamesAndBodiesAreStoredByteForByte) {
  auto opened = open_postgres_store(options());
  ASSERT_TRUE(opened.is_ok()) << opened.error().message();
  auto& store = *opened.value();
  std::string odd("t\0\xff\xfe-\x01", 6);  // not UTF-8, with a NUL: bytea keeps it
  commit_batch b = new_job("job_odd");
  b.jobs[0].state.tenant = odd;
  b.jobs[0].spec->body = std::string("\0\x80\xc3(", 4);
  b.idempotency.push_back({odd, std::string("k\0\xff", 3), idem_record{"job_odd", 9'000, "fp"}});
  ASSERT_TRUE(store.commit(std::span<const commit_batch>(&b, 1)).is_ok());
  auto j = store.get_job("job_odd");
  ASSERT_TRUE(j.is_ok() && j->has_value());
  EXPECT_EQ((*j)->tenant, odd);
  EXPECT_EQ((*store.get_spec("job_odd"))->body, std::string("\0\x80\xc3(", 4));
  auto idem = store.get_idem(odd, std::string("k\0\xff", 3));
  ASSERT_TRUE(idem.is_ok() && idem->has_value());
  EXPECT_EQ((*idem)->id, "job_odd");
  EXPECT_EQ(store.pending_by_tenant().at(odd), 1);
  auto page = store.list_jobs(odd, std::nullopt, "", 10);
  ASSERT_TRUE(page.is_ok());
  ASSERT_EQ(page->jobs.size(), 1u);
}

}  // namespace
}  // namespace fetchrelay::persistence::postgres_store_test
