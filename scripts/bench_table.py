#!/usr/bin/env python3
"""Side-by-side table of switchboard vs its peers from bench.sh / peerbench JSON lines. stdlib only.

usage: bench_table.py results.jsonl [more.jsonl ...]

Per workload (tag): one row per metric, one column per backend (median over repetitions, with the
min-max range when there is more than one), then the ratios switchboard/nats and switchboard/redis.
A ratio above 1 means switchboard has more of that metric: better for rates, worse for latency and
loss. Runs that reported an error are listed under the table and left out of the medians.
"""
import json
import statistics
import sys
from collections import defaultdict

BACKENDS = ["switchboard", "nats", "redis"]
PEERS = ["nats", "redis"]
TAG_ORDER = ["tput_1x1_128B", "fanout_1x8_128B", "lat_20k_128B", "tput_1x1_1024B"]
# (label, getter, digits)
METRICS = [
    ("delivered msg/s", lambda r: r.get("deliv_rate"), 0),
    ("delivered MB/s", lambda r: r.get("deliv_MBps"), 1),
    ("lost", lambda r: r.get("lost"), 0),
    ("latency p50 µs", lambda r: r.get("lat_us", {}).get("p50"), 1),
    ("latency p99 µs", lambda r: r.get("lat_us", {}).get("p99"), 1),
    ("latency p99.9 µs", lambda r: r.get("lat_us", {}).get("p99.9"), 1),
]


def load(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    print(f"{path}:{n}: not JSON ({e}); skipped", file=sys.stderr)
    return rows


def cell(values, digits):
    if not values:
        return "-", None
    med = statistics.median(values)
    text = f"{med:,.{digits}f}"
    if len(values) > 1:
        text += f" ({min(values):,.{digits}f}–{max(values):,.{digits}f})"
    return text, med


def ratio(a, b):
    if a is None or b is None:
        return "-"
    if b == 0:
        return "-" if a == 0 else "∞"
    return f"{a / b:.2f}×"


def main(paths):
    rows = load(paths)
    groups = defaultdict(list)  # (tag, backend) -> ok runs
    errors = defaultdict(list)  # tag -> messages
    for r in rows:
        tag, backend = r.get("tag", "?"), r.get("backend", "?")
        if "error" in r:
            errors[tag].append(f"{backend} rep {r.get('rep', '?')}: {r['error']}")
        else:
            groups[(tag, backend)].append(r)
    tags = sorted({t for t, _ in groups} | set(errors),
                  key=lambda t: (TAG_ORDER.index(t) if t in TAG_ORDER else len(TAG_ORDER), t))
    backends = [b for b in BACKENDS if any(b == gb for _, gb in groups)]
    backends += sorted({gb for _, gb in groups} - set(backends))
    peers = [p for p in PEERS if p in backends and "switchboard" in backends]
    for tag in tags:
        runs = {b: groups.get((tag, b), []) for b in backends}
        print(f"\n### {tag}\n")
        counts = ", ".join(f"{b} {len(runs[b])}" for b in backends)
        print(f"runs: {counts}\n")
        head = ["metric"] + backends + [f"switchboard/{p}" for p in peers]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for label, get, digits in METRICS:
            cells, meds = [], {}
            for b in backends:
                text, meds[b] = cell([v for v in map(get, runs[b]) if v is not None], digits)
                cells.append(text)
            if all(c == "-" for c in cells):
                continue  # e.g. latency rows of throughput workloads
            cells += [ratio(meds.get("switchboard"), meds.get(p)) for p in peers]
            print(f"| {label} | " + " | ".join(cells) + " |")
        for e in errors.get(tag, []):
            print(f"\nerror: {e}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
