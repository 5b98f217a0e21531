// switchboard wire protocol, version 1: the frame codec shared by the broker and every client.
//
// A ZeroMQ message (one frame from a DEALER; the broker's ROUTER adds the peer identity in front)
// carries one or more *records* back to back. Each record is an 8-byte header followed by its body:
//
//   u8 type | u8 flags | u16 reserved (0) | u32 body_len | body[body_len]
//
// All integers are little-endian. Bodies are described next to each struct below and in
// docs/PROTOCOL.md. Many PUB or EVENT records in one message is what makes the broker fast: the
// per-message cost of ZeroMQ is paid once per batch, not once per event.
//
// Thread-safety: everything here is a plain value or a view; `frame_writer` and `frame_reader` are
// used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace switchboard::protocol {

// The protocol version this codec speaks. HELLO carries it; the broker rejects any other with ERR
// `unsupported_version`.
inline constexpr std::uint16_t version = 1;
inline constexpr std::size_t header_bytes = 8;
// A hard ceiling on one record's body, independent of the broker's --max-payload-bytes.
inline constexpr std::size_t max_body_bytes = 64u << 20;
// Channel names and subscription patterns are at most this long.
inline constexpr std::size_t max_name_bytes = 1024;

enum class frame_type : std::uint8_t {
  // client -> broker
  hello = 0x01,
  pub = 0x02,
  sub = 0x03,
  unsub = 0x04,
  ack = 0x05,
  ping = 0x06,
  bye = 0x07,
  // broker -> client
  welcome = 0x81,
  event = 0x82,
  puback = 0x83,
  err = 0x84,
  pong = 0x85,
  notice = 0x86,
  suback = 0x87,
};

// PUB flag: the publisher wants a PUBACK (or an ERR) for this event, referring to request_id.
inline constexpr std::uint8_t flag_ack_requested = 0x01;

// HELLO: u16 version | u16 token_len | u32 heartbeat_ms | token
// heartbeat_ms is how often the client promises to send something (PING when idle); the broker
// drops a client it has not heard from for three intervals. 0 = the broker's default.
struct hello {
  std::uint16_t version = protocol::version;
  std::uint32_t heartbeat_ms = 0;
  std::string_view token{};
};

// WELCOME: u16 version | u16 server_len | u32 heartbeat_ms | u32 max_payload_bytes | u64 epoch | server
struct welcome {
  std::uint16_t version = protocol::version;
  std::uint32_t heartbeat_ms = 0;
  std::uint32_t max_payload_bytes = 0;
  std::uint64_t epoch = 0;
  std::string_view server{};
};

// PUB: u32 request_id | u16 channel_len | u16 key_len | channel | key | payload (rest of body)
// key is an optional idempotency key (empty = none).
struct publish {
  std::uint32_t request_id = 0;
  bool ack_requested = false;
  std::string_view channel{};
  std::string_view key{};
  std::string_view payload{};
};

// SUB: u32 sub_id | u16 pattern_len | u16 reserved | pattern | options (rest: a JSON object or empty)
// sub_id is chosen by the client and names the subscription in EVENT, UNSUB and ERR.
struct subscribe {
  std::uint32_t sub_id = 0;
  std::string_view pattern{};
  std::string_view options{};
};

// UNSUB: u32 sub_id
struct unsubscribe {
  std::uint32_t sub_id = 0;
};

// ACK: u32 sub_id | u32 reserved | u64 epoch | u64 seq
struct ack {
  std::uint32_t sub_id = 0;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
};

// BYE: empty body (trailing bytes are ignored). The client is closing: the broker ends the session at
// once (its subscriptions are removed, durable ones detached) and answers nothing. Optional: a client
// that never sends it is ended when its connection closes or its heartbeats stop.
struct bye {};

// PING / PONG: u64 nonce (echoed back in PONG)
struct ping {
  std::uint64_t nonce = 0;
};
struct pong {
  std::uint64_t nonce = 0;
};

// EVENT: u32 sub_id | u16 channel_len | u16 reserved | u64 epoch | u64 seq | u64 time_ns | channel | payload
// time_ns is the broker's wall clock (Unix epoch, ns) when it accepted the event.
struct event {
  std::uint32_t sub_id = 0;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  std::uint64_t time_ns = 0;
  std::string_view channel{};
  std::string_view payload{};
};

