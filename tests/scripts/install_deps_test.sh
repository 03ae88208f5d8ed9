#!/usr/bin/env bash
# scripts/install-deps.sh with a dpkg-query that says nothing is installed: --bench must list
# nginx-light and wrk (they were added after the missing list was computed, so never installed).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
fake=$(mktemp -d)
trap 'rm -rf "$fake"' EXIT
printf '#!/bin/sh\nexit 1\n' >"$fake/dpkg-query"
chmod +x "$fake"/*
# nginx lives in /usr/sbin, which is left off PATH: it counts as missing.
path="$fake:/usr/bin:/bin"
fail() { echo "FAIL: $*" >&2; exit 1; }
bench=$(PATH="$path" bash "$root/scripts/install-deps.sh" --bench --list)
plain=$(PATH="$path" bash "$root/scripts/install-deps.sh" --list)
grep -qx nginx-light <<<"$bench" || fail "--bench does not list nginx-light: $bench"
grep -qx wrk <<<"$bench" || fail "--bench does not list wrk: $bench"
grep -qx libcaf-dev <<<"$bench" || fail "--bench lost the build packages: $bench"
! grep -qx wrk <<<"$plain" || fail "wrk listed without --bench"
echo "install-deps: --bench lists nginx-light and wrk"
