// Tests for the wire codec (client/include/switchboard/protocol.h, client/src/protocol.cc):
// round trips of every frame type, exact bytes of the examples in docs/PROTOCOL.md, batches, and
// the exact error a peer sees for every kind of malformed input.
#include <switchboard/protocol.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <sstream>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::protocol {
namespace {

using namespace std::string_view_literals;

struct decoded {
  std::vector<frame> frames;
  std::optional<decode_error> error;
};

// Decodes `bytes` until the end or the first error.
decoded decode_all(std::string_view bytes) {
  decoded out;
  frame_reader reader(bytes);
  for (;;) {
    auto r = reader.next();
    if (!r) {
      out.error = r.error();
      return out;
    }
    if (!r->has_value()) return out;
    out.frames.push_back(**r);
  }
}

// Encodes one frame, decodes it, checks it was exactly one record and returns it. The returned
// frame's views point into the encoded bytes, which are kept alive for the whole test run.
template <typename Frame>
Frame round_trip(const Frame& f) {
  static std::deque<std::string> encoded;  // deque: growing it never moves earlier strings
  const std::string& bytes = encoded.emplace_back(encode(f));
  frame_reader reader(bytes);
  auto first = reader.next();
  EXPECT_TRUE(first.has_value()) << first.error().message;
  EXPECT_TRUE(first->has_value());
  EXPECT_TRUE(std::holds_alternative<Frame>(**first));
  EXPECT_EQ(reader.offset(), bytes.size());
  EXPECT_TRUE(reader.at_end());
  auto end = reader.next();
  EXPECT_TRUE(end.has_value());
  EXPECT_FALSE(end->has_value());
  return std::get<Frame>(**first);
}

// Little-endian field patching for building malformed input.
template <typename T>
void poke(std::string& bytes, std::size_t at, T v) {
  ASSERT_LE(at + sizeof v, bytes.size());
  std::memcpy(bytes.data() + at, &v, sizeof v);
}

// Concatenates the arguments as an ostream would print them (g++ 12's libstdc++ has no <format>).
template <typename... Args>
std::string str(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0xf];
  }
  return out;
}

// A record with the given type byte and raw body.
std::string raw_record(std::uint8_t type, std::string_view body, std::uint8_t flags = 0) {
  std::string out(header_bytes, '\0');
  poke(out, 0, type);
  poke(out, 1, flags);
  poke(out, 4, static_cast<std::uint32_t>(body.size()));
  out += body;
  return out;
}

