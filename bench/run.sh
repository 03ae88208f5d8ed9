#!/usr/bin/env bash
# `make bench`: the direct ceiling and W1 (DESIGN §7), alternating, medians of RUNS runs.
#
#   direct  fetchrelay_loadgen -> nginx /ok                       (requests/s: the physical ceiling)
#   W1      fetchrelay_loadgen -> fetchrelay POST /v1/fetch -> nginx /ok, a burst of JOBS immediate jobs:
#           enqueue acks/s (loadgen), deliveries/s from the first 202 to the last delivery (the sink's
#           access log), the relay's peak RSS and CPU seconds.
#
# The sink is nginx started here on a free loopback port; its access log records per request the
# receive time, X-Fetch-Job-Id, X-Fetch-Attempt, X-Due-Ms and the status. Figures go to stdout and
# to bench/results/w1-<date>.json. Never run while a build is running: the machine has 2 cores.
#
# Not yet here (benchmark issue, next slices): W2-W5, the pipeline-on run.
set -euo pipefail

BUILD=${BUILD:-build}
JOBS=${JOBS:-50000}
RUNS=${RUNS:-3}
CONNECTIONS=${CONNECTIONS:-64}
# RELAY_SERVER: extra keys for the relay's `server` block, for experiments, e.g. "worker_threads: 1".
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOADGEN="$ROOT/$BUILD/bench/fetchrelay_loadgen"
RELAY="$ROOT/$BUILD/fetchrelay"
WORK=$(mktemp -d /tmp/fetchrelay-bench.XXXXXX)
NGINX_PID=""
RELAY_PID=""

cleanup() {
  [ -n "$RELAY_PID" ] && kill "$RELAY_PID" 2>/dev/null || true
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "no free port" >&2; exit 1
}

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on $1" >&2; exit 1
}

json_field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<<"$1"; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

start_sink() {
  SINK_PORT=$(free_port)
  mkdir -p "$WORK/nginx"
  local user_line=""
  [ "$(id -u)" -eq 0 ] && user_line="user root;"
  cat >"$WORK/nginx/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  log_format bench '\$msec \$http_x_fetch_job_id \$http_x_fetch_attempt \$http_x_due_ms \$status';
  access_log $WORK/nginx/access.log bench buffer=256k flush=1s;
  client_body_temp_path $WORK/nginx/body;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:$SINK_PORT;
    location /ok { return 200 "ok"; }
    location /flaky {
      if (\$http_x_fetch_attempt ~ "^[12]\$") { return 500 "flaky"; }
      return 200 "ok";
    }
  }
}
EOF
  nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" -g 'daemon off; master_process off;' &
  NGINX_PID=$!
  wait_port "$SINK_PORT"
}

