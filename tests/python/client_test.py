"""The Python client (client/python) against the real broker binary, started per test class on
tcp://127.0.0.1:* with --admin-port 0; readiness is the broker's ready line (never a sleep).

Run by ctest as `python_client_test`; by hand:
  SWITCHBOARD_BROKER_PATH=build/broker/switchboard PYTHONPATH=client/python python3 -m unittest tests/python/client_test.py
"""

import json
import os
import re
import select
import subprocess
import time
import unittest
import urllib.request

from switchboard import BrokerError, Client

BROKER = os.environ.get("SWITCHBOARD_BROKER_PATH", "build/broker/switchboard")
ADMIN_TOKEN = "adm1n"


class Broker:
    def __init__(self, *extra):
        self.proc = subprocess.Popen(
            [BROKER, "--memory", "--bind", "tcp://127.0.0.1:*", "--admin-port", "0", "--admin-token", ADMIN_TOKEN,
             "--log-level", "warn", "--shards", "1", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline().decode() if ready else ""
        m = re.match(r"switchboard listening on (tcp://\S+) \(admin (http://\S+)\)", line)
        if not m:
            self.stop()
            raise RuntimeError("broker did not start: %r" % line)
        self.endpoint, self.admin_url = m.group(1), m.group(2)

    def admin(self, method, path, body=None):
        req = urllib.request.Request(self.admin_url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": "Bearer " + ADMIN_TOKEN})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")

    def metric(self, name):
        with urllib.request.urlopen(self.admin_url + "/metrics", timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return None

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)
        self.proc.stdout.close()


class PythonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = Broker("--token", "reader:r3ad:*:subscribe", "--max-payload-bytes", "64")

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()

    def connect(self, token=ADMIN_TOKEN):
        c = Client.connect(self.broker.endpoint, token=token)
        self.addCleanup(c.close)
        return c

    def test_welcome(self):
        c = self.connect()
        self.assertEqual(c.welcome.version, 1)
        self.assertEqual(c.welcome.max_payload_bytes, 64)
        self.assertEqual(c.welcome.heartbeat_ms, 2000)
        self.assertNotEqual(c.welcome.epoch, 0)

    def test_publish_with_ack_reaches_pattern_subscribers_in_seq_order(self):
        sub_client = self.connect()
        wild = sub_client.subscribe("py.*.status")
        rest = sub_client.subscribe("py.>")
        pub = self.connect()
        e1, s1 = pub.publish("py.CA1.status", b'{"s":"ringing"}')
        e2, s2 = pub.publish("py.CA1.status", b'{"s":"answered"}')
        self.assertEqual((e1, s2), (e2, s1 + 1))
        for sub in (wild, rest):
            a, b = sub.next(), sub.next()
            self.assertEqual((a.channel, a.seq, a.payload), ("py.CA1.status", s1, b'{"s":"ringing"}'))
            self.assertEqual((b.seq, b.payload), (s2, b'{"s":"answered"}'))
            self.assertEqual(a.epoch, e1)
        self.assertIsNone(wild.next(timeout=0.2))

    def test_refusals_raise_the_broker_code(self):
        c = self.connect()
        cases = [("py..x", b"{}", "invalid_channel", 'channel "py..x" has an empty token at position 2'),
                 ("py.big", b"x" * 65, "payload_too_large",
                  'payload of 65 bytes on channel "py.big" exceeds the limit of 64 bytes')]
        for channel, payload, code, message in cases:
            with self.assertRaises(BrokerError) as caught:
                c.publish(channel, payload)
            self.assertEqual((caught.exception.code, caught.exception.message), (code, message))
        reader = self.connect("r3ad")
        with self.assertRaises(BrokerError) as caught:
            reader.publish("py.x", b"{}")
        self.assertEqual(caught.exception.code, "forbidden")
        self.assertEqual(caught.exception.message, 'token "reader" has no publish scope')
        with self.assertRaises(BrokerError) as caught:
            Client.connect(self.broker.endpoint, token="wrong")
        self.assertEqual((caught.exception.code, caught.exception.message), ("unauthorized", "invalid token"))

    def test_subscription_options_are_checked(self):
        c = self.connect()
        c.subscribe("py.opts", slow_consumer="drop_oldest")
        with self.assertRaises(BrokerError) as caught:
            c.subscribe("py.opts", slow_consumer="explode")
        self.assertEqual(caught.exception.code, "invalid_options")
        self.assertEqual(caught.exception.message, 'option slow_consumer must be "disconnect" or "drop_oldest", not "explode"')
        with self.assertRaises(BrokerError) as caught:
            c.subscribe("py.>.x")
        self.assertEqual(caught.exception.code, "invalid_pattern")

    def test_unsubscribe_stops_delivery(self):
        c = self.connect()
        sub = c.subscribe("py.unsub")
        sub.unsubscribe()
        c.publish("py.unsub", b"1")
        c.flush()
        self.assertIsNone(sub.next(timeout=0.2))

    def test_durable_subscription_with_acks_redelivers_only_what_was_not_acked(self):
        status, _ = self.broker.admin("PUT", "/v1/channels/pyd.orders", {"durable": True})
        self.assertEqual(status, 200)
        c = self.connect()
        sub = c.subscribe("pyd.orders", durable="py-billing", ack_policy="at_least_once", ack_wait_ms=60000,
                          start="all")
        seqs = [c.publish("pyd.orders", json.dumps({"id": i}).encode())[1] for i in range(3)]
        got = [sub.next() for _ in range(3)]
        self.assertEqual([e.seq for e in got], seqs)
        self.assertEqual([json.loads(e.payload)["id"] for e in got], [0, 1, 2])
        sub.ack(got[0])
        sub.ack(got[2])
        c.close()  # waits for a PONG (so the ACKs were applied), then BYE
        # A new connection is another TCP stream: wait until the broker has applied the BYE (and so
        # the ACKs before it) before attaching again, or the takeover may redeliver first.
        deadline = time.monotonic() + 10
        while True:
            status, doc = self.broker.admin("GET", "/v1/subscriptions/py-billing")
            self.assertEqual(status, 200)
            if doc["attached"] is False:
                break
            self.assertLess(time.monotonic(), deadline, "the BYE was never applied")

        again = self.connect()
        resumed = again.subscribe("pyd.orders", durable="py-billing")
        event = resumed.next()
        self.assertEqual((event.seq, json.loads(event.payload)), (seqs[1], {"id": 1}))
        self.assertIsNone(resumed.next(timeout=0.3))
        resumed.ack(event)
        again.flush()
        # Attaching a name that does not exist is refused.
        with self.assertRaises(BrokerError) as caught:
            again.subscribe("pyd.orders", durable="nobody")
        self.assertEqual(caught.exception.code, "not_found")

    def test_close_says_bye_and_the_session_ends_at_once(self):
        before = self.broker.metric("switchboard_connections")
        c = Client.connect(self.broker.endpoint, token=ADMIN_TOKEN, heartbeat_ms=300000)
        c.subscribe("py.bye")
        self.assertEqual(self.broker.metric("switchboard_connections"), before + 1)
        c.close()
        # Probe until the gauge drops; a heartbeat reap would take 15 minutes.
        for _ in range(200):
            if self.broker.metric("switchboard_connections") == before:
                break
        self.assertEqual(self.broker.metric("switchboard_connections"), before)
        self.assertEqual(self.broker.metric("switchboard_reaped_total"), 0)


if __name__ == "__main__":
    unittest.main()
