// Fuzz target: the raw HTTP request path, in-process: bytes into the server's own parser (Beast,
// with the server's limits, framing checks and error answers: http::parse_request_bytes), then
// the API's router (app/router.h: path check, /v2 split, API key, pattern match, 405/404) on
// every request the parser lets through. The one fuzz target that links Beast.
//
// Checks beyond "no crash": exactly one of request / error answer (or neither: the bytes ended
// first); every error answer is 4xx JSON; the parser never takes more bytes than it was given;
// a routed request either names a handler (with a tenant under /v1/) or carries a 4xx answer;
// only the configured key is ever accepted.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "app/router.h"
#include "config/config.h"
#include "http/server.h"

namespace {

const fetchrelay::config::relay_config& relay_config() {
  static const fetchrelay::config::relay_config cfg = [] {
    auto r = fetchrelay::config::load_config_text(
        "server: {listen: 127.0.0.1:0}\n"
        "storage: {path: /nonexistent}\n"
        "auth: {keys: [{tenant: a, key: relay_sk_fuzz}]}\n"
        "qstash: {enabled: true}\n",
        "fuzz.yaml", [](const std::string&) { return std::optional<std::string>(); });
    if (!r.config) std::abort();
    return *r.config;
  }();
  return cfg;
}

void check_error(const fetchrelay::http::response& r) {
  if (r.status < 400 || r.status > 499) std::abort();
  if (!nlohmann::json::accept(r.body)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  fetchrelay::http::server_options o;
  o.max_header_size = 2048;  // small limits, so the fuzzer reaches them
  o.max_body = 1024;
  auto parsed = fetchrelay::http::parse_request_bytes(bytes, o);
  if (parsed.req && parsed.error) std::abort();
  if (parsed.consumed > size) std::abort();
  if (parsed.error) check_error(*parsed.error);
  if (!parsed.req) return 0;
  const auto& req = *parsed.req;
  if (req.body.size() > o.max_body) std::abort();
  auto routed = fetchrelay::app::route_request(relay_config(), req);
  using kind = fetchrelay::app::routed::kind;
  if (routed.what == kind::answer) {
    check_error(routed.answer);
  } else if (routed.what == kind::handler) {
    bool v1 = req.path().rfind("/v1/", 0) == 0;
    if (v1 && routed.tenant != "a") std::abort();  // only the one key is accepted
    auto auth = req.header("Authorization");
    if (v1 && (!auth || auth->size() != 20 || auth->substr(7) != "relay_sk_fuzz")) std::abort();
  }
  return 0;
}
