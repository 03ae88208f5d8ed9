#!/usr/bin/env bash
# bench/drain_order.awk (W2-overload's starvation check) on made-up deliveries: 20,000 jobs due over
# 2 s, delivered in due order at 5,000/s (a backlog drained in order: none starved), then the same
# with one job held back 30 s (starved: exactly one).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
check() {  # check FILE: prints "starved capacity worst-excess-ms"
  awk '{print $2}' "$1" | sort -n >"$work/due"
  awk '{print $1}' "$1" | sort -n >"$work/recv"
  awk -f "$root/bench/drain_order.awk" "$work/due" "$work/recv" "$1"
}
# "receive-ms due-ms": job i due at i/10 ms, received at 1,000,000 + i/5 ms (after its due time).
awk 'BEGIN {for (i = 0; i < 20000; i++) printf "%d %d\n", 1000000 + int(i / 5) + 1, 1000000 + int(i / 10)}' >"$work/fifo"
read -r starved cap _ <<<"$(check "$work/fifo")"
[ "$starved" = 0 ] || fail "in-order drain: $starved starved"
[ "$cap" -ge 4500 ] && [ "$cap" -le 5500 ] || fail "capacity $cap/s, expected ~5,000"
awk 'NR == 100 {$1 += 30000} {print}' "$work/fifo" >"$work/held"
read -r starved _ excess <<<"$(check "$work/held")"
[ "$starved" = 1 ] || fail "one job held back 30 s: $starved starved"
[ "$excess" -gt 25000 ] || fail "worst excess $excess ms, expected ~29 s"
echo "drain_order: in-order drain 0 starved (capacity $cap/s); a held-back job is the one starved"
