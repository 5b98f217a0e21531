#!/usr/bin/env bash
# bench.sh: end-to-end numbers for switchboard next to its peers, measured in the same run.
#
# Builds Release into build/, starts `switchboard --memory` on a free loopback port, runs
# switchboard-bench through the four peerbench workloads, then (when nats-server / redis-server are
# installed) builds peerbench and runs the same workloads against NATS and Redis. One broker runs at
# a time. Writes bench-results/<timestamp>/results.jsonl (+ commands.txt, versions.txt, logs) and
# prints a side-by-side table (scripts/bench_table.py).
#
#   scripts/bench.sh
#   REPS=3 scripts/bench.sh
#   BACKENDS=switchboard scripts/bench.sh          # only switchboard
# Environment: REPS (1), BACKENDS ("switchboard nats redis"), RUN_TIMEOUT (seconds per run, 120),
# OUT (results folder), PAUSE (seconds between runs, 1), TAGS (only these workloads, e.g.
# "lat_20k_128B"), BUILD_DIR (build), SKIP_BUILD=1 (use the binaries already in BUILD_DIR).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

REPS=${REPS:-1}
BACKENDS=${BACKENDS:-"switchboard nats redis"}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
PAUSE=${PAUSE:-1}
BUILD_DIR=${BUILD_DIR:-build}
WORKLOADS=(
  "tput_1x1_128B    --subs 1 --msgs 1000000 --size 128"
  "fanout_1x8_128B  --subs 8 --msgs 200000  --size 128"
  "lat_20k_128B     --subs 1 --msgs 100000  --size 128 --rate 20000"
  "tput_1x1_1024B   --subs 1 --msgs 300000  --size 1024"
)
PEERBENCH_SRC=${PEERBENCH_SRC:-/work/shared/peerbench}

OUT=${OUT:-bench-results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
results=$OUT/results.jsonl
: >>"$results"

scripts/deps.sh --bench
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  BUILD_DIR=$BUILD_DIR TARGETS="switchboard switchboard-bench switchboard-cli" scripts/build.sh Release >"$OUT/build.log" 2>&1 \
    || { tail -30 "$OUT/build.log" >&2; echo "bench.sh: build failed (see $OUT/build.log)" >&2; exit 1; }
fi
broker_bin=$BUILD_DIR/broker/switchboard
bench_bin=$BUILD_DIR/bench/switchboard-bench
for b in "$broker_bin" "$bench_bin"; do
  [ -x "$b" ] || { echo "bench.sh: $b is missing" >&2; exit 1; }
done

# Which peers can run: their server and peerbench (built from a writable copy of the shared folder).
peers=()
for b in $BACKENDS; do
  case "$b" in
    switchboard) ;;
    nats) command -v nats-server >/dev/null && peers+=(nats) || echo "bench.sh: nats-server not installed; skipping nats" >&2 ;;
    redis) command -v redis-server >/dev/null && peers+=(redis) || echo "bench.sh: redis-server not installed; skipping redis" >&2 ;;
    *) echo "bench.sh: unknown backend '$b' (switchboard, nats, redis)" >&2; exit 2 ;;
  esac
done
pb_dir=$(cd "$BUILD_DIR" && pwd)/peerbench  # shared/ is read-only: build a copy
if [ "${#peers[@]}" -gt 0 ]; then
  if [ ! -x "$pb_dir/peerbench" ] || [ "$PEERBENCH_SRC/peerbench.cpp" -nt "$pb_dir/peerbench" ]; then
    rm -rf "$pb_dir"
    mkdir -p "$(dirname "$pb_dir")"
    cp -r "$PEERBENCH_SRC" "$pb_dir"
    chmod -R u+w "$pb_dir"
    (cd "$pb_dir" && ./build.sh) >"$OUT/peerbench-build.log" 2>&1 \
      || { cat "$OUT/peerbench-build.log" >&2; echo "bench.sh: peerbench build failed; skipping peers" >&2; peers=(); }
  fi
fi
if [ "${#peers[@]}" -gt 0 ]; then
  # shellcheck disable=SC2034  # read by servers.sh
  PB_DIR=$pb_dir LOG_DIR=$OUT
  # shellcheck source=/dev/null
  . "$pb_dir/servers.sh"  # start_server / stop_server / wait_port, one server at a time, by PID
fi