void expect_error(std::string_view bytes, decode_errc code, std::size_t offset, std::string_view message,
                  std::string_view protocol_code = "malformed_frame") {
  const decoded d = decode_all(bytes);
  ASSERT_TRUE(d.error.has_value()) << "decoded " << d.frames.size() << " records without error";
  EXPECT_EQ(d.error->code, code);
  EXPECT_EQ(d.error->offset, offset);
  EXPECT_EQ(d.error->message, message);
  EXPECT_EQ(d.error->protocol_code(), protocol_code);
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(protocol_round_trip, hello) {
  const hello in{.version = 1, .heartbeat_ms = 2000, .token = "s3cret"};
  const hello out = round_trip(in);
  EXPECT_EQ(out.version, 1);
  EXPECT_EQ(out.heartbeat_ms, 2000u);
  EXPECT_EQ(out.token, "s3cret");
  EXPECT_EQ(round_trip(hello{}).token, "");
  EXPECT_EQ(round_trip(hello{}).version, version);
}

TEST(protocol_round_trip, welcome) {
  const welcome in{.version = 1,
                   .heartbeat_ms = 5000,
                   .max_payload_bytes = 1u << 20,
                   .epoch = 0x0123456789abcdefULL,
                   .server = "switchboard/0.1.0"};
  const welcome out = round_trip(in);
  EXPECT_EQ(out.version, 1);
  EXPECT_EQ(out.heartbeat_ms, 5000u);
  EXPECT_EQ(out.max_payload_bytes, 1u << 20);
  EXPECT_EQ(out.epoch, 0x0123456789abcdefULL);
  EXPECT_EQ(out.server, "switchboard/0.1.0");
}

TEST(protocol_round_trip, publish) {
  const publish in{.request_id = 0xfffffffe,
                   .ack_requested = true,
                   .channel = "acme.calls.CA1.status",
                   .key = "idem-42",
                   .payload = R"({"status":"ringing"})"};
  const publish out = round_trip(in);
  EXPECT_EQ(out.request_id, 0xfffffffeu);
  EXPECT_TRUE(out.ack_requested);
  EXPECT_EQ(out.channel, "acme.calls.CA1.status");
  EXPECT_EQ(out.key, "idem-42");
  EXPECT_EQ(out.payload, R"({"status":"ringing"})");

  const publish bare = round_trip(publish{.request_id = 0, .channel = "a", .key = "", .payload = ""});
  EXPECT_FALSE(bare.ack_requested);
  EXPECT_EQ(bare.key, "");
  EXPECT_EQ(bare.payload, "");
}

TEST(protocol_round_trip, publish_payload_is_opaque_binary) {
  const std::string payload("\0\x01\xff\x84\0"sv);
  const publish out = round_trip(publish{.channel = "bin", .key = "", .payload = payload});
  EXPECT_EQ(out.payload, payload);
}

TEST(protocol_round_trip, subscribe) {
  const subscribe in{.sub_id = 7, .pattern = "acme.*.>", .options = R"({"slow_consumer":"drop_oldest"})"};
  const subscribe out = round_trip(in);
  EXPECT_EQ(out.sub_id, 7u);
  EXPECT_EQ(out.pattern, "acme.*.>");
  EXPECT_EQ(out.options, R"({"slow_consumer":"drop_oldest"})");
  EXPECT_EQ(round_trip(subscribe{.sub_id = 1, .pattern = ">", .options = ""}).options, "");
}

TEST(protocol_round_trip, unsubscribe) { EXPECT_EQ(round_trip(unsubscribe{.sub_id = 99}).sub_id, 99u); }

TEST(protocol_round_trip, ack) {
  const ack out = round_trip(ack{.sub_id = 3, .epoch = 11, .seq = 0xffffffffffffffffULL});
  EXPECT_EQ(out.sub_id, 3u);
  EXPECT_EQ(out.epoch, 11u);
  EXPECT_EQ(out.seq, 0xffffffffffffffffULL);
}

TEST(protocol_round_trip, ping_and_pong) {
  EXPECT_EQ(round_trip(ping{.nonce = 0xdeadbeefcafef00dULL}).nonce, 0xdeadbeefcafef00dULL);
  EXPECT_EQ(round_trip(pong{.nonce = 12345}).nonce, 12345u);
}

TEST(protocol_round_trip, event) {
  const event in{.sub_id = 5,
                 .epoch = 77,
                 .seq = 1,
                 .time_ns = 1700000000123456789ULL,
                 .channel = "demo.hello",
                 .payload = R"({"msg":"hi"})"};
  const event out = round_trip(in);
  EXPECT_EQ(out.sub_id, 5u);
  EXPECT_EQ(out.epoch, 77u);
  EXPECT_EQ(out.seq, 1u);
  EXPECT_EQ(out.time_ns, 1700000000123456789ULL);
  EXPECT_EQ(out.channel, "demo.hello");
  EXPECT_EQ(out.payload, R"({"msg":"hi"})");
}

TEST(protocol_round_trip, puback) {
  const puback out = round_trip(puback{.request_id = 8, .epoch = 9, .seq = 10});
  EXPECT_EQ(out.request_id, 8u);
  EXPECT_EQ(out.epoch, 9u);
  EXPECT_EQ(out.seq, 10u);
}

TEST(protocol_round_trip, error) {
  const error out = round_trip(
      error{.ref = 4, .code = "payload_too_large", .message = "payload is 2000000 bytes (limit 1048576)"});
  EXPECT_EQ(out.ref, 4u);
  EXPECT_EQ(out.code, "payload_too_large");
  EXPECT_EQ(out.message, "payload is 2000000 bytes (limit 1048576)");
}

TEST(protocol_round_trip, notice) {
  const notice out = round_trip(notice{.sub_id = 2, .kind = "gap", .detail = R"({"first_seq":100})"});
  EXPECT_EQ(out.sub_id, 2u);
  EXPECT_EQ(out.kind, "gap");
  EXPECT_EQ(out.detail, R"({"first_seq":100})");
}

TEST(protocol_round_trip, suback) { EXPECT_EQ(round_trip(suback{.sub_id = 31}).sub_id, 31u); }

TEST(protocol_round_trip, variant_writer_matches_typed_writer) {
  const std::vector<frame> frames = {
      hello{.heartbeat_ms = 1, .token = "t"},
      welcome{.epoch = 2, .server = "s"},
      publish{.request_id = 3, .channel = "c", .key = "", .payload = "p"},
      subscribe{.sub_id = 4, .pattern = "p.>", .options = ""},
      unsubscribe{.sub_id = 5},
      ack{.sub_id = 6, .epoch = 1, .seq = 2},
      ping{.nonce = 7},
      pong{.nonce = 8},
      event{.sub_id = 9, .channel = "c", .payload = "x"},
      puback{.request_id = 10},
      error{.ref = 11, .code = "c", .message = "m"},
      notice{.sub_id = 12, .kind = "k", .detail = ""},
      suback{.sub_id = 13},
      bye{},
  };
  std::string via_variant;
  frame_writer variant_writer(via_variant);
  std::string via_typed;
  for (const frame& f : frames) {
    variant_writer.write(f);
    std::visit([&](const auto& v) { via_typed += encode(v); }, f);
  }
  EXPECT_EQ(via_variant, via_typed);
  const decoded d = decode_all(via_variant);
  ASSERT_FALSE(d.error.has_value()) << d.error->message;
  ASSERT_EQ(d.frames.size(), frames.size());
  for (std::size_t i = 0; i < frames.size(); ++i) EXPECT_EQ(d.frames[i].index(), frames[i].index()) << i;
}

TEST(protocol_round_trip, writer_appends_and_never_clears) {
  std::string out = "prefix";
  frame_writer w(out);
  w.write(ping{.nonce = 1});
  EXPECT_EQ(out.substr(0, 6), "prefix");
  EXPECT_EQ(out.size(), 6 + header_bytes + 8);
}

TEST(protocol_round_trip, size_helpers_match_encoded_sizes) {
  const std::string payload(128, 'x');
  EXPECT_EQ(encode(publish{.channel = "bench.topic", .key = "k1", .payload = payload}).size(),
            frame_writer::publish_bytes(11, 2, 128));
  EXPECT_EQ(encode(event{.channel = "bench.topic", .payload = payload}).size(),
            frame_writer::event_bytes(11, 128));
}

// ---------------------------------------------------------------------------------------------
// Exact bytes: these are the worked examples in docs/PROTOCOL.md; keep the two in step.

TEST(protocol_bytes, hello) {
  EXPECT_EQ(hex(encode(hello{.version = 1, .heartbeat_ms = 2000, .token = "tok"})),
            "01000000"
            "0b000000"
            "0100"
            "0300"
            "d0070000"
            "746f6b");
}

TEST(protocol_bytes, publish_with_ack) {
  EXPECT_EQ(hex(encode(publish{
                .request_id = 7, .ack_requested = true, .channel = "a.b", .key = "", .payload = "hi"})),
            "02010000"
            "0d000000"
            "07000000"
            "0300"
            "0000"
            "612e62"
            "6869");
}

TEST(protocol_bytes, event) {
  EXPECT_EQ(
      hex(encode(event{.sub_id = 1, .epoch = 2, .seq = 3, .time_ns = 4, .channel = "a.b", .payload = "hi"})),
      "82000000"
      "25000000"
      "01000000"
      "0300"
      "0000"
      "0200000000000000"
      "0300000000000000"
      "0400000000000000"
      "612e62"
      "6869");
}

TEST(protocol_bytes, bye) { EXPECT_EQ(hex(encode(bye{})), "07000000" "00000000"); }

TEST(protocol_round_trip, bye_ignores_trailing_bytes) {
  const std::string with_tail = raw_record(0x07, "later");
  const decoded d = decode_all(with_tail);
  ASSERT_FALSE(d.error.has_value()) << d.error->message;
  ASSERT_EQ(d.frames.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<bye>(d.frames[0]));
}

TEST(protocol_bytes, error) {
  EXPECT_EQ(hex(encode(error{.ref = 0, .code = "x", .message = "m"})),
            "84000000"
            "0a000000"
            "00000000"
            "0100"
            "0000"
            "78"
            "6d");
}

// ---------------------------------------------------------------------------------------------
// Batches

TEST(protocol_batch, many_records_decode_in_order) {
  constexpr int n = 10000;
  const std::string payload(128, 'p');
  std::string bytes;
  frame_writer w(bytes);
  std::vector<std::size_t> offsets;
  for (int i = 0; i < n; ++i) {
    offsets.push_back(bytes.size());
    const std::string channel = str("bench.", i % 17);
    if (i % 2 == 0) {
      w.write(publish{
          .request_id = static_cast<std::uint32_t>(i), .channel = channel, .key = "", .payload = payload});
    } else {
      w.write(
          event{.sub_id = 1, .seq = static_cast<std::uint64_t>(i), .channel = channel, .payload = payload});
    }
  }
  frame_reader reader(bytes);
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(reader.offset(), offsets[i]);
    auto r = reader.next();
    ASSERT_TRUE(r.has_value()) << r.error().message;
    ASSERT_TRUE(r->has_value());
    const std::string channel = str("bench.", i % 17);
    if (i % 2 == 0) {
      const auto& p = std::get<publish>(**r);
      EXPECT_EQ(p.request_id, static_cast<std::uint32_t>(i));
      EXPECT_EQ(p.channel, channel);
      EXPECT_EQ(p.payload, payload);
    } else {
      const auto& e = std::get<event>(**r);
      EXPECT_EQ(e.seq, static_cast<std::uint64_t>(i));
      EXPECT_EQ(e.channel, channel);
      EXPECT_EQ(e.payload, payload);
    }
  }
  EXPECT_TRUE(reader.at_end());
  auto end = reader.next();
  ASSERT_TRUE(end.has_value());
  EXPECT_FALSE(end->has_value());
}

