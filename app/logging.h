// spdlog set-up: text lines or JSON lines on stderr.
#pragma once

#include <string>

namespace fetchrelay::app {

bool valid_log_level(const std::string& level);

/// Replaces the default logger. format: "text" or "json"; level: trace..error.
void setup_logging(const std::string& format, const std::string& level);

}  // namespace fetchrelay::app
