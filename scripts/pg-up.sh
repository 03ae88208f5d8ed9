#!/usr/bin/env bash
# Starts a throwaway PostgreSQL (Debian's postgresql-15) in DIR for tests, benchmarks and trying
# the postgres backend: fsync on, no TCP at all (listen_addresses=''), a unix socket in DIR/sock,
# trust authentication for the local user `postgres`, and an empty database `fetchrelay`. Prints
# the libpq DSN and writes it to DIR/dsn. If DIR already holds a running server, it is reused;
# a stopped (or crashed) one is started again on its data. As root, the server runs as the
# `postgres` user (initdb refuses root). Stop and remove it with scripts/pg-down.sh DIR.
#
#   scripts/pg-up.sh DIR [--optional]     e.g. scripts/pg-up.sh /tmp/fetchrelay-pg
# PG_OPTS: more server options for a new start, e.g. "-c shared_preload_libraries=pg_stat_statements".
# --optional (the test fixture): without a server installed, say so and exit 0 with no DIR/dsn,
# so the tests that need one skip with that message.
set -euo pipefail
dir="${1:?usage: scripts/pg-up.sh DIR [--optional]}"
optional="${2:-}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [[ -z "$bin" || ! -x "$bin/initdb" ]]; then
  echo "pg-up: PostgreSQL's server is not installed (scripts/install-deps.sh installs postgresql-15)" >&2
  [[ "$optional" == --optional ]] && rm -f "$dir/dsn" && exit 0
  exit 3
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
dsn="host=$dir/sock port=5432 user=postgres dbname=fetchrelay"
if [[ -f "$dir/data/postmaster.pid" ]] && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  echo "$dsn" > "$dir/dsn"
  echo "$dsn"
  exit 0
fi
start() {
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
    -o "-k $dir/sock -c listen_addresses='' -c fsync=on -c synchronous_commit=on -c max_connections=200 ${PG_OPTS:-}" start >/dev/null || {
    cat "$dir/log" >&2
    exit 1
  }
}
if [[ -f "$dir/data/PG_VERSION" && -f "$dir/created" ]]; then
  start  # crash recovery replays the WAL: every synced commit is there
  echo "$dsn" > "$dir/dsn"
  echo "$dsn"
  exit 0
fi
rm -rf "$dir/data" "$dir/sock" "$dir/log" "$dir/dsn"
mkdir -p "$dir/sock"
if [[ "$(id -u)" == 0 ]]; then
  chown postgres: "$dir" "$dir/sock"
  if ! runuser -u postgres -- test -w "$dir"; then
    echo "pg-up: the postgres user cannot reach $dir: every folder above it needs o+x" >&2
    exit 1
  fi
fi
as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
  cat "$dir/initdb.log" >&2
  exit 1
}
start
as_owner "$bin/createdb" -h "$dir/sock" -U postgres fetchrelay
touch "$dir/created"
echo "$dsn" > "$dir/dsn"
echo "$dsn"
