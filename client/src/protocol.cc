// Frame codec: see <switchboard/protocol.h> and docs/PROTOCOL.md.
#include <switchboard/protocol.h>

#include <bit>
#include <cstring>
#include <string>

namespace switchboard::protocol {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the codec writes integers in native order; add byte swapping for big-endian hosts");

template <typename T>
void put(char*& p, T v) noexcept {
  std::memcpy(p, &v, sizeof v);
  p += sizeof v;
}

void put_bytes(char*& p, std::string_view s) noexcept {
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  p += s.size();
}

// Reserves header + body in `out` and returns a pointer to the body; the header is filled in.
char* begin_record(std::string& out, frame_type type, std::uint8_t flags, std::size_t body) {
  const std::size_t at = out.size();
  out.resize(at + header_bytes + body);
  char* p = out.data() + at;
  put(p, static_cast<std::uint8_t>(type));
  put(p, flags);
  put(p, std::uint16_t{0});
  put(p, static_cast<std::uint32_t>(body));
  return p;
}

std::uint16_t len16(std::string_view s) noexcept { return static_cast<std::uint16_t>(s.size()); }

// Bounds-checked cursor over one record body.
class body_cursor {
 public:
  explicit body_cursor(std::string_view body) noexcept : _body(body) {}
  template <typename T>
  bool get(T& v) noexcept {
    if (_body.size() - _pos < sizeof v) return false;
    std::memcpy(&v, _body.data() + _pos, sizeof v);
    _pos += sizeof v;
    return true;
  }
  bool get_bytes(std::size_t n, std::string_view& v) noexcept {
    if (_body.size() - _pos < n) return false;
    v = _body.substr(_pos, n);
    _pos += n;
    return true;
  }
  std::string_view rest() noexcept {
    auto r = _body.substr(_pos);
    _pos = _body.size();
    return r;
  }
  bool zero16() noexcept { return zero<std::uint16_t>(); }
  bool zero32() noexcept { return zero<std::uint32_t>(); }
  // True after a reserved field was present but not zero (as opposed to missing).
  [[nodiscard]] bool reserved_nonzero() const noexcept { return _reserved_nonzero; }

 private:
  template <typename T>
  bool zero() noexcept {
    T r{};
    if (!get(r)) return false;
    _reserved_nonzero = _reserved_nonzero || r != 0;
    return r == 0;
  }
  bool _reserved_nonzero = false;
  std::string_view _body;
  std::size_t _pos = 0;
};

// Small message builder: the codec is a public library, so it avoids a formatting dependency.
std::string cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) out += p;
  return out;
}
std::string num(std::size_t v) { return std::to_string(v); }
std::string hex2(std::uint8_t v) {
  constexpr char digits[] = "0123456789abcdef";
  return {digits[v >> 4], digits[v & 0xf]};
}

std::string_view type_name(frame_type t) {
  switch (t) {
    case frame_type::hello: return "HELLO";
    case frame_type::pub: return "PUB";
    case frame_type::sub: return "SUB";
    case frame_type::unsub: return "UNSUB";
    case frame_type::ack: return "ACK";
    case frame_type::ping: return "PING";
    case frame_type::bye: return "BYE";
    case frame_type::welcome: return "WELCOME";
    case frame_type::event: return "EVENT";
    case frame_type::puback: return "PUBACK";
    case frame_type::err: return "ERR";
    case frame_type::pong: return "PONG";
    case frame_type::notice: return "NOTICE";
    case frame_type::suback: return "SUBACK";
  }
  return "?";
}

}  // namespace

std::string_view decode_error::protocol_code() const noexcept {
  return code == decode_errc::unknown_type ? "unknown_command" : "malformed_frame";
}

