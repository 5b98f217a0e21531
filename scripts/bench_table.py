#!/usr/bin/env python3
"""Side-by-side table of switchboard vs its peers from bench.sh / peerbench JSON lines. stdlib only.

usage: bench_table.py results.jsonl [more.jsonl ...]

Per workload (tag): one row per metric, one column per backend (median over repetitions, with the
min-max range when there is more than one), then the ratios switchboard/<peer> for every peer in the
file (nats, redis; durable suite: redis-stream, jetstream). A ratio above 1 means switchboard has
more of that metric: better for rates, worse for latency and loss. Runs that reported an error are
listed under the table and left out of the medians.

Durable runs (SUITE=durable) add the publish-ack rows: acked msg/s (ack_rate, over [t0, last ack]),
nacked, and ack latency p50/p99/p99.9 (publish -> ack); the latency rows are delivery latency
(publish -> subscriber callback). A `<tag>_ackedsub` run (switchboard subscribers on durable
at_least_once subscriptions that ack every event) is shown in the table of <tag> as the column
"switchboard+ackedsub", with its own ratios; the peers' subscribers do not ack.
"""
import json
import statistics
import sys
from collections import defaultdict

BACKENDS = ["switchboard", "switchboard+ackedsub", "nats", "redis", "redis-stream", "jetstream"]
PEERS = ["nats", "redis", "redis-stream", "jetstream"]
TAG_ORDER = ["tput_1x1_128B", "fanout_1x8_128B", "lat_20k_128B", "tput_1x1_1024B",
             "durable_tput_1x1_128B", "durable_lat_20k_128B"]
ACKEDSUB = "_ackedsub"
# (label, getter, digits); rows whose cells are all empty are left out (e.g. ack rows of the default suite)
METRICS = [
    ("acked msg/s", lambda r: r.get("ack_rate"), 0),
    ("nacked", lambda r: r.get("nacked"), 0),
    ("delivered msg/s", lambda r: r.get("deliv_rate"), 0),
    ("delivered MB/s", lambda r: r.get("deliv_MBps"), 1),
    ("lost", lambda r: r.get("lost"), 0),
    ("ack latency p50 µs", lambda r: r.get("ack_lat_us", {}).get("p50"), 1),
    ("ack latency p99 µs", lambda r: r.get("ack_lat_us", {}).get("p99"), 1),
    ("ack latency p99.9 µs", lambda r: r.get("ack_lat_us", {}).get("p99.9"), 1),
    ("latency p50 µs", lambda r: r.get("lat_us", {}).get("p50"), 1),
    ("latency p99 µs", lambda r: r.get("lat_us", {}).get("p99"), 1),
    ("latency p99.9 µs", lambda r: r.get("lat_us", {}).get("p99.9"), 1),
    ("publisher lag max µs", lambda r: r.get("pub_lag_max_us") if "ack_rate" in r else None, 1),
    ("server CPU µs/event", lambda r: r.get("server_cpu_us_per_event"), 3),
    ("client CPU µs/event", lambda r: r.get("client_cpu_us_per_event"), 3),
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
    failed = set()  # (tag, backend) with at least one error
    for r in rows:
        tag, backend = r.get("tag", "?"), r.get("backend", "?")
        if tag.endswith(ACKEDSUB):  # shown next to the plain run of the same workload
            tag, backend = tag[: -len(ACKEDSUB)], backend + "+ackedsub"
        if "error" in r:
            errors[tag].append(f"{backend} rep {r.get('rep', '?')}: {r['error']}")
            failed.add((tag, backend))
        else:
            groups[(tag, backend)].append(r)
    tags = sorted({t for t, _ in groups} | set(errors),
                  key=lambda t: (TAG_ORDER.index(t) if t in TAG_ORDER else len(TAG_ORDER), t))
    backends = [b for b in BACKENDS if any(b == gb for _, gb in list(groups) + list(failed))]
    backends += sorted({gb for _, gb in list(groups) + list(failed)} - set(backends))
    for tag in tags:
        # columns: only the backends with a run (or an error) for this workload
        cols = [b for b in backends if groups.get((tag, b)) or (tag, b) in failed]
        sbs = [b for b in cols if b.startswith("switchboard")]
        peers = [p for p in PEERS if p in cols and sbs]
        runs = {b: groups.get((tag, b), []) for b in cols}
        print(f"\n### {tag}\n")
        counts = ", ".join(f"{b} {len(runs[b])}" for b in cols) or "none ok"
        print(f"runs: {counts}\n")
        if not cols:
            for e in errors.get(tag, []):
                print(f"error: {e}")
            continue
        pairs = [(s, p) for s in sbs for p in peers]
        head = ["metric"] + cols + [f"{s}/{p}" for s, p in pairs]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for label, get, digits in METRICS:
            cells, meds = [], {}
            for b in cols:
                text, meds[b] = cell([v for v in map(get, runs[b]) if v is not None], digits)
                cells.append(text)
            if all(c == "-" for c in cells):
                continue  # e.g. latency rows of throughput workloads
            cells += [ratio(meds.get(s), meds.get(p)) for s, p in pairs]
            print(f"| {label} | " + " | ".join(cells) + " |")
        for e in errors.get(tag, []):
            print(f"\nerror: {e}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