start_relay() {
  rm -rf "$WORK/data" "$WORK/port"
  cat >"$WORK/relay.yaml" <<EOF
server: {listen: 127.0.0.1:0${RELAY_SERVER:+, $RELAY_SERVER}}
storage: {path: $WORK/data}
auth: {keys: [{tenant: bench, key: relay_sk_bench_0123456789}]}
log: {level: warn}
delivery: {allow_networks: [127.0.0.0/8], max_connections_per_origin: 64}
limits: {max_pending_per_tenant: 100000000}
EOF
  "$RELAY" serve --config "$WORK/relay.yaml" --port-file "$WORK/port" >"$WORK/relay.log" 2>&1 &
  RELAY_PID=$!
  for _ in $(seq 1 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
  RELAY_PORT=$(cat "$WORK/port")
}

stop_relay() {
  kill -TERM "$RELAY_PID"
  wait "$RELAY_PID" || true
  RELAY_PID=""
}

# The sink's log lines of this W1 run: those after byte LOG_FROM, with a job id.
run_log() { tail -c +$((LOG_FROM + 1)) "$WORK/nginx/access.log" | grep ' job_' || true; }
delivered_lines() { run_log | wc -l; }

run_direct() {
  "$LOADGEN" --port "$SINK_PORT" --path /ok --count "$JOBS" --connections "$CONNECTIONS" --seconds 120 --body '{}'
}

run_w1() {
  sleep 1.2  # the direct run's lines are flushed (nginx flushes its log buffer every second)
  LOG_FROM=$(stat -c %s "$WORK/nginx/access.log" 2>/dev/null || echo 0)
  start_relay
  local out
  out=$("$LOADGEN" --port "$RELAY_PORT" --count "$JOBS" --connections "$CONNECTIONS" --seconds 120 \
    --header "Authorization: Bearer relay_sk_bench_0123456789" \
    --header "X-Fetch-Url: http://127.0.0.1:$SINK_PORT/ok" --header "Content-Type: application/json" \
    --body '{"userId":"user_456"}')
  local first_ack
  first_ack=$(json_field "$out" first_ok_ms)
  local deadline=$((SECONDS + 180))
  while [ "$(delivered_lines)" -lt "$JOBS" ] && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
  sleep 1.2  # nginx flushes its log buffer every second
  local delivered last_ms rss cpu ticks
  delivered=$(delivered_lines)
  last_ms=$(run_log | awk '{printf "%.0f\n", $1 * 1000}' | sort -n | tail -1)
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$RELAY_PID/status")
  ticks=$(getconf CLK_TCK)
  cpu=$(awk -v t="$ticks" '{printf "%.1f", ($14 + $15) / t}' "/proc/$RELAY_PID/stat")
  stop_relay
  local deliveries_per_s
  deliveries_per_s=$(awk -v n="$delivered" -v a="$first_ack" -v b="$last_ms" 'BEGIN {printf "%.0f", n * 1000 / (b - a)}')
  echo "$(json_field "$out" rate) $deliveries_per_s $delivered $rss $cpu"
}

echo "bench: $JOBS jobs per run, $RUNS runs alternating direct and W1, $CONNECTIONS connections"
start_sink
direct=() acks=() deliv=() rss=() cpu=() count=()
for r in $(seq 1 "$RUNS"); do
  d=$(run_direct)
  direct+=("$(json_field "$d" rate)")
  read -r a b c m u <<<"$(run_w1)"
  acks+=("$a") deliv+=("$b") count+=("$c") rss+=("$m") cpu+=("$u")
  echo "run $r: direct ${direct[-1]} req/s; W1 acks ${a}/s, deliveries ${b}/s ($c delivered), peak RSS ${m} KiB, CPU ${u} s"
done
md=$(printf '%s\n' "${direct[@]}" | median)
ma=$(printf '%s\n' "${acks[@]}" | median)
mb=$(printf '%s\n' "${deliv[@]}" | median)
mr=$(printf '%s\n' "${rss[@]}" | median)
mc=$(printf '%s\n' "${cpu[@]}" | median)
ra=$(awk -v a="$ma" -v d="$md" 'BEGIN {printf "%.1f", 100 * a / d}')
rb=$(awk -v a="$mb" -v d="$md" 'BEGIN {printf "%.1f", 100 * a / d}')
echo "median: direct $md req/s | W1 enqueue $ma acks/s ($ra % of direct) | W1 delivery $mb/s ($rb % of direct) | peak RSS $mr KiB | CPU $mc s"
mkdir -p "$ROOT/bench/results"
cat >"$ROOT/bench/results/w1-$(date -u +%Y%m%dT%H%M%SZ).json" <<EOF
{"jobs": $JOBS, "runs": $RUNS, "connections": $CONNECTIONS,
 "direct_rps": [$(IFS=,; echo "${direct[*]}")], "w1_acks_per_s": [$(IFS=,; echo "${acks[*]}")],
 "w1_deliveries_per_s": [$(IFS=,; echo "${deliv[*]}")], "w1_delivered": [$(IFS=,; echo "${count[*]}")],
 "relay_peak_rss_kib": [$(IFS=,; echo "${rss[*]}")], "relay_cpu_s": [$(IFS=,; echo "${cpu[*]}")],
 "median": {"direct_rps": $md, "w1_acks_per_s": $ma, "w1_deliveries_per_s": $mb,
            "w1_acks_pct_of_direct": $ra, "w1_deliveries_pct_of_direct": $rb}}
EOF
