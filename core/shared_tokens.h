// Token buckets shared by every relay on one database (several relays, docs/scale-out.md), for
// the plugins' rate limits: the host hands each plugin instance its own bucket, keyed by plugin,
// origin and policy.
//
// Never blocking: take() answers from tokens this node leased earlier and asks for more in the
// background, so a plugin's on_attempt never waits on the database. A node leases at most
// max(32, rate × 1 s) tokens at a time and may spend them for one second only; so across the
// cluster a target sees at most burst + rate·(t + 1 s) in any window of t seconds. Without the
// database (an error, or before the first lease) nothing is granted: the limit fails closed.
#pragma once

#include <cstdint>
#include <string>

namespace fetchrelay {

class shared_tokens {
 public:
  virtual ~shared_tokens() = default;
  /// Up to `want` tokens of bucket `key` (rate_per_s refills it, burst caps it) that this node may
  /// spend now; 0 if none are leased here at the moment (then more are asked for).
  virtual std::int64_t take(const std::string& key, std::int64_t want, double rate_per_s, std::int64_t burst) = 0;
  /// Nothing of bucket `key` is granted to any node before `until_ms` (wall clock, ms since the
  /// epoch): the target answered 429 with Retry-After. Written in the background.
  virtual void pause(const std::string& key, std::int64_t until_ms) = 0;
  /// The relays alive now (this one included; at least 1).
  virtual int live_nodes() const = 0;
};

}  // namespace fetchrelay
