// Fuzz target: the store's record and key codecs (persistence/codec.h, pure code compiled in
// here, no LevelDB). Decoding arbitrary bytes must fail cleanly; whatever decodes encodes again to
// a value that decodes to the same record (encode is the one the store writes with).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "persistence/codec.h"

namespace {

using namespace fetchrelay;
using namespace fetchrelay::persistence;

/// decode(encode(decode(v))) equals decode(v) for every record type that decoded.
template <class T, class Decode>
void round_trip(std::string_view v, Decode decode) {
  auto first = decode(v);
  if (!first.is_ok()) return;
  auto again = decode(encode(*first));
  if (!again.is_ok() || !(*again == *first)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view v(reinterpret_cast<const char*>(data), size);
  round_trip<job_state>(v, decode_job_state);
  round_trip<job_spec>(v, decode_job_spec);
  round_trip<attempt_record>(v, decode_attempt);
  round_trip<idem_record>(v, decode_idem);
  round_trip<status_counters>(v, decode_counters);
  round_trip<schedule_state>(v, decode_schedule);
  round_trip<topic_state>(v, decode_topic);
  round_trip<queue_state>(v, decode_queue);
  round_trip<queue_counts>(v, decode_queue_counts);
  // A job record splits into parts that build the same record again.
  if (auto parts = split_job_record(v); parts.is_ok()) {
    if (auto st = decode_job_state(parts->state); st.is_ok()) {
      std::string record = encode_job_record(parts->spec, parts->attempt, parts->event_seqs, *st);
      auto again = split_job_record(record);  // views into `record`
      if (!again.is_ok() || again->spec != parts->spec || again->attempt != parts->attempt ||
          again->event_seqs != parts->event_seqs || *decode_job_state(again->state) != *st) {
        std::abort();
      }
    }
    (void)attempt_number(parts->attempt);
  }
  (void)decode_job_position(v);
  (void)decode_count(v);
  (void)decode_event(v, 42);
  std::int64_t ms = 0;
  std::string id, tenant;
  if (parse_due_key(v, ms, id) && due_key(ms, id) != v) std::abort();  // keys parse back exactly
  if (parse_done_key(v, ms, id) && done_key(ms, id) != v) std::abort();
  (void)parse_schedule_due_key(v, ms, tenant, id);
  return 0;
}
