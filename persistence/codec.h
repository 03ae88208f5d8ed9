// Keys and values of the LevelDB store (DESIGN §4). Internal to persistence/.
//
// Key space. Integers in keys are big-endian so keys sort numerically; <id> is the 30-byte job
// id ("job_" + ULID), so ids sort by creation time.
//
//   meta/format                        -> "fetchrelay-store 2" (1 before job records)
//   meta/counters                      -> counters
//   meta/tenant/<tenant>               -> count               the tenant's unfinished jobs
//   job/<id>                           -> job_record          the job: snapshot, small request, latest attempt
//   body/<id>                          -> job_spec            a request too big to keep in the record; written once
//   due/<u64 due_ms><id>               -> ""                  until the job is terminal
//   done/<u64 finished_ms><id>         -> ""                  terminal jobs, for the retention sweep
//   list/<tenant> 0x00 <u8 status><id> -> ""                  the listing index
//   idem/<tenant> 0x00 <key>           -> idem_record
//   att/<id><u32 n>                    -> attempt_record      attempts before the latest (which the record holds)
//   sched/<tenant> 0x00 <schedule id>  -> schedule_state
//   sdue/<u64 next_ms><tenant> 0x00 <schedule id> -> ""  schedules not paused that will fire
//   topic/<tenant> 0x00 <name>        -> topic_state
//   queue/<tenant> 0x00 <name>        -> queue_state
//   qjob/<tenant> 0x00 <name> 0x00 <id> -> u8:queue_stage    the queue's unfinished jobs, in order
//   meta/qcount/<tenant> 0x00 <name>  -> queue_counts         waiting and started, unfinished
//   tag/<tenant> 0x00 <kind><name> 0x00 <id> -> ""        jobs by schedule ('s'), queue ('q'), topic ('t')
//   meta/event_seq                     -> count               the last event's sequence number
//   ev/<tenant> 0x00 <u64 seq>         -> event               the tenant's events in commit order
//   evj/<tenant> 0x00 <job id><u64 seq> -> ""                 a job's events its record does not list (past
//                                                             max_record_events, written before format 2, or
//                                                             kept for a job purged by DELETE /v1/jobs)
//
// Values, in the style of LevelDB's write_batch.cc:
//
//   job_record     := 0x02 (version) string:spec string:attempt varint:count varint:seq_delta* job_state
//                     spec: the job_spec's bytes when they fit in inline_spec_limit, else empty (body/);
//                     attempt: the latest attempt_record's bytes, or empty;
//                     seq_delta: the job's event sequence numbers, ascending, each less the one before.
//                     Store format 1 held a bare job_state here, which still reads (no spec, no
//                     attempt, no events: they are in body/, att/ and evj/).
//   job_state      := 0x01 (version) id tenant u8:status method url policy
//                     varint:created_at_ms varint:run_at_ms varint:attempts varint:max_attempts
//                     varint:timeout_ms varint:last_status_code last_error defer_reason
//                     callback_url failure_callback_url parent_id idempotency_key
//                     varint:finished_at_ms u8:has_response [response]
//                     [schedule_id varint:fire_time_ms queue topic endpoint u8:queue_stage]
//                     (only when one of them is set)
//   response       := varint:status varint:count (name value)* body
//   job_spec       := 0x01 method url varint:count (name value)* body
//   attempt_record := 0x01 varint:n varint:started_at_ms varint:duration_ms varint:status error
//                     [response_excerpt [node]]   (absent in older records)
//   idem_record    := 0x01 id varint:expires_at_ms [fingerprint]  (absent in older records)
//   schedule_state := 0x01 id tenant cron job_spec-fields(method url headers body) policy
//                     varint:max_attempts+1 (0: unset) varint:timeout_ms+1 (0: unset)
//                     callback_url failure_callback_url queue topic u8:paused
//                     varint:created_at_ms varint:next_run_at_ms varint:last_run_at_ms last_job_id
//   topic_state    := 0x01 tenant name varint:created_at_ms varint:updated_at_ms
//                     varint:count (url name)*
//   queue_state    := 0x01 tenant name varint:parallelism u8:paused varint:created_at_ms
//   queue_counts   := 0x01 varint:waiting varint:started
//   event          := 0x01 varint:at_ms u8:type job_id url varint:attempt varint:status_code
//                     varint:duration_ms varint:next_at_ms detail
//   counters       := 0x01 varint:count varint:n*   (jobs by status, indexed by status value)
//   count          := 0x01 varint:n
//   string         := varint:length bytes
//   varint         := LevelDB varint64 (7 bits a byte, low first); times are never negative
//
// A value whose version byte is unknown, or that ends early, decodes as data_loss.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/job.h"
#include "core/queue.h"
#include "core/schedule.h"
#include "core/topic.h"
#include "core/status.h"

