// A plugin template: rename nothing, copy the folder (its name becomes the plugin's name), then
// fill in on_attempt / on_outcome. See docs/plugins.md.
#include <fetchrelay/plugin.hpp>

namespace {

class plugin final : public fetchrelay::sdk::plugin {
 public:
  // config_json: your block from the pipeline, checked against the schema below, defaults applied.
  plugin(const fetchrelay::sdk::host& host, std::string_view /*config_json*/) : host_(host) {
    // HELP texts for /metrics (promtool wants one per series).
    host_.describe("attempts", "Attempts this plugin saw.");
    host_.describe("target_failures", "Attempts the target failed (network error, timeout, 5xx or 429).");
  }

  // Before each attempt, in pipeline order: change headers or body, or defer, or reject.
  fetchrelay::sdk::verdict on_attempt(fetchrelay::sdk::attempt& a) override {
    a.set_header("X-Plugin", PLUGIN_NAME);
    host_.count("attempts");
    return fetchrelay::sdk::verdict::proceed();
  }

  // After the attempt, in reverse order (only if on_attempt proceeded).
  void on_outcome(const fetchrelay::sdk::attempt&, const fetchrelay::sdk::outcome& o) override {
    if (o.target_failure()) host_.count("target_failures");
  }

 private:
  fetchrelay::sdk::host host_;
};

}  // namespace

FETCHRELAY_PLUGIN(plugin, PLUGIN_NAME, R"({"type": "object", "additionalProperties": false, "properties": {}})")
