#!/usr/bin/env bash
# `make bench`: the workloads of DESIGN §7 against the direct ceiling, on this machine.
#
#   direct   fetchrelay_loadgen -> nginx /ok                      requests/s: the physical ceiling
#   W1       a burst of JOBS immediate jobs (loadgen -> fetchrelay -> nginx /ok): enqueue acks/s,
#            deliveries/s from the first 202 to the last delivery, the relay's peak RSS and CPU s;
#            pipeline off (policy default) and on (policy piped: signing + rate_limit with a high
#            limit + circuit_breaker). RUNS runs, alternating direct / W1 off / W1 on; medians.
#   W1-pg    W1 (pipeline off) on PostgreSQL beside W1 on LevelDB in the same run: 1 relay, then
#            3 relays on one throwaway PostgreSQL 15 (scripts/pg-up.sh, fsync on; the JOBS split
#            between them by three loadgens): deliveries/s, relay CPU-s per 1,000 jobs (all
#            relays), the database's CPU-s per 1,000 jobs, its WAL syncs and commits per 1,000 jobs
#            and WAL bytes per job (pg_stat_wal, pg_stat_database). RUNS runs; medians.
#   W2       paced: W2_JOBS jobs sent at a steady W2_RATE/s (loadgen --rate), each due 10-20 s after it
#            is sent (X-Not-Before; the due time also forwarded as X-Due-Ms): lateness p50/p99/max
#            at the sink, early deliveries, how far the sends fell behind the pace.
#   W2o      W2-overload: the same jobs sent as fast as the relay answers (more jobs fall due a
#            second than the relay can deliver): lateness, and whether the backlog drains in due
#            order (bench/drain_order.awk: a job is starved when its lateness exceeds the backlog at
#            its due time divided by the measured capacity, plus 1 s).
#   W3       W3_JOBS jobs to /flaky (500 while X-Fetch-Attempt <= 2) on a 100 ms retry schedule:
#            attempts per job, undelivered.
#   W4       W1 with kill -9 of the relay once half the jobs are acknowledged; restart on the same
#            store, submit the rest, wait: acknowledged-but-never-delivered (lost), duplicates.
#   W5       W5_JOBS pending jobs due in 1-6 h, written straight into the store by
#            fetchrelay_w5_fill (not through HTTP), then the relay started on it: time to /readyz
#            200, RSS when ready and 10 s later.
#   W6       W6_SCHEDULES hourly schedules (6-field crons spread over the hour), written straight
#            into the store by fetchrelay_w6_fill, then the relay started on it: time to /readyz
#            200, RSS when ready and after W6_WAIT s of fires, the jobs they made.
#   W7       the web console's reads with W7_JOBS jobs in the store (written by fetchrelay_w5_fill):
#            W7_SAMPLES timed calls each (one curl, one keep-alive connection, as a browser) of
#            what the console's pages ask for: the page itself, the jobs list (first page, a page
#            20 pages deep, filtered by status, by a URL prefix that matches nothing: the worst
#            page, 10,000 entries read) and a job's page (GET /v1/jobs/{id} of jobs read from the
#            list): p50/p99/max ms. Target: p99 under 300 ms.
#   W8       slowloris: W8_SUBMISSIONS submissions (each on a new connection, due in an hour)
#            alone, then while W8_SLOW connections each send one header byte a second:
#            p50/p99/max ms of both, and the ratio of the p99s. Target: every one answered.
#   peers    (PEERS=1, or "peers" in WORKLOADS; issue 18) BullMQ 6 on Redis 7 (redis-server on a
#            free loopback port, AOF on, `--save ''`, noeviction) behind the same loadgen and sink:
#            bench/peers/bullmq's producer (node:http, 202 once Redis took the job) and worker
#            (concurrency 64, Node's fetch), for each AOF fsync mode (everysec, always). Per run:
#            fetchrelay W1 (pipeline off), then W1 on BullMQ in each mode (acks/s, deliveries/s,
#            peak RSS and CPU s of redis + producer + worker); the ratio fetchrelay / BullMQ of the
#            deliveries/s medians. Then W4 on BullMQ in each mode, RUNS times: kill -9 of
#            redis-server, the producer and the worker at half the acks, all three restarted on the
#            same AOF. `npm ci` runs in bench/peers/bullmq first if node_modules is missing.
#
# W2-W4 run RUNS times (medians); W5 once. WORKLOADS picks some, e.g. WORKLOADS="w1 w4";
# WORKLOADS=peers runs BullMQ beside fetchrelay alone (its own fetchrelay W1 runs included).
# The sink is nginx started here on a free loopback port; its access log records per request the
# receive time, X-Fetch-Job-Id, X-Fetch-Attempt, X-Due-Ms and the status. Figures go to stdout and
# bench/results/bench-<date>.json. Never run while a build is running: the machine has 2 cores.
set -euo pipefail

BUILD=${BUILD:-build}
JOBS=${JOBS:-50000}
W2_JOBS=${W2_JOBS:-200000}
W2_RATE=${W2_RATE:-5000}
W3_JOBS=${W3_JOBS:-20000}
W5_JOBS=${W5_JOBS:-10000000}
W6_SCHEDULES=${W6_SCHEDULES:-100000}
W6_WAIT=${W6_WAIT:-30}
W7_JOBS=${W7_JOBS:-1000000}
W7_SAMPLES=${W7_SAMPLES:-200}
W8_SLOW=${W8_SLOW:-1000}
W8_SUBMISSIONS=${W8_SUBMISSIONS:-100}
RUNS=${RUNS:-3}
CONNECTIONS=${CONNECTIONS:-64}
WORKLOADS=${WORKLOADS:-w1 w1pg w2 w2o w3 w4 w5 w6 w7 w8}
[ "${PEERS:-}" = 1 ] && WORKLOADS="$WORKLOADS peers"
# RELAY_LOG_LEVEL: the relay's log level (default warn; info writes a line per job: docs/operations.md).
# RELAY_SERVER: extra keys for the relay's `server` block, for experiments, e.g. "worker_threads: 1".
# BENCH_KEEP: a directory to keep the sink's access log and each relay's /metrics in (debugging).
# RELAY_WRAP: a command the relay runs under, e.g. "valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p"
#   (instruction counts: steadier than time on a shared machine; perf has no hardware counters here).
# BENCH_THREADS=1: print each relay thread's CPU seconds after each W1 run (to stderr); for the
#   peers, the CPU seconds of redis-server, the producer and the worker apart.
# PG_STATEMENTS=1: W1-pg loads pg_stat_statements and prints, after each PostgreSQL run, the
#   statements that took the database's time (calls, ms, rows, WAL bytes) to stderr.
# PG_SETUP_SQL: SQL run in each W1-pg schema once its relays created it, before the load (an
#   experiment on the database side without a rebuild, e.g. "ALTER TABLE fr_jobs SET (fillfactor = 80)").
# BULLMQ_CLIENT=http: the BullMQ worker posts with node:http instead of fetch (the issue's choice, the
#   default; fetch costs the worker about five times the CPU a request here). PRODUCER_BATCH=0: the
#   BullMQ producer adds each job on its own instead of one addBulk an event-loop turn.
# PERF_OUT: record the relay's W1 runs of policy PERF_POLICY (default: pipeline off) with perf (call graphs through DWARF) into this file.
#   PERF_CALLS: perf record's call-graph options instead (e.g. "-g"). PERF_STAT: events to count per thread
#   (perf stat) instead of sampling, e.g. "raw_syscalls:sys_enter,context-switches".
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOADGEN="$ROOT/$BUILD/bench/fetchrelay_loadgen"
FILL="$ROOT/$BUILD/bench/fetchrelay_w5_fill"
FILL6="$ROOT/$BUILD/bench/fetchrelay_w6_fill"
SLOWLORIS="$ROOT/$BUILD/bench/fetchrelay_slowloris"
RELAY=${RELAY_BIN:-"$ROOT/$BUILD/fetchrelay"}  # RELAY_BIN: another binary, for A/B runs
KEY=relay_sk_bench_0123456789
WORK=$(mktemp -d /tmp/fetchrelay-bench.XXXXXX)
NGINX_PID=""
RELAY_PID=""

