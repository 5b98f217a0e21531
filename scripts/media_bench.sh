#!/usr/bin/env bash
# media_bench.sh: the media layer's two targets (issue 16, docs/PERFORMANCE.md "Media"), each beside
# sox doing the same conversion in the same run.
#   1. conversion of a 60 s 44.1 kHz stereo WAV to 8 kHz μ-law: bench/media_bench (media::convert in
#      memory) vs `sox in.wav -r 8000 -c 1 -e u-law out.wav` (10 runs, process start and file I/O included);
#   2. cache hits served over HTTP: `wrk -c32 -d30s` on GET /media/<id> of a 30 s clip from the Release
#      broker, vs sox converting that clip once per request (what serving without the cache would cost).
#
#   BUILD_DIR=build-media scripts/media_bench.sh        (needs a Release build of switchboard + media_bench)
# Needs sox, wrk, curl, python3 (scripts/deps.sh --bench).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
DURATION=${DURATION:-30s}
work=$(mktemp -d)
broker_pid=""
origin_pid=""
cleanup() {
  [ -n "$broker_pid" ] && kill -TERM "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null || true
  [ -n "$origin_pid" ] && kill -TERM "$origin_pid" 2>/dev/null && wait "$origin_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
sox -n -r 44100 -c 2 -b 16 "$work/in60.wav" synth 60 sine 1000 gain -6
sox -n -r 44100 -c 2 -b 16 "$work/clip30.wav" synth 30 sine 440 gain -6

echo "== 1. conversion: 60 s 44.1 kHz stereo WAV -> 8 kHz mono u-law WAV"
"$BUILD_DIR/bench/media_bench" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true 2>/dev/null |
  grep -E "median|Benchmark"
sox_runs() {  # $1 input, $2 runs: prints the mean wall ms of `sox IN -r 8000 -c 1 -e u-law OUT`
  local start end
  start=$(date +%s%N)
  for _ in $(seq "$2"); do sox "$1" -r 8000 -c 1 -e u-law "$work/out.wav"; done
  end=$(date +%s%N)
  echo $(( (end - start) / 1000000 / $2 ))
}
sox60=$(sox_runs "$work/in60.wav" 10)
echo "sox 60 s: ${sox60} ms mean wall over 10 runs = $(( 60000 / (sox60 > 0 ? sox60 : 1) ))x real time"

echo "== 2. cache hits over HTTP: wrk -c32 -d$DURATION on /media/<id> of a 30 s clip"
(cd "$work" && exec python3 -u -m http.server 0 --bind 127.0.0.1 > "$work/origin.log" 2>&1) &
origin_pid=$!
until grep -q "Serving HTTP" "$work/origin.log" 2>/dev/null; do sleep 0.05; done
origin_port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$work/origin.log" | head -1)
"$BUILD_DIR/broker/switchboard" --data-dir "$work/data" --bind 'tcp://127.0.0.1:*' --admin-port 0 \
  --log-level warn > "$work/broker.out" 2> "$work/broker.err" &
broker_pid=$!
until grep -q "switchboard listening" "$work/broker.out" 2>/dev/null; do sleep 0.05; done
admin=$(sed -n 's/.*(admin \(http[^)]*\)).*/\1/p' "$work/broker.out")
answer=$(curl -sf -X POST "$admin/v1/media" -d "{\"url\":\"http://127.0.0.1:$origin_port/clip30.wav\"}")
echo "POST /v1/media: $answer"
address=$(echo "$answer" | python3 -c 'import json,sys; print(json.load(sys.stdin)["address"])')
curl -sf -o /dev/null -w "GET %{url_effective}: %{http_code}, %{size_download} bytes\n" "$admin$address"
wrk -t2 -c32 -d"$DURATION" "$admin$address"
sox30=$(sox_runs "$work/clip30.wav" 20)
echo "sox converting the 30 s clip per request: ${sox30} ms mean wall = $(( 1000 / (sox30 > 0 ? sox30 : 1) )) requests/s on one core"
curl -sf "$admin/metrics" | grep -E "^switchboard_media_(served_bytes_total|requests_total\{route=\"file\"\}|cache_hits_total|conversions_total)"
