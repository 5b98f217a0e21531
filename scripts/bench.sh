#!/usr/bin/env bash
# bench.sh: end-to-end numbers for switchboard next to its peers, measured in the same run.
#
# Builds Release into build/, starts `switchboard --memory` on a free loopback port, runs
# switchboard-bench through the four peerbench workloads, then (when nats-server / redis-server are
# installed) builds peerbench and runs the same workloads against NATS and Redis. One broker runs at
# a time. Writes bench-results/<timestamp>/results.jsonl (+ commands.txt, versions.txt, logs) and
# prints a side-by-side table (scripts/bench_table.py).
#
# SUITE=durable: acknowledged durable publishes, like peerbench's `SUITE=durable run_all.sh`. The broker
# runs with a data directory (a fresh temporary one, removed afterwards) and an admin token;
# switchboard-bench --durable makes a fresh channel durable through the admin API and publishes with
# publish_async, at most 128 unacknowledged. Workloads durable_tput_1x1_128B and durable_lat_20k_128B,
# plus `…_ackedsub` variants (subscribers on durable at_least_once subscriptions that ack every
# event) when the broker accepts such a subscription (probed first); then the durable peers
# redis-stream (AOF, appendfsync always) and jetstream (file storage). Results in
# bench-results/<timestamp>-durable/.
#
#   scripts/bench.sh
#   REPS=3 scripts/bench.sh
#   BACKENDS=switchboard scripts/bench.sh          # only switchboard
#   SUITE=durable scripts/bench.sh                 # durable: switchboard vs redis-stream, jetstream
# Environment: SUITE (default | durable), REPS (1), BACKENDS ("switchboard nats redis"; durable:
# "switchboard redis-stream jetstream"), RUN_TIMEOUT (seconds per run, 120), OUT (results folder),
# PAUSE (seconds between runs, 1), TAGS (only these workloads, e.g. "lat_20k_128B"), BUILD_DIR
# (build), SKIP_BUILD=1 (use the binaries already in BUILD_DIR), BATCH (durable: acks in flight, 128),
# ACKEDSUB (durable: auto | 0 | 1; auto = run the _ackedsub variants if the probe succeeds).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

SUITE=${SUITE:-default}
REPS=${REPS:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
PAUSE=${PAUSE:-1}
BUILD_DIR=${BUILD_DIR:-build}
BATCH=${BATCH:-128}
ACKEDSUB=${ACKEDSUB:-auto}
case "$SUITE" in
  default)
    BACKENDS=${BACKENDS:-"switchboard nats redis"}
    WORKLOADS=(
      "tput_1x1_128B    --subs 1 --msgs 1000000 --size 128"
      "fanout_1x8_128B  --subs 8 --msgs 200000  --size 128"
      "lat_20k_128B     --subs 1 --msgs 100000  --size 128 --rate 20000"
      "tput_1x1_1024B   --subs 1 --msgs 300000  --size 1024"
    )
    suffix="" ;;
  durable)  # the same workloads as peerbench's SUITE=durable
    BACKENDS=${BACKENDS:-"switchboard redis-stream jetstream"}
    WORKLOADS=(
      "durable_tput_1x1_128B  --subs 1 --msgs 200000 --size 128"
      "durable_lat_20k_128B   --subs 1 --msgs 40000  --size 128 --rate 20000"
    )
    suffix=-durable ;;
  *) echo "bench.sh: unknown SUITE '$SUITE' (default, durable)" >&2; exit 2 ;;
esac
durable=0; [ "$SUITE" = durable ] && durable=1
pb_flags=(); [ "$durable" = 1 ] && pb_flags=(--batch "$BATCH")  # peerbench's default is 128 too
PEERBENCH_SRC=${PEERBENCH_SRC:-/work/shared/peerbench}

OUT=${OUT:-bench-results/$(date +%Y%m%d-%H%M%S)$suffix}
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
    redis-stream) command -v redis-server >/dev/null && peers+=(redis-stream) || echo "bench.sh: redis-server not installed; skipping redis-stream" >&2 ;;
    jetstream) command -v nats-server >/dev/null && peers+=(jetstream) || echo "bench.sh: nats-server not installed; skipping jetstream" >&2 ;;
    *) echo "bench.sh: unknown backend '$b' (switchboard, nats, redis, redis-stream, jetstream)" >&2; exit 2 ;;
  esac