cleanup() {
  [ -n "$RELAY_PID" ] && kill "$RELAY_PID" 2>/dev/null || true
  # The peers run inside $(...), whose variables this shell never sees: their pids are in a file.
  if [ -s "$WORK/bq-pids" ]; then kill $(cat "$WORK/bq-pids") 2>/dev/null || true; sleep 0.2; fi
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
  for p in ${PG_PIDS[@]:-}; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -d "$WORK/pg/data" ]; then "$ROOT/scripts/pg-down.sh" "$WORK/pg" >/dev/null 2>&1 || true; fi
  if [ -n "${BENCH_KEEP:-}" ]; then mkdir -p "$BENCH_KEEP"; cp "$WORK/nginx/access.log" "$WORK/relay.log" "$WORK/bullmq.log" "$BENCH_KEEP/" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

wants() { [[ " $WORKLOADS " == *" $1 "* ]]; }

# free_port, wait_port, start_sink
source "$(dirname "$0")/sink.sh"

json_field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<<"$1"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
median_of() { printf '%s\n' "$@" | median; }
list() { local IFS=,; echo "$*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
pct() { awk -v a="$1" -v d="$2" 'BEGIN {printf "%.1f", 100 * a / d}'; }

# start_relay [keep]: a relay on a free port with the store in $DATA (emptied unless "keep").
DATA="$WORK/data"
start_relay() {
  [ "${1:-}" = keep ] || rm -rf "$DATA"
  rm -f "$WORK/port"
  cat >"$WORK/relay.yaml" <<EOF
server: {listen: 127.0.0.1:0${RELAY_SERVER:+, $RELAY_SERVER}}
storage: {path: $DATA}
auth: {keys: [{tenant: bench, key: $KEY}]}
log: {level: ${RELAY_LOG_LEVEL:-warn}}
delivery: {allow_networks: [127.0.0.0/8], max_connections_per_origin: 64}
limits: {max_pending_per_tenant: 100000000}
plugins: {search_path: [$ROOT/$BUILD/plugins], load: [signing, rate_limit, circuit_breaker]}
policies:
  default: {}
  fast:
    retry: {attempts: 5, schedule: [100ms], jitter: 0}
  piped:
    pipeline:
      - signing: {scheme: standard-webhooks, secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}
      - rate_limit: {rate: 1000000/s, burst: 100000}
      - circuit_breaker: {}
EOF
  RELAY_STARTED_MS=$(now_ms)
  ${RELAY_WRAP:-} "$RELAY" serve --config "$WORK/relay.yaml" --port-file "$WORK/port" >>"$WORK/relay.log" 2>&1 &
  RELAY_PID=$!
  for _ in $(seq 1 1500); do [ -s "$WORK/port" ] && break; sleep 0.02; done
  if [ ! -s "$WORK/port" ]; then echo "the relay did not start:" >&2; tail "$WORK/relay.log" >&2; exit 1; fi
  RELAY_PORT=$(cat "$WORK/port")
}

# Waits for /readyz 200; prints the ms since start_relay.
wait_ready() {
  for _ in $(seq 1 3000); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RELAY_PORT/readyz")" = 200 ]; then
      echo $(($(now_ms) - RELAY_STARTED_MS)); return
    fi
    sleep 0.01
  done
  echo "the relay never became ready" >&2; exit 1
}

STOPS=0
stop_relay() {
  STOPS=$((STOPS + 1))
  if [ -n "${BENCH_KEEP:-}" ]; then
    mkdir -p "$BENCH_KEEP"
    curl -s "http://127.0.0.1:$RELAY_PORT/metrics" >"$BENCH_KEEP/metrics-$STOPS.txt" || true
  fi
  kill -TERM "$RELAY_PID"
  wait "$RELAY_PID" || true
  RELAY_PID=""
}

relay_rss_kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$RELAY_PID/status"; }
relay_cpu_s() { pids_cpu_s "$RELAY_PID"; }
# The CPU seconds (utime + stime) of the processes given, together.
pids_cpu_s() { for p in "$@"; do cat "/proc/$p/stat"; done | awk -v t="$(getconf CLK_TCK)" '{s += $14 + $15} END {printf "%.1f", s / t}'; }

# The sink's log lines since mark_log, with a job id: "<s.ms> <id> <attempt> <due-ms|-> <status>".
mark_log() {
  sleep 1.2  # nginx flushes its log buffer every second
  LOG_FROM=$(stat -c %s "$WORK/nginx/access.log" 2>/dev/null || echo 0)
}
run_log() { tail -c +$((LOG_FROM + 1)) "$WORK/nginx/access.log" | grep ' job_' || true; }
delivered_ok() { run_log | awk '$5 == 200 {print $2}' | sort -u | wc -l; }

# Waits until `delivered_ok` reaches $1 or $2 seconds pass (or $WORK is gone: the script was
# stopped, and this runs in a $(...) that outlives it).
wait_delivered() {
  local deadline=$((SECONDS + $2))
  while [ -d "$WORK" ] && [ "$(delivered_ok)" -lt "$1" ] && [ $SECONDS -lt "$deadline" ]; do sleep 0.5; done
  sleep 1.2
}

# submit COUNT [loadgen options...]: jobs to the relay (or to SUBMIT_PORT, a peer's producer, when
# set); prints loadgen's JSON line.
SUBMIT_PORT=""
submit() {
  local count=$1; shift
  "$LOADGEN" --port "${SUBMIT_PORT:-$RELAY_PORT}" --count "$count" --connections "$CONNECTIONS" --seconds 300 \
    --header "Authorization: Bearer $KEY" --header "Content-Type: application/json" \
    --body '{"userId":"user_456"}' "$@"
}

run_direct() {
  local out
  out=$("$LOADGEN" --port "$SINK_PORT" --path /ok --count "$JOBS" --connections "$CONNECTIONS" --seconds 120 --body '{}')
  json_field "$out" rate
}

# deliveries_per_s FIRST-ACK-MS DELIVERED: the deliveries over the time from the first 202 to the
# last delivery in the sink's log since mark_log.
deliveries_per_s() {
  local last_ms
  last_ms=$(run_log | awk '{printf "%.0f\n", $1 * 1000}' | sort -n | tail -1)
  awk -v n="$2" -v a="$1" -v b="$last_ms" 'BEGIN {printf "%.0f", n * 1000 / (b - a)}'
}

