// A target actor for tests on the test coordinator: it answers every attempt at once with a
// scripted status and records what it was sent and when (simulated time).
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "actors/messages.h"
#include "core/clock.h"

namespace fetchrelay::test {

using actors::attempt_request;
using actors::attempt_result;
using actors::deliver_atom;
using actors::outcome_atom;

/// The scripted target: what it was sent and when, and the statuses it answers with (200 once
/// the script runs out). A negative entry -d stands for a plugin deferring the attempt by d ms
/// (reason "rate_limit").
struct target_log {
  struct hit {
    std::string job_id;
    std::string attempt;
    std::int64_t at_ms = 0;
  };
  std::vector<hit> hits;
  std::deque<int> script;
};

inline caf::behavior scripted_target(caf::event_based_actor*, std::shared_ptr<target_log> log,
                              std::shared_ptr<const wall_clock> clock) {
  return {[log, clock](deliver_atom, const attempt_request& req) {
    target_log::hit h{req.job_id, "", clock->now_ms()};
    for (const auto& x : req.headers) {
      if (x.name == "X-Fetch-Attempt") h.attempt = x.value;
    }
    log->hits.push_back(h);
    attempt_result r;
    r.generation = req.generation;
    r.status = 200;
    if (!log->script.empty()) {
      r.status = log->script.front();
      log->script.pop_front();
    }
    r.started_at_ms = clock->now_ms();
    if (r.status < 0) {
      r.deferred = true;
      r.defer_until_ms = clock->now_ms() - r.status;
      r.defer_reason = "rate_limit";
      r.status = 0;
    }
    caf::anon_send(req.reply_to, outcome_atom::value, std::move(r));
  }};
}

}  // namespace fetchrelay::test
