// The web console (GET /, /ui, /ui/...): the embedded static files, with a strict
// Content-Security-Policy. The console itself is a page that calls the /v1 API with the key
// the user signs in with.
#pragma once

#include <optional>
#include <string_view>

#include "http/server.h"

namespace fetchrelay::app {

/// The answer for a console path: /ui/assets/<file> is that file, any other /ui path and /
/// the page (the console routes in the browser); GET and HEAD. nullopt if `path` is not the
/// console's.
std::optional<http::response> console_response(std::string_view method, std::string_view path,
                                               std::optional<std::string_view> if_none_match);

}  // namespace fetchrelay::app