TEST(protocol_batch, empty_message_is_an_empty_batch) {
  const decoded d = decode_all("");
  EXPECT_FALSE(d.error.has_value());
  EXPECT_TRUE(d.frames.empty());
}

TEST(protocol_batch, good_records_before_a_bad_one_are_delivered) {
  std::string bytes = encode(ping{.nonce = 1}) + encode(unsubscribe{.sub_id = 2});
  const std::size_t bad_at = bytes.size();
  bytes += raw_record(0x42, "");
  bytes += encode(ping{.nonce = 3});  // never reached
  const decoded d = decode_all(bytes);
  ASSERT_EQ(d.frames.size(), 2u);
  EXPECT_EQ(std::get<ping>(d.frames[0]).nonce, 1u);
  EXPECT_EQ(std::get<unsubscribe>(d.frames[1]).sub_id, 2u);
  ASSERT_TRUE(d.error.has_value());
  EXPECT_EQ(d.error->offset, bad_at);
}

// Every prefix of a valid batch: the complete records decode, then the cut record reports
// `truncated` at its own offset, naming what it needed and what was left.
TEST(protocol_batch, every_truncation_point) {
  std::string bytes;
  frame_writer w(bytes);
  w.write(hello{.heartbeat_ms = 1000, .token = "tok"});
  w.write(
      publish{.request_id = 1, .ack_requested = true, .channel = "a.b", .key = "k", .payload = "payload"});
  w.write(subscribe{.sub_id = 2, .pattern = "a.>", .options = "{}"});
  w.write(unsubscribe{.sub_id = 2});
  w.write(ack{.sub_id = 2, .epoch = 1, .seq = 2});
  w.write(ping{.nonce = 3});
  w.write(event{.sub_id = 2, .epoch = 1, .seq = 4, .time_ns = 5, .channel = "a.b", .payload = "x"});
  w.write(error{.ref = 1, .code = "invalid_channel", .message = "bad"});
  w.write(suback{.sub_id = 2});

  // Record boundaries, from the reader itself.
  std::vector<std::size_t> starts;
  {
    frame_reader r(bytes);
    while (!r.at_end()) {
      starts.push_back(r.offset());
      ASSERT_TRUE(r.next().has_value());
    }
  }
  ASSERT_EQ(starts.size(), 9u);
  starts.push_back(bytes.size());

  for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
    SCOPED_TRACE(str("cut at ", cut));
    std::size_t rec = 0;
    while (rec + 1 < starts.size() && starts[rec + 1] <= cut) ++rec;  // record holding byte `cut`, or the end
    const decoded d = decode_all(std::string_view(bytes).substr(0, cut));
    const std::size_t at = starts[rec];
    ASSERT_EQ(d.frames.size(), rec);
    if (cut == at) {
      EXPECT_FALSE(d.error.has_value());
      continue;
    }
    const std::size_t left = cut - at;
    const std::size_t body_len = starts[rec + 1] - at - header_bytes;
    const std::string message =
        left < header_bytes
            ? str("record at offset ", at, " is truncated: header needs 8 bytes, ", left, " left")
            : str("record at offset ", at, " is truncated: body needs ", body_len, " bytes, ",
                  left - header_bytes, " left");
    expect_error(std::string_view(bytes).substr(0, cut), decode_errc::truncated, at, message);
  }
}