namespace fetchrelay::persistence {

inline constexpr std::string_view format_key = "meta/format";
inline constexpr std::string_view format_value = "fetchrelay-store 2";
/// The format before job records (bare snapshots; every request, attempt and event in a key of
/// its own): still read, and marked format 2 when opened, as every value it has stays readable.
inline constexpr std::string_view format_value_1 = "fetchrelay-store 1";
/// A request up to this size (encoded) lives in its job's record, rewritten with every snapshot;
/// a bigger one has its own key, written once.
inline constexpr std::size_t inline_spec_limit = 4096;
/// Event sequence numbers a job record lists; a job's later events get evj/ entries.
inline constexpr std::size_t max_record_events = 32;
inline constexpr std::string_view counters_key = "meta/counters";
inline constexpr std::string_view due_prefix = "due/";
inline constexpr std::string_view done_prefix = "done/";
inline constexpr std::string_view tenant_prefix = "meta/tenant/";
inline constexpr std::string_view schedule_due_prefix = "sdue/";
inline constexpr std::string_view event_seq_key = "meta/event_seq";
inline constexpr std::string_view event_prefix_all = "ev/";
inline constexpr std::string_view queue_count_prefix = "meta/qcount/";

std::string job_key(std::string_view id);
std::string body_key(std::string_view id);
std::string due_key(std::int64_t due_ms, std::string_view id);
/// Splits a due/ key; false if it is not one.
bool parse_due_key(std::string_view key, std::int64_t& due_ms, std::string& id);
std::string done_key(std::int64_t finished_ms, std::string_view id);
bool parse_done_key(std::string_view key, std::int64_t& finished_ms, std::string& id);
std::string tenant_key(std::string_view tenant);
std::string list_prefix(std::string_view tenant, job_status status);
std::string list_key(std::string_view tenant, job_status status, std::string_view id);
std::string idem_key(std::string_view tenant, std::string_view key);
std::string attempt_prefix(std::string_view id);
std::string attempt_key(std::string_view id, std::uint32_t n);
std::string schedule_prefix(std::string_view tenant);
std::string schedule_key(std::string_view tenant, std::string_view id);
std::string schedule_due_key(std::int64_t due_ms, std::string_view tenant, std::string_view id);
/// Splits an sdue/ key; false if it is not one.
bool parse_schedule_due_key(std::string_view key, std::int64_t& due_ms, std::string& tenant, std::string& id);

std::string queue_prefix(std::string_view tenant);
std::string queue_key(std::string_view tenant, std::string_view name);
std::string queue_jobs_prefix(std::string_view tenant, std::string_view name);
std::string queue_job_key(std::string_view tenant, std::string_view name, std::string_view id);
std::string queue_count_key(std::string_view tenant, std::string_view name);
std::string topic_prefix(std::string_view tenant);
/// A QStash signing key pair: qskey/<tenant> ("" = the default), value current 0x00 next.
inline constexpr std::string_view signing_key_prefix = "qskey/";
std::string topic_key(std::string_view tenant, std::string_view name);

/// The listing indexes of where jobs came from.
enum class tag_kind : char { schedule = 's', queue = 'q', topic = 't' };
std::string tag_prefix(std::string_view tenant, tag_kind kind, std::string_view name);
std::string tag_key(std::string_view tenant, tag_kind kind, std::string_view name, std::string_view id);

/// The tag indexes a job is listed in (where it came from): f(kind, name) for each.
template <class F>
void for_each_tag(const job_state& s, F&& f) {
  if (!s.schedule_id.empty()) f(tag_kind::schedule, s.schedule_id);
  if (!s.queue.empty()) f(tag_kind::queue, s.queue);
  if (!s.topic.empty()) f(tag_kind::topic, s.topic);
}

/// The tenant's events: ev/<tenant> 0x00, then the big-endian sequence number.
std::string event_prefix(std::string_view tenant);
std::string event_key(std::string_view tenant, std::uint64_t seq);
/// One job's events: evj/<tenant> 0x00 <job id>, then the sequence number.
std::string event_job_prefix(std::string_view tenant, std::string_view job_id);
std::string event_job_key(std::string_view tenant, std::string_view job_id, std::uint64_t seq);
/// The sequence number that ends an ev/ or evj/ key (its last 8 bytes); 0 if it is too short.
std::uint64_t key_seq(std::string_view key);

struct idem_record {
  std::string id;
  std::int64_t expires_at_ms = 0;
  /// What the first submission asked for (method, URL, forwarded headers, body) as a digest: a
  /// repeat that asks for something else is a conflict. Empty in records written before it.
  std::string fingerprint;
  bool operator==(const idem_record&) const = default;
};

/// What the indexes of a stored job depend on: its status and, while unfinished, its due time.
struct job_position {
  job_status status = job_status::scheduled;
  std::int64_t run_at_ms = 0;
};

/// Jobs by status, indexed by the status's numeric value (index 0 unused).
using status_counters = std::array<std::int64_t, 7>;

std::string encode(const job_state& s);
std::string encode(const job_spec& s);
std::string encode(const attempt_record& a);
std::string encode(const idem_record& r);
std::string encode(const status_counters& c);
std::string encode_count(std::int64_t n);
std::string encode(const schedule_state& s);
std::string encode(const event_record& e);
std::string encode(const topic_state& t);
std::string encode(const queue_state& q);
std::string encode(const queue_counts& c);  // without seq: the key holds it

/// A job/ value split into its parts, without copying (views into the value).
struct job_record_view {
  std::string_view spec;     // the job_spec's bytes, or empty: in body/ (or lost)
  std::string_view attempt;  // the latest attempt_record's bytes, or empty
  std::vector<std::uint64_t> event_seqs;  // ascending
  std::string_view state;    // the job_state's bytes
};
/// Splits a job record (format 2) or a bare snapshot (format 1).
result<job_record_view> split_job_record(std::string_view v);
/// A job record of the given parts (spec and attempt as encoded; empty when absent).
std::string encode_job_record(std::string_view spec, std::string_view attempt,
                              const std::vector<std::uint64_t>& event_seqs, const job_state& s);
/// The attempt number an encoded attempt_record starts with; 0 if it does not read.
std::uint32_t attempt_number(std::string_view encoded_attempt);

result<job_state> decode_job_state(std::string_view v);
/// Reads only the status and run time of a job snapshot (the store's index upkeep).
result<job_position> decode_job_position(std::string_view v);
/// A job record's snapshot, or the snapshot a format 1 value is.
result<job_state> decode_job_record_state(std::string_view v);
result<job_spec> decode_job_spec(std::string_view v);
result<attempt_record> decode_attempt(std::string_view v);
result<idem_record> decode_idem(std::string_view v);
result<status_counters> decode_counters(std::string_view v);
result<std::int64_t> decode_count(std::string_view v);
result<schedule_state> decode_schedule(std::string_view v);
result<topic_state> decode_topic(std::string_view v);
result<queue_state> decode_queue(std::string_view v);
result<queue_counts> decode_queue_counts(std::string_view v);
result<event_record> decode_event(std::string_view v, std::uint64_t seq);

}  // namespace fetchrelay::persistence
