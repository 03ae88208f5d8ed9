#!/usr/bin/env bash
# Runs every libFuzzer target of BUILD_DIR (tests/fuzz) for SECONDS each, starting from the
# committed seed corpus tests/fuzz/corpus/<name>/ (new inputs go to a scratch copy, never into
# the repository). A crash, hang (over 10 s for one input), leak, out-of-memory or sanitizer
# report fails the run; its input is kept in BUILD_DIR/fuzz-artifacts/ and becomes a unit test.
#
#   scripts/fuzz.sh BUILD_DIR SECONDS
set -euo pipefail
build="$1"
seconds="$2"
root="$(cd "$(dirname "$0")/.." && pwd)"
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
failed=0
for bin in "$build"/tests/fuzz/fuzz_*; do
  name="$(basename "$bin")"
  name="${name#fuzz_}"
  work="$(mktemp -d "${TMPDIR:-/tmp}/fetchrelay-fuzz-$name.XXXXXX")"
  cp -r "$root/tests/fuzz/corpus/$name/." "$work/"
  log="$artifacts/$name.log"
  if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$name-" "$work" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz $name: ok, $runs inputs in ${seconds} s"
  else
    echo "fuzz $name: FAILED (see $log and $artifacts/$name-*)" >&2
    tail -30 "$log" >&2
    failed=1
  fi
  rm -rf "$work"
done
exit "$failed"
