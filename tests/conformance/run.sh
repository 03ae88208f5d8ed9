#!/usr/bin/env bash
# The QStash conformance suite (ctest: QstashConformance): installs the pinned @upstash/qstash
# from the lockfile when node_modules is missing or older than the lockfile (so a second run needs
# no network), then drives the SDK against the fetchrelay binary given as $1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$1"
if [ ! -f "$here/node_modules/.package-lock.json" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
fi
cd "$here"
FETCHRELAY_BIN="$bin" exec node --test --test-reporter=spec conformance.test.mjs
