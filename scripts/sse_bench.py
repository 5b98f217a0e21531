#!/usr/bin/env python3
"""SSE fan-out bench for GET /v1/stream (docs/STREAMING.md, docs/PERFORMANCE.md).

Starts the broker binary (in memory, ephemeral ports), opens N Server-Sent Events streams on one
pattern with raw sockets (one thread, selectors), publishes E events through the admin API, and
waits until every stream has every event. Reports the broker's RSS (VmRSS) before and after the
streams open, and its CPU seconds (utime + stime from /proc/<pid>/stat) spent opening the streams
and delivering the events: per stream and per delivered event. Python standard library only.

  python3 scripts/sse_bench.py --broker build-sse/broker/switchboard --streams 1000 --events 200

Prints one JSON line, then a human table.
"""
import argparse
import http.client
import json
import os
import re
import resource
import selectors
import socket
import subprocess
import sys
import time

TOKEN = "sse-bench-token"


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime, seconds


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    m = re.search(rf"^{name} (\d+)$", text, re.M)
    return int(m.group(1)) if m else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", default="build-sse/broker/switchboard")
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--payload-bytes", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 2 * args.streams + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    broker = subprocess.Popen(
        [args.broker, "--memory", "--bind", "tcp://127.0.0.1:*", "--admin-port", "0", "--admin-token", TOKEN,
         "--log-level", "warn", "--media", "false"],
        stdout=subprocess.PIPE, text=True)
    try:
        line = broker.stdout.readline()
        m = re.match(r"switchboard listening on (\S+) \(admin http://[^:]+:(\d+)\)", line)
        if not m:
            sys.exit(f"sse_bench: no ready line from the broker: {line!r}")
        port = int(m.group(2))
        pid = broker.pid
        rss_idle = rss_bytes(pid)
        cpu0 = proc_stat(pid)
        t0 = time.monotonic()

        sel = selectors.DefaultSelector()
        received = {}
        request = (f"GET /v1/stream?pattern=bench.%3E HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   f"Authorization: Bearer {TOKEN}\r\nAccept: text/event-stream\r\n\r\n").encode()
        for _ in range(args.streams):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(request)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            received[s] = [b"", 0]  # tail bytes, events seen

        def pump(until, deadline):
            while not until():
                if time.monotonic() > deadline:
                    sys.exit("sse_bench: timed out")
                for key, _ in sel.select(timeout=1.0):
                    s = key.fileobj
                    try:
                        data = s.recv(1 << 16)
                    except BlockingIOError:
                        continue
                    if not data:
                        sys.exit("sse_bench: a stream closed early")
                    st = received[s]
                    buf = st[0] + data
                    st[1] += buf.count(b"data: {")
                    st[0] = buf[-8:]  # a marker split across reads is counted once, in the next buffer

        deadline = time.monotonic() + args.timeout
        # Every stream is open once the broker counts them all.
        while metric(port, "switchboard_sse_streams") < args.streams:
            if time.monotonic() > deadline:
                sys.exit("sse_bench: streams did not all open")
            pump(lambda: True, deadline)
            time.sleep(0.05)
        open_s = time.monotonic() - t0
        cpu_open = proc_stat(pid) - cpu0
        rss_open = rss_bytes(pid)

        payload = json.dumps({"pad": "x" * max(0, args.payload_bytes - 11)})
        cpu1 = proc_stat(pid)
        t1 = time.monotonic()
        http_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(args.events):
            http_conn.request("POST", f"/v1/channels/bench.c{i % 4}/events", body=payload,
                              headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
            r = http_conn.getresponse()
            r.read()
            if r.status != 202:
                sys.exit(f"sse_bench: publish answered {r.status}")
        total = args.streams * args.events
        pump(lambda: sum(st[1] for st in received.values()) >= total, time.monotonic() + args.timeout)
        deliver_s = time.monotonic() - t1
        cpu_deliver = proc_stat(pid) - cpu1
        rss_after = rss_bytes(pid)
        short = [st[1] for st in received.values() if st[1] != args.events]
        result = {
            "streams": args.streams, "events": args.events, "payload_bytes": len(payload),
            "delivered": total, "streams_missing_events": len(short),
            "rss_idle_mib": round(rss_idle / 2**20, 1), "rss_streams_open_mib": round(rss_open / 2**20, 1),
            "rss_after_mib": round(rss_after / 2**20, 1),
            "rss_per_stream_kib": round((rss_open - rss_idle) / args.streams / 1024, 1),
            "open_s": round(open_s, 2), "cpu_open_s": round(cpu_open, 2),
            "cpu_per_stream_ms": round(1000 * cpu_open / args.streams, 3),
            "deliver_s": round(deliver_s, 2), "cpu_deliver_s": round(cpu_deliver, 2),
            "cpu_per_event_us": round(1e6 * cpu_deliver / total, 2),
            "events_per_s": round(total / deliver_s),
        }
        print(json.dumps(result))
        print(f"{'streams':>8} {'events':>7} {'RSS idle':>9} {'RSS open':>9} {'KiB/stream':>10} "
              f"{'CPU ms/stream':>13} {'CPU us/event':>12} {'events/s':>9}")
        print(f"{args.streams:>8} {args.events:>7} {result['rss_idle_mib']:>8}M {result['rss_streams_open_mib']:>8}M "
              f"{result['rss_per_stream_kib']:>10} {result['cpu_per_stream_ms']:>13} {result['cpu_per_event_us']:>12} "
              f"{result['events_per_s']:>9}")
        for key in list(received):
            key.close()
        return 0 if not short else 1
    finally:
        broker.terminate()
        broker.wait(timeout=20)


if __name__ == "__main__":
    sys.exit(main())
