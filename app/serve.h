// The `serve`, `check-config` and `repair` commands.
#pragma once

#include <cstdint>
#include <string>

#include "app/cli.h"
#include "core/status.h"

namespace fetchrelay::app {

/// Loads and checks the config; prints "FILE: ok" or every error, one per line, to stderr.
/// Returns 0 or 2.
int check_config(const cli_options& options);

/// `fetchrelay repair`: LevelDB's repair of the configured store, then its indexes rebuilt from
/// the records that survived; logs what was damaged and how many jobs were kept. Returns 0, 1
/// (the repair failed, e.g. a relay holds the store) or 2 (bad config). Never run by `serve`.
int repair(const cli_options& options);

/// `fetchrelay migrate`: creates or migrates the PostgreSQL tables (storage.backend: postgres).
/// Returns 0, 1 when the database refuses or cannot be reached, 2 for a bad config.
int migrate(const cli_options& options);

/// Runs the relay until SIGINT/SIGTERM, then shuts down gracefully. Returns the exit code.
int serve(const cli_options& options);

/// Raises RLIMIT_NOFILE's soft (and, if allowed, hard) limit to at least `needed`.
/// `why` explains the figure in the error message.
status raise_fd_limit(std::uint64_t needed, const std::string& why);

}  // namespace fetchrelay::app
