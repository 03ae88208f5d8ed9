#!/usr/bin/env bash
# Stops the relays (SIGTERM: each hands its shards back) and the PostgreSQL that
# scripts/cluster-up.sh started in DIR, and removes DIR.
#
#   scripts/cluster-down.sh [DIR]
set -euo pipefail
dir="${1:-/tmp/fetchrelay-cluster}"
root="$(cd "$(dirname "$0")/.." && pwd)"
[[ -d "$dir" ]] || exit 0
for pidfile in "$dir"/node*/pid; do
  [[ -f "$pidfile" ]] || continue
  pid="$(cat "$pidfile")"
  kill -TERM "$pid" 2>/dev/null || true
done
for pidfile in "$dir"/node*/pid; do
  [[ -f "$pidfile" ]] || continue
  pid="$(cat "$pidfile")"
  for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
done
"$root/scripts/pg-down.sh" "$dir/pg"
rm -rf "$dir"
