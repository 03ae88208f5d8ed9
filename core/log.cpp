#include "core/log.h"

#include <charconv>

#include "core/ascii.h"
#include "core/text.h"

namespace fetchrelay::log {
namespace {

thread_local fields current_fields{};

}  // namespace

fields current() noexcept { return current_fields; }

detail::scope::scope(fields f) noexcept : previous(current_fields) { current_fields = f; }
detail::scope::~scope() { current_fields = previous; }

void append_json_escaped(std::string& out, std::string_view s) {
  std::string escaped;
  if (!is_valid_utf8(s)) {
    escaped = utf8_escaped(s);
    s = escaped;
  }
  static const char hex[] = "0123456789abcdef";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        } else {
          out += ch;
        }
    }
  }
}

namespace {

/// A text field's value is quoted when empty or when it holds a space, '"', '=', '\\', a control
/// character or a byte outside ASCII (one pass: this runs for every field of every line).
bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char ch : v) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '=' || c == '\\') return true;
  }
  return false;
}

void append_number(std::string& out, std::int64_t n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

}  // namespace

void append_fields_text(std::string& out) {
  for (const auto& f : current_fields) {
    out += ' ';
    out.append(f.key);
    out += '=';
    if (f.is_number) {
      append_number(out, f.number);
    } else if (!needs_quotes(f.text)) {
      out.append(f.text);
    } else {
      out += '"';
      append_json_escaped(out, f.text);
      out += '"';
    }
  }
}

void append_fields_json(std::string& out) {
  for (const auto& f : current_fields) {
    out += ",\"";
    append_json_escaped(out, f.key);
    out += "\":";
    if (f.is_number) {
      append_number(out, f.number);
    } else {
      out += '"';
      append_json_escaped(out, f.text);
      out += '"';
    }
  }
}

std::string_view origin_of(std::string_view url) noexcept {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return url.substr(0, 0);
  auto end = find_any(url.substr(scheme + 3), "/?#");
  if (end != std::string_view::npos) end += scheme + 3;
  return url.substr(0, end);
}

}  // namespace fetchrelay::log
