// The admin CLI on the same binary, talking to a running relay over its API:
//
//   fetchrelay jobs list [--status S --queue Q --schedule ID --topic T --url-prefix P --since T
//                         --until T --limit N --cursor C]
//   fetchrelay jobs get|cancel|retry|run ID
//   fetchrelay jobs retry|cancel --status S [filters]         (bulk: every page of the filter)
//   fetchrelay schedules list|get|pause|resume|trigger|delete [ID]
//   fetchrelay queues list|get|pause|resume|delete [NAME];  queues set NAME --parallelism N
//   fetchrelay topics list|get|delete [NAME]
//   fetchrelay destinations [--limit N --cursor C]
//   fetchrelay stats
//   fetchrelay events [--follow] [--job ID] [--type T] [--cursor C] [--limit N] [--interval D]
//
// --url (the relay's base URL, without /v1; default $FETCHRELAY_URL, else http://127.0.0.1:8080),
// --key (default $FETCHRELAY_KEY) and --json go before or after the subcommand. A table for
// people by default; --json prints the API's answer unchanged (one page for lists; bulk commands
// and events --follow print one answer or event per line). Exit codes: 0 ok, 1 API error or relay
// unreachable (the error code printed), 2 usage.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace fetchrelay::app {

/// True if `word` names an admin command (the first word of the command line, flags aside).
bool is_admin_command(const std::string& word);

/// One API call the command line asks for.
struct admin_call {
  std::string method;
  std::string path;  // with its query
  std::string body;  // JSON, or ""
};

struct admin_command {
  std::string url = "http://127.0.0.1:8080";
  std::string key;
  bool json = false;
  std::string resource;  // jobs, schedules, queues, topics, destinations, stats, events
  std::string verb;      // list, get, …; "" for destinations, stats, events
  std::string target;    // the id or name, if any
  std::map<std::string, std::string> options;  // --status failed -> {"status","failed"}
  bool bulk = false;     // jobs retry/cancel by filter
  bool follow = false;   // events --follow
  std::int64_t interval_ms = 1000;  // events --follow poll interval
  admin_call call;       // the (first) request
};

/// Parses the admin command line; `env` gives FETCHRELAY_URL and FETCHRELAY_KEY.
result<admin_command> parse_admin(const std::vector<std::string>& args, const std::map<std::string, std::string>& env);

/// The table (or key: value lines) a person sees for an API answer of `c`.
std::string render_table(const admin_command& c, const std::string& answer_json);

/// Runs it against the relay; the exit code.
int run_admin(const std::vector<std::string>& args);

/// The admin part of --help.
std::string admin_usage();

}  // namespace fetchrelay::app
