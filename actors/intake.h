// Intake: the admission half of the job manager (DESIGN §1, §2), a plain class so it is
// unit-tested without an actor system (tests/actors/intake_test.cpp).
//
// It gives each accepted submission its id and job state, keeps the unfinished jobs per tenant
// (the quota) and the submissions waiting for the store (the busy limit), and gathers the
// submissions of one mailbox turn into one commit. The manager sends the commit and hands the
// store's answer back; the submission's reply is then the manager's to send.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/submit.h"
#include "core/topic.h"
#include "core/retry.h"
#include "core/ulid.h"
#include "persistence/cluster.h"
#include "persistence/store.h"

namespace fetchrelay::actors {

/// A policy as the manager applies it: retry budget and backoff, attempt timeout.
struct policy_runtime {
  retry_policy retry;
  std::uint32_t timeout_ms = 15'000;
};

struct intake_options {
  std::int64_t max_pending_per_tenant = 10'000'000;
  /// Submissions waiting for the store at most; past it POST /v1/fetch answers 503.
  std::size_t max_pending_commits = 50'000;
  std::chrono::milliseconds idempotency_window{86'400'000};
  /// Several relays on PostgreSQL: new jobs get ids in this node's shards (a queue's jobs in the
  /// queue's own shard); null otherwise.
  std::shared_ptr<persistence::shard_ownership> ownership;
};

/// A submission handed to the store, waiting for its commit.
struct pending_submission {
  job_state state;
  job_spec spec;
  completion<submit_answer> reply;
  std::string idem;  // its key in the idempotency index, if any
};

/// A submission to a topic as one submission per endpoint: its URL, the topic and endpoint
/// names, the policy `policy_of(url)` (null: the submission's), and a key per endpoint
/// (`<key>:<endpoint name>`) when the submission has one. Fingerprints are the caller's.
std::vector<submission> expand_topic(const submission& sub, const topic_state& topic,
                                     const std::function<std::string(const std::string&)>& policy_of);

class intake {
 public:
  intake(intake_options options, std::map<std::string, std::int64_t> initial_pending,
         std::function<std::uint64_t()> random);

  /// Why a new job of `tenant` cannot be taken now (503 busy, 429 over its quota), if so.
  std::optional<submit_answer> refusal(const std::string& tenant) const;

  /// The state of a new job for `sub` under `policy`, with a fresh id, created at `now`.
  job_state new_job(const submission& sub, const std::string& policy, const policy_runtime& runtime,
                    std::int64_t now);

  /// When an idempotency key given at `now` expires.
  std::int64_t idempotency_expiry(std::int64_t now) const { return now + options_.idempotency_window.count(); }

  /// Adds the job to the next commit (with its key, if `idem` is set) and counts it for its
  /// tenant. True if it is the first since the last take(): the caller schedules the flush.
  bool add(job_state&& state, submission&& sub, const std::string& idem, std::int64_t now,
           completion<submit_answer> reply);

  /// Everything added since the last take, as one synced commit, and the ids it carries.
  std::pair<persistence::commit_batch, std::vector<std::string>> take();

  /// A submission taken out of the intake, or none; handed over without moving the job.
  class taken {
   public:
    explicit operator bool() const { return !node_.empty(); }
    pending_submission* operator->() { return &node_.mapped(); }
    pending_submission& operator*() { return node_.mapped(); }

   private:
    friend class intake;
    std::unordered_map<std::string, pending_submission>::node_type node_;
  };

  /// The store answered for `id` (ok or not): its pending submission, if it was one. A failed
  /// one no longer counts for its tenant.
  taken committed(const std::string& id, bool ok);

  /// A job of `tenant` starts (run again) or ends: the quota follows.
  void job_started(const std::string& tenant) { ++tenant_pending_[tenant]; }
  void job_ended(const std::string& tenant) { --tenant_pending_[tenant]; }

  std::size_t waiting() const { return pending_.size(); }
  std::int64_t unfinished(const std::string& tenant) const;

 private:
  intake_options options_;
  ulid_generator ids_;
  std::unordered_map<std::string, std::int64_t> tenant_pending_;
  std::unordered_map<std::string, pending_submission> pending_;
  persistence::commit_batch outbox_;
  std::vector<std::string> outbox_ids_;
};

}  // namespace fetchrelay::actors
