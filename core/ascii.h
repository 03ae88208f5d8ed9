// ASCII helpers for HTTP header names (case-insensitive) and the one list of headers the relay
// never takes from a client or forwards to a target. Shared by the API, the server and the client.
#pragma once

#include <cstddef>
#include <string_view>

namespace fetchrelay {

inline char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline bool istarts_with(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (ascii_lower(s[i]) != ascii_lower(prefix[i])) return false;
  }
  return true;
}

inline bool iequals(std::string_view a, std::string_view b) { return a.size() == b.size() && istarts_with(a, b); }

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the classic list), plus Host and Content-Length: the
/// connection that carries a request sets these, so they are never forwarded (DESIGN §2).
inline bool is_hop_by_hop(std::string_view name) {
  for (std::string_view h : {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
                             "upgrade", "proxy-authenticate", "proxy-authorization", "host", "content-length"}) {
    if (iequals(name, h)) return true;
  }
  return false;
}

/// The first position in `s` of any byte of the short set `set`, or npos. One pass over `s`:
/// std::string_view::find_first_of calls memchr on the set for every byte, which costs when it
/// runs on every URL and header of every attempt.
inline std::size_t find_any(std::string_view s, std::string_view set) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    for (char x : set) {
      if (s[i] == x) return i;
    }
  }
  return std::string_view::npos;
}

inline bool contains_any(std::string_view s, std::string_view set) { return find_any(s, set) != std::string_view::npos; }

namespace detail {
/// RFC 9110 token characters, by byte (a table: header names are checked on every message).
inline constexpr auto token_chars = [] {
  struct table {
    bool is[256] = {};
  } t;
  for (int c = '0'; c <= '9'; ++c) t.is[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t.is[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t.is[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t.is[static_cast<unsigned char>(c)] = true;
  return t;
}();
}  // namespace detail

/// An RFC 9110 field name: one or more token characters.
inline bool is_header_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!detail::token_chars.is[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

/// An RFC 9110 field value as sent on the wire: no CR, LF, NUL or other control character
/// (horizontal tab allowed). A value from JSON or a decoded query must pass this before it is
/// forwarded, or it could add headers to the request sent.
inline bool is_header_value(std::string_view value) {
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

}  // namespace fetchrelay
