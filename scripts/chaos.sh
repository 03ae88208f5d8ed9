#!/usr/bin/env bash
# Chaos run: CYCLES times, start the relay on the same store, send a mixed load and kill -9 the
# relay at a random moment; at the end, restart once more, drain, and count.
#
#   scripts/chaos.sh CYCLES        (after `make build`; needs nginx: scripts/install-deps.sh --bench)
#
# Each cycle sends, at once, with the benchmark's load generator (its --ids journal records every
# 202 it received, i.e. every acknowledged job):
#   * immediate jobs to the sink's /ok,
#   * jobs due 0-3 s later (X-Not-Before) to /ok,
#   * jobs to /flaky (500 on attempts 1 and 2, then 200),
#   * jobs to /fail (always 500: they end failed after 3 attempts),
# each part CHAOS_JOBS/4 jobs at most (default 2,000 a cycle), then kills the relay with SIGKILL
# after a random 20-800 ms (seeded: CHAOS_SEED), mostly while submissions still arrive. The sink
# (nginx, unbuffered access log) records every attempt with the job id.
#
# Prints: acknowledged; delivered (a 200 at the sink) of the deliverable ones; lost (acknowledged,
# deliverable, never delivered; or to /fail and never attempted 3 times); duplicated (deliveries
# beyond a job's first 200: at-least-once allows them after a kill). Exit 1 if anything is lost or
# a restart fails.
set -euo pipefail

CYCLES=${1:?usage: scripts/chaos.sh CYCLES}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
CHAOS_JOBS=${CHAOS_JOBS:-2000}
CHAOS_SEED=${CHAOS_SEED:-16}
DRAIN_S=${DRAIN_S:-180}
RELAY="$ROOT/$BUILD/fetchrelay"
LOADGEN="$ROOT/$BUILD/bench/fetchrelay_loadgen"
KEY=relay_sk_chaos_0123456789
for f in "$RELAY" "$LOADGEN"; do [ -x "$f" ] || { echo "chaos: $f is missing; run make build" >&2; exit 2; }; done
command -v nginx >/dev/null || { echo "chaos: nginx is missing; run scripts/install-deps.sh --bench" >&2; exit 2; }

