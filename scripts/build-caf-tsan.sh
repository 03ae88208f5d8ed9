#!/usr/bin/env bash
# Builds CAF 0.17.6 (core and io) with ThreadSanitizer into PREFIX, from Debian's own source
# tarball of the version Debian 12 ships (deb.debian.org, checked against its SHA-256), for
# `make test-tsan`. Debian's libcaf is built without TSan: its mailboxes hand messages between
# threads with atomics TSan cannot see, so every message read by another actor was reported as a
# race (467 reports in actors_test). Built once; skipped when PREFIX already holds it.
#
#   scripts/build-caf-tsan.sh PREFIX
set -euo pipefail
PREFIX=${1:?usage: scripts/build-caf-tsan.sh PREFIX}
VERSION=0.17.6
URL="http://deb.debian.org/debian/pool/main/a/actor-framework/actor-framework_${VERSION}.orig.tar.gz"
SHA256=e2bf5bd243f08bb7d8adde197cfe3e6d71314ed3378fe0692f8932f4c3b3928c
STAMP="$PREFIX/.caf-$VERSION-tsan"
if [ -f "$STAMP" ]; then
  echo "build-caf-tsan: CAF $VERSION with TSan already in $PREFIX"
  exit 0
fi
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/caf-tsan.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
echo "build-caf-tsan: fetching $URL"
curl -sSfL -o "$WORK/caf.tar.gz" "$URL"
echo "$SHA256  $WORK/caf.tar.gz" | sha256sum -c --quiet
tar xzf "$WORK/caf.tar.gz" -C "$WORK"
# -include limits: libcaf_io uses std::numeric_limits without including <limits>, which g++ 12
# no longer pulls in by accident (Debian patches the same gap); forcing the header changes no code.
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$WORK/actor-framework-$VERSION" -B "$WORK/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread -Wno-tsan -include limits" -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread \
  -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread -DCMAKE_INSTALL_PREFIX="$PREFIX" \
  -DCAF_NO_EXAMPLES=yes -DCAF_NO_TOOLS=yes -DCAF_NO_UNIT_TESTS=yes -DCAF_NO_OPENSSL=yes -DCAF_NO_PYTHON=yes \
  -DCAF_NO_OPENCL=yes -DCAF_NO_COMPILER_CHECK=yes >"$WORK/configure.log" || { cat "$WORK/configure.log" >&2; exit 1; }
echo "build-caf-tsan: building (about 7 minutes on 2 cores, less with a warm ccache)"
# ccache: the same objects whatever the temporary folder is called.
CCACHE_BASEDIR="$WORK" CCACHE_NOHASHDIR=true cmake --build "$WORK/build" -j "${JOBS:-2}" >"$WORK/build.log" || { tail -40 "$WORK/build.log" >&2; exit 1; }
cmake --install "$WORK/build" >/dev/null
touch "$STAMP"
echo "build-caf-tsan: CAF $VERSION with TSan installed in $PREFIX"
