#include "app/cli.h"

#include <cstdio>

#include "app/admin_cli.h"
#include "app/logging.h"
#include "app/serve.h"
#include "core/version.h"

namespace fetchrelay::app {

std::string usage() {
  return "usage:\n"
         "  fetchrelay serve --config FILE [--port-file PATH] [--log-format text|json]"
         " [--log-level trace|debug|info|warn|error]\n"
         "  fetchrelay check-config --config FILE\n"
         "  fetchrelay repair --config FILE   (a damaged store, with the relay stopped; copy the folder first)\n"
         "  fetchrelay migrate --config FILE  (creates or migrates the PostgreSQL tables; serve also does)\n"
         "  fetchrelay --version\n" +
         admin_usage();
}

namespace {

/// The first word that is not a flag or a flag's value: the subcommand, or "".
std::string first_word(const std::vector<std::string>& args) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) return a;
    bool valueless = a == "--json" || a == "--follow" || a == "--version" || a == "--help" || a.find('=') != std::string::npos;
    if (!valueless) ++i;
  }
  return "";
}

}  // namespace

result<cli_options> parse_cli(const std::vector<std::string>& args) {
  cli_options o;
  if (args.empty()) return invalid_argument("missing command");
  const std::string& cmd = args[0];
  if (cmd == "--version" || cmd == "version") {
    o.cmd = command::version;
    return o;
  }
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    o.cmd = command::help;
    return o;
  }
  if (cmd == "serve") {
    o.cmd = command::serve;
  } else if (cmd == "check-config") {
    o.cmd = command::check_config;
  } else if (cmd == "repair") {
    o.cmd = command::repair;
  } else if (cmd == "migrate") {
    o.cmd = command::migrate;
  } else {
    return invalid_argument("unknown command \"" + cmd + "\"");
  }
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& out) -> status {
      if (i + 1 >= args.size()) return invalid_argument(a + " needs a value");
      out = args[++i];
      return status::ok();
    };
    std::string v;
    if (a == "--config") {
      if (auto s = value(o.config_path); !s) return s;
    } else if (a == "--port-file" && o.cmd == command::serve) {
      if (auto s = value(o.port_file); !s) return s;
    } else if (a == "--log-format") {
      if (auto s = value(v); !s) return s;
      if (v != "text" && v != "json") return invalid_argument("--log-format must be text or json");
      o.log_format = v;
    } else if (a == "--log-level" && o.cmd == command::serve) {
      if (auto s = value(v); !s) return s;
      if (!valid_log_level(v)) {
        return invalid_argument("--log-level must be trace, debug, info, warn or error");
      }
      o.log_level = v;
    } else {
      return invalid_argument("unknown option \"" + a + "\" for " + cmd);
    }
  }
  if (o.config_path.empty()) return invalid_argument(cmd + " needs --config FILE");
  return o;
}

int run(const std::vector<std::string>& args) {
  if (is_admin_command(first_word(args))) return run_admin(args);
  auto parsed = parse_cli(args);
  if (!parsed) {
    std::fprintf(stderr, "fetchrelay: %s\n%s", parsed.error().message().c_str(), usage().c_str());
    return 2;
  }
  switch (parsed->cmd) {
    case command::version:
      std::printf("%s\n", version_line().c_str());
      return 0;
    case command::help:
      std::printf("%s", usage().c_str());
      return 0;
    case command::check_config:
      return check_config(*parsed);
    case command::repair:
      return repair(*parsed);
    case command::migrate:
      return migrate(*parsed);
    case command::serve:
      return serve(*parsed);
  }
  return 2;
}

}  // namespace fetchrelay::app
