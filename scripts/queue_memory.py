#!/usr/bin/python3
# queue_memory.py PORT BROKER_PID EVENTS: what a subscriber that never reads costs the broker.
# Subscribes to q.x with a receive high-water mark of 1, publishes EVENTS 128-byte events in
# batches of 1 000 (each batch paced by a PING round trip) and prints the broker's RSS (VmRSS from
# /proc) before and at its peak. Uses Debian's python3-zmq (run with /usr/bin/python3).
import struct, sys, time

import zmq
def rec(t, body, flags=0): return struct.pack('<BBHI', t, flags, 0, len(body)) + body
def hello(hb=300000): return rec(1, struct.pack('<HHI', 1, 0, hb))
def sub(sid, pat): return rec(3, struct.pack('<IHH', sid, len(pat), 0) + pat)
def pub(ch, payload): return rec(2, struct.pack('<IHH', 0, len(ch), 0) + ch + payload)
def ping(n): return rec(6, struct.pack('<Q', n))
port = sys.argv[1]; pid = int(sys.argv[2])
def rss(): 
    for l in open(f'/proc/{pid}/status'):
        if l.startswith('VmRSS'): return int(l.split()[1])//1024
ctx = zmq.Context()
s = ctx.socket(zmq.DEALER); s.setsockopt(zmq.RCVHWM, 1); s.connect(f'tcp://127.0.0.1:{port}')
s.send(hello()); s.recv(); s.send(sub(1, b'q.x')); s.recv()
p = ctx.socket(zmq.DEALER); p.connect(f'tcp://127.0.0.1:{port}'); p.send(hello()); p.recv()
base = rss(); peak = base; sent = 0
payload = b'x'*128
batch = b''.join(pub(b'q.x', payload) for _ in range(1000))
t0=time.time()
while time.time()-t0 < 60:
    p.send(batch + ping(sent)); sent += 1000
    while True:
        m = p.recv()
        if m[0] == 0x85: break
    if sent % 20000 == 0:
        peak = max(peak, rss())
    if sent >= int(sys.argv[3]): break
print(f'base {base} MiB, peak {peak} MiB, sent {sent}')
