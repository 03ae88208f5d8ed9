// The web console's static files (app/console/), compiled into the binary by cmake/embed.cmake.
#pragma once

#include <string_view>
#include <vector>

namespace fetchrelay::app {

struct console_asset {
  std::string_view name;  // the file name, e.g. "console.js"
  std::string_view data;
};

const std::vector<console_asset>& console_assets();

}  // namespace fetchrelay::app
