// Example plugin `slack_message`: turns the job's JSON body into a Slack incoming-webhook
// message, so any service can post events to Slack without knowing Slack's format.
//
//   {"event": "signup", "userId": "user_456"}
//     -> {"text": "signup: user_456", "blocks": [{"type": "section", "text": {"type": "mrkdwn",
//         "text": "*signup*\nuserId: user_456"}}]}
//
//   pipeline:
//     - slack_message: {title_field: event}
#include <fetchrelay/plugin.hpp>
#include <nlohmann/json.hpp>

namespace {

class slack_message final : public fetchrelay::sdk::plugin {
 public:
  slack_message(const fetchrelay::sdk::host& host, std::string_view config) : host_(host) {
    host_.describe("shaped", "Bodies reshaped into a Slack message.");
    title_field_ = nlohmann::json::parse(config).at("title_field").get<std::string>();
  }

  fetchrelay::sdk::verdict on_attempt(fetchrelay::sdk::attempt& a) override {
    auto in = nlohmann::json::parse(a.body(), nullptr, false);
    if (in.is_discarded() || !in.is_object()) {
      return fetchrelay::sdk::verdict::reject("slack_message: the body is not a JSON object");
    }
    std::string title = in.contains(title_field_) && in[title_field_].is_string() ? in[title_field_].get<std::string>()
                                                                                   : std::string("event");
    std::string summary = title;
    std::string details = "*" + title + "*";
    for (const auto& [k, v] : in.items()) {
      if (k == title_field_) continue;
      std::string value = v.is_string() ? v.get<std::string>() : v.dump();
      if (summary == title) summary += ": " + value;
      details += "\n" + k + ": " + value;
    }
    nlohmann::json out = {{"text", summary},
                          {"blocks", nlohmann::json::array({{{"type", "section"},
                                                             {"text", {{"type", "mrkdwn"}, {"text", details}}}}})}};
    a.set_body(out.dump());
    a.set_header("Content-Type", "application/json");
    host_.count("shaped");
    return fetchrelay::sdk::verdict::proceed();
  }

 private:
  fetchrelay::sdk::host host_;
  std::string title_field_;
};

}  // namespace

FETCHRELAY_PLUGIN(slack_message, "slack_message", R"({
  "type": "object", "additionalProperties": false,
  "properties": {
    "title_field": {"type": "string", "default": "event", "description": "Body field used as the message title."}
  }
})")
