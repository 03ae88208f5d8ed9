#include "core/event.h"

#include <cstdio>

namespace fetchrelay {

std::string_view to_string(event_type t) noexcept {
  switch (t) {
    case event_type::created: return "created";
    case event_type::retrying: return "retrying";
    case event_type::deferred: return "deferred";
    case event_type::delivered: return "delivered";
    case event_type::failed: return "failed";
    case event_type::cancelled: return "cancelled";
    case event_type::retried: return "retried";
  }
  return "unknown";
}

std::optional<event_type> parse_event_type(std::string_view s) noexcept {
  for (auto t : {event_type::created, event_type::retrying, event_type::deferred, event_type::delivered,
                 event_type::failed, event_type::cancelled, event_type::retried}) {
    if (to_string(t) == s) return t;
  }
  return std::nullopt;
}

std::string event_id(std::uint64_t seq) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "evt_%016llx", static_cast<unsigned long long>(seq));
  return buf;
}

std::optional<std::uint64_t> parse_event_id(std::string_view id) noexcept {
  if (id.size() != 20 || !id.starts_with("evt_")) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : id.substr(4)) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    v = v << 4 | static_cast<std::uint64_t>(d);
  }
  return v;
}

}  // namespace fetchrelay
