// Fuzz target: the JSON-schema subset validator used for every plugin's config block
// (config/schema.h). A plugin declares its schema, so both the schema and the value are fuzzed:
// input = schema JSON, a newline, value JSON. Whatever the schema's keywords hold (a "type"
// that is a number, "properties" that is a list), check_schema() must answer, and for every
// schema it accepts validate() and apply_defaults() must answer without throwing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "config/schema.h"

using fetchrelay::config::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto nl = text.find('\n');
  if (nl == std::string_view::npos) return 0;
  json schema = json::parse(text.substr(0, nl), nullptr, /*allow_exceptions=*/false);
  json value = json::parse(text.substr(nl + 1), nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded() || value.is_discarded()) return 0;
  // The host refuses a plugin whose schema check_schema() rejects; for the rest, validation
  // must never throw.
  if (!fetchrelay::config::check_schema(schema).empty()) return 0;
  std::vector<fetchrelay::config::config_error> errors;
  fetchrelay::config::validate(schema, value, "plugins.x.config", errors);
  for (const auto& e : errors) {
    if (e.message.empty()) std::abort();
  }
  (void)fetchrelay::config::render_value(value);
  if (errors.empty()) {
    fetchrelay::config::apply_defaults(schema, value);
  }
  return 0;
}
