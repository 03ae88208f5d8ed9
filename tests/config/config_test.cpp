#include "config/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>

#include "tests/config/broken_configs.h"

namespace fetchrelay::config::config_test {
namespace {

env_lookup fake_env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::vector<std::string> error_lines(const load_result& r) {
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.to_string());
  return out;
}

TEST(BrokenConfigs, EachGivesItsExactMessages) {
  auto cases = test::broken_configs();
  ASSERT_GE(cases.size(), 8u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    ASSERT_FALSE(c.expected.empty()) << "no '# expect:' line";
    auto r = load_config_file(c.path, fake_env({}));
    EXPECT_FALSE(r.config.has_value());
    EXPECT_EQ(error_lines(r), c.expected);
  }
}

TEST(ExampleConfig, LoadsWithEveryDefaultDocumented) {
  std::string path = std::string(FETCHRELAY_SOURCE_DIR) + "/examples/fetchrelay.yaml";
  auto r = load_config_file(path, fake_env({}));
  ASSERT_TRUE(r.errors.empty()) << error_lines(r)[0];
  const relay_config& c = *r.config;
  EXPECT_EQ(c.server.listen.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(c.storage.path, "./data");
  ASSERT_EQ(c.keys.size(), 1u);
  EXPECT_EQ(c.keys[0].key, "relay_sk_dev");  // from ${FETCHRELAY_API_KEY:-relay_sk_dev}
  EXPECT_TRUE(c.policies.count("default"));
}

TEST(ExampleConfig, EveryKeyOfTheSchemaIsDocumentedInTheExample) {
  // The example must mention every configurable key so it can serve as the reference.
  std::string path = std::string(FETCHRELAY_SOURCE_DIR) + "/examples/fetchrelay.yaml";
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> missing;
  std::function<void(const json&)> walk = [&](const json& schema) {
    for (const char* k : {"properties"}) {
      if (!schema.contains(k)) continue;
      for (auto it = schema[k].begin(); it != schema[k].end(); ++it) {
        if (text.find(it.key() + ":") == std::string::npos) missing.push_back(it.key());
        walk(it.value());
      }
    }
    if (schema.contains("items")) walk(schema["items"]);
    if (schema.contains("additionalProperties") && schema["additionalProperties"].is_object()) {
      walk(schema["additionalProperties"]);
    }
  };
  EXPECT_EQ(check_schema(relay_schema()), "");  // the relay's own schema obeys the rules plugins do
  walk(relay_schema());
  EXPECT_TRUE(missing.empty()) << "not in examples/fetchrelay.yaml: " << missing[0];
}

constexpr const char* design_example = R"yaml(
server:   {listen: 127.0.0.1:8080, io_threads: 1, worker_threads: 2, max_connections: 10000,
           header_timeout: 10s, idle_timeout: 60s, shutdown_grace: 10s}
storage:  {path: ./data, sync: true, retention: 7d}
auth:
  keys:
    - {tenant: default, key: "${FETCHRELAY_API_KEY:-relay_sk_dev}"}
limits:   {max_body: 1MiB, max_delay: 365d, max_retries: 100, idempotency_window: 24h,
           max_pending_per_tenant: 10000000, max_in_flight: 4096}
delivery: {connect_timeout: 5s, max_connections_per_origin: 64, hibernate_after: 30s, ca_file: null,
           allow_private_networks: false,
           allow_networks: [127.0.0.0/8, "::1/128"]}
plugins:
  search_path: [./build/plugins]
  load: [signing, rate_limit, circuit_breaker]
policies:
  default:
    timeout: 15s
    max_timeout: 10m
    retry: {attempts: 10, schedule: [5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h, 24h], jitter: 0.2}
    non_retryable: [410]
    pipeline:
      - rate_limit:      {rate: 100/s, burst: 100, max_in_flight: 64}
      - circuit_breaker: {consecutive_failures: 5, open_for: 30s, max_open_for: 5m}
  signed:
    retry: {attempts: 5, backoff: exponential, base: 1s, factor: 2, max: 1h, jitter: 0.2}
    pipeline:
      - signing: {scheme: standard-webhooks, secrets: ["${WEBHOOK_SECRET:-whsec_ZGV2LW9ubHktc2VjcmV0LWRvLW5vdC11c2U=}"]}
routes:
  - {match: {host: hooks.slack.com}, policy: signed}
)yaml";

TEST(DesignExample, LoadsIntoTypedValues) {
  auto r = load_config_text(design_example, "design.yaml", fake_env({{"FETCHRELAY_API_KEY", "k_live_1"}}));
  ASSERT_TRUE(r.errors.empty()) << error_lines(r)[0];
  const relay_config& c = *r.config;
  EXPECT_EQ(c.server.max_connections, 10000);
  EXPECT_EQ(c.server.header_timeout, millis(10'000));
  EXPECT_EQ(c.server.body_timeout, millis(60'000));  // default
  EXPECT_EQ(c.keys[0].key, "k_live_1");
  EXPECT_EQ(c.limits.max_body, 1u << 20);
  EXPECT_EQ(c.limits.max_delay, millis(365LL * 86'400'000));
  EXPECT_EQ(c.delivery.allow_networks.size(), 2u);
  EXPECT_FALSE(c.delivery.ca_file.has_value());
  EXPECT_EQ(c.plugins.load, (std::vector<std::string>{"signing", "rate_limit", "circuit_breaker"}));

  const policy_config& d = c.policies.at("default");
  EXPECT_FALSE(d.retry.exponential);
  EXPECT_EQ(d.retry.attempts, 10u);
  ASSERT_EQ(d.retry.schedule.size(), 9u);
  EXPECT_EQ(d.retry.schedule[3], millis(2 * 3'600'000));
  ASSERT_EQ(d.pipeline.size(), 2u);
  EXPECT_EQ(d.pipeline[0].name, "rate_limit");
  EXPECT_EQ(d.pipeline[0].config["rate"], "100/s");
  EXPECT_EQ(d.pipeline[1].config["consecutive_failures"], 5);

  const policy_config& s = c.policies.at("signed");
  EXPECT_TRUE(s.retry.exponential);
  EXPECT_EQ(s.retry.base, millis(1'000));
  EXPECT_DOUBLE_EQ(s.retry.factor, 2.0);
  EXPECT_EQ(s.retry.max, millis(3'600'000));
  EXPECT_EQ(s.timeout, millis(15'000));  // a named policy takes the built-in defaults
  EXPECT_EQ(s.pipeline[0].config["secrets"][0], "whsec_ZGV2LW9ubHktc2VjcmV0LWRvLW5vdC11c2U=");

  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_EQ(c.routes[0].policy, "signed");
}

TEST(Defaults, MinimalConfigGetsTheDocumentedDefaults) {
  auto r = load_config_text("storage: {path: /tmp/x}\nauth: {keys: [{tenant: t, key: k}]}\n", "min.yaml",
                            fake_env({}));
  ASSERT_TRUE(r.errors.empty()) << error_lines(r)[0];
  const relay_config& c = *r.config;
  EXPECT_EQ(c.server.listen.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(c.server.io_threads, 1);
  EXPECT_EQ(c.server.worker_threads, 1);
  EXPECT_EQ(c.server.shutdown_grace, millis(10'000));
  EXPECT_TRUE(c.storage.sync);
  EXPECT_EQ(c.storage.retention, millis(7LL * 86'400'000));
  EXPECT_EQ(c.limits.max_header_size, 32u << 10);
  EXPECT_EQ(c.delivery.max_connections_per_origin, 64);
  EXPECT_EQ(c.plugins.search_path, std::vector<std::string>{"./build/plugins"});
  const policy_config& d = c.policies.at("default");
  EXPECT_EQ(d.timeout, millis(15'000));
  EXPECT_EQ(d.retry.attempts, 10u);
  EXPECT_EQ(d.retry.schedule.size(), 9u);
  EXPECT_EQ(d.retry.non_retryable, std::vector<int>{410});
  EXPECT_EQ(d.retry, retry_policy{}) << "retry_policy's defaults are a policy's defaults in the config";
}

TEST(Storage, TheBackendTakesEitherAPathOrAPostgresDsnNeverBoth) {
  const std::string keys = "auth: {keys: [{tenant: t, key: k}]}\n";
  auto pg = load_config_text("storage: {backend: postgres, postgres: {dsn: '${DSN}', schema: relay_a}}\n" + keys,
                             "pg.yaml", fake_env({{"DSN", "host=/tmp/s dbname=f password=pw"}}));
  ASSERT_TRUE(pg.errors.empty()) << error_lines(pg)[0];
  EXPECT_EQ(pg.config->storage.backend, storage_config::kind::postgres);
  EXPECT_EQ(pg.config->storage.postgres_dsn, "host=/tmp/s dbname=f password=pw");
  EXPECT_EQ(pg.config->storage.postgres_schema, "relay_a");
  EXPECT_TRUE(pg.config->storage.path.empty());

  auto lv = load_config_text("storage: {path: /tmp/x}\n" + keys, "lv.yaml", fake_env({}));
  ASSERT_TRUE(lv.errors.empty());
  EXPECT_EQ(lv.config->storage.backend, storage_config::kind::leveldb) << "the default";

  auto both = load_config_text("storage: {backend: postgres, path: /tmp/x, postgres: {dsn: d}}\n" + keys, "b.yaml",
                               fake_env({}));
  EXPECT_EQ(error_lines(both), std::vector<std::string>{"storage.path: storage.path is for the leveldb backend; "
                                                        "with postgres the database holds everything (remove it)"});
  auto no_dsn = load_config_text("storage: {backend: postgres}\n" + keys, "n.yaml", fake_env({}));
  EXPECT_EQ(error_lines(no_dsn),
            std::vector<std::string>{"storage.postgres: backend postgres needs storage.postgres.dsn"});
  auto no_path = load_config_text("storage: {sync: true}\n" + keys, "p.yaml", fake_env({}));
  EXPECT_EQ(error_lines(no_path), std::vector<std::string>{"storage.path: the leveldb backend needs "
                                                           "storage.path (the store's directory)"});
  auto schema = load_config_text("storage: {backend: postgres, postgres: {dsn: d, schema: 'A-b'}}\n" + keys, "s.yaml",
                                 fake_env({}));
  ASSERT_EQ(schema.errors.size(), 1u);
  EXPECT_EQ(schema.errors[0].path, "storage.postgres.schema");
}

TEST(Queues, DeclaredQueuesAreTypedAndCheckedForNamesAndRepeats) {
  auto r = load_config_text("storage: {path: /tmp/x}\nauth: {keys: [{tenant: t, key: k}]}\n"
                            "queues: [{tenant: t, name: emails, parallelism: 4}, {tenant: u, name: emails}]\n",
                            "q.yaml", fake_env({}));
  ASSERT_TRUE(r.errors.empty()) << error_lines(r)[0];
  ASSERT_EQ(r.config->queues.size(), 2u);
  EXPECT_EQ(r.config->queues[0].parallelism, 4u);
  EXPECT_EQ(r.config->queues[1].tenant, "u");
  EXPECT_EQ(r.config->queues[1].parallelism, 1u) << "the default";
  auto bad = load_config_text("storage: {path: /tmp/x}\nauth: {keys: [{tenant: t, key: k}]}\n"
                              "queues: [{tenant: t, name: a b}, {tenant: t, name: q}, {tenant: t, name: q},\n"
                              "         {tenant: t, name: z, parallelism: 0}]\n",
                              "q.yaml", fake_env({}));
  auto lines = error_lines(bad);
  ASSERT_EQ(lines.size(), 3u) << (lines.empty() ? "" : lines[0]);
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  EXPECT_NE(all.find("queues[0].name"), std::string::npos) << all;
  EXPECT_NE(all.find("declared twice"), std::string::npos) << all;
  EXPECT_NE(all.find("queues[3].parallelism"), std::string::npos) << all;
}

TEST(Qstash, KeysAreTypedSecretAndCheckedAgainstTheTenants) {
  auto r = load_config_text("storage: {path: /tmp/x}\nauth: {keys: [{tenant: t, key: k}]}\n"
                            "qstash: {enabled: true, current_signing_key: \"${CUR}\", next_signing_key: sig_n,\n"
                            "         tenants: {t: {current_signing_key: sig_tc, next_signing_key: sig_tn}}}\n",
                            "q.yaml", fake_env({{"CUR", "sig_c"}}));
  ASSERT_TRUE(r.errors.empty()) << error_lines(r)[0];
  EXPECT_TRUE(r.config->qstash.enabled);
  ASSERT_TRUE(r.config->qstash.keys);
  EXPECT_EQ(r.config->qstash.keys->current, "sig_c");
  EXPECT_EQ(r.config->qstash.tenants.at("t").next, "sig_tn");
  auto off = load_config_text("storage: {path: /tmp/x}\nauth: {keys: [{tenant: t, key: k}]}\n", "q.yaml", fake_env({}));
  EXPECT_FALSE(off.config->qstash.enabled) << "off by default";
  auto bad = load_config_text("storage: {path: /tmp/x}\nauth: {keys: [{tenant: t, key: k}]}\n"
                              "qstash: {current_signing_key: sig_secret_value, tenants: {zeta: {current_signing_key: c, next_signing_key: n}}}\n",
                              "q.yaml", fake_env({}));
  auto lines = error_lines(bad);
  ASSERT_EQ(lines.size(), 2u) << (lines.empty() ? "" : lines[0]);
  std::string all = lines[0] + "\n" + lines[1];
  EXPECT_NE(all.find("go together"), std::string::npos) << all;
  EXPECT_NE(all.find("qstash.tenants.zeta"), std::string::npos) << all;
  EXPECT_EQ(all.find("sig_secret_value"), std::string::npos) << "no secret in an error";
}

TEST(EnvExpansion, PlainScalarsAreTypedAfterExpansion) {
  auto r = load_config_text(
      "server:\n  io_threads: ${IO:-3}\n  listen: 127.0.0.1:${PORT}\n"
      "storage:\n  path: $${HOME}/data\nauth: {keys: [{tenant: t, key: \"${KEY:-dev}\"}]}\n",
      "env.yaml", fake_env({{"PORT", "9090"}, {"KEY", ""}}));
  ASSERT_TRUE(r.errors.empty()) << error_lines(r)[0];
  EXPECT_EQ(r.config->server.io_threads, 3);
  EXPECT_EQ(r.config->server.listen.port, 9090);
  EXPECT_EQ(r.config->storage.path, "${HOME}/data");  // $$ escapes
  EXPECT_EQ(r.config->keys[0].key, "dev");            // empty takes the default, as in sh
}

TEST(Semantics, DuplicateKeysAreNamedWithoutEchoingTheSecret) {
  auto r = load_config_text(
      "storage: {path: /tmp/x}\nauth: {keys: [{tenant: a, key: s3cret}, {tenant: b, key: s3cret}]}\n",
      "dup.yaml", fake_env({}));
  ASSERT_EQ(error_lines(r), std::vector<std::string>{"auth.keys[1].key: the same key is already given at auth.keys[0]"});
}

TEST(Semantics, RetryAttemptsAreBoundByMaxRetries) {
  auto r = load_config_text(
      "storage: {path: /tmp/x}\nauth: {keys: [{tenant: a, key: k}]}\nlimits: {max_retries: 3}\n"
      "policies: {default: {retry: {attempts: 5}}}\n",
      "a.yaml", fake_env({}));
  EXPECT_EQ(error_lines(r), std::vector<std::string>{
                                "policies.default.retry.attempts: 5 exceeds limits.max_retries + 1 (4)"});
}

TEST(Semantics, ExponentialKeysNeedBackoff) {
  auto r = load_config_text(
      "storage: {path: /tmp/x}\nauth: {keys: [{tenant: a, key: k}]}\n"
      "policies: {p: {retry: {factor: 3}}}\nroutes: [{match: {host: 'a*.x'}, policy: p}]\n",
      "a.yaml", fake_env({}));
  EXPECT_EQ(error_lines(r), (std::vector<std::string>{
                                "policies.p.retry.factor: only used with backoff: exponential",
                                "routes[0].match.host: a wildcard is allowed only as a leading \"*.\""}));
}

}  // namespace
}  // namespace fetchrelay::config::config_test
