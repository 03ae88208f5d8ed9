#!/usr/bin/env bash
# Stops the throwaway PostgreSQL that scripts/pg-up.sh started in DIR and removes DIR.
#
#   scripts/pg-down.sh DIR
set -euo pipefail
dir="${1:?usage: scripts/pg-down.sh DIR}"
[[ -d "$dir" ]] || exit 0
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [[ -f "$dir/data/postmaster.pid" && -n "$bin" ]]; then
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  else
    "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
fi
rm -rf "$dir"
