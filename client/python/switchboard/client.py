"""A small synchronous Python client of the switchboard broker, written from docs/PROTOCOL.md.

One `Client` is one ZeroMQ DEALER connection and one session. It has no background thread: the
calls that wait (connect, publish, subscribe, Subscription.next, flush) read the socket themselves,
deliver events to their subscriptions' queues and send a PING whenever the session has been idle for
a heartbeat interval. Not thread-safe: use one Client per thread.

    with Client.connect("tcp://127.0.0.1:7400", token="s3cret") as c:
        sub = c.subscribe("demo.>")
        epoch, seq = c.publish("demo.hello", b'{"msg":"hi"}')
        event = sub.next(timeout=5)
"""

import collections
import json
import time

import zmq

from . import protocol

# Request ids of acknowledged publishes and PING nonces live above 2^31, subscription ids below, so
# that an ERR's `ref` names exactly one of them (PROTOCOL.md section 12).
_FIRST_REQUEST_ID = 1 << 31


class BrokerError(Exception):
    """The broker answered ERR. `code` is the stable code (PROTOCOL.md section 6)."""

    def __init__(self, code, message, ref=0):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message
        self.ref = ref


class Timeout(Exception):
    """No answer arrived in time."""


class Subscription:
    """A live or durable subscription; events are read with next()."""

    def __init__(self, client, sub_id, pattern):
        self._client = client
        self.id = sub_id
        self.pattern = pattern
        self._events = collections.deque()
        self.notices = []  # protocol.Notice records (gap, epoch) of a durable subscription
        self.error = None  # the BrokerError that ended it, if any
        self.active = True

    def next(self, timeout=5.0):
        """The next protocol.Event, or None when none arrives within `timeout` seconds. Raises the
        BrokerError that ended the subscription (e.g. slow_consumer, detached)."""
        deadline = time.monotonic() + timeout
        while not self._events:
            if self.error is not None:
                raise self.error
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._client._pump(left)
        return self._events.popleft()

    def ack(self, event):
        """Acknowledges one event of an at_least_once durable subscription (never answered)."""
        self._client._send(protocol.ack(self.id, event.epoch, event.seq))

    def unsubscribe(self):
        if self.active:
            self.active = False
            self._client._subs.pop(self.id, None)
            self._client._send(protocol.unsubscribe(self.id))


