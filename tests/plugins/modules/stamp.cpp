// Test plugin (C++ SDK): stamps a header with the host clock and the attempt number, counts
// what it sees.
#include <fetchrelay/plugin.hpp>
#include <nlohmann/json.hpp>

namespace {

class stamp final : public fetchrelay::sdk::plugin {
 public:
  stamp(const fetchrelay::sdk::host& host, std::string_view config) : host_(host) {
    auto c = nlohmann::json::parse(config);
    header_ = c.at("header").get<std::string>();
    if (c.value("refuse", false)) throw std::runtime_error("refused on purpose");
  }
  fetchrelay::sdk::verdict on_attempt(fetchrelay::sdk::attempt& a) override {
    a.set_header(header_, std::to_string(host_.now_ms()) + "/" + std::to_string(a.number()) + "/" + std::string(a.policy()));
    host_.count("stamped");
    return fetchrelay::sdk::verdict::proceed();
  }
  void on_outcome(const fetchrelay::sdk::attempt&, const fetchrelay::sdk::outcome& o) override {
    host_.count(o.not_sent() ? "not_sent" : o.success() ? "succeeded" : "failed");
  }

 private:
  fetchrelay::sdk::host host_;
  std::string header_;
};

}  // namespace

FETCHRELAY_PLUGIN(stamp, "stamp", R"({
  "type": "object", "additionalProperties": false,
  "properties": {
    "header": {"type": "string", "default": "X-Stamp", "description": "Header to set."},
    "refuse": {"type": "boolean", "default": false, "description": "Fail create (for tests)."}
  }
})")
