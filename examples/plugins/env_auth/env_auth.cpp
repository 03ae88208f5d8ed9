// Example plugin `env_auth`: adds an integration's credentials to every attempt, read from the
// environment when the relay starts (so secrets stay out of the YAML and out of the logs).
//
//   pipeline:
//     - env_auth: {header: Authorization, env: SLACK_BOT_TOKEN, prefix: "Bearer "}
#include <cstdlib>
#include <fetchrelay/plugin.hpp>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace {

class env_auth final : public fetchrelay::sdk::plugin {
 public:
  env_auth(const fetchrelay::sdk::host& host, std::string_view config) : host_(host) {
    host_.describe("applied", "Attempts given the header from the environment.");
    auto c = nlohmann::json::parse(config);
    header_ = c.at("header").get<std::string>();
    std::string var = c.at("env").get<std::string>();
    const char* v = std::getenv(var.c_str());
    if (!v || !*v) throw std::runtime_error("environment variable " + var + " is not set");
    value_ = c.at("prefix").get<std::string>() + v;
  }

  fetchrelay::sdk::verdict on_attempt(fetchrelay::sdk::attempt& a) override {
    if (!a.set_header(header_, value_)) return fetchrelay::sdk::verdict::reject("env_auth: header " + header_ + " refused");
    host_.count("applied");
    return fetchrelay::sdk::verdict::proceed();
  }

 private:
  fetchrelay::sdk::host host_;
  std::string header_;
  std::string value_;
};

}  // namespace

FETCHRELAY_PLUGIN(env_auth, "env_auth", R"({
  "type": "object", "additionalProperties": false, "required": ["env"],
  "properties": {
    "header": {"type": "string", "default": "Authorization", "description": "Header to set."},
    "env": {"type": "string", "description": "Environment variable holding the credential."},
    "prefix": {"type": "string", "default": "", "description": "Put before the value, e.g. \"Bearer \"."}
  }
})")
