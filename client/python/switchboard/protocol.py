"""The switchboard wire protocol, version 1 (docs/PROTOCOL.md): records encoded and decoded.

Every record is an 8-byte header -- u8 type, u8 flags, u16 reserved (0), u32 body length, all
little-endian -- followed by its body. One ZeroMQ message carries one or more records back to back.
"""

import struct
from dataclasses import dataclass

VERSION = 1
HEADER = struct.Struct("<BBHI")
MAX_BODY_BYTES = 64 << 20

# Frame types (PROTOCOL.md section 3).
HELLO, PUB, SUB, UNSUB, ACK, PING, BYE = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
WELCOME, EVENT, PUBACK, ERR, PONG, NOTICE, SUBACK = 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87

FLAG_ACK_REQUESTED = 0x01


class DecodeError(Exception):
    """A message from the broker that does not follow the protocol."""


@dataclass(frozen=True)
class Welcome:
    version: int
    heartbeat_ms: int
    max_payload_bytes: int
    epoch: int
    server: str


@dataclass(frozen=True)
class Event:
    sub_id: int
    epoch: int
    seq: int
    time_ns: int
    channel: str
    payload: bytes


@dataclass(frozen=True)
class PubAck:
    request_id: int
    epoch: int
    seq: int


@dataclass(frozen=True)
class Err:
    ref: int
    code: str
    message: str


@dataclass(frozen=True)
class Pong:
    nonce: int


@dataclass(frozen=True)
class Notice:
    sub_id: int
    kind: str
    detail: str


@dataclass(frozen=True)
class SubAck:
    sub_id: int


def _record(frame_type, body, flags=0):
    if len(body) > MAX_BODY_BYTES:
        raise ValueError("record body of %d bytes exceeds %d" % (len(body), MAX_BODY_BYTES))
    return HEADER.pack(frame_type, flags, 0, len(body)) + body


def _text(value):
    return value if isinstance(value, bytes) else value.encode("utf-8")


def hello(token=b"", heartbeat_ms=0, version=VERSION):
    token = _text(token)
    return _record(HELLO, struct.pack("<HHI", version, len(token), heartbeat_ms) + token)


def publish(request_id, channel, payload, key=b"", ack=True):
    channel, key, payload = _text(channel), _text(key), _text(payload)
    body = struct.pack("<IHH", request_id, len(channel), len(key)) + channel + key + payload
    return _record(PUB, body, FLAG_ACK_REQUESTED if ack else 0)


def subscribe(sub_id, pattern, options=b""):
    pattern, options = _text(pattern), _text(options)
    return _record(SUB, struct.pack("<IHH", sub_id, len(pattern), 0) + pattern + options)


def unsubscribe(sub_id):
    return _record(UNSUB, struct.pack("<I", sub_id))


def ack(sub_id, epoch, seq):
    return _record(ACK, struct.pack("<IIQQ", sub_id, 0, epoch, seq))


def ping(nonce):
    return _record(PING, struct.pack("<Q", nonce))


def bye():
    return _record(BYE, b"")


def decode(message):
    """Decodes every record of one message from the broker; raises DecodeError on a bad one."""
    records = []
    view = memoryview(message)
    at = 0
    while at < len(view):
        if len(view) - at < HEADER.size:
            raise DecodeError("record at offset %d is truncated: header needs 8 bytes" % at)
        frame_type, _flags, reserved, body_len = HEADER.unpack_from(view, at)
        if reserved != 0:
            raise DecodeError("record at offset %d has a non-zero reserved header field" % at)
        start = at + HEADER.size
        if len(view) - start < body_len:
            raise DecodeError("record at offset %d is truncated: body needs %d bytes" % (at, body_len))
        body = bytes(view[start:start + body_len])
        records.append(_decode_body(frame_type, body, at))
        at = start + body_len
    return records


def _need(body, size, what, at):
    if len(body) < size:
        raise DecodeError("%s record at offset %d is malformed" % (what, at))


def _decode_body(frame_type, body, at):
    if frame_type == WELCOME:
        _need(body, 20, "WELCOME", at)
        version, server_len, heartbeat_ms, max_payload, epoch = struct.unpack_from("<HHIIQ", body)
        _need(body, 20 + server_len, "WELCOME", at)
        return Welcome(version, heartbeat_ms, max_payload, epoch, body[20:20 + server_len].decode("utf-8", "replace"))
    if frame_type == EVENT:
        _need(body, 32, "EVENT", at)
        sub_id, channel_len, _reserved, epoch, seq, time_ns = struct.unpack_from("<IHHQQQ", body)
        _need(body, 32 + channel_len, "EVENT", at)
        channel = body[32:32 + channel_len].decode("utf-8", "replace")
        return Event(sub_id, epoch, seq, time_ns, channel, body[32 + channel_len:])
    if frame_type == PUBACK:
        _need(body, 24, "PUBACK", at)
        request_id, _reserved, epoch, seq = struct.unpack_from("<IIQQ", body)
        return PubAck(request_id, epoch, seq)
    if frame_type == ERR:
        _need(body, 8, "ERR", at)
        ref, code_len, _reserved = struct.unpack_from("<IHH", body)
        _need(body, 8 + code_len, "ERR", at)
        return Err(ref, body[8:8 + code_len].decode("ascii", "replace"), body[8 + code_len:].decode("utf-8", "replace"))
    if frame_type == PONG:
        _need(body, 8, "PONG", at)
        return Pong(struct.unpack_from("<Q", body)[0])
    if frame_type == NOTICE:
        _need(body, 8, "NOTICE", at)
        sub_id, kind_len, _reserved = struct.unpack_from("<IHH", body)
        _need(body, 8 + kind_len, "NOTICE", at)
        return Notice(sub_id, body[8:8 + kind_len].decode("utf-8", "replace"), body[8 + kind_len:].decode("utf-8", "replace"))
    if frame_type == SUBACK:
        _need(body, 4, "SUBACK", at)
        return SubAck(struct.unpack_from("<I", body)[0])
    raise DecodeError("record at offset %d has type 0x%02x, which a broker does not send" % (at, frame_type))
