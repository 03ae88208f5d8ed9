#include "core/status.h"

namespace fetchrelay {

std::string_view to_string(status_code code) noexcept {
  switch (code) {
    case status_code::ok: return "ok";
    case status_code::invalid_argument: return "invalid_argument";
    case status_code::unavailable: return "unavailable";
    case status_code::resource_exhausted: return "resource_exhausted";
    case status_code::not_found: return "not_found";
    case status_code::failed_precondition: return "failed_precondition";
    case status_code::data_loss: return "data_loss";
    case status_code::internal: return "internal";
  }
  return "unknown";
}

std::string status::to_string() const {
  if (is_ok()) return "ok";
  std::string out(fetchrelay::to_string(code_));
  out += ": ";
  out += message_;
  return out;
}

}  // namespace fetchrelay
