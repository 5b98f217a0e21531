#!/usr/bin/python3
# channel_memory.py PORT ADMIN_URL BROKER_PID CHANNELS: what channels cost the broker, and whether
# it gives the memory back (issue 12, channel lifecycle). Publishes one 64-byte event to each of
# CHANNELS distinct channels acme.calls.CA<n>.status (batches of 1 000, each paced by a PING round
# trip), then waits until the broker reports every one of them expired (--channel-idle-s) and
# prints the broker's RSS (VmRSS from /proc) before, at the peak and after expiry as one JSON line.
# Uses Debian's python3-zmq (run with /usr/bin/python3). Start the broker with a short
# --channel-idle-s (e.g. 5) so the run does not wait five minutes.
import json, re, struct, sys, time, urllib.request

import zmq

def rec(t, body, flags=0): return struct.pack('<BBHI', t, flags, 0, len(body)) + body
def hello(hb=300000): return rec(1, struct.pack('<HHI', 1, 0, hb))
def pub(ch, payload): return rec(2, struct.pack('<IHH', 0, len(ch), 0) + ch + payload)
def ping(n): return rec(6, struct.pack('<Q', n))

port, admin, pid, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def rss_mib():
    for line in open(f'/proc/{pid}/status'):
        if line.startswith('VmRSS'): return int(line.split()[1]) / 1024
def cpu_s():
    f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) / 100.0  # utime + stime, clock ticks of 1/100 s
def metric(name):
    body = urllib.request.urlopen(admin + '/metrics').read().decode()
    m = re.search(r'^' + name + r' (\d+)$', body, re.M)
    return int(m.group(1)) if m else -1

ctx = zmq.Context()
p = ctx.socket(zmq.DEALER); p.connect(f'tcp://127.0.0.1:{port}'); p.send(hello()); p.recv()
payload = b'{"status":"ringing","pad":"' + b'x' * 34 + b'"}'
# Warm-up: the broker has served a publisher and the admin API once (sockets, buffers, thread
# caches) on one channel; "before" is that state, not a broker no client has touched yet.
for _ in range(10):
    p.send(b''.join(pub(b'warm.up', payload) for _ in range(1000)) + ping(0))
    while p.recv()[0] != 0x85: pass
expired0 = metric('switchboard_channels_expired_total')
before = rss_mib(); peak = before; cpu0 = cpu_s(); t0 = time.time()
for start in range(0, total, 1000):
    batch = b''.join(pub(b'acme.calls.CA%d.status' % n, payload) for n in range(start, min(start + 1000, total)))
    p.send(batch + ping(start))
    while p.recv()[0] != 0x85: pass  # until the PONG
    if start % 50000 == 0: peak = max(peak, rss_mib())
publish_s = time.time() - t0; cpu_publish = cpu_s() - cpu0
peak = max(peak, rss_mib()); live = metric('switchboard_channels')
t1 = time.time()
while metric('switchboard_channels_expired_total') - expired0 < total:
    if time.time() - t1 > 900: sys.exit('channels did not expire within 15 minutes')
    time.sleep(1)
expiry_s = time.time() - t1
time.sleep(12)  # the broker returns freed memory at most every 10 s once the burst is over
after = rss_mib()
print(json.dumps({'channels': total, 'rss_before_mib': round(before, 1), 'rss_peak_mib': round(peak, 1),
                  'rss_after_mib': round(after, 1), 'bytes_per_live_channel': round((peak - before) * 2**20 / total),
                  'after_vs_before': round(after / before, 3), 'live_channels_at_peak': live,
                  'publish_s': round(publish_s, 1), 'broker_cpu_us_per_channel': round(cpu_publish * 1e6 / total, 2),
                  'expiry_s': round(expiry_s, 1)}))