done
pb_dir=$(cd "$BUILD_DIR" && pwd)/peerbench  # shared/ is read-only: build a copy
if [ "${#peers[@]}" -gt 0 ]; then
  # Rebuild the copy when any file of the shared folder changed (peerbench.cpp, servers.sh, ...).
  if [ ! -x "$pb_dir/peerbench" ] || [ -n "$(find "$PEERBENCH_SRC" -type f -newer "$pb_dir/peerbench" 2>/dev/null)" ]; then
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
sb_data=""   # durable suite: the broker's temporary data directory
sb_admin=""  # durable suite: the broker's admin API URL
sb_token=""  # durable suite: admin token (also needed by clients once auth is on)
if [ "$durable" = 1 ]; then sb_token=bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n'); fi
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
  if [ -n "$sb_data" ]; then
    du -sh "$sb_data" >>"$OUT/server-switchboard.log" 2>/dev/null || true
    case "$sb_data" in */switchboard-bench-data.*) rm -rf -- "$sb_data" ;; esac
    sb_data=""
  fi
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
# Durable suite: with a fresh data directory (RocksDB, not --memory) and an admin token; the admin
# URL (port 0 = any free) is read from the ready line.
sb_port=""
start_broker() {
  local attempt store_args log=$OUT/server-switchboard.log n0
  for attempt in 1 2 3; do
    sb_port=$(free_port)
    store_args=(--memory)
    if [ "$durable" = 1 ]; then
      sb_data=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench-data.XXXXXX")
      store_args=(--data-dir "$sb_data/data" --admin-token "$sb_token")
    fi
    touch "$log"; n0=$(wc -l <"$log")
    "$broker_bin" "${store_args[@]}" --bind "tcp://127.0.0.1:$sb_port" --admin-port 0 >>"$log" 2>&1 &
    broker_pid=$!
    for _ in $(seq 200); do  # up to 20 s
      if ! kill -0 "$broker_pid" 2>/dev/null; then break; fi
      if (exec 3<>"/dev/tcp/127.0.0.1/$sb_port") 2>/dev/null; then
        [ "$durable" = 1 ] || return 0
        sb_admin=$(tail -n +$((n0 + 1)) "$log" | grep -o 'switchboard listening on .*(admin http://[^)]*' \
                   | grep -o 'http://[^)]*' | head -1) || true
        [ -n "$sb_admin" ] && return 0
      fi
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
  echo "suite: $SUITE"
  dpkg-query -W -f='${Package} ${Version}\n' nats-server redis-server libnats-dev libhiredis-dev \
    libzmq3-dev cppzmq-dev 2>/dev/null
} >"$OUT/versions.txt" || true

# CPU time (user+system, clock ticks) of a process from /proc; 0 when it is gone. The fields are
# counted after the ")" that ends the command name, which may itself hold spaces.
proc_cpu_ticks() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  stat=${stat##*) }
  awk '{ print $12 + $13 }' <<<"$stat"
}
server_pid() {  # the PID of the server a backend's runs talk to
  case "$1" in
    switchboard) echo "$broker_pid" ;;
    *) cat "$PB_DIR/run/$1.pid" 2>/dev/null || true ;;
  esac
}
children_cpu_s() {  # CPU seconds of this shell's finished children so far (bash's `times`, run in
  # this shell: in a pipe or $(...) it would report a subshell's children instead)
  times >"$OUT/.times"
  awk 'NR == 2 { n = 0; for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); n += t[1] * 60 + t[2] } print n }' "$OUT/.times"
}
clk_tck=$(getconf CLK_TCK)

# run_one <backend> <rep> <command...>: one JSON line (annotated with rep and backend) into results.
# Every run also reports CPU per delivered event, from /proc: the server process's and the load
# generator's separately (server_cpu_us_per_event, client_cpu_us_per_event) — the figure that
# drifts far less between machines than msg/s.
run_one() {
  local backend=$1 rep=$2 line rc=0 t_start wall pid s0 s1 c0 c1 received cpu
  shift 2
  echo "$*" >>"$OUT/commands.txt"
  pid=$(server_pid "$backend")
  s0=$( [ -n "$pid" ] && proc_cpu_ticks "$pid" || echo 0 )
  children_cpu_s >"$OUT/.c0"; c0=$(cat "$OUT/.c0")
  t_start=$(date +%s.%N)
  line=$(timeout "$RUN_TIMEOUT" "$@" 2>>"$OUT/stderr-$backend.log" | grep -m1 '^{' ) || rc=$?
  wall=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  s1=$( [ -n "$pid" ] && proc_cpu_ticks "$pid" || echo 0 )
  children_cpu_s >"$OUT/.c1"; c1=$(cat "$OUT/.c1")
  case "$line" in
    \{*\})
      [[ $line == *'"backend"'* ]] || line="{\"backend\":\"$backend\",${line#\{}"
      received=$(grep -o '"received":[0-9]*' <<<"$line" | head -1 | cut -d: -f2)
      cpu=$(awk -v s0="$s0" -v s1="$s1" -v hz="$clk_tck" -v c0="$c0" -v c1="$c1" -v n="${received:-0}" 'BEGIN {
              sc = (s1 - s0) / hz; cc = c1 - c0
              printf "\"server_cpu_s\":%.3f,\"client_cpu_s\":%.3f", sc, cc
              if (n > 0) printf ",\"server_cpu_us_per_event\":%.3f,\"client_cpu_us_per_event\":%.3f", sc * 1e6 / n, cc * 1e6 / n
            }')
      line="${line%\}},\"rep\":$rep,\"wall_s\":$wall,$cpu}" ;;
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

