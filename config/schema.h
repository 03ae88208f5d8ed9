// A validator for the host's JSON-schema subset, used for the relay's own config and for each
// plugin's config block (DESIGN §5).
//
// Keywords: type (string or list), properties, required, additionalProperties (bool or schema),
// enum, minimum, maximum, items, description, default.
// Host extensions: minItems, minLength, maxLength, format (duration, size, listen-address,
// cidr, absolute-url), and secret: true (the value is never echoed in an error).
//
// Errors name the path of the value and what was expected, e.g.
//   policies.default.retry.attempts: expected an integer ≥ 1, got "ten"
//
// Thread-safety: stateless functions; the schema is read-only.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace fetchrelay::config {

using json = nlohmann::ordered_json;  // keeps document order, so errors come in file order

/// One problem found in a config, with the dotted path of the value ("a.b[2].c").
struct config_error {
  std::string path;
  std::string message;

  /// "path: message", or just the message when the path is empty.
  std::string to_string() const;
  bool operator==(const config_error&) const = default;
};

/// Appends a path segment: join_path("a", "b") == "a.b".
std::string join_path(const std::string& parent, const std::string& key);
std::string index_path(const std::string& parent, size_t index);

/// Checks that a plugin's schema uses only the keywords above, each with a value of the right
/// kind (validate() assumes it). Returns "" when it does, else what is wrong and where
/// ("properties.rate.type must be …"). `path` prefixes the keyword paths; "" at the top.
std::string check_schema(const json& schema, const std::string& path = "");

/// Validates `value` against `schema` (one that check_schema() accepts), appending every problem found to `errors`.
void validate(const json& schema, const json& value, const std::string& path,
              std::vector<config_error>& errors);

/// Fills in each missing property that has a "default", recursively, and creates missing
/// objects whose schema has a default. Call after validate() found no errors.
void apply_defaults(const json& schema, json& value);

/// How a value is shown in an error: strings quoted, lists and mappings by kind.
std::string render_value(const json& value);

}  // namespace fetchrelay::config
