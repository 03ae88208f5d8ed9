#include "http/wire.h"

#include <boost/beast/http/status.hpp>

#include <charconv>

#include "core/ascii.h"

namespace fetchrelay::http::wire {
namespace bhttp = boost::beast::http;

namespace {

void append_number(std::string& head, std::size_t n) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
  head.append(digits, end);
}

void finish(std::string& head, std::size_t* content_length, bool keep_alive) {
  if (content_length) {
    head += "Content-Length: ";
    append_number(head, *content_length);
    head += "\r\n";
  }
  if (!keep_alive) head += "Connection: close\r\n";
  head += "\r\n";
}

}  // namespace

bool writable(std::string_view name, std::string_view value) {
  return is_header_name(name) && !contains_any(value, std::string_view("\r\n\0", 3));
}

void append_field(std::string& head, std::string_view name, std::string_view value) {
  if (writable(name, value)) append_writable_field(head, name, value);
}

void append_writable_field(std::string& head, std::string_view name, std::string_view value) {
  head.append(name);
  head += ": ";
  head.append(value);
  head += "\r\n";
}

void start_response(std::string& head, int status, std::string_view content_type) {
  head.reserve(160);
  head += "HTTP/1.1 ";
  append_number(head, static_cast<std::size_t>(status));
  head += ' ';
  auto reason = bhttp::obsolete_reason(bhttp::int_to_status(static_cast<unsigned>(status)));
  head.append(reason.data(), reason.size());
  head += "\r\nServer: fetchrelay\r\n";
  append_field(head, "Content-Type", content_type);
}

bool finish_response(std::string& head, int status, std::size_t body_size, bool keep_alive) {
  bool bodiless = (status >= 100 && status < 200) || status == 204 || status == 304;
  finish(head, bodiless ? nullptr : &body_size, keep_alive);
  return !bodiless;
}

void start_request(std::string& head, std::string_view method, std::string_view target, std::string_view host,
                   std::string_view user_agent) {
  head.reserve(256);
  head.append(method);
  head += ' ';
  head.append(target);
  head += " HTTP/1.1\r\n";
  append_field(head, "Host", host);
  append_field(head, "User-Agent", user_agent);
}

void finish_request(std::string& head, std::string_view method, std::size_t body_size, bool keep_alive) {
  bool framed = body_size > 0 || method == "POST" || method == "PUT" || method == "OPTIONS";
  finish(head, framed ? &body_size : nullptr, keep_alive);
}

}  // namespace fetchrelay::http::wire
