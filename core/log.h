// Structured log lines (docs/operations.md): a message plus named fields. The JSON format
// writes each field as its own key ("job_id", "attempt", ...); the text format appends
// key=value pairs. Lines go through spdlog; the formatters (app/logging.cpp) read the fields of
// the line being written from this thread (the logger is synchronous, so it is this thread).
//
//   log::event(spdlog::level::info, {{"job_id", id}, {"attempt", n}}, "attempt failed");
//
// Cheap when the level is off: nothing is formatted and no field is copied.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

namespace fetchrelay::log {

struct field {
  std::string_view key;
  bool is_number = false;
  std::string_view text;
  std::int64_t number = 0;

  field(std::string_view k, std::string_view v) : key(k), text(v) {}
  field(std::string_view k, const std::string& v) : key(k), text(v) {}
  field(std::string_view k, const char* v) : key(k), text(v) {}
  template <class T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
  field(std::string_view k, T v) : key(k), is_number(true), number(static_cast<std::int64_t>(v)) {}
};

using fields = std::initializer_list<field>;

/// The fields of the line being written on this thread; empty outside event().
fields current() noexcept;

namespace detail {
struct scope {
  explicit scope(fields f) noexcept;
  ~scope();
  fields previous;
};
}  // namespace detail

template <class... Args>
void event(spdlog::level::level_enum level, fields f, spdlog::format_string_t<Args...> format, Args&&... args) {
  auto* logger = spdlog::default_logger_raw();
  if (!logger->should_log(level)) return;
  detail::scope s(f);
  logger->log(level, format, std::forward<Args>(args)...);
}

/// Appends `s` as the inside of a JSON string: quotes, backslashes and controls escaped, bytes
/// that are not UTF-8 shown as \xHH (core/text.h).
void append_json_escaped(std::string& out, std::string_view s);

/// Appends the fields of this line: ` key=value` (text, quoted when needed) or `,"key":value`
/// (JSON).
void append_fields_text(std::string& out);
void append_fields_json(std::string& out);

/// scheme://host[:port] of a URL, without parsing it (a log field; never the path or query,
/// which may carry secrets).
std::string_view origin_of(std::string_view url) noexcept;

}  // namespace fetchrelay::log
