#include "app/console.h"

#include <cstdint>
#include <cstdio>

#include "app/console_assets.h"

namespace fetchrelay::app {
namespace {

constexpr std::string_view assets_prefix = "/ui/assets/";
constexpr const char* csp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

std::string content_type_of(std::string_view name) {
  auto ends = [&](std::string_view ext) { return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext; };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".ico")) return "image/x-icon";
  return "application/octet-stream";
}

/// A strong ETag: FNV-1a 64 of the bytes (they change only with the binary).
std::string etag_of(std::string_view data) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  char buf[24];
  std::snprintf(buf, sizeof buf, "\"%016llx\"", static_cast<unsigned long long>(h));
  return buf;
}

/// If-None-Match holds `etag`: a list, weak forms (W/"…", as proxies that compress send) and "*"
/// included (RFC 9110 13.1.2: weak comparison).
bool matches_etag(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    auto comma = header.find(',');
    std::string_view tag = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag == "*") return true;
    if (tag.rfind("W/", 0) == 0) tag.remove_prefix(2);
    if (tag == etag) return true;
  }
  return false;
}

const console_asset* find_asset(std::string_view name) {
  for (const auto& a : console_assets()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

}  // namespace

std::optional<http::response> console_response(std::string_view method, std::string_view path,
                                               std::optional<std::string_view> if_none_match) {
  if (path != "/" && path != "/ui" && path.rfind("/ui/", 0) != 0) return std::nullopt;
  if (method != "GET" && method != "HEAD") {
    auto r = http::response::error(405, "method_not_allowed", "the console answers GET and HEAD only");
    r.headers.push_back({"Allow", "GET, HEAD"});
    return r;
  }
  const console_asset* a = nullptr;
  if (path.rfind(assets_prefix, 0) == 0) {
    a = find_asset(path.substr(assets_prefix.size()));
    if (!a) return http::response::error(404, "not_found", "no console file " + std::string(path.substr(assets_prefix.size())));
  } else {
    a = find_asset("index.html");
    if (!a) return http::response::error(404, "not_found", "this build has no console");
  }
  http::response r;
  std::string etag = etag_of(a->data);
  r.headers = {{"ETag", etag},
               {"Cache-Control", "no-cache"},
               {"Content-Security-Policy", csp},
               {"X-Content-Type-Options", "nosniff"},
               {"Referrer-Policy", "no-referrer"},
               {"X-Frame-Options", "DENY"}};
  if (if_none_match && matches_etag(*if_none_match, etag)) {
    r.status = 304;
    r.content_type = content_type_of(a->name);
    return r;
  }
  r.status = 200;
  r.content_type = content_type_of(a->name);
  if (method == "GET") r.body.assign(a->data);  // HEAD: the same headers, no body
  return r;
}

}  // namespace fetchrelay::app
