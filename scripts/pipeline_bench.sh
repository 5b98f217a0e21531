#!/usr/bin/env bash
# The pipeline's cost, side by side in one run (issue 15 target: a channel with validate + translate
# + route delivers >= 70 % of the msg/s of the same workload on a plain channel).
#
# One broker (--memory, Release build), two channels fed the same JSON events by switchboard-bench
# (--json-payload, 1 publisher -> 1 subscriber):
#   pb.plain  no attributes
#   pb.pipe   validate {"required":{"h":"string","p":"string"}}, translate {"set":{"v":2},
#             "rename":{"p":"pad"}}, route ["pb.audit"] (a channel nobody subscribes to)
# Runs alternate plain / pipe REPS times; each line is switchboard-bench's JSON plus the broker's CPU
# seconds over the run (from /proc/<pid>/stat) per delivered event.
#
# Usage: scripts/pipeline_bench.sh            (BUILD_DIR=build MSGS=200000 SIZE=256 REPS=3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
msgs=${MSGS:-200000}
size=${SIZE:-256}
reps=${REPS:-3}
broker_bin=$build/broker/switchboard
bench_bin=$build/bench/switchboard-bench
token=pb-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp "${TMPDIR:-/tmp}/pipeline-bench.XXXXXX.log")

"$broker_bin" --memory --bind "tcp://127.0.0.1:$port" --admin-port 0 --admin-token "$token" >"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
admin=""
for _ in $(seq 200); do  # ready line names the admin URL; probe, no fixed wait
  admin=$(grep -o 'admin http://[^)]*' "$log" | grep -o 'http://[^)]*' | head -1 || true)
  [ -n "$admin" ] && break
  kill -0 $pid 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$admin" ] || { echo "pipeline_bench: broker did not come up" >&2; exit 1; }

curl -sf -X PUT -H "Authorization: Bearer $token" "$admin/v1/channels/pb.pipe" -d '{
  "validate": {"required": {"h": "string", "p": "string"}},
  "translate": {"set": {"v": 2}, "rename": {"p": "pad"}},
  "route": ["pb.audit"]}' >/dev/null

cpu_s() {  # utime + stime of the broker, seconds
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$pid/stat"
}

echo "host: $(uname -srm), $(nproc) cores; switchboard $(git -C "$root" describe --always --dirty 2>/dev/null)"
for rep in $(seq "$reps"); do
  for channel in pb.plain pb.pipe; do
    before=$(cpu_s)
    out=$("$bench_bin" --url "tcp://127.0.0.1:$port" --token "$token" --channel "$channel" --json-payload \
          --msgs "$msgs" --size "$size" --tag "$channel" --json-only)
    after=$(cpu_s)
    python3 - "$out" "$before" "$after" "$rep" <<'EOF'
import json, sys
r = json.loads(sys.argv[1]); cpu = float(sys.argv[3]) - float(sys.argv[2])
delivered = r["received"]
print(json.dumps({"rep": int(sys.argv[4]), "channel": r["tag"], "deliv_rate": r["deliv_rate"], "lost": r["lost"],
                  "broker_cpu_s": round(cpu, 3), "broker_cpu_us_per_event": round(cpu / delivered * 1e6, 3) if delivered else None}))
EOF
  done
done
# Proof the pipeline ran: the route copies and refusals the broker counted.
curl -sf -H "Authorization: Bearer $token" "$admin/metrics" | grep -E '^switchboard_pipeline_(routed|rejected)_total'
