// Standard base64 (RFC 4648, with padding).
#pragma once

#include <string>
#include <string_view>

namespace fetchrelay {

std::string base64_encode(std::string_view in);

}  // namespace fetchrelay