std::expected<std::optional<frame>, decode_error> frame_reader::next() {
  if (_failed) return std::unexpected(*_failed);
  if (_pos >= _bytes.size()) return std::optional<frame>{};
  const std::size_t at = _pos;
  auto fail = [&](decode_errc code, std::string message) {
    _failed = decode_error{code, at, std::move(message)};
    return std::unexpected(*_failed);
  };
  const std::size_t left = _bytes.size() - at;
  if (left < header_bytes) {
    return fail(decode_errc::truncated,
                cat({"record at offset ", num(at), " is truncated: header needs ", num(header_bytes), " bytes, ",
                     num(left), " left"}));
  }
  body_cursor head(_bytes.substr(at, header_bytes));
  std::uint8_t type_byte = 0;
  std::uint8_t flags = 0;
  std::uint16_t reserved = 0;
  std::uint32_t body_len = 0;
  head.get(type_byte);
  head.get(flags);
  head.get(reserved);
  head.get(body_len);
  if (reserved != 0) {
    return fail(decode_errc::bad_reserved,
                cat({"record at offset ", num(at), " has a non-zero reserved header field"}));
  }
  if (body_len > max_body_bytes) {
    return fail(decode_errc::too_large, cat({"record at offset ", num(at), " declares a ", num(body_len),
                                             "-byte body (limit ", num(max_body_bytes), ")"}));
  }
  if (left - header_bytes < body_len) {
    return fail(decode_errc::truncated,
                cat({"record at offset ", num(at), " is truncated: body needs ", num(body_len), " bytes, ",
                     num(left - header_bytes), " left"}));
  }
  const auto type = static_cast<frame_type>(type_byte);
  body_cursor b(_bytes.substr(at + header_bytes, body_len));
  auto bad = [&](std::string_view what) {
    if (b.reserved_nonzero()) {
      return fail(decode_errc::bad_reserved,
                  cat({type_name(type), " record at offset ", num(at), " has a non-zero reserved field"}));
    }
    return fail(decode_errc::bad_length,
                cat({type_name(type), " record at offset ", num(at), " is malformed: ", what}));
  };
  std::optional<frame> out;
  switch (type) {
    case frame_type::hello: {
      hello f;
      std::uint16_t token_len = 0;
      if (!b.get(f.version) || !b.get(token_len) || !b.get(f.heartbeat_ms) || !b.get_bytes(token_len, f.token))
        return bad("fields run past the body");
      out = f;
      break;
    }
    case frame_type::welcome: {
      welcome f;
      std::uint16_t server_len = 0;
      if (!b.get(f.version) || !b.get(server_len) || !b.get(f.heartbeat_ms) || !b.get(f.max_payload_bytes) ||
          !b.get(f.epoch) || !b.get_bytes(server_len, f.server))
        return bad("fields run past the body");
      out = f;
      break;
    }
    case frame_type::pub: {
      publish f;
      std::uint16_t channel_len = 0;
      std::uint16_t key_len = 0;
      if (!b.get(f.request_id) || !b.get(channel_len) || !b.get(key_len) || !b.get_bytes(channel_len, f.channel) ||
          !b.get_bytes(key_len, f.key))
        return bad("channel or key length runs past the body");
      f.payload = b.rest();
      f.ack_requested = (flags & flag_ack_requested) != 0;
      out = f;
      break;
    }
    case frame_type::sub: {
      subscribe f;
      std::uint16_t pattern_len = 0;
      if (!b.get(f.sub_id) || !b.get(pattern_len) || !b.zero16() || !b.get_bytes(pattern_len, f.pattern))
        return bad("pattern length runs past the body");
      f.options = b.rest();
      out = f;
      break;
    }
    case frame_type::unsub: {
      unsubscribe f;
      if (!b.get(f.sub_id)) return bad("missing sub_id");
      out = f;
      break;
    }
    case frame_type::ack: {
      ack f;
      if (!b.get(f.sub_id) || !b.zero32() || !b.get(f.epoch) || !b.get(f.seq)) return bad("fields run past the body");
      out = f;
      break;
    }
    case frame_type::ping: {
      ping f;
      if (!b.get(f.nonce)) return bad("missing nonce");
      out = f;
      break;
    }
    case frame_type::bye: {
      out = bye{};  // no fields; trailing bytes are ignored like in every fixed-layout frame
      break;
    }
    case frame_type::pong: {
      pong f;
      if (!b.get(f.nonce)) return bad("missing nonce");
      out = f;
      break;
    }
    case frame_type::event: {
      event f;
      std::uint16_t channel_len = 0;
      if (!b.get(f.sub_id) || !b.get(channel_len) || !b.zero16() || !b.get(f.epoch) || !b.get(f.seq) ||
          !b.get(f.time_ns) || !b.get_bytes(channel_len, f.channel))
        return bad("fields run past the body");
      f.payload = b.rest();
      out = f;
      break;
    }
    case frame_type::puback: {
      puback f;
      if (!b.get(f.request_id) || !b.zero32() || !b.get(f.epoch) || !b.get(f.seq))
        return bad("fields run past the body");
      out = f;
      break;
    }
    case frame_type::err: {
      error f;
      std::uint16_t code_len = 0;
      if (!b.get(f.ref) || !b.get(code_len) || !b.zero16() || !b.get_bytes(code_len, f.code))
        return bad("code length runs past the body");
      f.message = b.rest();
      out = f;
      break;
    }
    case frame_type::notice: {
      notice f;
      std::uint16_t kind_len = 0;
      if (!b.get(f.sub_id) || !b.get(kind_len) || !b.zero16() || !b.get_bytes(kind_len, f.kind))
        return bad("kind length runs past the body");
      f.detail = b.rest();
      out = f;
      break;
    }
    case frame_type::suback: {
      suback f;
      if (!b.get(f.sub_id)) return bad("missing sub_id");
      out = f;
      break;
    }
    default:
      return fail(decode_errc::unknown_type,
                  cat({"record at offset ", num(at), " has unknown type 0x", hex2(type_byte)}));
  }
  _pos = at + header_bytes + body_len;
  return out;
}