# run_w1 POLICY: prints "acks/s deliveries/s delivered peak-RSS-KiB CPU-s".
run_w1() {
  mark_log
  start_relay
  local perf_pid=""
  if [ -n "${PERF_OUT:-}" ] && [ "$1" = "${PERF_POLICY:-default}" ]; then
    if [ -n "${PERF_STAT:-}" ]; then  # counts per thread instead of samples
      perf stat --per-thread -e "$PERF_STAT" -p "$RELAY_PID" -o "$PERF_OUT" >/dev/null 2>&1 &
    else
      perf record -F 999 ${PERF_CALLS:---call-graph dwarf,32768} -p "$RELAY_PID" -o "$PERF_OUT" >/dev/null 2>&1 &
    fi
    perf_pid=$!
    sleep 0.5
  fi
  local out delivered rate rss cpu
  out=$(submit "$JOBS" --header "X-Fetch-Url: http://127.0.0.1:$SINK_PORT/ok" --header "X-Policy: $1")
  wait_delivered "$JOBS" 180
  delivered=$(delivered_ok)
  rate=$(deliveries_per_s "$(json_field "$out" first_ok_ms)" "$delivered")
  rss=$(relay_rss_kib VmHWM)
  cpu=$(relay_cpu_s)
  if [ -n "${BENCH_THREADS:-}" ]; then
    for t in /proc/"$RELAY_PID"/task/*; do
      awk -v n="$(cat "$t/comm")" -v k="$(getconf CLK_TCK)" '{printf "%s:%.2f(u%.2f) ", n, ($14 + $15) / k, $14 / k}' "$t/stat"
    done >&2
    echo "($1)" >&2
  fi
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
  stop_relay
  echo "$(json_field "$out" rate) $rate $delivered $rss $cpu"
}

# -- W1-pg: relays on PostgreSQL ------------------------------------------------------------------

PG_DIR="$WORK/pg"
PG_DSN=""
PG_PIDS=() PG_PORTS=()
pg_sql() { psql "$PG_DSN" -XAtqc "$1"; }
# The CPU seconds of the database server: the postmaster and every process it started.
pg_cpu_s() {
  local pm
  pm=$(head -1 "$PG_DIR/data/postmaster.pid")
  for p in "$pm" $(pgrep -P "$pm"); do cat "/proc/$p/stat" 2>/dev/null; done |
    awk -v t="$(getconf CLK_TCK)" '{s += $14 + $15} END {printf "%.2f", s / t}'
}
# "wal-bytes wal-syncs commits" of the database so far.
pg_counters() {
  pg_sql "SELECT (SELECT wal_bytes FROM pg_stat_wal) || ' ' || (SELECT wal_sync FROM pg_stat_wal) || ' ' ||
                 (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())"
}

# start_pg_relays N SCHEMA: N relays (node ids n1..nN, lease 10 s) on the schema; waits until each
# holds its share of the 256 shards.
start_pg_relays() {
  local n=$1 schema=$2 i
  PG_PIDS=() PG_PORTS=()
  RELAY_STARTED_MS=$(now_ms)
  for i in $(seq 1 "$n"); do
    rm -f "$WORK/port$i"
    cat >"$WORK/relay$i.yaml" <<EOF
server: {listen: 127.0.0.1:0${RELAY_SERVER:+, $RELAY_SERVER}}
storage: {backend: postgres, postgres: {dsn: '$PG_DSN', schema: $schema}}
cluster: {node_id: n$i, lease: 10s}
auth: {keys: [{tenant: bench, key: $KEY}]}
log: {level: ${RELAY_LOG_LEVEL:-warn}}
delivery: {allow_networks: [127.0.0.0/8], max_connections_per_origin: 64}
limits: {max_pending_per_tenant: 100000000}
policies:
  default: {}
EOF
    "$RELAY" serve --config "$WORK/relay$i.yaml" --port-file "$WORK/port$i" >>"$WORK/relay.log" 2>&1 &
    PG_PIDS+=($!)
    for _ in $(seq 1 1500); do [ -s "$WORK/port$i" ] && break; sleep 0.02; done
    if [ ! -s "$WORK/port$i" ]; then echo "relay n$i did not start:" >&2; tail "$WORK/relay.log" >&2; exit 1; fi
    PG_PORTS+=("$(cat "$WORK/port$i")")
  done
  local fair=$(((256 + n - 1) / n)) held
  for _ in $(seq 1 600); do
    held=$(pg_sql "SELECT count(*) FROM (SELECT owner FROM $schema.fr_shards WHERE lease_until > now()
                   GROUP BY owner HAVING count(*) >= $fair - 2) x")
    [ "$held" = "$n" ] && break
    sleep 0.05
  done
  for i in $(seq 0 $((n - 1))); do RELAY_PORT=${PG_PORTS[$i]} wait_ready >/dev/null; done
}

stop_pg_relays() {
  local p
  for p in "${PG_PIDS[@]}"; do kill -TERM "$p"; done
  for p in "${PG_PIDS[@]}"; do wait "$p" || true; done
  PG_PIDS=()
}

# run_w1pg N: W1 on N relays on PostgreSQL; prints "acks/s deliveries/s delivered relay-cpu-s db-cpu-s
# wal-bytes wal-syncs commits" (the last three: differences over the run).
PG_RUN=0
run_w1pg() {
  local n=$1 i
  PG_RUN=$((PG_RUN + 1))
  local schema="w1pg_$PG_RUN"
  mark_log
  start_pg_relays "$n" "$schema"
  [ -n "${PG_SETUP_SQL:-}" ] && pg_sql "SET search_path TO $schema; $PG_SETUP_SQL" >/dev/null
  local cpu0 before
  cpu0=$(pg_cpu_s)
  before=$(pg_counters)
  [ -n "${PG_STATEMENTS:-}" ] && pg_sql "SELECT pg_stat_statements_reset()" >/dev/null
  local per=$((JOBS / n)) gens=()
  for i in $(seq 1 "$n"); do
    local count=$per
    [ "$i" = "$n" ] && count=$((JOBS - per * (n - 1)))
    "$LOADGEN" --port "${PG_PORTS[$((i - 1))]}" --count "$count" --connections $((CONNECTIONS / n)) --seconds 300 \
      --header "Authorization: Bearer $KEY" --header "Content-Type: application/json" \
      --body '{"userId":"user_456"}' --header "X-Fetch-Url: http://127.0.0.1:$SINK_PORT/ok" >"$WORK/lg$i.json" &
    gens+=($!)
  done
  for i in "${gens[@]}"; do wait "$i"; done
  local first_ack
  first_ack=$(for i in $(seq 1 "$n"); do json_field "$(cat "$WORK/lg$i.json")" first_ok_ms; done | sort -n | head -1)
  wait_delivered "$JOBS" 300
  local delivered rate cpu=0 dbcpu after
  delivered=$(delivered_ok)
  rate=$(deliveries_per_s "$first_ack" "$delivered")
  for i in "${PG_PIDS[@]}"; do
    cpu=$(awk -v c="$cpu" -v t="$(getconf CLK_TCK)" '{printf "%.2f", c + ($14 + $15) / t}' "/proc/$i/stat")
  done
  dbcpu=$(awk -v a="$(pg_cpu_s)" -v b="$cpu0" 'BEGIN {printf "%.2f", a - b}')
  after=$(pg_counters)
  if [ -n "${PG_STATEMENTS:-}" ]; then
    echo "W1-pg $n relay(s): statements by database time (calls | total ms | rows | WAL bytes | statement)" >&2
    pg_sql "SELECT calls, round(total_exec_time), rows, wal_bytes, left(regexp_replace(query, '\s+', ' ', 'g'), 110)
            FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 16" >&2
  fi
  stop_pg_relays
  pg_sql "SET client_min_messages = warning; DROP SCHEMA $schema CASCADE" >/dev/null
  local b0 s0 c0 b1 s1 c1
  read -r b0 s0 c0 <<<"$before"
  read -r b1 s1 c1 <<<"$after"
  echo "$rate $delivered $cpu $dbcpu $((b1 - b0)) $((s1 - s0)) $((c1 - c0))"
}

# W2 [RATE]: prints "p50 p99 max early delivered acked peak-RSS-KiB send-lag-ms starved capacity
# worst-excess-ms" (lateness in ms; without RATE, as fast as the relay answers: W2-overload).
run_w2() {
  mark_log
  start_relay
  local out acked
  out=$(submit "$W2_JOBS" --header "X-Fetch-Url: http://127.0.0.1:$SINK_PORT/ok" --due-spread 10000:20000 \
    ${1:+--rate "$1"})
  acked=$(sed -n 's/.*"202":\([0-9]*\).*/\1/p' <<<"$out")
  wait_delivered "${acked:-0}" 120
  local rss lag
  rss=$(relay_rss_kib VmHWM)
  lag=$(json_field "$out" max_send_lag_ms)
  stop_relay
  # "receive-ms due-ms" of each job's first 200.
  run_log | awk '$5 == 200 && $4 != "-" && !seen[$2]++ {printf "%.0f %s\n", $1 * 1000, $4}' >"$WORK/w2.txt"
  awk '{print $2}' "$WORK/w2.txt" | sort -n >"$WORK/w2.due"
  awk '{print $1}' "$WORK/w2.txt" | sort -n >"$WORK/w2.recv"
  local drain
  drain=$(awk -f "$ROOT/bench/drain_order.awk" "$WORK/w2.due" "$WORK/w2.recv" "$WORK/w2.txt")
  awk '{print $1 - $2}' "$WORK/w2.txt" | sort -n |
    awk -v acked="${acked:-0}" -v rss="$rss" -v lag="${lag:-0}" -v drain="$drain" '{a[NR]=$1; if ($1 < 0) early++}
      END {p50 = a[int((NR - 1) * 0.50) + 1]; p99 = a[int((NR - 1) * 0.99) + 1];
           printf "%d %d %d %d %d %d %s %s %s\n", p50, p99, a[NR], early, NR, acked, rss, lag, drain}'
}