// ---------------------------------------------------------------------------------------------
// Malformed input: the exact error for each case.

TEST(protocol_decode_error, header_shorter_than_eight_bytes) {
  expect_error("\x06\0\0"sv, decode_errc::truncated, 0,
               "record at offset 0 is truncated: header needs 8 bytes, 3 left");
}

TEST(protocol_decode_error, unknown_type_is_unknown_command) {
  const std::string prefix = encode(ping{.nonce = 1});  // 16 bytes
  for (std::uint8_t type : {0x00, 0x08, 0x7f, 0x80, 0x88, 0xff}) {
    SCOPED_TRACE(static_cast<int>(type));
    expect_error(prefix + raw_record(type, "abcd"), decode_errc::unknown_type, 16,
                 str("record at offset 16 has unknown type 0x", hex(std::string(1, static_cast<char>(type)))),
                 "unknown_command");
  }
}

TEST(protocol_decode_error, non_zero_reserved_header_field) {
  std::string bytes = encode(ping{.nonce = 1}) + encode(ping{.nonce = 2});
  poke(bytes, 16 + 2, std::uint16_t{0x0100});
  expect_error(bytes, decode_errc::bad_reserved, 16,
               "record at offset 16 has a non-zero reserved header field");
}

TEST(protocol_decode_error, body_larger_than_max_body_bytes) {
  std::string bytes = encode(ping{.nonce = 1});
  poke(bytes, 4, static_cast<std::uint32_t>(max_body_bytes + 1));
  expect_error(
      bytes, decode_errc::too_large, 0,
      str("record at offset 0 declares a ", max_body_bytes + 1, "-byte body (limit ", max_body_bytes, ")"));
  // Exactly max_body_bytes is allowed (here: reported as truncated, not too large).
  poke(bytes, 4, static_cast<std::uint32_t>(max_body_bytes));
  expect_error(bytes, decode_errc::truncated, 0,
               str("record at offset 0 is truncated: body needs ", max_body_bytes, " bytes, 8 left"));
}

