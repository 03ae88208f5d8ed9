// A QStash message (POST /v2/publish, /v2/enqueue, one element of /v2/batch, a schedule's
// request) as a v1 submission: the Upstash-* headers are translated into the v1 headers and
// checked by the same parse_submission, so /v2 adds no second set of rules. Pure: no I/O.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "app/submission.h"

namespace fetchrelay::app::qstash_api {

struct message_input {
  /// A URL (query included) or a URL group's name, as it came in the path or the batch element.
  std::string destination;
  /// The request's headers; for /v2/publish also the `upstash-*` query parameters.
  std::vector<http::header_field> headers;
  std::string body;
  std::string queue;      // /v2/enqueue/{queue}/… or a batch element's "queue"
  std::string caller_ip;  // reported back as callerIp
};

/// True if the destination is a URL (it has a scheme: "://"), not a URL group's name; a URL
/// that is not http(s) is then refused as a URL, not as a group name.
bool is_url_destination(std::string_view destination);

/// The submission, with the job's QStash options (core/qstash.h) in `qstash`; or the 4xx.
/// Messages name the Upstash-* headers, not the v1 ones.
std::variant<actors::submission, bad_request> parse_message(const config::relay_config& cfg, const wall_clock& clock,
                                                            const std::string& tenant, message_input in);

/// POST /v2/schedules/{destination}: the message with Upstash-Cron (5 or 6 fields, CRON_TZ=
/// allowed) and Upstash-Schedule-Id (default "scd_" + a ULID); its fires are /v2 jobs.
std::variant<schedule_state, bad_request> parse_schedule_message(const config::relay_config& cfg, const wall_clock& clock,
                                                                const std::string& tenant, message_input in);

/// `/v2/publish/<rest>?<query>`: the destination (the raw rest, `//` kept, plus the query without
/// `qstash_token` and `upstash-*` parameters) and those `upstash-*` parameters as headers.
struct split_target {
  std::string destination;
  std::vector<http::header_field> query_headers;
};
split_target split_destination(std::string_view rest_of_path, std::string_view raw_query);

/// Percent-decoding of one path segment or query value (`+` is a space in a query value only).
std::string percent_decode(std::string_view s, bool plus_is_space);

}  // namespace fetchrelay::app::qstash_api
