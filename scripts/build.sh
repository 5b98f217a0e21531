#!/usr/bin/env bash
# build.sh [Release|Debug|RelWithDebInfo] [extra cmake args...]
#
# Configures $BUILD_DIR (default build/) with Ninja and builds everything with -j$(nproc).
#   scripts/build.sh                                   # Release into build/
#   BUILD_DIR=build-debug scripts/build.sh Debug
#   scripts/build.sh Release -DSWITCHBOARD_BUILD_TESTS=OFF
# Environment: BUILD_DIR, JOBS (default nproc), TARGETS (default: all).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

build_type=Release
if [ $# -gt 0 ]; then
  case "$1" in
    Release|Debug|RelWithDebInfo|MinSizeRel) build_type=$1; shift ;;
    -*) ;;  # no build type given, only cmake args
    *) echo "build.sh: unknown build type '$1' (Release, Debug, RelWithDebInfo, MinSizeRel)" >&2; exit 2 ;;
  esac
fi
build_dir=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}

cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" "$@"
# shellcheck disable=SC2086  # TARGETS is a word list on purpose
cmake --build "$build_dir" -j "$jobs" ${TARGETS:+--target $TARGETS}