void frame_writer::write(const hello& f) {
  char* p = begin_record(*_out, frame_type::hello, 0, 8 + f.token.size());
  put(p, f.version);
  put(p, len16(f.token));
  put(p, f.heartbeat_ms);
  put_bytes(p, f.token);
}

void frame_writer::write(const welcome& f) {
  char* p = begin_record(*_out, frame_type::welcome, 0, 20 + f.server.size());
  put(p, f.version);
  put(p, len16(f.server));
  put(p, f.heartbeat_ms);
  put(p, f.max_payload_bytes);
  put(p, f.epoch);
  put_bytes(p, f.server);
}

void frame_writer::write(const publish& f) {
  char* p = begin_record(*_out, frame_type::pub, f.ack_requested ? flag_ack_requested : 0,
                         8 + f.channel.size() + f.key.size() + f.payload.size());
  put(p, f.request_id);
  put(p, len16(f.channel));
  put(p, len16(f.key));
  put_bytes(p, f.channel);
  put_bytes(p, f.key);
  put_bytes(p, f.payload);
}

void frame_writer::write(const subscribe& f) {
  char* p = begin_record(*_out, frame_type::sub, 0, 8 + f.pattern.size() + f.options.size());
  put(p, f.sub_id);
  put(p, len16(f.pattern));
  put(p, std::uint16_t{0});
  put_bytes(p, f.pattern);
  put_bytes(p, f.options);
}

void frame_writer::write(const unsubscribe& f) {
  char* p = begin_record(*_out, frame_type::unsub, 0, 4);
  put(p, f.sub_id);
}

void frame_writer::write(const ack& f) {
  char* p = begin_record(*_out, frame_type::ack, 0, 24);
  put(p, f.sub_id);
  put(p, std::uint32_t{0});
  put(p, f.epoch);
  put(p, f.seq);
}

void frame_writer::write(const ping& f) {
  char* p = begin_record(*_out, frame_type::ping, 0, 8);
  put(p, f.nonce);
}

void frame_writer::write(const pong& f) {
  char* p = begin_record(*_out, frame_type::pong, 0, 8);
  put(p, f.nonce);
}

void frame_writer::write(const event& f) {
  char* p = begin_record(*_out, frame_type::event, 0, 32 + f.channel.size() + f.payload.size());
  put(p, f.sub_id);
  put(p, len16(f.channel));
  put(p, std::uint16_t{0});
  put(p, f.epoch);
  put(p, f.seq);
  put(p, f.time_ns);
  put_bytes(p, f.channel);
  put_bytes(p, f.payload);
}

void frame_writer::write(const puback& f) {
  char* p = begin_record(*_out, frame_type::puback, 0, 24);
  put(p, f.request_id);
  put(p, std::uint32_t{0});
  put(p, f.epoch);
  put(p, f.seq);
}

void frame_writer::write(const error& f) {
  char* p = begin_record(*_out, frame_type::err, 0, 8 + f.code.size() + f.message.size());
  put(p, f.ref);
  put(p, len16(f.code));
  put(p, std::uint16_t{0});
  put_bytes(p, f.code);
  put_bytes(p, f.message);
}

void frame_writer::write(const notice& f) {
  char* p = begin_record(*_out, frame_type::notice, 0, 8 + f.kind.size() + f.detail.size());
  put(p, f.sub_id);
  put(p, len16(f.kind));
  put(p, std::uint16_t{0});
  put_bytes(p, f.kind);
  put_bytes(p, f.detail);
}

void frame_writer::write(const suback& f) {
  char* p = begin_record(*_out, frame_type::suback, 0, 4);
  put(p, f.sub_id);
}

void frame_writer::write(const bye&) { (void)begin_record(*_out, frame_type::bye, 0, 0); }

void frame_writer::write(const frame& f) {
  std::visit([this](const auto& v) { write(v); }, f);
}

}  // namespace switchboard::protocol
