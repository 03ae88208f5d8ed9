#include "config/schema.h"

#include <gtest/gtest.h>

namespace fetchrelay::config::schema_test {
namespace {

std::vector<std::string> check(const char* schema, const json& value) {
  std::vector<config_error> errors;
  validate(json::parse(schema), value, "x", errors);
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.to_string());
  return out;
}

using lines = std::vector<std::string>;

// Found by fuzz_schema: a plugin schema whose keywords had the wrong kind ("properties": [1],
// "type": 5) made validate() throw from nlohmann::json. The host now checks a plugin's schema
// when it loads the plugin, and validate() only ever sees schemas that pass.
TEST(CheckSchema, RefusesKeywordsOfTheWrongKindAndNamesWhere) {
  EXPECT_EQ(check_schema(json::parse(R"({"type":"object","properties":{"a":{"type":"integer","minimum":1}},"required":["a"]})")), "");
  EXPECT_EQ(check_schema(json::parse(R"({"type":["string","null"],"format":"duration","secret":true,"default":"1s"})")), "");
  EXPECT_EQ(check_schema(json::parse(R"({"additionalProperties":{"type":"number"},"description":"d"})")), "");
  EXPECT_EQ(check_schema(json::parse("[1]")), "the schema must be a JSON object");
  EXPECT_EQ(check_schema(json::parse(R"({"type":5})")),
            "type must be one of object, array, string, integer, number, boolean, null, or a list of them");
  EXPECT_EQ(check_schema(json::parse(R"({"type":["string","text"]})")),
            "type must be one of object, array, string, integer, number, boolean, null, or a list of them");
  EXPECT_EQ(check_schema(json::parse(R"({"properties":[1]})")), "properties must be a mapping of schemas");
  EXPECT_EQ(check_schema(json::parse(R"({"properties":{"a":{"items":3}}})")), "properties.a.items must be a JSON object");
  EXPECT_EQ(check_schema(json::parse(R"({"properties":{"a":{"additionalProperties":{"minimum":"1"}}}})")),
            "properties.a.additionalProperties.minimum must be a number");
  EXPECT_EQ(check_schema(json::parse(R"({"required":"a"})")), "required must be a list of names");
  EXPECT_EQ(check_schema(json::parse(R"({"enum":{}})")), "enum must be a non-empty list");
  EXPECT_EQ(check_schema(json::parse(R"({"minLength":-1})")), "minLength must be an integer ≥ 0");
  EXPECT_EQ(check_schema(json::parse(R"({"format":"email"})")),
            "format must be one of duration, size, listen-address, cidr, absolute-url");
  EXPECT_EQ(check_schema(json::parse(R"({"secret":"yes"})")), "secret must be true or false");
  EXPECT_EQ(check_schema(json::parse(R"({"requried":["a"]})")).rfind("requried: unknown keyword", 0), 0u);
}

// Found by fuzz_config: an error quoting a value with a byte that is not UTF-8 threw.
TEST(SchemaValidator, ValuesThatAreNotUtf8AreQuotedWithoutThrowing) {
  EXPECT_EQ(check(R"({"type":"integer"})", std::string("a\xFF" "b")), lines{"x: expected an integer, got \"a\xEF\xBF\xBD" "b\""});
  EXPECT_EQ(check(R"({"enum":["x"]})", std::string("\xFF")), lines{"x: expected one of x; got \"\xEF\xBF\xBD\""});
}

TEST(SchemaValidator, TypesAndRanges) {
  EXPECT_EQ(check(R"({"type":"integer","minimum":1})", 0), lines{"x: expected an integer ≥ 1, got 0"});
  EXPECT_EQ(check(R"({"type":"integer","maximum":9})", 10), lines{"x: expected an integer ≤ 9, got 10"});
  EXPECT_EQ(check(R"({"type":"number","minimum":0,"maximum":1})", 1.5),
            lines{"x: expected a number between 0 and 1, got 1.5"});
  EXPECT_EQ(check(R"({"type":"integer"})", 1.5), lines{"x: expected an integer, got 1.5"});
  EXPECT_TRUE(check(R"({"type":"number"})", 3).empty());  // an integer is a number
  EXPECT_EQ(check(R"({"type":["string","null"]})", true),
            lines{"x: expected a string or null, got true (quote it to make it a string)"});
  EXPECT_EQ(check(R"({"type":"array"})", json::object()), lines{"x: expected a list, got a mapping"});
  EXPECT_EQ(check(R"({"type":"boolean"})", "yes"), lines{"x: expected true or false, got \"yes\""});
}

TEST(SchemaValidator, ObjectsRequiredUnknownAndNested) {
  const char* s = R"({"type":"object","additionalProperties":false,"required":["a"],
    "properties":{"a":{"type":"integer"},"items":{"type":"array","items":{"type":"string"}}}})";
  EXPECT_EQ(check(s, json::parse(R"({"b":1})")),
            (lines{"x.a: is required but missing", "x.b: unknown key; did you mean \"a\"?"}));
  EXPECT_EQ(check(s, json::parse(R"({"a":1,"items":["ok",2]})")),
            lines{"x.items[1]: expected a string, got 2 (quote it to make it a string)"});
  EXPECT_EQ(check(s, json::parse(R"({"a":1,"zzzzzz":2})")), lines{"x.zzzzzz: unknown key (allowed: a, items)"});
  // additionalProperties as a schema validates each extra value.
  EXPECT_EQ(check(R"({"type":"object","additionalProperties":{"type":"integer"}})", json::parse(R"({"k":"v"})")),
            lines{"x.k: expected an integer, got \"v\""});
}

