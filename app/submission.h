// POST /v1/fetch as a pure function: the request's headers and body in, a validated submission
// or the 4xx that says what to change out (docs/api.md lists every code). No I/O, no actors:
// unit-tested per error code (tests/app/submission_test.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <functional>
#include <variant>
#include <vector>

#include "actors/job_manager.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/topic.h"
#include "core/url.h"
#include "http/server.h"

namespace fetchrelay::app {

/// A refused request: its HTTP status, error code and message.
struct bad_request {
  int status;
  std::string code;
  std::string message;
};

/// Reads X-Fetch-*, X-Delay, X-Not-Before, X-Policy, X-Retries, X-Timeout, X-Callback,
/// X-Failure-Callback, X-Idempotency-Key and the body (moved out of `req`).
std::variant<actors::submission, bad_request> parse_submission(const config::relay_config& cfg, const wall_clock& clock,
                                                               const std::string& tenant, http::request& req);

/// POST /v1/schedules: the headers and body of POST /v1/fetch (without X-Delay, X-Not-Before
/// and X-Idempotency-Key: a schedule's fires set those) plus X-Cron (required; 400 invalid_cron
/// names the field) and X-Schedule-Id (optional: `[A-Za-z0-9_.-]{1,64}`; else "sched_" + a ULID).
/// The definition only: its times are the schedule actor's to set.
std::variant<schedule_state, bad_request> parse_schedule(const config::relay_config& cfg, const wall_clock& clock,
                                                        const std::string& tenant, http::request& req);

/// Checks a target URL as X-Fetch-Url is checked (parsed, http(s), not a blocked address):
/// the 400, if any. `name` is the header or field the URL came in.
std::optional<bad_request> check_target_url(const config::relay_config& cfg, const char* name, std::string_view url);

/// A topic submission (X-Fetch-Topic) as one submission per endpoint: its URL, the topic and
/// endpoint names, the policy of the endpoint's route unless X-Policy was given, and, with an
/// idempotency key, a key per endpoint (`fetchrelay:topic:<key>:<endpoint>`).
std::vector<actors::submission> expand_topic(const config::relay_config& cfg, actors::submission sub,
                                             const topic_state& topic, bool policy_given);

/// The policy of a URL's route (config `routes`), else "default". Keeps a reference to `cfg`.
std::function<std::string(const std::string&)> route_policy_of(const config::relay_config& cfg);

/// A schedule, queue or topic name: `[A-Za-z0-9_.-]{1,64}`.
bool is_valid_name(std::string_view name);

/// When to run, from X-Delay or X-Not-Before (at most one; neither: now), checked as for
/// POST /v1/fetch (POST /v1/jobs/{id}/retry takes them too).
std::variant<std::int64_t, bad_request> parse_run_at(const config::relay_config& cfg, const wall_clock& clock,
                                                     const http::request& req);

/// X-Not-Before: unix seconds or RFC 3339 ("2026-11-28T10:00:00Z", fractions and offsets
/// allowed), checked against the calendar; milliseconds since the epoch, or nullopt.
std::optional<std::int64_t> parse_not_before(std::string_view v);

}  // namespace fetchrelay::app
