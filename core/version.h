// The build's identity, generated at build time by cmake/version.cmake.
#pragma once

#include <string>
#include <string_view>

namespace fetchrelay {

/// The project version from CMake, e.g. "0.1.0".
std::string_view version() noexcept;

/// `git describe --always --dirty` of the source tree at build time, or "unknown".
std::string_view git_revision() noexcept;

/// "fetchrelay 0.1.0 (rev abc123def456)".
std::string version_line();

}  // namespace fetchrelay