class Client:
    def __init__(self, url, token, heartbeat_ms, context):
        self.url = url
        self._token = token
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 500)
        self._sock.connect(url)
        self._heartbeat_ms = heartbeat_ms
        self._subs = {}
        self._next_sub_id = 1
        self._next_request = _FIRST_REQUEST_ID
        self._answers = {}  # request id / nonce -> PubAck, Err or Pong
        self._last_send = time.monotonic()
        self.welcome = None

    @classmethod
    def connect(cls, url="tcp://127.0.0.1:7400", token="", heartbeat_ms=2000, timeout=5.0, context=None):
        """Connects, says HELLO and waits for WELCOME. Raises BrokerError (unauthorized,
        unsupported_version) or Timeout (nothing answered)."""
        c = cls(url, token, heartbeat_ms, context)
        c._send(protocol.hello(token, heartbeat_ms))
        deadline = time.monotonic() + timeout
        try:
            while c.welcome is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout("no WELCOME from %s within %.1f s" % (url, timeout))
                err = c._pump(left, handshake=True)
                if err is not None:
                    raise err
        except BaseException:
            c._sock.close(0)
            raise
        # The interval in force is WELCOME's (the broker clamps HELLO's to 10 ms .. 300 s).
        c._heartbeat_ms = c.welcome.heartbeat_ms
        return c

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ publishing
    def publish(self, channel, payload, key=b"", timeout=10.0):
        """Publishes and waits for PUBACK; returns (epoch, seq). Raises BrokerError for a refusal
        (forbidden, invalid_channel, payload_too_large, store_failed, ...) or Timeout."""
        request_id = self._request_id()
        self._send(protocol.publish(request_id, channel, payload, key, ack=True))
        answer = self._wait_answer(request_id, timeout)
        return answer.epoch, answer.seq

    def publish_nowait(self, channel, payload, key=b""):
        """Publishes without asking for an ack (refusals still come back as ERR, reported by flush)."""
        self._send(protocol.publish(0, channel, payload, key, ack=False))

    def flush(self, timeout=10.0):
        """Returns once the broker processed everything sent before (PING/PONG round trip)."""
        nonce = self._request_id()
        self._send(protocol.ping(nonce))
        self._wait_answer(nonce, timeout)

    # ------------------------------------------------------------------ subscribing
    def subscribe(self, pattern, slow_consumer=None, durable=None, ack_policy=None, ack_wait_ms=None,
                  max_deliveries=None, start=None, filter=None, timeout=10.0):
        """Subscribes and waits for SUBACK. `pattern` may use '*' and '>'. With `durable`, attaches
        to (or creates, when ack_policy/start/filter are given) the durable subscription of that
        name. Raises BrokerError (invalid_pattern, forbidden, invalid_options, not_found, conflict)."""
        options = {}
        if slow_consumer is not None:
            options["slow_consumer"] = slow_consumer
        if durable is not None:
            options["durable"] = durable
            ack = {}
            if ack_policy is not None:
                ack["policy"] = ack_policy
            if ack_wait_ms is not None:
                ack["ack_wait_ms"] = ack_wait_ms
            if max_deliveries is not None:
                ack["max_deliveries"] = max_deliveries
            if ack:
                options["ack"] = ack
            if start is not None:
                options["start"] = start
            if filter is not None:
                options["filter"] = filter
        sub_id = self._next_sub_id
        self._next_sub_id += 1
        sub = Subscription(self, sub_id, pattern)
        self._subs[sub_id] = sub
        self._send(protocol.subscribe(sub_id, pattern, json.dumps(options) if options else ""))
        try:
            self._wait_answer(sub_id, timeout)
        except BaseException:
            self._subs.pop(sub_id, None)
            raise
        return sub

    # ------------------------------------------------------------------ lifecycle
    def close(self, timeout=1.0):
        """Waits (up to `timeout`) until the broker has processed everything sent before — ACKs
        have no answer, and records still in flight when a connection closes may be discarded —
        then says BYE (the broker ends the session at once) and closes the socket; idempotent."""
        if self._sock.closed:
            return
        try:
            try:
                self.flush(timeout)
            except Exception:  # broker gone or slow: close anyway
                pass
            self._send(protocol.bye())
        finally:
            self._sock.close()

    # ------------------------------------------------------------------ internals
    def _request_id(self):
        rid = self._next_request
        self._next_request = rid + 1 if rid + 1 < (1 << 32) else _FIRST_REQUEST_ID
        return rid

    def _send(self, record):
        self._sock.send(record)
        self._last_send = time.monotonic()

    def _wait_answer(self, ref, timeout):
        deadline = time.monotonic() + timeout
        while ref not in self._answers:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("no answer from the broker within %.1f s" % timeout)
            self._pump(left)
        answer = self._answers.pop(ref)
        if isinstance(answer, protocol.Err):
            raise BrokerError(answer.code, answer.message, answer.ref)
        return answer

    def _pump(self, timeout, handshake=False):
        """Waits up to `timeout` seconds for one message and handles it; pings when idle. During the
        handshake returns the BrokerError that refused HELLO, if any."""
        interval = self._heartbeat_ms / 1000.0
        if not handshake and time.monotonic() - self._last_send >= interval:
            self._send(protocol.ping(0))
        wait = min(timeout, interval) if not handshake else timeout
        if not self._sock.poll(int(max(wait, 0) * 1000) + 1):
            return None
        message = self._sock.recv(zmq.NOBLOCK)
        for record in protocol.decode(message):
            if isinstance(record, protocol.Welcome):
                self.welcome = record
            elif isinstance(record, protocol.Event):
                sub = self._subs.get(record.sub_id)
                if sub is not None:
                    sub._events.append(record)
            elif isinstance(record, protocol.PubAck):
                self._answers[record.request_id] = record
            elif isinstance(record, protocol.SubAck):
                self._answers[record.sub_id] = record
            elif isinstance(record, protocol.Pong):
                if record.nonce:
                    self._answers[record.nonce] = record
            elif isinstance(record, protocol.Notice):
                sub = self._subs.get(record.sub_id)
                if sub is not None:
                    sub.notices.append(record)
            elif isinstance(record, protocol.Err):
                error = BrokerError(record.code, record.message, record.ref)
                if handshake and self.welcome is None:
                    return error
                if record.ref in self._subs and record.ref not in self._answers and self._subs[record.ref].active:
                    sub = self._subs[record.ref]
                    if record.code in ("slow_consumer", "detached", "subscription_removed"):
                        sub.error = error  # ends a live subscription
                        sub.active = False
                        continue
                if record.ref != 0:
                    self._answers[record.ref] = record
                else:
                    for sub in self._subs.values():  # the session ended (slow_consumer, unauthorized)
                        sub.error = error
                        sub.active = False
        return None