# W3: prints "jobs-with-exactly-3-attempts other undelivered acked".
run_w3() {
  mark_log
  start_relay
  local out acked
  out=$(submit "$W3_JOBS" --header "X-Fetch-Url: http://127.0.0.1:$SINK_PORT/flaky" --header "X-Policy: fast")
  acked=$(sed -n 's/.*"202":\([0-9]*\).*/\1/p' <<<"$out")
  wait_delivered "${acked:-0}" 120
  stop_relay
  run_log | awk -v acked="${acked:-0}" '{n[$2]++; if ($5 == 200) ok[$2] = 1}
      END {for (id in n) { if (n[id] == 3) three++; else other++; if (!(id in ok)) undelivered++ }
           printf "%d %d %d %d\n", three, other, undelivered + (acked - length(n)), acked}'
}

kill9_relay() { kill -9 "$RELAY_PID"; wait "$RELAY_PID" 2>/dev/null || true; RELAY_PID=""; }
restart_relay() { start_relay keep; wait_ready >/dev/null; }

# W4 [SYSTEM]: prints "acked lost duplicates unacked-delivered". The last: jobs stored but killed
# before their 202 went out, delivered anyway (the client, seeing no answer, would send them again).
# SYSTEM is relay (the default) or bullmq (peers): start_, kill9_, restart_ (on the same store) and
# stop_ SYSTEM. BullMQ gets longer to finish: it delivers several times slower, and a job its
# killed worker held runs again only once the job's lock (lockDuration 30 s) has lapsed and a stall
# check (every 30 s) has seen it (defaults, kept).
run_w4() {
  local sys=${1:-relay} patience=120
  [ "$sys" = bullmq ] && patience=600
  mark_log
  "start_$sys"
  local ids1="$WORK/ids1" ids2="$WORK/ids2"
  rm -f "$ids1" "$ids2"
  submit "$JOBS" --header "X-Fetch-Url: http://127.0.0.1:$SINK_PORT/ok" --ids "$ids1" >"$WORK/w4-first.json" 2>/dev/null &
  local gen=$!
  lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
  while [ "$(lines "$ids1")" -lt $((JOBS / 2)) ] && kill -0 "$gen" 2>/dev/null; do sleep 0.02; done
  "kill9_$sys"
  wait "$gen" || true
  local first
  first=$(wc -l <"$ids1")
  "restart_$sys"
  submit $((JOBS - first)) --header "X-Fetch-Url: http://127.0.0.1:$SINK_PORT/ok" --ids "$ids2" >/dev/null
  local acked
  acked=$(cat "$ids1" "$ids2" | wc -l)
  wait_delivered "$acked" "$patience"
  "stop_$sys"
  run_log | awk '$5 == 200 {print $2}' | sort >"$WORK/w4-delivered"
  local lost dups unacked
  cat "$ids1" "$ids2" | awk '{print $2}' | sort -u >"$WORK/w4-acked"
  lost=$(comm -23 "$WORK/w4-acked" <(sort -u "$WORK/w4-delivered") | wc -l)
  unacked=$(comm -13 "$WORK/w4-acked" <(sort -u "$WORK/w4-delivered") | wc -l)
  dups=$(uniq -d -c "$WORK/w4-delivered" | awk '{s += $1 - 1} END {print s + 0}')
  echo "$acked $lost $dups $unacked"
}

# W5: prints "jobs fill-s ready-ms rss-ready-KiB rss-10s-KiB peak-KiB scheduled".
run_w5() {
  local fill
  DATA="$WORK/w5data"
  rm -rf "$DATA"
  fill=$("$FILL" --data "$DATA" --jobs "$W5_JOBS" --url "http://127.0.0.1:$SINK_PORT/ok")
  start_relay keep
  local ready rss_ready rss_later peak scheduled
  ready=$(wait_ready)
  rss_ready=$(relay_rss_kib VmRSS)
  sleep 10
  rss_later=$(relay_rss_kib VmRSS)
  peak=$(relay_rss_kib VmHWM)
  scheduled=$(curl -s "http://127.0.0.1:$RELAY_PORT/metrics" | awk '/^fetchrelay_jobs\{status="scheduled"\}/ {print $2}')
  stop_relay
  rm -rf "$DATA"
  DATA="$WORK/data"
  echo "$W5_JOBS $(json_field "$fill" seconds) $ready $rss_ready $rss_later $peak ${scheduled:-?}"
}

