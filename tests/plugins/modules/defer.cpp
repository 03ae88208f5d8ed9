// Test plugin (C++ SDK): defers every attempt by a configured time.
#include <fetchrelay/plugin.hpp>
#include <nlohmann/json.hpp>

namespace {

class defer final : public fetchrelay::sdk::plugin {
 public:
  defer(const fetchrelay::sdk::host& host, std::string_view config)
      : host_(host), for_ms_(nlohmann::json::parse(config).at("for_ms").get<std::int64_t>()) {}
  fetchrelay::sdk::verdict on_attempt(fetchrelay::sdk::attempt&) override {
    return fetchrelay::sdk::verdict::defer(host_.now_ms() + for_ms_, "test: waiting");
  }

 private:
  fetchrelay::sdk::host host_;
  std::int64_t for_ms_;
};

}  // namespace

FETCHRELAY_PLUGIN(defer, "defer", R"({
  "type": "object", "additionalProperties": false, "required": ["for_ms"],
  "properties": {"for_ms": {"type": "integer", "minimum": 1, "description": "Deferral in ms."}}
})")