WORK=$(mktemp -d /tmp/fetchrelay-chaos.XXXXXX)
NGINX_PID=""
RELAY_PID=""
LOADGEN_PIDS=()
cleanup() {
  for p in "${LOADGEN_PIDS[@]}" "$RELAY_PID" "$NGINX_PID"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${CHAOS_KEEP:-}" ]; then mkdir -p "$CHAOS_KEEP"; cp -r "$WORK/nginx/access.log" "$WORK/relay.log" "$WORK/ids" "$CHAOS_KEEP/" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

SINK_LOG_BUFFER=""  # every attempt is in the log when the drain looks
# free_port, wait_port, start_sink
source "$ROOT/bench/sink.sh"

RANDOM=$CHAOS_SEED
mkdir -p "$WORK/ids"
cat >"$WORK/relay.yaml" <<EOF
server: {listen: 127.0.0.1:0}
storage: {path: $WORK/data}
auth: {keys: [{tenant: chaos, key: $KEY}]}
log: {level: warn}
delivery: {allow_networks: [127.0.0.0/8]}
limits: {max_pending_per_tenant: 100000000}
policies:
  default: {timeout: 5s, retry: {attempts: 3, schedule: [100ms], jitter: 0}}
EOF

start_relay() {
  rm -f "$WORK/port"
  "$RELAY" serve --config "$WORK/relay.yaml" --port-file "$WORK/port" >>"$WORK/relay.log" 2>&1 &
  RELAY_PID=$!
  for _ in $(seq 1 1500); do [ -s "$WORK/port" ] && break; kill -0 "$RELAY_PID" 2>/dev/null || break; sleep 0.02; done
  if [ ! -s "$WORK/port" ]; then
    echo "chaos: the relay did not start (cycle $1):" >&2
    tail -20 "$WORK/relay.log" >&2
    exit 1
  fi
  RELAY_PORT=$(cat "$WORK/port")
}

# load KIND PATH CYCLE [loadgen options...]: CHAOS_JOBS/4 jobs in the background, journal ids/KIND.CYCLE.
load() {
  local kind=$1 path=$2 cycle=$3; shift 3
  "$LOADGEN" --port "$RELAY_PORT" --count $((CHAOS_JOBS / 4)) --connections 4 --seconds 30 \
    --header "Authorization: Bearer $KEY" --header "Content-Type: application/json" \
    --header "X-Fetch-Url: http://127.0.0.1:$SINK_PORT$path" --body "{\"kind\":\"$kind\"}" \
    --ids "$WORK/ids/$kind.$cycle" "$@" >/dev/null 2>&1 &
  LOADGEN_PIDS+=($!)
}

start_sink
echo "chaos: $CYCLES cycles of up to $CHAOS_JOBS jobs and a kill -9 (seed $CHAOS_SEED), sink on $SINK_PORT"
started=$SECONDS
for ((c = 1; c <= CYCLES; c++)); do
  start_relay "$c"
  LOADGEN_PIDS=()
  load ok /ok "$c"
  load delayed /ok "$c" --due-spread 0:3000
  load flaky /flaky "$c"
  load fail /fail "$c"
  sleep "$(awk -v r="$RANDOM" 'BEGIN {printf "%.3f", 0.02 + 0.78 * r / 32767}')"
  if ! kill -9 "$RELAY_PID" 2>/dev/null; then  # it died by itself: the very thing this looks for
    echo "chaos: the relay exited on its own in cycle $c:" >&2
    tail -20 "$WORK/relay.log" >&2
    exit 1
  fi
  wait "$RELAY_PID" 2>/dev/null || true
  RELAY_PID=""
  for p in "${LOADGEN_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  LOADGEN_PIDS=()
  if ((c % 10 == 0)); then echo "chaos: cycle $c, $(cat "$WORK"/ids/* 2>/dev/null | wc -l) acknowledged so far"; fi
done

# Drain: one more start, no kill; wait until every deliverable acknowledged job reached the sink.
start_relay drain
acked_of() { cat "$WORK"/ids/"$1".* 2>/dev/null | awk '{print $2}' | sort -u || true; }
acked_of ok >"$WORK/ok"
acked_of delayed >"$WORK/delayed"
acked_of flaky >"$WORK/flaky"
acked_of fail >"$WORK/fail"
sort -u "$WORK/ok" "$WORK/delayed" "$WORK/flaky" >"$WORK/deliverable"
log_ids() { awk -v s="$1" '$5 == s && $2 != "-" {print $2}' "$WORK/nginx/access.log"; }
delivered() { log_ids 200 | sort -u | comm -12 - "$WORK/deliverable" | wc -l; }
finished_failing() { awk '$5 == 500 && $3 == 3 && $2 != "-" {print $2}' "$WORK/nginx/access.log" | sort -u | comm -12 - "$WORK/fail" | wc -l; }
want=$(wc -l <"$WORK/deliverable")
want_fail=$(wc -l <"$WORK/fail")
for kind in ok delayed flaky fail; do  # a run where a load never got through tests nothing
  if [ ! -s "$WORK/$kind" ]; then echo "chaos: no $kind job was ever acknowledged (CHAOS_KEEP=DIR keeps the logs)" >&2; exit 1; fi
done
deadline=$((SECONDS + DRAIN_S))
while { [ "$(delivered)" -lt "$want" ] || [ "$(finished_failing)" -lt "$want_fail" ]; } && [ $SECONDS -lt "$deadline" ]; do sleep 1; done
kill -TERM "$RELAY_PID"
wait "$RELAY_PID" 2>/dev/null || true
RELAY_PID=""

got=$(delivered)
got_fail=$(finished_failing)
lost=$((want - got))
lost_fail=$((want_fail - got_fail))
dups=$(log_ids 200 | sort | uniq -d -c | awk '{s += $1 - 1} END {print s + 0}')
unacked=$(log_ids 200 | sort -u | comm -23 - "$WORK/deliverable" | wc -l)
acked=$((want + want_fail))
echo "chaos: $CYCLES cycles in $((SECONDS - started)) s; $acked acknowledged ($(wc -l <"$WORK/ok") immediate, $(wc -l <"$WORK/delayed") delayed, $(wc -l <"$WORK/flaky") flaky, $want_fail to a failing target)"
echo "chaos: delivered $got of $want deliverable; lost $lost; duplicated $dups (deliveries beyond a job's first 200); $unacked delivered without a 202 reaching the client (killed in between)"
echo "chaos: failing target: $got_fail of $want_fail made their 3rd attempt and failed; lost $lost_fail"
if [ "$lost" -ne 0 ] || [ "$lost_fail" -ne 0 ]; then
  comm -23 "$WORK/deliverable" <(log_ids 200 | sort -u) | head -5 | sed 's/^/chaos: lost /' >&2
  exit 1
fi