# Durable suite: do durable at_least_once subscriptions work on this broker? (a short probe run; its
# output goes to ackedsub-probe.txt, not to the results)
ackedsub=0 ackedsub_refused=0
probe_ackedsub() {
  local line rc=0
  line=$(timeout 60 "$bench_bin" --url "tcp://127.0.0.1:$sb_port" --token "$sb_token" --admin-url "$sb_admin" \
           --durable --durable-sub --batch "$BATCH" --subs 1 --msgs 2000 --size 128 --tag probe_ackedsub \
           --channel switchboard-bench-probe --json-only 2>&1 | grep -m1 '^{') || rc=$?
  echo "$line" >"$OUT/ackedsub-probe.txt"
  if [[ $line == \{*\} && $line != *'"error"'* && $line == *'"lost":0,'* ]]; then
    ackedsub=1
  else
    ackedsub_refused=1
    echo "bench.sh: durable at_least_once subscriptions not usable on this broker (exit $rc); skipping the _ackedsub variants: $line" >&2
  fi
}

for rep in $(seq "$REPS"); do
  for b in $BACKENDS; do
    case "$b" in
      switchboard)
        start_broker || { echo "bench.sh: cannot start switchboard" >&2; exit 1; }
        sb_flags=()
        if [ "$durable" = 1 ]; then
          sb_flags=(--durable --batch "$BATCH" --admin-url "$sb_admin" --token "$sb_token")
          if [ "$rep" = 1 ]; then
            case "$ACKEDSUB" in
              auto) probe_ackedsub ;;
              1) ackedsub=1 ;;
              *) ackedsub=0 ;;
            esac
          fi
        fi
        for w in "${WORKLOADS[@]}"; do
          read -r tag flags <<<"$w"
          # shellcheck disable=SC2086  # flags is a word list
          run_one switchboard "$rep" "$bench_bin" --url "tcp://127.0.0.1:$sb_port" $flags --tag "$tag" --json-only \
            "${sb_flags[@]}"
          if [ "$durable" = 1 ] && [ "$ackedsub" = 1 ]; then
            base_tag=$tag; tag=${base_tag}_ackedsub
            # shellcheck disable=SC2086
            run_one switchboard "$rep" "$bench_bin" --url "tcp://127.0.0.1:$sb_port" $flags --tag "$tag" --json-only \
              "${sb_flags[@]}" --durable-sub
            tag=$base_tag
          fi
        done
        stop_broker ;;
      nats|redis|redis-stream|jetstream)
        [[ " ${peers[*]} " == *" $b "* ]] || continue
        start_server "$b" || { echo "bench.sh: cannot start $b" >&2; continue; }
        for w in "${WORKLOADS[@]}"; do
          read -r tag flags <<<"$w"
          # shellcheck disable=SC2086
          run_one "$b" "$rep" "$pb_dir/peerbench" --backend "$b" $flags --tag "$tag" "${pb_flags[@]}"
        done
        stop_server "$b" || true ;;  # servers.sh is not written for set -e
    esac
  done
done

echo
python3 scripts/bench_table.py "$results" | tee "$OUT/summary.md"
if [ "$durable" = 1 ]; then
  { echo
    echo "Durable: $BATCH publish acks in flight; switchboard acks after its batch is synced (RocksDB WAL fsync),"
    echo "redis-stream after the AOF fsync (appendfsync always), jetstream after the file write (no fsync, 2.9 default)."
    if [ "$ackedsub" = 1 ]; then
      echo "switchboard+ackedsub: subscribers on durable at_least_once subscriptions, acking every event."
    elif [ "$ackedsub_refused" = 1 ]; then
      echo "_ackedsub variants not run: the broker refused a durable at_least_once subscription ($OUT/ackedsub-probe.txt)."
    fi
  } | tee -a "$OUT/summary.md"
fi
echo "results: $results"
