// Reading YAML config text into JSON values: ${VAR} expansion and YAML 1.2 core-schema typing.
//
// * ${NAME} and ${NAME:-default} are expanded in every scalar, quoted or not; $$ is a
//   literal '$'. An unset variable without a default is an error naming it.
// * A quoted scalar is always a string. A plain scalar is typed after expansion: null/~,
//   true/false, integers and decimal numbers; anything else is a string.
// * Duplicate keys are an error.
// yaml-cpp exceptions stop here: they become config_errors.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/schema.h"
#include "core/status.h"

namespace fetchrelay::config {

/// Looks up an environment variable; nullopt when unset.
using env_lookup = std::function<std::optional<std::string>(const std::string&)>;

/// The process environment.
env_lookup process_env();

/// Expands ${NAME} and ${NAME:-default}; the error message names the variable or the syntax
/// problem.
result<std::string> expand_env(std::string_view text, const env_lookup& env);

struct yaml_document {
  json value;                         // null when the text is not valid YAML
  std::vector<config_error> errors;   // syntax, expansion and duplicate-key problems
};

/// Parses `text`; `source` (a file name) prefixes YAML syntax errors as source:line:column.
yaml_document parse_yaml(const std::string& text, const std::string& source, const env_lookup& env);

}  // namespace fetchrelay::config
