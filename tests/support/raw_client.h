// A raw protocol peer for tests: a ZeroMQ DEALER that sends hand-built records (valid or not) and
// decodes what the broker answers. It deliberately bypasses libswitchboard_client so tests can
// send exactly the bytes a broken or hostile client would.
// Thread-safety: one test thread per raw_client.
#pragma once

#include <switchboard/protocol.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

namespace switchboard::testing {

// One received message: the bytes and the records decoded from them (views into `bytes`).
struct received {
  std::string bytes;
  std::vector<protocol::frame> frames;
};

class raw_client {
 public:
  // `routing_id`: the ZMQ_ROUTING_ID to present (empty = let ZeroMQ choose).
  explicit raw_client(const std::string& endpoint, int rcvhwm = 1000, const std::string& routing_id = {})
      : _sock(_ctx, zmq::socket_type::dealer) {
    _sock.set(zmq::sockopt::linger, 0);
    _sock.set(zmq::sockopt::rcvhwm, rcvhwm);
    if (!routing_id.empty()) _sock.set(zmq::sockopt::routing_id, routing_id);
    _sock.connect(endpoint);
  }

  void send_bytes(std::string_view bytes) { (void)_sock.send(zmq::buffer(bytes), zmq::send_flags::none); }
  void send_multipart(std::string_view a, std::string_view b) {
    (void)_sock.send(zmq::buffer(a), zmq::send_flags::sndmore);
    (void)_sock.send(zmq::buffer(b), zmq::send_flags::none);
  }
  template <typename Frame>
  void send(const Frame& f) {
    send_bytes(protocol::encode(f));
  }

  // Next message within `timeout`, decoded; empty when nothing arrived.
  std::optional<received> recv(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    zmq::pollitem_t item{_sock.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0) return std::nullopt;
    zmq::message_t msg;
    if (!_sock.recv(msg, zmq::recv_flags::dontwait)) return std::nullopt;
    received r;
    r.bytes = msg.to_string();
    protocol::frame_reader reader(r.bytes);
    for (;;) {
      auto f = reader.next();
      if (!f || !*f) break;
      r.frames.push_back(**f);
    }
    return r;
  }

  // Receives until a record of type T arrives (skipping others) or the timeout passes.
  // The returned views stay valid until the next call.
  template <typename T>
  std::optional<T> expect(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (; _next < _last.frames.size(); ++_next) {
        if (const auto* f = std::get_if<T>(&_last.frames[_next])) {
          ++_next;
          return *f;
        }
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto r = recv(left);
      if (!r) return std::nullopt;
      _last = std::move(*r);
      _next = 0;
      // Re-decode: moving the string may have moved its bytes (small-string buffer).
      _last.frames.clear();
      protocol::frame_reader reader(_last.bytes);
      for (;;) {
        auto f = reader.next();
        if (!f || !*f) break;
        _last.frames.push_back(**f);
      }
    }
  }

  // HELLO + WELCOME; returns the WELCOME.
  std::optional<protocol::welcome> hello(std::uint32_t heartbeat_ms = 0, std::string_view token = {}) {
    send(protocol::hello{.version = protocol::version, .heartbeat_ms = heartbeat_ms, .token = token});
    return expect<protocol::welcome>();
  }

  zmq::socket_t& socket() { return _sock; }

 private:
  zmq::context_t _ctx{1};
  zmq::socket_t _sock;
  received _last;
  std::size_t _next = 0;
};

}  // namespace switchboard::testing