broker_pid=""
stop_broker() {
  [ -n "$broker_pid" ] || return 0
  kill -TERM "$broker_pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$broker_pid" 2>/dev/null; then
    echo "bench.sh: switchboard did not stop within 10 s of SIGTERM; killing it" >&2
    kill -KILL "$broker_pid" 2>/dev/null || true
  fi
  local rc=0
  wait "$broker_pid" 2>/dev/null || rc=$?
  [ "$rc" -eq 0 ] || echo "bench.sh: switchboard exited with status $rc (log: $OUT/server-switchboard.log)" >&2
  broker_pid=""
}
cleanup() {
  stop_broker
  if [ "${#peers[@]}" -gt 0 ]; then for p in "${peers[@]}"; do stop_server "$p" || true; done; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts the broker on a free port and waits until the port accepts connections (probing, no fixed
# wait). Retries with another port if the first one was taken in between.
sb_port=""
start_broker() {
  local attempt
  for attempt in 1 2 3; do
    sb_port=$(free_port)
    "$broker_bin" --memory --bind "tcp://127.0.0.1:$sb_port" --admin-port 0 >>"$OUT/server-switchboard.log" 2>&1 &
    broker_pid=$!
    for _ in $(seq 200); do  # up to 20 s
      if ! kill -0 "$broker_pid" 2>/dev/null; then break; fi
      if (exec 3<>"/dev/tcp/127.0.0.1/$sb_port") 2>/dev/null; then return 0; fi
      sleep 0.1
    done
    stop_broker
    echo "bench.sh: switchboard did not come up on port $sb_port (attempt $attempt)" >&2
  done
  tail -20 "$OUT/server-switchboard.log" >&2
  return 1
}

{
  echo "host: $(uname -srm), $(nproc) cores"
  g++ --version | head -1
  echo "switchboard $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
  command -v nats-server >/dev/null && nats-server --version
  command -v redis-server >/dev/null && redis-server --version
  dpkg-query -W -f='${Package} ${Version}\n' nats-server redis-server libnats-dev libhiredis-dev \
    libzmq3-dev cppzmq-dev 2>/dev/null
} >"$OUT/versions.txt" || true

# run_one <backend> <rep> <command...>: one JSON line (annotated with rep and backend) into results.
run_one() {
  local backend=$1 rep=$2 line rc=0 t_start wall
  shift 2
  echo "$*" >>"$OUT/commands.txt"
  t_start=$(date +%s.%N)
  line=$(timeout "$RUN_TIMEOUT" "$@" 2>>"$OUT/stderr-$backend.log" | grep -m1 '^{' ) || rc=$?
  wall=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  case "$line" in
    \{*\})
      [[ $line == *'"backend"'* ]] || line="{\"backend\":\"$backend\",${line#\{}"
      line="${line%\}},\"rep\":$rep,\"wall_s\":$wall}" ;;
    *) line="{\"backend\":\"$backend\",\"tag\":\"$tag\",\"rep\":$rep,\"error\":\"exit $rc, no result\"}" ;;
  esac
  echo "$line" | tee -a "$results"
  sleep "$PAUSE"  # same settle pause between runs as peerbench's run_all.sh
}

if [ -n "${TAGS:-}" ]; then
  selected=()
  for w in "${WORKLOADS[@]}"; do [[ " $TAGS " == *" ${w%% *} "* ]] && selected+=("$w"); done
  [ "${#selected[@]}" -gt 0 ] || { echo "bench.sh: TAGS='$TAGS' matches no workload" >&2; exit 2; }
  WORKLOADS=("${selected[@]}")
fi

for rep in $(seq "$REPS"); do
  for b in $BACKENDS; do
    case "$b" in
      switchboard)
        start_broker || { echo "bench.sh: cannot start switchboard" >&2; exit 1; }
        for w in "${WORKLOADS[@]}"; do
          read -r tag flags <<<"$w"
          # shellcheck disable=SC2086  # flags is a word list
          run_one switchboard "$rep" "$bench_bin" --url "tcp://127.0.0.1:$sb_port" $flags --tag "$tag" --json-only
        done
        stop_broker ;;
      nats|redis)
        [[ " ${peers[*]} " == *" $b "* ]] || continue
        start_server "$b" || { echo "bench.sh: cannot start $b" >&2; continue; }
        for w in "${WORKLOADS[@]}"; do
          read -r tag flags <<<"$w"
          # shellcheck disable=SC2086
          run_one "$b" "$rep" "$pb_dir/peerbench" --backend "$b" $flags --tag "$tag"
        done
        stop_server "$b" || true ;;  # servers.sh is not written for set -e
    esac
  done
done

echo
python3 scripts/bench_table.py "$results" | tee "$OUT/summary.md"
echo "results: $results"
