#!/usr/bin/env bash
# deps.sh: install the Debian 12 packages switchboard needs, only those that are missing.
#
#   scripts/deps.sh            build + test dependencies
#   scripts/deps.sh --bench    also the peer brokers and client libraries scripts/bench.sh compares with
#   scripts/deps.sh --fuzz     also clang-16 and libFuzzer for scripts/fuzz.sh
#   . scripts/deps.sh [--bench]   same, from another script (returns instead of exiting)
#
# Non-interactive (works with CI=true and no stdin). As root it runs apt-get; otherwise it uses sudo
# when available (non-interactively), else it prints the apt-get command and fails with status 1.
# When everything is installed it does nothing and touches neither the network nor apt's lists.

# The one list of packages. Keep it in step with the find_package() calls in CMakeLists.txt.
SWITCHBOARD_DEPS=(
  build-essential cmake ninja-build pkg-config git python3
  cppzmq-dev libzmq3-dev librocksdb-dev libsimdjson-dev libboost-program-options-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev libcurl4-openssl-dev libssl-dev
  libspdlog-dev libfmt-dev rapidjson-dev
  libsndfile1-dev libsamplerate0-dev libespeak-ng-dev espeak-ng-data
  python3-zmq prometheus
)
# python3-zmq: the Python client's tests (client/python, tests/python). prometheus: for its `promtool`,
# which metrics_test runs on the real /metrics output (Debian ships promtool only in this package; on
# a systemd host the package also enables a Prometheus server on :9090 — `systemctl disable --now
# prometheus` if that is not wanted).
# libFuzzer for scripts/fuzz.sh (the corpus replays in ctest need neither).
SWITCHBOARD_FUZZ_DEPS=(clang-16 libfuzzer-16-dev libclang-rt-16-dev)
# Peers for scripts/bench.sh (see /work/shared/peerbench/README.md); wrk, sox and curl for
# scripts/media_bench.sh.
SWITCHBOARD_BENCH_DEPS=(
  nats-server redis-server mosquitto libnats-dev libhiredis-dev libmosquitto-dev
  wrk sox curl
)

switchboard_missing_packages() {  # prints the packages in "$@" that are not installed
  local p status
  for p in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) || status=""
    [ "$status" = installed ] || printf '%s\n' "$p"
  done
}

switchboard_deps() {
  local want=("${SWITCHBOARD_DEPS[@]}") arg
  for arg in "$@"; do
    case "$arg" in
      --bench) want+=("${SWITCHBOARD_BENCH_DEPS[@]}") ;;
      --fuzz) want+=("${SWITCHBOARD_FUZZ_DEPS[@]}") ;;
      -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}"; return 0 ;;
      *) echo "deps.sh: unknown argument '$arg' (expected --bench or --fuzz)" >&2; return 2 ;;
    esac
  done
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps.sh: dpkg-query not found; this script supports Debian 12 only." >&2
    echo "deps.sh: install the equivalents of: ${want[*]}" >&2
    return 1
  fi
  local missing
  mapfile -t missing < <(switchboard_missing_packages "${want[@]}")
  [ "${#missing[@]}" -eq 0 ] && return 0

  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      echo "deps.sh: missing packages: ${missing[*]}" >&2
      echo "deps.sh: run as root:  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
      return 1
    fi
  fi
  echo "deps.sh: installing ${missing[*]}" >&2
  local env=(env DEBIAN_FRONTEND=noninteractive)
  "${sudo[@]}" "${env[@]}" apt-get update -q </dev/null || return 1
  "${sudo[@]}" "${env[@]}" apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" </dev/null || return 1
  mapfile -t missing < <(switchboard_missing_packages "${want[@]}")
  if [ "${#missing[@]}" -ne 0 ]; then
    echo "deps.sh: still missing after apt-get: ${missing[*]}" >&2
    return 1
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  switchboard_deps "$@"
else
  switchboard_deps "$@"
fi
