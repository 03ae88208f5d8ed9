#include "actors/intake.h"

#include <algorithm>

#include "core/queue.h"

namespace fetchrelay::actors {

std::vector<submission> expand_topic(const submission& sub, const topic_state& topic,
                                     const std::function<std::string(const std::string&)>& policy_of) {
  std::vector<submission> out;
  out.reserve(topic.endpoints.size());
  for (const auto& e : topic.endpoints) {
    submission one = sub;
    one.spec.url = e.url;
    one.topic = topic.name;
    one.endpoint = e.name;
    if (policy_of) one.policy = policy_of(e.url);
    if (!sub.idempotency_key.empty()) one.idempotency_key = sub.idempotency_key + ":" + e.name;
    out.push_back(std::move(one));
  }
  return out;
}

intake::intake(intake_options options, std::map<std::string, std::int64_t> initial_pending,
               std::function<std::uint64_t()> random)
    : options_(options), ids_(std::move(random)) {
  for (const auto& [tenant, n] : initial_pending) tenant_pending_[tenant] = n;
}

std::optional<submit_answer> intake::refusal(const std::string& tenant) const {
  if (pending_.size() >= options_.max_pending_commits) {
    return submit_answer{503, "", 0, false, "busy",
                         std::to_string(pending_.size()) + " submissions are waiting for the store; retry shortly", 1};
  }
  std::int64_t count = unfinished(tenant);
  if (count >= options_.max_pending_per_tenant) {
    return submit_answer{429, "", 0, false, "too_many_pending",
                         "this tenant has " + std::to_string(count) +
                             " jobs not yet finished (limits.max_pending_per_tenant)",
                         5};
  }
  return std::nullopt;
}

std::int64_t intake::unfinished(const std::string& tenant) const {
  auto it = tenant_pending_.find(tenant);
  return it == tenant_pending_.end() ? 0 : it->second;
}

job_state intake::new_job(const submission& sub, const std::string& policy, const policy_runtime& runtime,
                          std::int64_t now) {
  job_state s;
  int shard = -1;
  if (options_.ownership) {
    shard = sub.queue.empty() ? options_.ownership->next_shard() : persistence::named_shard(sub.tenant, sub.queue);
  }
  s.id = "job_" + ids_.next(now, shard);
  s.tenant = sub.tenant;
  s.status = job_status::scheduled;
  s.method = sub.spec.method;
  s.url = sub.spec.url;
  s.policy = policy;
  s.created_at_ms = now;
  s.run_at_ms = std::max(sub.run_at_ms, now);
  s.max_attempts = sub.max_attempts.value_or(runtime.retry.attempts);
  s.timeout_ms = sub.timeout_ms.value_or(runtime.timeout_ms);
  s.callback_url = sub.callback_url;
  s.failure_callback_url = sub.failure_callback_url;
  s.parent_id = sub.parent_id;
  s.idempotency_key = sub.idempotency_key;
  s.schedule_id = sub.schedule_id;
  s.fire_time_ms = sub.fire_time_ms;
  s.queue = sub.queue;
  if (!s.queue.empty()) s.queue_stage = static_cast<std::uint8_t>(queue_stage::waiting);
  s.topic = sub.topic;
  s.endpoint = sub.endpoint;
  s.qstash = sub.qstash;
  return s;
}

bool intake::add(job_state&& state, submission&& sub, const std::string& idem, std::int64_t now,
                 completion<submit_answer> reply) {
  bool first = outbox_ids_.empty();
  outbox_.jobs.emplace_back(state, sub.spec, std::nullopt);  // in place: a job_state move costs
  if (!idem.empty()) {
    outbox_.idempotency.push_back(
        {sub.tenant, sub.idempotency_key, {state.id, idempotency_expiry(now), sub.fingerprint}});
  }
  if (sub.schedule_after) {
    schedule_state after = std::move(*sub.schedule_after);
    after.last_job_id = state.id;
    outbox_.schedules.push_back({std::move(after), false});
  }
  ++tenant_pending_[sub.tenant];
  outbox_ids_.push_back(state.id);
  // Built in place (ids are fresh): a job_state is large, and each move of it costs.
  pending_.try_emplace(outbox_ids_.back(), std::move(state), std::move(sub.spec), std::move(reply), idem);
  return first;
}

std::pair<persistence::commit_batch, std::vector<std::string>> intake::take() {
  std::pair<persistence::commit_batch, std::vector<std::string>> out{std::move(outbox_), std::move(outbox_ids_)};
  outbox_ = {};
  outbox_ids_.clear();
  out.first.sync = true;
  return out;
}

intake::taken intake::committed(const std::string& id, bool ok) {
  taken out;
  out.node_ = pending_.extract(id);
  if (out && !ok) --tenant_pending_[out->state.tenant];
  return out;
}

}  // namespace fetchrelay::actors