TEST(protocol_decode_error, reserved_is_checked_before_size_and_size_before_truncation) {
  std::string bytes = raw_record(0x06, "");
  poke(bytes, 4, std::uint32_t{0xffffffff});
  expect_error(bytes, decode_errc::too_large, 0,
               str("record at offset 0 declares a 4294967295-byte body (limit ", max_body_bytes, ")"));
  poke(bytes, 2, std::uint16_t{1});
  expect_error(bytes, decode_errc::bad_reserved, 0,
               "record at offset 0 has a non-zero reserved header field");
}

// A length field inside a body that points past the body's end: bad_length, naming the frame.
struct bad_length_case {
  std::string name;
  std::string bytes;
  std::string message;
};

std::vector<bad_length_case> bad_length_cases() {
  // Every case sits behind one valid 16-byte PING so that the reported offset is 16.
  const std::string prefix = encode(ping{.nonce = 0});
  auto patched = [&](std::string rec, std::size_t body_off, std::uint16_t len) {
    poke(rec, header_bytes + body_off, len);
    return prefix + rec;
  };
  auto truncated_body = [&](std::uint8_t type, std::size_t body_len) {
    return prefix + raw_record(type, std::string(body_len, '\0'));
  };
  auto msg = [](std::string_view type, std::string_view what) {
    return str(type, " record at offset 16 is malformed: ", what);
  };
  return {
      {"hello token_len", patched(encode(hello{.token = "abc"}), 2, 4),
       msg("HELLO", "fields run past the body")},
      {"hello short", truncated_body(0x01, 7), msg("HELLO", "fields run past the body")},
      {"welcome server_len", patched(encode(welcome{.server = "srv"}), 2, 100),
       msg("WELCOME", "fields run past the body")},
      {"welcome short", truncated_body(0x81, 19), msg("WELCOME", "fields run past the body")},
      {"pub channel_len", patched(encode(publish{.channel = "a.b", .key = "", .payload = "p"}), 4, 5),
       msg("PUB", "channel or key length runs past the body")},
      {"pub key_len", patched(encode(publish{.channel = "a.b", .key = "k", .payload = ""}), 6, 2),
       msg("PUB", "channel or key length runs past the body")},
      {"pub short", truncated_body(0x02, 7), msg("PUB", "channel or key length runs past the body")},
      {"sub pattern_len", patched(encode(subscribe{.sub_id = 1, .pattern = "a.>", .options = ""}), 4, 0xffff),
       msg("SUB", "pattern length runs past the body")},
      {"sub short", truncated_body(0x03, 7), msg("SUB", "pattern length runs past the body")},
      {"unsub empty", truncated_body(0x04, 3), msg("UNSUB", "missing sub_id")},
      {"ack short", truncated_body(0x05, 23), msg("ACK", "fields run past the body")},
      {"ping short", truncated_body(0x06, 7), msg("PING", "missing nonce")},
      {"event channel_len", patched(encode(event{.channel = "a.b", .payload = ""}), 4, 4),
       msg("EVENT", "fields run past the body")},
      {"event short", truncated_body(0x82, 31), msg("EVENT", "fields run past the body")},
      {"puback short", truncated_body(0x83, 23), msg("PUBACK", "fields run past the body")},
      {"err code_len", patched(encode(error{.code = "abc", .message = ""}), 4, 4),
       msg("ERR", "code length runs past the body")},
      {"err short", truncated_body(0x84, 7), msg("ERR", "code length runs past the body")},
      {"pong short", truncated_body(0x85, 0), msg("PONG", "missing nonce")},
      {"notice kind_len", patched(encode(notice{.kind = "gap", .detail = ""}), 4, 9),
       msg("NOTICE", "kind length runs past the body")},
      {"notice short", truncated_body(0x86, 7), msg("NOTICE", "kind length runs past the body")},
      {"suback short", truncated_body(0x87, 2), msg("SUBACK", "missing sub_id")},
  };
}

