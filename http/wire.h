// The head of an HTTP/1.1 message, written by hand: status or request line, fields, framing.
// Beast's serializer took ~14k instructions a message (a sixth of a job's io work); this is one
// pass into one string, sent with the body as a second buffer. The bodies are not copied.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace fetchrelay::http::wire {

/// A field that can be written as is: a token name, a value without CR, LF or NUL. Fields that
/// are not are left out (no header injection, whatever a plugin or handler put in).
bool writable(std::string_view name, std::string_view value);

/// Appends "name: value\r\n" if writable.
void append_field(std::string& head, std::string_view name, std::string_view value);
/// The same for a field the caller has already found writable (the client refuses an attempt
/// whose fields are not, before it takes a connection).
void append_writable_field(std::string& head, std::string_view name, std::string_view value);

/// "HTTP/1.1 <status> <reason>\r\n" and the Server and Content-Type fields; the caller appends
/// its own fields, then finish_response().
void start_response(std::string& head, int status, std::string_view content_type);
/// Content-Length (none for 1xx, 204 and 304, whose body is then not sent), "Connection: close"
/// unless keep_alive, and the blank line. Returns whether the body is sent.
bool finish_response(std::string& head, int status, std::size_t body_size, bool keep_alive);

/// "<method> <target> HTTP/1.1\r\n" and Host and User-Agent; the caller appends its fields, then
/// finish_request().
void start_request(std::string& head, std::string_view method, std::string_view target, std::string_view host,
                   std::string_view user_agent);
/// Content-Length when there is a body, or for an empty POST, PUT or OPTIONS (as Beast frames
/// them); "Connection: close" unless keep_alive; the blank line.
void finish_request(std::string& head, std::string_view method, std::size_t body_size, bool keep_alive);

}  // namespace fetchrelay::http::wire
