// The `serve` and `check-config` commands.
#pragma once

#include <cstdint>
#include <string>

#include "app/cli.h"
#include "core/status.h"

namespace fetchrelay::app {

/// Loads and checks the config; prints "FILE: ok" or every error, one per line, to stderr.
/// Returns 0 or 2.
int check_config(const cli_options& options);

/// Runs the relay until SIGINT/SIGTERM, then shuts down gracefully. Returns the exit code.
int serve(const cli_options& options);

/// Raises RLIMIT_NOFILE's soft (and, if allowed, hard) limit to at least `needed`.
/// `why` explains the figure in the error message.
status raise_fd_limit(std::uint64_t needed, const std::string& why);

}  // namespace fetchrelay::app
