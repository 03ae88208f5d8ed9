#include "config/yaml_source.h"

#include <gtest/gtest.h>

#include <map>

namespace fetchrelay::config::yaml_source_test {
namespace {

env_lookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& n) -> std::optional<std::string> {
    auto it = vars.find(n);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
}

TEST(ExpandEnv, Forms) {
  auto env = env_of({{"A", "1"}, {"EMPTY", ""}});
  EXPECT_EQ(*expand_env("x${A}y", env), "x1y");
  EXPECT_EQ(*expand_env("${B:-two}", env), "two");
  EXPECT_EQ(*expand_env("${EMPTY:-d}", env), "d");
  EXPECT_EQ(*expand_env("${EMPTY}", env), "");
  EXPECT_EQ(*expand_env("${B:-}", env), "");
  EXPECT_EQ(*expand_env("cost: $5 and $$ and ${A}${A}", env), "cost: $5 and $ and 11");
  EXPECT_EQ(*expand_env("${B:-a:b-c}", env), "a:b-c");
}

TEST(ExpandEnv, Errors) {
  auto env = env_of({});
  EXPECT_EQ(expand_env("${A", env).error().message(),
            "unterminated \"${\" (write ${NAME} or ${NAME:-default})");
  EXPECT_EQ(expand_env("${}", env).error().message(),
            "invalid variable name in \"${}\": use letters, digits and _, not starting with a digit");
  EXPECT_EQ(expand_env("${A B}", env).error().message(),
            "unsupported form \"${A B}\" (write ${NAME} or ${NAME:-default})");
  EXPECT_EQ(expand_env("${A}", env).error().message(),
            "environment variable A is not set and has no default (write ${A:-default} to give one)");
}

TEST(ParseYaml, TypesPlainScalarsAndKeepsQuotedOnesAsStrings) {
  auto doc = parse_yaml("a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: 10s\ng: \"true\"\nh: -3\ni: 99999999999999999999\n",
                        "t.yaml", env_of({}));
  ASSERT_TRUE(doc.errors.empty());
  EXPECT_EQ(doc.value["a"], 1);
  EXPECT_EQ(doc.value["b"], "1");
  EXPECT_EQ(doc.value["c"], true);
  EXPECT_TRUE(doc.value["d"].is_null());
  EXPECT_DOUBLE_EQ(doc.value["e"].get<double>(), 1.5);
  EXPECT_EQ(doc.value["f"], "10s");
  EXPECT_EQ(doc.value["g"], "true");
  EXPECT_EQ(doc.value["h"], -3);
  EXPECT_EQ(doc.value["i"], "99999999999999999999");
}

TEST(ParseYaml, SyntaxErrorsNameTheLine) {
  auto doc = parse_yaml("a: [1, 2\nb: 3\n", "t.yaml", env_of({}));
  ASSERT_EQ(doc.errors.size(), 1u);
  EXPECT_EQ(doc.errors[0].path.rfind("t.yaml:", 0), 0u) << doc.errors[0].path;
  EXPECT_EQ(doc.errors[0].message.rfind("invalid YAML: ", 0), 0u);
}

// Found by fuzz_config: a stray byte passed through yaml-cpp into a string, and the first error
// message that quoted it threw from nlohmann::json's dump (the relay exited at start-up).
TEST(ParseYaml, TextThatIsNotUtf8IsRefusedAtItsLineAndColumn) {
  auto doc = parse_yaml("a: 1\nname: \"caf\xC3\xA9 \xFF\"\n", "t.yaml", env_of({}));
  ASSERT_EQ(doc.errors.size(), 1u);
  EXPECT_EQ(doc.errors[0].to_string(), "t.yaml:2:13: not valid UTF-8 (a config file must be UTF-8 text)");
  EXPECT_TRUE(doc.value.is_null());
  EXPECT_TRUE(parse_yaml("name: \"caf\xC3\xA9\"\n", "t.yaml", env_of({})).errors.empty());  // UTF-8 is fine
}

TEST(ExpandEnv, AVariableThatIsNotUtf8IsRefusedByName) {
  auto r = expand_env("${BAD}", env_of({{"BAD", "\xC0\xAF"}}));  // an overlong '/'
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().message(), "environment variable BAD is not valid UTF-8");
}

}  // namespace
}  // namespace fetchrelay::config::yaml_source_test
