// Fuzz target: the YAML config loader (config/config.h): YAML parsing with yaml-cpp, ${VAR}
// expansion, the relay's schema, the stand-in repair round and the semantic checks. Any text
// must give either a config or at least one error that says where and what, never both, never
// a crash or an escaping exception.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  // A fixed environment: HOME is set, everything else is unset (so ${X} without a default is an error).
  auto env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "HOME") return std::string("/home/fuzz");
    return std::nullopt;
  };
  auto r = fetchrelay::config::load_config_text(text, "fuzz.yaml", env);
  if (r.config.has_value() == !r.errors.empty()) std::abort();  // exactly one of the two
  for (const auto& e : r.errors) {
    if (e.message.empty()) std::abort();  // every error says what is wrong
  }
  if (r.config && r.config->policies.count("default") != 1) std::abort();  // always holds "default"
  return 0;
}
