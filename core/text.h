// Bytes from outside (request headers, stored jobs, target responses) on their way into JSON or
// into a parser. nlohmann::json throws on invalid UTF-8 when it dumps; nothing from outside may
// reach a dump unchecked.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace fetchrelay {

/// True if every byte is printable ASCII (0x21..0x7e), i.e. a token, URL or header value
/// without spaces. Empty is true.
bool is_visible_ascii(std::string_view s) noexcept;

/// True if `s` is well-formed UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF).
bool is_valid_utf8(std::string_view s) noexcept;

/// `s` if it is valid UTF-8; otherwise each byte that is not part of a valid sequence is
/// written as the four characters \xHH, so what was stored is still visible.
std::string utf8_escaped(std::string_view s);

/// Each byte as two lower-case hex digits.
std::string hex_lower(std::string_view bytes);

/// json.dump() that never throws on bad bytes: strings built without utf8_escaped still
/// render, with U+FFFD in place of each bad byte.
std::string safe_dump(const nlohmann::json& j);

}  // namespace fetchrelay