# Times W7_SAMPLES GETs of each URL given, over one keep-alive connection; prints "p50 p99 max" ms.
time_gets() {
  local urls=() u i
  for u in "$@"; do for ((i = 0; i < W7_SAMPLES / $#; i++)); do urls+=(-o /dev/null "$u"); done; done  # -o is per URL
  curl -s -H "Authorization: Bearer $KEY" -w '%{http_code} %{time_total}\n' "${urls[@]}" |
    awk '$1 != 200 {print "W7: HTTP " $1 " from a console call" > "/dev/stderr"; exit 1} {print $2}' |
    awk '{print $1 * 1000}' | sort -n |
    awk '{a[NR]=$1} END {i99 = int(NR * 0.99 + 0.999); printf "%.1f %.1f %.1f\n", a[int((NR + 1) / 2)], a[i99], a[NR]}'
}

# W7: prints "jobs fill-s page list deep filtered nomatch job" (each "p50/p99/max" ms).
run_w7() {
  local fill base cursor ids=() i
  DATA="$WORK/w7data"
  rm -rf "$DATA"
  fill=$("$FILL" --data "$DATA" --jobs "$W7_JOBS" --url "http://127.0.0.1:$SINK_PORT/ok")
  start_relay keep
  wait_ready >/dev/null
  base="http://127.0.0.1:$RELAY_PORT"
  cursor=""
  for ((i = 0; i < 20; i++)); do  # 20 pages of 50 in: the cursor of a deep page
    cursor=$(curl -s -H "Authorization: Bearer $KEY" "$base/v1/jobs?limit=50${cursor:+&cursor=$cursor}" |
      sed -n 's/.*"next_cursor":"\([^"]*\)".*/\1/p')
  done
  mapfile -t ids < <(curl -s -H "Authorization: Bearer $KEY" "$base/v1/jobs?limit=100&cursor=$cursor" |
    grep -o '"id":"job_[0-9A-Z]*"' | cut -d'"' -f4 | head -50)
  local page list deep filtered nomatch job urls=()
  page=$(time_gets "$base/ui/jobs" "$base/ui/assets/console.js")
  list=$(time_gets "$base/v1/jobs?limit=50")
  deep=$(time_gets "$base/v1/jobs?limit=50&cursor=$cursor")
  filtered=$(time_gets "$base/v1/jobs?limit=50&status=scheduled")
  nomatch=$(time_gets "$base/v1/jobs?limit=50&url_prefix=https%3A%2F%2Fno-such-host%2F")  # reads its 10,000 entries
  for i in "${ids[@]}"; do urls+=("$base/v1/jobs/$i"); done
  job=$(time_gets "${urls[@]}")
  stop_relay
  rm -rf "$DATA"
  DATA="$WORK/data"
  echo "$W7_JOBS $(json_field "$fill" seconds) ${page// //} ${list// //} ${deep// //} ${filtered// //} ${nomatch// //} ${job// //}"
}

# W6: prints "schedules fill-s ready-ms rss-ready-KiB rss-later-KiB peak-KiB jobs-made".
run_w6() {
  local fill
  DATA="$WORK/w6data"
  rm -rf "$DATA"
  fill=$("$FILL6" --data "$DATA" --schedules "$W6_SCHEDULES" --url "http://127.0.0.1:$SINK_PORT/ok")
  start_relay keep
  local ready rss_ready rss_later peak made
  ready=$(wait_ready)
  rss_ready=$(relay_rss_kib VmRSS)
  sleep "$W6_WAIT"
  rss_later=$(relay_rss_kib VmRSS)
  peak=$(relay_rss_kib VmHWM)
  made=$(curl -s "http://127.0.0.1:$RELAY_PORT/metrics" | awk '/^fetchrelay_jobs\{/ {s += $2} END {print s + 0}')
  stop_relay
  rm -rf "$DATA"
  DATA="$WORK/data"
  echo "$W6_SCHEDULES $(json_field "$fill" seconds) $ready $rss_ready $rss_later $peak $made"
}

# W8: prints the slowloris tool's JSON line.
run_w8() {
  start_relay
  wait_ready >/dev/null
  "$SLOWLORIS" --port "$RELAY_PORT" --key "$KEY" --slow "$W8_SLOW" --submissions "$W8_SUBMISSIONS"
  stop_relay
}

# -- Peers (PEERS=1): BullMQ on Redis beside fetchrelay -------------------------------------------

BQ_DIR="$ROOT/bench/peers/bullmq"
BQ_AOF=everysec  # the appendfsync mode of the next start_bullmq
REDIS_PID="" PRODUCER_PID="" WORKER_PID=""

# start_bullmq [keep]: redis-server with its AOF in $WORK/redis (emptied unless "keep"), then the
# producer and the worker; returns once the producer listens (SUBMIT_PORT) and the worker is
# connected. noeviction: BullMQ requires it (an evicted key is a lost job); `--save ''`: the AOF
# alone is the durability under test.
start_bullmq() {
  [ "${1:-}" = keep ] || rm -rf "$WORK/redis"
  mkdir -p "$WORK/redis"
  rm -f "$WORK/bq-port" "$WORK/bq-ready"
  local redis_port
  # free_port only tries to connect, and the local port of an outgoing connection (64 of the
  # loadgen's, 64 of the worker's) refuses a bind too: when redis-server exits, try another port.
  for _ in 1 2 3 4 5; do
    redis_port=$(free_port)
    redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$WORK/redis" --logfile "$WORK/redis/redis.log" \
      --daemonize no --save '' --appendonly yes --appendfsync "$BQ_AOF" --maxmemory-policy noeviction &
    REDIS_PID=$!
    echo "$REDIS_PID" >>"$WORK/bq-pids"
    # PONG only once the AOF is loaded (before, redis answers LOADING).
    for _ in $(seq 1 1500); do
      kill -0 "$REDIS_PID" 2>/dev/null || break
      [ "$(timeout 2 redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break  # (another server may hold the port)
      sleep 0.02
    done
    kill -0 "$REDIS_PID" 2>/dev/null && break  # up (or still loading after 30 s: the checks below fail)
  done
  REDIS_PORT=$redis_port BENCH_KEY=$KEY PORT_FILE="$WORK/bq-port" node "$BQ_DIR/producer.mjs" >>"$WORK/bullmq.log" 2>&1 &
  PRODUCER_PID=$!
  REDIS_PORT=$redis_port READY_FILE="$WORK/bq-ready" node "$BQ_DIR/worker.mjs" >>"$WORK/bullmq.log" 2>&1 &
  WORKER_PID=$!
  echo "$PRODUCER_PID $WORKER_PID" >>"$WORK/bq-pids"
  for _ in $(seq 1 1500); do [ -s "$WORK/bq-port" ] && [ -s "$WORK/bq-ready" ] && break; sleep 0.02; done
  if [ ! -s "$WORK/bq-port" ] || [ ! -s "$WORK/bq-ready" ]; then
    echo "BullMQ did not start:" >&2; tail "$WORK/bullmq.log" "$WORK/redis/redis.log" >&2
    kill $(cat "$WORK/bq-pids") 2>/dev/null || true
    exit 1
  fi
  SUBMIT_PORT=$(cat "$WORK/bq-port")
}
restart_bullmq() { start_bullmq keep; }

stop_bullmq() {
  local p
  for p in $WORKER_PID $PRODUCER_PID $REDIS_PID; do kill -TERM "$p"; wait "$p" || true; done
  REDIS_PID="" PRODUCER_PID="" WORKER_PID="" SUBMIT_PORT=""
  : >"$WORK/bq-pids"
}

kill9_bullmq() {
  kill -9 "$REDIS_PID" "$PRODUCER_PID" "$WORKER_PID"
  wait "$REDIS_PID" "$PRODUCER_PID" "$WORKER_PID" 2>/dev/null || true
  REDIS_PID="" PRODUCER_PID="" WORKER_PID="" SUBMIT_PORT=""
  : >"$WORK/bq-pids"
}

# run_w1_bullmq: W1 on BullMQ (AOF $BQ_AOF), measured as run_w1; prints "acks/s deliveries/s
# delivered peak-RSS-KiB CPU-s" (RSS and CPU: redis-server, the producer and the worker together).
run_w1_bullmq() {
  mark_log
  start_bullmq
  local out delivered rate rss cpu
  out=$(submit "$JOBS" --header "X-Fetch-Url: http://127.0.0.1:$SINK_PORT/ok")
  wait_delivered "$JOBS" 600  # several times fetchrelay's 180 s: BullMQ delivers slower here
  delivered=$(delivered_ok)
  rate=$(deliveries_per_s "$(json_field "$out" first_ok_ms)" "$delivered")
  rss=$(for p in $REDIS_PID $PRODUCER_PID $WORKER_PID; do awk '$1 == "VmHWM:" {print $2}' "/proc/$p/status"; done |
    awk '{s += $1} END {print s}')
  cpu=$(pids_cpu_s "$REDIS_PID" "$PRODUCER_PID" "$WORKER_PID")
  [ -n "${BENCH_THREADS:-}" ] && echo "BullMQ $BQ_AOF CPU s: redis $(pids_cpu_s "$REDIS_PID"), producer $(pids_cpu_s "$PRODUCER_PID"), worker $(pids_cpu_s "$WORKER_PID")" >&2
  stop_bullmq
  echo "$(json_field "$out" rate) $rate $delivered $rss $cpu"
}

# The peers' rows are kept one a line in files: col FILE N prints column N of each.
col() { awk -v n="$2" '{print $n}' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else printf "null"}'; }

echo "bench: WORKLOADS='$WORKLOADS', RUNS=$RUNS, $CONNECTIONS connections, build $BUILD"
start_sink
RESULT="$ROOT/bench/results/bench-$(date -u +%Y%m%dT%H%M%SZ).json"
mkdir -p "$ROOT/bench/results"
sections=()

if wants w1; then
  direct=() acks=() deliv=() rss=() cpu=() count=() packs=() pdeliv=() pcount=()
  for r in $(seq 1 "$RUNS"); do
    direct+=("$(run_direct)")
    read -r a b c m u <<<"$(run_w1 default)"
    acks+=("$a") deliv+=("$b") count+=("$c") rss+=("$m") cpu+=("$u")
    read -r pa pb pc _ _ <<<"$(run_w1 piped)"
    packs+=("$pa") pdeliv+=("$pb") pcount+=("$pc")
    echo "run $r: direct ${direct[-1]} req/s | W1 acks ${a}/s, deliveries ${b}/s ($c delivered), peak RSS ${m} KiB, CPU ${u} s | pipeline on: acks ${pa}/s, deliveries ${pb}/s ($pc delivered)"
  done
  md=$(median_of "${direct[@]}") ma=$(median_of "${acks[@]}") mb=$(median_of "${deliv[@]}")
  mr=$(median_of "${rss[@]}") mc=$(median_of "${cpu[@]}")
  mpa=$(median_of "${packs[@]}") mpb=$(median_of "${pdeliv[@]}")
  cost=$(awk -v off="$mb" -v on="$mpb" 'BEGIN {printf "%.1f", 100 * (off - on) / off}')
  echo "W1 median: direct $md req/s | enqueue $ma acks/s ($(pct "$ma" "$md") % of direct) | delivery $mb/s ($(pct "$mb" "$md") % of direct) | peak RSS $mr KiB | CPU $mc s"
  echo "W1 pipeline on, median: enqueue $mpa acks/s | delivery $mpb/s | cost $cost % of deliveries/s versus off"
  sections+=("\"w1\": {\"jobs\": $JOBS, \"direct_rps\": [$(list "${direct[@]}")], \"acks_per_s\": [$(list "${acks[@]}")],
  \"deliveries_per_s\": [$(list "${deliv[@]}")], \"delivered\": [$(list "${count[@]}")],
  \"relay_peak_rss_kib\": [$(list "${rss[@]}")], \"relay_cpu_s\": [$(list "${cpu[@]}")],
  \"pipeline_on\": {\"acks_per_s\": [$(list "${packs[@]}")], \"deliveries_per_s\": [$(list "${pdeliv[@]}")], \"delivered\": [$(list "${pcount[@]}")]},
  \"median\": {\"direct_rps\": $md, \"acks_per_s\": $ma, \"deliveries_per_s\": $mb, \"acks_pct_of_direct\": $(pct "$ma" "$md"),
             \"deliveries_pct_of_direct\": $(pct "$mb" "$md"), \"pipeline_on_deliveries_per_s\": $mpb, \"pipeline_cost_pct\": $cost}}")
fi

if wants w1pg; then
  chmod 755 "$WORK"  # the server runs as the postgres user: it must reach its folder
  [ -n "${PG_STATEMENTS:-}" ] && export PG_OPTS="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
  PG_DSN=$("$ROOT/scripts/pg-up.sh" "$PG_DIR" | tail -1)
  [ -n "${PG_STATEMENTS:-}" ] && pg_sql "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
  ldel=() lcpu=() d1=() c1=() db1=() w1=() s1=() k1=() d3=() c3=() db3=() w3=() s3=() k3=()
  per_k() { awk -v x="$1" -v n="$2" 'BEGIN {printf "%.3f", 1000 * x / n}'; }
  for r in $(seq 1 "$RUNS"); do
    read -r _ lb lc _ lu <<<"$(run_w1 default)"
    ldel+=("$lb") lcpu+=("$(per_k "$lu" "$lc")")
    read -r b c u dbu wb ws wc <<<"$(run_w1pg 1)"
    d1+=("$b") c1+=("$(per_k "$u" "$c")") db1+=("$(per_k "$dbu" "$c")") w1+=("$((wb / c))") s1+=("$(per_k "$ws" "$c")") k1+=("$(per_k "$wc" "$c")")
    echo "W1-pg run $r: LevelDB ${lb}/s (relay CPU ${lcpu[-1]} s/1000 jobs) | PostgreSQL, 1 relay: ${b}/s ($c delivered), relay CPU ${c1[-1]} s/1000 jobs, database CPU ${db1[-1]} s/1000, ${w1[-1]} WAL bytes/job, ${s1[-1]} WAL syncs and ${k1[-1]} commits/1000 jobs"
    read -r b c u dbu wb ws wc <<<"$(run_w1pg 3)"
    d3+=("$b") c3+=("$(per_k "$u" "$c")") db3+=("$(per_k "$dbu" "$c")") w3+=("$((wb / c))") s3+=("$(per_k "$ws" "$c")") k3+=("$(per_k "$wc" "$c")")
    echo "W1-pg run $r: PostgreSQL, 3 relays: ${b}/s ($c delivered), relay CPU ${c3[-1]} s/1000 jobs, database CPU ${db3[-1]} s/1000, ${w3[-1]} WAL bytes/job, ${s3[-1]} WAL syncs and ${k3[-1]} commits/1000 jobs"
  done
  "$ROOT/scripts/pg-down.sh" "$PG_DIR" >/dev/null
  ml=$(median_of "${ldel[@]}") m1=$(median_of "${d1[@]}") m3=$(median_of "${d3[@]}")
  echo "W1-pg median: LevelDB $ml/s | PostgreSQL 1 relay $m1/s ($(pct "$m1" "$ml") % of LevelDB; target >= 50 %) | 3 relays $m3/s ($(pct "$m3" "$m1") % of 1 relay)"
  echo "W1-pg median per 1000 jobs: relay CPU s LevelDB $(median_of "${lcpu[@]}"), pg 1 relay $(median_of "${c1[@]}"), 3 relays $(median_of "${c3[@]}") | database CPU s $(median_of "${db1[@]}") (1), $(median_of "${db3[@]}") (3) | WAL syncs $(median_of "${s1[@]}") (1), $(median_of "${s3[@]}") (3) | commits $(median_of "${k1[@]}") (1), $(median_of "${k3[@]}") (3) | WAL bytes per job $(median_of "${w1[@]}") (1), $(median_of "${w3[@]}") (3)"
  sections+=("\"w1pg\": {\"jobs\": $JOBS, \"leveldb_deliveries_per_s\": [$(list "${ldel[@]}")], \"leveldb_cpu_s_per_1000\": [$(list "${lcpu[@]}")],
  \"pg1\": {\"deliveries_per_s\": [$(list "${d1[@]}")], \"relay_cpu_s_per_1000\": [$(list "${c1[@]}")], \"db_cpu_s_per_1000\": [$(list "${db1[@]}")], \"wal_bytes_per_job\": [$(list "${w1[@]}")], \"wal_syncs_per_1000\": [$(list "${s1[@]}")], \"commits_per_1000\": [$(list "${k1[@]}")]},
  \"pg3\": {\"deliveries_per_s\": [$(list "${d3[@]}")], \"relay_cpu_s_per_1000\": [$(list "${c3[@]}")], \"db_cpu_s_per_1000\": [$(list "${db3[@]}")], \"wal_bytes_per_job\": [$(list "${w3[@]}")], \"wal_syncs_per_1000\": [$(list "${s3[@]}")], \"commits_per_1000\": [$(list "${k3[@]}")]},
  \"median\": {\"leveldb\": $ml, \"pg1\": $m1, \"pg3\": $m3, \"pg1_pct_of_leveldb\": $(pct "$m1" "$ml"), \"pg3_pct_of_pg1\": $(pct "$m3" "$m1")}}")
fi

# w2 (paced at W2_RATE/s) and w2o (overload): the same jobs, RUNS runs each.
for w2 in w2 w2o; do
  wants "$w2" || continue
  rate=$W2_RATE name="W2 (paced, $W2_RATE/s)"
  [ "$w2" = w2o ] && rate="" name="W2-overload"
  p50s=() p99s=() maxs=() earlies=() lines=() lags=() starveds=() caps=()
  for r in $(seq 1 "$RUNS"); do
    read -r p50 p99 mx early n acked rss lag starved cap excess <<<"$(run_w2 "$rate")"
    p50s+=("$p50") p99s+=("$p99") maxs+=("$mx") earlies+=("$early") lines+=("$n/$acked") lags+=("$lag")
    starveds+=("$starved") caps+=("$cap")
    echo "$name run $r: lateness p50 $p50 ms, p99 $p99 ms, max $mx ms; early $early; delivered $n of $acked" \
      "acknowledged; peak RSS $rss KiB; sends behind the pace by at most $lag ms; drain: $starved starved" \
      "(capacity $cap/s, worst lateness minus its bound $excess ms)"
  done
  echo "$name median: lateness p50 $(median_of "${p50s[@]}") ms, p99 $(median_of "${p99s[@]}") ms, max $(median_of "${maxs[@]}") ms; early $(median_of "${earlies[@]}"); starved $(median_of "${starveds[@]}")"
  sections+=("\"$w2\": {\"jobs\": $W2_JOBS, \"rate\": ${rate:-null}, \"p50_ms\": [$(list "${p50s[@]}")], \"p99_ms\": [$(list "${p99s[@]}")], \"max_ms\": [$(list "${maxs[@]}")],
  \"early\": [$(list "${earlies[@]}")], \"send_lag_ms\": [$(list "${lags[@]}")], \"starved\": [$(list "${starveds[@]}")], \"capacity_per_s\": [$(list "${caps[@]}")],
  \"delivered_of_acked\": [\"$(IFS=; printf '%s","' "${lines[@]}" | sed 's/","$//')\"]}")
done

if wants w3; then
  threes=() others=() undel=()
  for r in $(seq 1 "$RUNS"); do
    read -r three other u acked <<<"$(run_w3)"
    threes+=("$three") others+=("$other") undel+=("$u")
    echo "W3 run $r: $three of $acked jobs took exactly 3 attempts; $other other; $u undelivered"
  done
  sections+=("\"w3\": {\"jobs\": $W3_JOBS, \"exactly_3_attempts\": [$(list "${threes[@]}")], \"other\": [$(list "${others[@]}")], \"undelivered\": [$(list "${undel[@]}")]}")
fi

if wants w4; then
  losts=() dupss=() ackeds=() unackeds=()
  for r in $(seq 1 "$RUNS"); do
    read -r acked lost dups unacked <<<"$(run_w4)"
    losts+=("$lost") dupss+=("$dups") ackeds+=("$acked") unackeds+=("$unacked")
    echo "W4 run $r: $acked acknowledged, $lost lost, $dups duplicate deliveries, $unacked delivered that the kill left unacknowledged"
  done
  sections+=("\"w4\": {\"jobs\": $JOBS, \"acked\": [$(list "${ackeds[@]}")], \"lost\": [$(list "${losts[@]}")], \"duplicates\": [$(list "${dupss[@]}")], \"unacked_delivered\": [$(list "${unackeds[@]}")]}")
fi

if wants w5; then
  read -r jobs fill ready rr rl peak sched <<<"$(run_w5)"
  echo "W5: $jobs pending jobs written in $fill s; restart to /readyz 200 in $ready ms; RSS $rr KiB when ready, $rl KiB 10 s later, peak $peak KiB; /metrics scheduled $sched"
  sections+=("\"w5\": {\"jobs\": $jobs, \"fill_s\": $fill, \"ready_ms\": $ready, \"rss_ready_kib\": $rr, \"rss_10s_kib\": $rl, \"peak_rss_kib\": $peak, \"scheduled\": \"$sched\"}")
fi

if wants w6; then
  read -r n fill ready rr rl peak made <<<"$(run_w6)"
  echo "W6: $n hourly schedules written in $fill s; start to /readyz 200 in $ready ms; RSS $rr KiB when ready, $rl KiB after ${W6_WAIT} s of fires ($made jobs made), peak $peak KiB"
  sections+=("\"w6\": {\"schedules\": $n, \"fill_s\": $fill, \"ready_ms\": $ready, \"rss_ready_kib\": $rr, \"rss_later_kib\": $rl, \"wait_s\": $W6_WAIT, \"peak_rss_kib\": $peak, \"jobs_made\": $made}")
fi

if wants w7; then
  read -r n fill page list deep filtered nomatch job <<<"$(run_w7)"
  echo "W7 (console, $n jobs in the store, written in $fill s; p50/p99/max ms of $W7_SAMPLES calls each): page $page, jobs list $list, 20 pages deep $deep, status filter $filtered, URL prefix matching nothing $nomatch, job page $job"
  q() { echo "\"$1\""; }
  sections+=("\"w7\": {\"jobs\": $n, \"fill_s\": $fill, \"samples\": $W7_SAMPLES, \"page_ms\": $(q "$page"), \"list_ms\": $(q "$list"), \"deep_list_ms\": $(q "$deep"), \"filtered_list_ms\": $(q "$filtered"), \"nomatch_prefix_ms\": $(q "$nomatch"), \"job_ms\": $(q "$job")}")
fi

if wants w8; then
  p99a=() p99s=() lines=()
  for r in $(seq 1 "$RUNS"); do
    out=$(run_w8)
    lines+=("$out")
    a=$(sed -n 's/.*"alone":{[^}]*"p99_ms":\([0-9.]*\).*/\1/p' <<<"$out")
    w=$(sed -n 's/.*"with_slow":{[^}]*"p99_ms":\([0-9.]*\).*/\1/p' <<<"$out")
    p99a+=("$a") p99s+=("$w")
    echo "W8 run $r: $out"
  done
  ma=$(median_of "${p99a[@]}") ms=$(median_of "${p99s[@]}")
  echo "W8 median: submission p99 $ma ms alone, $ms ms beside $W8_SLOW slow connections (x$(awk -v a="$ma" -v b="$ms" 'BEGIN {printf "%.2f", b / a}'))"
  sections+=("\"w8\": {\"slow\": $W8_SLOW, \"runs\": [$(list "${lines[@]}")], \"median_p99_alone_ms\": $ma, \"median_p99_with_slow_ms\": $ms}")
fi

if wants peers; then
  [ -d "$BQ_DIR/node_modules" ] || (cd "$BQ_DIR" && npm ci --no-audit --no-fund >&2)
  modes=(everysec always)
  rm -f "$WORK"/peer-*
  # Alternating per run, so the machine's moods hit fetchrelay and BullMQ alike.
  for r in $(seq 1 "$RUNS"); do
    read -r a b c _ u <<<"$(run_w1 default)"
    echo "$a $b $c $u" >>"$WORK/peer-fetchrelay"
    row="peers run $r: fetchrelay W1 acks ${a}/s, deliveries ${b}/s ($c delivered), CPU $u s"
    for BQ_AOF in "${modes[@]}"; do
      read -r a b c m u <<<"$(run_w1_bullmq)"
      echo "${a:-null} ${b:-null} ${c:-null} ${m:-null} ${u:-null}" >>"$WORK/peer-w1-$BQ_AOF"  # null: a run that failed
      row+=" | BullMQ AOF $BQ_AOF: acks ${a}/s, deliveries ${b}/s ($c delivered), peak RSS $m KiB, CPU $u s"
    done
    echo "$row"
  done
  for BQ_AOF in "${modes[@]}"; do
    for r in $(seq 1 "$RUNS"); do
      read -r acked lost dups unacked <<<"$(run_w4 bullmq)"
      echo "${acked:-null} ${lost:-null} ${dups:-null} ${unacked:-null}" >>"$WORK/peer-w4-$BQ_AOF"
      echo "peers W4 BullMQ AOF $BQ_AOF run $r: $acked acknowledged, $lost lost, $dups duplicate deliveries, $unacked delivered that the kill left unacknowledged"
    done
  done
  fr=$(col "$WORK/peer-fetchrelay" 2 | median)
  bq_version=$(node -p "require('$BQ_DIR/node_modules/bullmq/package.json').version")
  redis_version=$(redis-server --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p')
  peer_json="\"peers\": {\"jobs\": $JOBS, \"bullmq\": \"$bq_version\", \"redis\": \"$redis_version\", \"node\": \"$(node --version)\",
  \"worker_client\": \"${BULLMQ_CLIENT:-fetch}\", \"producer_batch\": $([ "${PRODUCER_BATCH:-}" = 0 ] && echo false || echo true),
  \"fetchrelay_w1\": {\"acks_per_s\": [$(col "$WORK/peer-fetchrelay" 1 | paste -sd,)], \"deliveries_per_s\": [$(col "$WORK/peer-fetchrelay" 2 | paste -sd,)],
    \"delivered\": [$(col "$WORK/peer-fetchrelay" 3 | paste -sd,)], \"relay_cpu_s\": [$(col "$WORK/peer-fetchrelay" 4 | paste -sd,)], \"median_deliveries_per_s\": $fr}"
  for BQ_AOF in "${modes[@]}"; do
    w1="$WORK/peer-w1-$BQ_AOF" w4="$WORK/peer-w4-$BQ_AOF"
    ma=$(col "$w1" 1 | median) mb=$(col "$w1" 2 | median)
    echo "peers median, BullMQ AOF $BQ_AOF (worker client ${BULLMQ_CLIENT:-fetch}): W1 enqueue $ma acks/s, delivery $mb/s (fetchrelay $fr/s: x$(ratio "$fr" "$mb")) | W4 lost $(col "$w4" 2 | paste -sd/), duplicates $(col "$w4" 3 | paste -sd/) (runs)"
    peer_json+=",
  \"bullmq_$BQ_AOF\": {\"w1\": {\"acks_per_s\": [$(col "$w1" 1 | paste -sd,)], \"deliveries_per_s\": [$(col "$w1" 2 | paste -sd,)], \"delivered\": [$(col "$w1" 3 | paste -sd,)],
      \"peak_rss_kib\": [$(col "$w1" 4 | paste -sd,)], \"cpu_s\": [$(col "$w1" 5 | paste -sd,)]},
    \"w4\": {\"acked\": [$(col "$w4" 1 | paste -sd,)], \"lost\": [$(col "$w4" 2 | paste -sd,)], \"duplicates\": [$(col "$w4" 3 | paste -sd,)], \"unacked_delivered\": [$(col "$w4" 4 | paste -sd,)]},
    \"median\": {\"acks_per_s\": $ma, \"deliveries_per_s\": $mb, \"fetchrelay_to_bullmq\": $(ratio "$fr" "$mb")}}"
  done
  sections+=("$peer_json}")
fi

{ echo "{\"date\": \"$(date -u +%FT%TZ)\", \"runs\": $RUNS, \"connections\": $CONNECTIONS,"
  (IFS=$'\n'; printf '%s,\n' "${sections[@]}") | sed '$ s/,$//'
  echo "}"; } >"$RESULT"
echo "figures: $RESULT"
