// The QStash-compatible API (/v2): what the official @upstash/qstash SDK sends, translated onto
// the same intake, queues, topics, schedules and event store as /v1 (docs/qstash.md lists each
// endpoint and header as supported, differing or not supported). Errors are {"error": "..."}.
#pragma once

#include "app/api.h"

namespace fetchrelay::app::qstash_api {

/// Answers a request whose path starts with /v2/ (qstash.enabled is checked by the caller).
void handle(const api_deps& deps, http::request&& req, const http::responder& reply);

}  // namespace fetchrelay::app::qstash_api
