#include "core/delivery.h"

#include "core/ascii.h"

namespace fetchrelay {

std::optional<std::string_view> outbound_response::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) return std::string_view(h.value);
  }
  return std::nullopt;
}

}  // namespace fetchrelay
