// The API's routing, without actors: which route a request names (method and pattern, DESIGN §2),
// its `{id}` segments and tenant, or the answer that ends it before any handler (a path that is
// not printable ASCII, a missing or unknown API key under /v1/, no such route, another method).
// Pure, so the raw-HTTP fuzz target runs it on every request the server's parser lets through.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "http/server.h"

namespace fetchrelay::app {

/// Every handler of the API; app/api.cpp holds one per value, in this order.
enum class route_id : std::size_t {
  healthz, readyz, metrics, submit, list_jobs, purge_jobs, bulk_retry, bulk_cancel, get_job, cancel_job,
  retry_job, run_job, list_events, list_destinations, stats, put_topic, list_topics, get_topic, delete_topic,
  put_queue, list_queues, get_queue, delete_queue, pause_queue, resume_queue, put_schedule, list_schedules,
  get_schedule, delete_schedule, pause_schedule, resume_schedule, trigger_schedule,
  count_  // not a route
};

struct routed {
  enum class kind {
    handler,  // run `id` with `params` for `tenant`
    qstash,   // a /v2 path: the QStash-compatible API routes and authenticates it
    answer,   // send `answer` (4xx)
  };
  kind what = kind::answer;
  route_id id = route_id::count_;
  std::vector<std::string> params;  // the `{id}` segments, in order
  std::string tenant;               // set for /v1 routes
  http::response answer;
  bool unauthorized = false;        // the answer is a 401 (the caller logs it, rate-limited)
};

/// Routes one request. /v2 paths are handed on as they are when the QStash API is on.
routed route_request(const config::relay_config& cfg, const http::request& req);

/// The tenant of a valid "Authorization: Bearer <key>", or nullopt. Every key is compared in
/// constant time, so timing does not tell which one matched.
std::optional<std::string> authenticate(const config::relay_config& cfg, const http::request& req);

/// Constant-time comparison (no early exit on the first difference, nor on length).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace fetchrelay::app
