// Command-line parsing for the fetchrelay executable.
//
//   fetchrelay serve --config FILE [--port-file PATH] [--log-format text|json] [--log-level L]
//   fetchrelay check-config --config FILE [--log-format text|json]
//   fetchrelay --version | version
//   fetchrelay --help | help
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace fetchrelay::app {

enum class command { serve, check_config, repair, migrate, version, help };

struct cli_options {
  command cmd = command::help;
  std::string config_path;
  std::string port_file;
  std::optional<std::string> log_format;
  std::optional<std::string> log_level;
};

result<cli_options> parse_cli(const std::vector<std::string>& args);

/// The --help text.
std::string usage();

/// Runs the whole program; returns the exit code. 0 ok, 1 runtime failure, 2 bad usage or
/// invalid config.
int run(const std::vector<std::string>& args);

}  // namespace fetchrelay::app