TEST(protocol_decode_error, length_inside_body_past_its_end) {
  for (const auto& c : bad_length_cases()) {
    SCOPED_TRACE(c.name);
    expect_error(c.bytes, decode_errc::bad_length, 16, c.message);
  }
}

// Reserved fields inside bodies must be zero too. The codec reports them through the same
// bad_length path as the surrounding fields (the stable code is malformed_frame either way).
TEST(protocol_decode_error, non_zero_reserved_body_field) {
  struct reserved_case {
    std::string name;
    std::string rec;
    std::size_t body_off;
    std::size_t width;
  };
  const std::vector<reserved_case> cases = {
      {"SUB", encode(subscribe{.sub_id = 1, .pattern = "a", .options = ""}), 6, 2},
      {"ACK", encode(ack{.sub_id = 1}), 4, 4},
      {"EVENT", encode(event{.channel = "a", .payload = ""}), 6, 2},
      {"PUBACK", encode(puback{.request_id = 1}), 4, 4},
      {"ERR", encode(error{.code = "c", .message = ""}), 6, 2},
      {"NOTICE", encode(notice{.kind = "k", .detail = ""}), 6, 2},
  };
  for (auto c : cases) {
    SCOPED_TRACE(c.name);
    c.rec[header_bytes + c.body_off + c.width - 1] = 1;
    const decoded d = decode_all(c.rec);
    ASSERT_TRUE(d.error.has_value());
    EXPECT_EQ(d.error->code, decode_errc::bad_reserved);
    EXPECT_EQ(d.error->message, c.name + " record at offset 0 has a non-zero reserved field");
    EXPECT_EQ(d.error->offset, 0u);
    EXPECT_EQ(d.error->protocol_code(), "malformed_frame");
    EXPECT_TRUE(d.frames.empty());
  }
}

