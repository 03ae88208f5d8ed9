// QStash's delivery rules as pure functions: the `Upstash-Retry-Delay` expression language, the
// default backoff, the `Upstash-Signature` JWT, and the options a job published through the
// QStash-compatible API (/v2) carries. No I/O; the actors and app/qstash/ call these.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/job.h"

namespace fetchrelay::qstash {

/// An `Upstash-Retry-Delay` expression: numbers, the variable `retried` (retries made so far,
/// 0 before the first retry), + - * / ( ) with unary minus, and pow exp sqrt abs floor ceil round
/// min max. Milliseconds.
class retry_delay_expr {
 public:
  struct node;
  /// The expression, or nullopt with `error` set (what is wrong, and where).
  static std::optional<retry_delay_expr> parse(std::string_view text, std::string* error = nullptr);
  /// The wait in milliseconds for `retried`, clamped to [0, 24 h]; NaN counts as 0.
  std::int64_t delay_ms(std::uint32_t retried) const;

 private:
  std::shared_ptr<const node> root_;
};

/// The longest expression accepted (bytes).
inline constexpr std::size_t max_retry_delay_expr = 256;

/// QStash's default wait before retry `retried` + 1: min(86400, e^(2.5·n)) seconds, with n the
/// retries already made plus one (n = 1 before the first retry).
std::int64_t default_backoff_ms(std::uint32_t retried);

/// The claims of one signature.
struct signature_claims {
  std::string url;       // sub: the exact URL delivered to
  std::string body;      // the body delivered (hashed into the `body` claim)
  std::int64_t now_s = 0;  // iat and nbf; exp = iat + 300
  std::string jti;       // "jwt_" + a unique suffix
};

/// The `Upstash-Signature` value: a JWT, HS256 keyed with the UTF-8 bytes of `signing_key`;
/// claims iss "Upstash", sub, iat, nbf, exp, jti, body = base64url(SHA-256(body)).
std::string sign(std::string_view signing_key, const signature_claims& c);

/// A verification as the SDK's Receiver does it (for tests and for `fetchrelay` tools): the
/// signature's HMAC, issuer, time window and body hash; `url` checked when not empty.
bool verify(std::string_view signing_key, std::string_view jwt, std::string_view body, std::string_view url,
            std::int64_t now_s);

/// A unique JWT id: "jwt_" + 32 random hex digits.
std::string new_jti();

/// base64url without padding (RFC 4648 §5).
std::string base64url(std::string_view bytes);

/// A fresh signing key as QStash makes them: "sig_" + 28 random base58 characters.
std::string new_signing_key();

/// A signing key pair: `current` signs; receivers also accept `next` (rotation makes it current).
struct key_pair {
  std::string current;
  std::string next;
  bool operator==(const key_pair&) const = default;
};

/// The signing key pairs by tenant, "" holding the default for tenants without their own. Read
/// by every /v2 attempt, changed by a rotation. Thread-safe.
class key_ring {
 public:
  /// The tenant's own pair, else the default; nullopt if neither is set.
  std::optional<key_pair> pair_of(const std::string& tenant) const;
  /// True if the tenant has a pair of its own.
  bool has_own(const std::string& tenant) const;
  void set(const std::string& tenant, key_pair p);
  /// Under the lock: the tenant's next pair (current = its pair's next, a new next), set at once
  /// as the tenant's own; `write` is called with it and the tenant's own pair before (nullopt: it
  /// was on the default), still under the lock. Returns the new pair.
  key_pair rotate(const std::string& tenant,
                  const std::function<void(const key_pair&, const std::optional<key_pair>&)>& write);
  /// Undoes a rotation that was not stored, if `rotated` is still the tenant's pair.
  void restore(const std::string& tenant, const key_pair& rotated, const std::optional<key_pair>& before);

 private:
  mutable std::mutex mu_;
  std::map<std::string, key_pair> pairs_;
};

/// Headers as QStash's JSON shows them: {"Name": ["value", …]}. With `mask_secrets` (a
/// message's own request headers), the values of secret headers show as "***"
/// (masked_header_value): the job keeps them for delivery, no answer shows them.
nlohmann::json header_object(const std::vector<header_pair>& headers, bool mask_secrets);

/// A QStash message state name for a job status (CREATED ACTIVE RETRY DELIVERED FAILED
/// CANCELLED); `attempts` tells CREATED (no attempt yet) from RETRY.
std::string_view state_name(job_status s, std::uint32_t attempts);

/// Message ids: "msg_" + the job's id; the job id of a message id, or "" if it is not one.
std::string message_id(std::string_view job_id);
std::string job_id_of_message(std::string_view message_id);

/// A failed /v2 job's dead-letter id: "<finished ms>-<the job id's ULID>"; and back ("" if it
/// is not one).
std::string dlq_id(const job_state& s);
std::string job_id_of_dlq(std::string_view dlq_id);

/// The body QStash posts to a message's Upstash-Callback (delivered) or
/// Upstash-Failure-Callback (failed): the last response (status, header, body base64), retried,
/// maxRetries, sourceMessageId, url, method, sourceHeader, sourceBody (base64), notBefore,
/// createdAt, and on failure dlqId.
std::string callback_body(const job_state& s, const job_spec& source);

/// What a /v2 job carries beyond a v1 job, kept as JSON in job_state::qstash (never empty for a
/// /v2 job: `{}` at least). Unknown fields are ignored.
struct options {
  std::string retry_delay;            // Upstash-Retry-Delay; "" = the default backoff
  std::string label;                  // Upstash-Label
  std::string dedup_id;               // Upstash-Deduplication-Id (or the content hash)
  std::string caller_ip;              // who published it
  std::string flow_control_key;       // Upstash-Flow-Control-Key
  std::string callback_method, failure_callback_method;   // default POST
  std::int64_t callback_timeout_ms = 0, failure_callback_timeout_ms = 0;
  std::optional<std::uint32_t> callback_retries, failure_callback_retries;
  std::string callback_retry_delay, failure_callback_retry_delay;
  std::int64_t callback_delay_ms = 0, failure_callback_delay_ms = 0;
  std::vector<header_pair> callback_headers, failure_callback_headers;  // their -Forward-* headers
  std::int64_t not_before_ms = 0;     // the first run time asked for (0: none)
  std::string callback_of;            // on a callback job: "callback" or "failureCallback"
  std::uint32_t run_attempts = 0;     // attempts per run (Upstash-Retries + 1): a DLQ retry's budget
  std::uint32_t attempts_base = 0;    // attempts made before the last DLQ retry: `retried` counts from it
};

/// Retries made in the message's current run (a DLQ retry starts a new run): Upstash-Retried
/// of the next attempt, and `retried` of Upstash-Retry-Delay after a failed one (less one).
std::uint32_t retries_in_run(const job_state& s, const options& o);
/// Upstash-Retries of the current run.
std::uint32_t max_retries_in_run(const job_state& s, const options& o);

std::string encode_options(const options& o);
/// nullopt if `json` is not an options object.
std::optional<options> decode_options(std::string_view json);

}  // namespace fetchrelay::qstash
