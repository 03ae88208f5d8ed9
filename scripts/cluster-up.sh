#!/usr/bin/env bash
# Starts a throwaway PostgreSQL and N relays on it (several relays on one database), for trying
# the cluster by hand and for benchmarks: each relay gets its own folder, port, node id and log
# under DIR; they share the DSN and the tables. Prints one "node port" line per relay and writes
# DIR/ports. Stop everything with scripts/cluster-down.sh DIR.
#
#   scripts/cluster-up.sh N [DIR]      (after `make build`; DIR defaults to /tmp/fetchrelay-cluster)
set -euo pipefail
n="${1:?usage: scripts/cluster-up.sh N [DIR]}"
dir="${2:-/tmp/fetchrelay-cluster}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${FETCHRELAY_BIN:-$root/build/fetchrelay}"
[[ -x "$bin" ]] || { echo "cluster-up: $bin not found: run make build first" >&2; exit 1; }
mkdir -p "$dir"
chmod 755 "$dir"
dsn="$("$root/scripts/pg-up.sh" "$dir/pg")"
: > "$dir/ports"
for i in $(seq 1 "$n"); do
  node="$dir/node$i"
  mkdir -p "$node"
  cat > "$node/relay.yaml" <<YAML
server: {listen: 127.0.0.1:0}
storage: {backend: postgres, postgres: {dsn: '$dsn'}}
cluster: {node_id: node$i}
auth: {keys: [{tenant: default, key: "\${FETCHRELAY_API_KEY:-relay_sk_dev}"}]}
delivery: {allow_private_networks: true}
YAML
  rm -f "$node/port"
  nohup "$bin" serve --config "$node/relay.yaml" --port-file "$node/port" > "$node/relay.log" 2>&1 &
  echo $! > "$node/pid"
  for _ in $(seq 1 100); do [[ -s "$node/port" ]] && break; sleep 0.1; done
  [[ -s "$node/port" ]] || { echo "cluster-up: node$i did not start; see $node/relay.log" >&2; exit 1; }
  echo "node$i $(cat "$node/port")" | tee -a "$dir/ports"
done
