#!/usr/bin/env bash
# Installs the Debian packages fetchrelay needs to build, test and run.
# Idempotent: installs only what is missing and runs `apt-get update` only then.
# Needs root or sudo. Targets Debian 12 (bookworm) and close relatives.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libcaf-dev
  libboost-dev libboost-system-dev
  libleveldb-dev libsnappy-dev
  libyaml-cpp-dev
  libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev
  libssl-dev
  libmimalloc-dev
  nlohmann-json3-dev
  libpq-dev        # the PostgreSQL store (storage.backend: postgres)
  postgresql-15    # its tests start a throwaway server (scripts/pg-up.sh); no system cluster is used
  libhowardhinnant-date-dev tzdata
  curl
  prometheus      # promtool: a test checks /metrics with `promtool check metrics`
  chromium        # the web console's browser test (driven by playwright-core, which downloads no browser)
)

# --bench adds what `make bench` needs: nginx (the sink and the direct ceiling), wrk, and
# redis-server (the BullMQ peer of `make bench PEERS=1`; its npm packages come from
# bench/peers/bullmq/package-lock.json, installed by bench/run.sh). It must come before the
# missing list is computed (it once came after, so `make bench` never installed them).
# --list prints the missing packages, one a line, and installs nothing.
LIST=""
for arg in "$@"; do
  case "$arg" in
    --bench) PACKAGES+=(nginx-light wrk redis-server) ;;
    --fuzz) PACKAGES+=(clang libclang-rt-14-dev) ;;  # `make fuzz`: clang's libFuzzer
    --list) LIST=1 ;;
    *) echo "install-deps: unknown option $arg (use --bench, --fuzz, --list)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PACKAGES[@]}"; do
  if [ "$p" = nginx-light ] && command -v nginx >/dev/null 2>&1; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node and npm run the npm packages of the end-to-end tests (standardwebhooks, the QStash SDK
# conformance suite); Debian's only if there is no node (or no npm) at all.
if ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs npm)
elif ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [ -n "$LIST" ]; then
  for p in "${missing[@]}"; do echo "$p"; done
  exit 0
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: missing packages (${missing[*]}) and not root; install them or run with sudo" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