TEST(SchemaValidator, EnumFormatsLengthsAndSecrets) {
  EXPECT_EQ(check(R"({"type":"string","enum":["a","b"]})", "c"), lines{"x: expected one of a, b; got \"c\""});
  EXPECT_EQ(check(R"({"type":"string","format":"size"})", "1 KiB"),
            lines{"x: expected a size such as 512KiB or 1MiB, got \"1 KiB\": unexpected character ' '"});
  EXPECT_EQ(check(R"({"type":"string","format":"absolute-url"})", "ftp://x"),
            lines{"x: expected an absolute http(s) URL, got \"ftp://x\": must start with http:// or https://"});
  EXPECT_EQ(check(R"({"type":"string","minLength":1})", ""), lines{"x: must not be empty"});
  EXPECT_EQ(check(R"({"type":"string","maxLength":2})", "abc"), lines{"x: must be at most 2 characters"});
  EXPECT_EQ(check(R"({"type":"array","minItems":1})", json::array()), lines{"x: must have at least one entry"});
  EXPECT_EQ(check(R"({"type":"string","secret":true,"enum":["a"]})", "hunter2"),
            lines{"x: expected one of a; got <redacted>"});
}

TEST(SchemaValidator, LongStringsAreShortenedInMessages) {
  std::string long_value(200, 'v');
  auto out = check(R"({"type":"integer"})", long_value);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], "x: expected an integer, got \"" + std::string(77, 'v') + "...\"");
}

TEST(ApplyDefaults, FillsMissingKeysAndObjects) {
  json schema = json::parse(R"({"type":"object","properties":{
    "a":{"type":"integer","default":1},
    "o":{"type":"object","default":{},"properties":{"b":{"type":"string","default":"x"}}},
    "m":{"type":"object","additionalProperties":{"type":"object","properties":{"c":{"default":true}}}}}})");
  json v = json::parse(R"({"m":{"p":{}}})");
  apply_defaults(schema, v);
  EXPECT_EQ(v["a"], 1);
  EXPECT_EQ(v["o"]["b"], "x");
  EXPECT_EQ(v["m"]["p"]["c"], true);
}

}  // namespace
}  // namespace fetchrelay::config::schema_test