TEST(protocol_decode_error, error_is_sticky) {
  std::string bytes = raw_record(0x42, "") + encode(ping{.nonce = 1});
  frame_reader reader(bytes);
  auto first = reader.next();
  ASSERT_FALSE(first.has_value());
  for (int i = 0; i < 3; ++i) {
    auto again = reader.next();
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().code, decode_errc::unknown_type);
    EXPECT_EQ(again.error().offset, 0u);
    EXPECT_EQ(again.error().message, first.error().message);
    EXPECT_EQ(reader.offset(), 0u);
  }
}

// ---------------------------------------------------------------------------------------------
// Forward compatibility: what a receiver tolerates.

TEST(protocol_compat, trailing_bytes_in_fixed_layout_bodies_are_ignored) {
  std::string bytes = raw_record(0x06, std::string("\x05\0\0\0\0\0\0\0extra"sv));
  bytes += encode(suback{.sub_id = 1});
  const decoded d = decode_all(bytes);
  ASSERT_FALSE(d.error.has_value()) << d.error->message;
  ASSERT_EQ(d.frames.size(), 2u);
  EXPECT_EQ(std::get<ping>(d.frames[0]).nonce, 5u);
}

TEST(protocol_compat, unknown_flag_bits_are_ignored) {
  std::string bytes = encode(publish{.channel = "a", .key = "", .payload = "p"});
  bytes[1] = static_cast<char>(0xfe);  // every bit but ack_requested
  const decoded d = decode_all(bytes);
  ASSERT_FALSE(d.error.has_value()) << d.error->message;
  EXPECT_FALSE(std::get<publish>(d.frames.at(0)).ack_requested);
}

}  // namespace
}  // namespace switchboard::protocol
