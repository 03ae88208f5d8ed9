#!/usr/bin/env bash
# The web console test (app/console/ in Debian's Chromium through playwright-core): installs the
# pinned playwright-core from the lockfile when node_modules is missing or older than the lockfile
# (so a second run needs no network; playwright-core downloads no browser), then drives the
# console of the fetchrelay binary given as $1. Screenshots of each page go to $2 (default: a
# temporary folder).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
shots="${2:-$(mktemp -d "${TMPDIR:-/tmp}/fetchrelay-console-shots.XXXXXX")}"
mkdir -p "$shots"
shots="$(cd "$shots" && pwd)"
if [ ! -f "$here/node_modules/.package-lock.json" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
fi
cd "$here"
FETCHRELAY_BIN="$bin" SCREENSHOT_DIR="$shots" exec node --test --test-reporter=spec console.test.mjs
