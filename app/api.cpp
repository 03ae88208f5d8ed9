#include "app/api.h"

#include <nlohmann/json.hpp>

namespace fetchrelay::app {
namespace {

http::response method_not_allowed(const http::request& req, const char* allow) {
  auto r = http::response::error(405, "method_not_allowed",
                                 req.method + " is not allowed on " + std::string(req.path()) +
                                     "; use " + allow);
  r.headers.push_back({"Allow", allow});
  return r;
}

}  // namespace

http::handler make_api_handler(api_deps deps) {
  return [deps](http::request&& req, http::responder reply) {
    std::string_view path = req.path();
    if (path == "/healthz") {
      if (req.method != "GET" && req.method != "HEAD") {
        reply.send(method_not_allowed(req, "GET"));
        return;
      }
      caf::anon_send(deps.health, actors::ping_atom::value,
                     actors::completion<actors::health_report>(
                         [reply](actors::health_report h) {
                           nlohmann::json j = {{"status", "ok"},
                                               {"version", h.version},
                                               {"uptime_ms", h.uptime_ms}};
                           reply.send(http::response::json(200, j.dump()));
                         }));
      return;
    }
    reply.send(http::response::error(404, "not_found",
                                     "no route for " + req.method + " " + std::string(path)));
  };
}

}  // namespace fetchrelay::app