// PUBACK: u32 request_id | u32 reserved | u64 epoch | u64 seq
struct puback {
  std::uint32_t request_id = 0;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
};

// ERR: u32 ref | u16 code_len | u16 reserved | code | message (rest)
// ref is the request_id (PUB) or sub_id (SUB/UNSUB/EVENT-related) the error is about, 0 if none.
// code is one of the stable codes in docs/PROTOCOL.md (`payload_too_large`, `slow_consumer`, ...).
struct error {
  std::uint32_t ref = 0;
  std::string_view code{};
  std::string_view message{};
};

// SUBACK: u32 sub_id
// Sent once the subscription is live in every router shard: an event published after the client
// has seen SUBACK reaches the subscription.
struct suback {
  std::uint32_t sub_id = 0;
};

// NOTICE: u32 sub_id | u16 kind_len | u16 reserved | kind | detail (rest: JSON)
// Out-of-band information about a subscription, e.g. kind `gap` or `epoch`.
struct notice {
  std::uint32_t sub_id = 0;
  std::string_view kind{};
  std::string_view detail{};
};

using frame = std::variant<hello, welcome, publish, subscribe, unsubscribe, ack, ping, pong, event,
                           puback, error, notice, suback, bye>;

// Why a record could not be decoded. `offset` is the byte offset of the offending record.
enum class decode_errc : std::uint8_t {
  truncated,     // fewer bytes than the header or body length says
  bad_length,    // a length field inside the body points past its end
  unknown_type,  // the type byte is not a known frame_type
  too_large,     // body_len exceeds max_body_bytes
  bad_reserved,  // a reserved field (header or body) is not zero
};

struct decode_error {
  decode_errc code;
  std::size_t offset;
  // The stable protocol error code for this failure ("malformed_frame" or "unknown_command").
  [[nodiscard]] std::string_view protocol_code() const noexcept;
  // A readable description, e.g. "record at offset 24 is truncated: needs 40 bytes, 12 left".
  std::string message;
};

// Reads records one by one from a borrowed buffer. The returned views point into that buffer and
// stay valid as long as it does.
class frame_reader {
 public:
  explicit frame_reader(std::string_view bytes) noexcept : _bytes(bytes) {}

  // Next record, an empty optional at the end of the buffer, or the error that stops decoding
  // (after an error every further call returns the same error).
  [[nodiscard]] std::expected<std::optional<frame>, decode_error> next();

  // Byte offset of the next record.
  [[nodiscard]] std::size_t offset() const noexcept { return _pos; }
  [[nodiscard]] bool at_end() const noexcept { return _pos >= _bytes.size(); }

 private:
  std::string_view _bytes{};
  std::size_t _pos = 0;
  std::optional<decode_error> _failed;
};

// Appends encoded records to a caller-owned string (which it never clears).
class frame_writer {
 public:
  explicit frame_writer(std::string& out) noexcept : _out(&out) {}

  void write(const hello& f);
  void write(const welcome& f);
  void write(const publish& f);
  void write(const subscribe& f);
  void write(const unsubscribe& f);
  void write(const ack& f);
  void write(const ping& f);
  void write(const pong& f);
  void write(const event& f);
  void write(const puback& f);
  void write(const error& f);
  void write(const notice& f);
  void write(const suback& f);
  void write(const bye& f);
  void write(const frame& f);

  // Bytes an EVENT / PUB record with these sizes takes on the wire (header included).
  [[nodiscard]] static constexpr std::size_t event_bytes(std::size_t channel, std::size_t payload) noexcept {
    return header_bytes + 32 + channel + payload;
  }
  [[nodiscard]] static constexpr std::size_t publish_bytes(std::size_t channel, std::size_t key,
                                                           std::size_t payload) noexcept {
    return header_bytes + 8 + channel + key + payload;
  }

 private:
  std::string* _out;
};

// Convenience: one record, encoded into a fresh string.
template <typename Frame>
[[nodiscard]] std::string encode(const Frame& f) {
  std::string out;
  frame_writer(out).write(f);
  return out;
}

}  // namespace switchboard::protocol
