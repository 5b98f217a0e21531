#include "broker/transport/transport.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <switchboard/protocol.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <zmq.hpp>

#include "broker/transport/core.h"

namespace switchboard::transport {

namespace {

// The ROUTER socket as the outbox's wire. With ZMQ_ROUTER_MANDATORY an unknown identity is
// EHOSTUNREACH (gone) and a full pipe EAGAIN (full).
class router_wire final : public wire {
 public:
  explicit router_wire(zmq::socket_t& sock) : _sock(sock) {}

  // Never blocks and never copies: ZeroMQ takes the bytes on success; on `full` or `gone` they are
  // left in `bytes` for a retry.
  send_result try_send(const std::string& identity, std::string& bytes) override {
    auto* owned = new std::string(std::move(bytes));
    zmq::message_t body(
        owned->data(), owned->size(), [](void*, void* hint) { delete static_cast<std::string*>(hint); }, owned);
    const auto r = send(identity, body);
    // Not sent: take the bytes back (`body` is destroyed unsent and only frees the emptied string).
    if (r != send_result::sent) bytes = std::move(*owned);
    return r;
  }

 private:
  send_result send(const std::string& identity, zmq::message_t& body) {
    try {
      if (!_sock.send(zmq::buffer(identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        return send_result::full;
      }
      // The identity frame went out; the body frame cannot fail with EAGAIN now.
      (void)_sock.send(body, zmq::send_flags::dontwait);
      return send_result::sent;
    } catch (const zmq::error_t& e) {
      if (e.num() == EHOSTUNREACH) return send_result::gone;
      throw;
    }
  }

  zmq::socket_t& _sock;
};

}  // namespace

struct transport::impl {
  transport_options opts;
  router::router& rt;
  zmq::context_t ctx{1};
  zmq::socket_t sock;
  zmq::socket_t monitor;  // PAIR receiving the ROUTER's disconnect events
  router_wire out{sock};
  transport_core core;
  std::string endpoint;
  int wake_fd = -1;
  std::jthread thread;
  std::atomic<bool> accepting{true};
  std::atomic<bool> quiesced{false};

  impl(transport_options o, router::router& r)
      : opts(std::move(o)),
        rt(r),
        sock(ctx, zmq::socket_type::router),
        monitor(ctx, zmq::socket_type::pair),
        core(opts, r, out) {}

  // Ends the sessions of connections that closed. Called before each message is handled: libzmq
  // emits DISCONNECTED before it closes the file descriptor, so a new connection that reuses the
  // number (and a vanished client's routing identity) cannot be mistaken for the old one.
  void take_disconnects() {
    for (;;) {
      zmq::message_t event;
      if (!monitor.recv(event, zmq::recv_flags::dontwait)) return;
      zmq::message_t address;
      if (event.more()) (void)monitor.recv(address, zmq::recv_flags::none);
      if (event.size() < 6) continue;
      std::uint16_t kind = 0;
      std::int32_t fd = -1;
      std::memcpy(&kind, event.data(), sizeof kind);
      std::memcpy(&fd, static_cast<const char*>(event.data()) + 2, sizeof fd);
      if (kind == ZMQ_EVENT_DISCONNECTED) core.peer_closed(fd);
    }
  }

  // Reads up to 256 messages. True if any arrived.
  bool receive_some() {
    bool any = false;
    for (int i = 0; i < 256; ++i) {
      zmq::message_t identity;
      if (!sock.recv(identity, zmq::recv_flags::dontwait)) break;
      any = true;
      take_disconnects();
      auto body = std::make_shared<zmq::message_t>();
      if (identity.more()) (void)sock.recv(*body, zmq::recv_flags::none);
      bool extra = false;
      for (bool more = body->more(); more;) {
        zmq::message_t skip;
        (void)sock.recv(skip, zmq::recv_flags::none);
        extra = true;
        more = skip.more();
      }
      const std::string id = identity.to_string();
      if (extra) {
        core.reject_multipart(id);
        continue;
      }
      // The connection it came on (ZMQ_SRCFD): a session is bound to it, not only to the identity.
      // The identity frame is made by the ROUTER itself; the body frame came off the connection.
      const int peer = zmq_msg_get(body->handle(), ZMQ_SRCFD);
      const std::string_view bytes(static_cast<const char*>(body->data()), body->size());
      // The client's address, for the logs of a HELLO (session opened, token rejected); other
      // messages skip the metadata lookup.
      const char* address = nullptr;
      if (!bytes.empty() && bytes[0] == static_cast<char>(protocol::frame_type::hello)) {
        address = zmq_msg_gets(body->handle(), "Peer-Address");
      }
      core.handle_message(id, peer, std::move(body), bytes, address != nullptr ? address : std::string_view());
    }
    return any;
  }

  // Token names whose sessions a reload closes (any thread adds, the transport thread takes).
  std::mutex token_closes_mutex;
  std::vector<std::string> token_closes;  // guarded by token_closes_mutex
  std::atomic<bool> has_token_closes{false};

  void take_token_closes() {
    if (!has_token_closes.exchange(false)) return;
    std::vector<std::string> names;
    {
      std::lock_guard lock(token_closes_mutex);
      names.swap(token_closes);
    }
    core.close_token_sessions(names);
  }

  void run(std::stop_token st) {
    zmq::pollitem_t items[] = {{sock.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, wake_fd, ZMQ_POLLIN, 0},
                               {monitor.handle(), 0, ZMQ_POLLIN, 0}};
    for (;;) {
      take_disconnects();
      take_token_closes();
      const bool stop_now = st.stop_requested();
      bool worked = core.drain();
      if (accepting.load(std::memory_order_relaxed)) {
        worked = receive_some() || worked;
      } else if (!quiesced.load(std::memory_order_relaxed)) {
        quiesced.store(true);
        quiesced.notify_all();
      }
      const auto now = clock::now();
      core.tick(now);  // the one point where ended sessions are reaped
      // The router is stopped (inline: and idle): its output is drained.
      if (stop_now && !worked && (!rt.inline_shards() || rt.quiescent())) break;
      if (worked) continue;
      if (!rt.consumer_try_idle()) continue;
      const auto timeout = core.busy() ? std::chrono::milliseconds(1)
                                       : std::chrono::duration_cast<std::chrono::milliseconds>(core.next_sweep() - now);
      items[0].events = accepting.load(std::memory_order_relaxed) ? ZMQ_POLLIN : 0;
      zmq::poll(items, 3, std::max(timeout, std::chrono::milliseconds(0)));
      rt.consumer_awake();
      if (items[1].revents & ZMQ_POLLIN) {
        std::uint64_t n = 0;
        (void)::read(wake_fd, &n, sizeof n);
      }
    }
    // Best effort: give queued output a moment to leave, then close.
    for (auto deadline = clock::now() + std::chrono::milliseconds(500); core.busy() && clock::now() < deadline;) {
      core.tick(clock::now());
      std::this_thread::yield();
    }
    sock.set(zmq::sockopt::linger, 200);
    (void)zmq_socket_monitor(sock.handle(), nullptr, 0);
    monitor.close();
    sock.close();
  }
};

std::expected<std::unique_ptr<transport>, transport_error> transport::create(transport_options opts,
                                                                              router::router& r) {
  auto p = std::make_unique<impl>(std::move(opts), r);
  try {
    auto& s = p->sock;
    s.set(zmq::sockopt::router_mandatory, 1);
    s.set(zmq::sockopt::sndhwm, static_cast<int>(p->opts.socket_hwm));
    s.set(zmq::sockopt::rcvhwm, 1000);
    s.set(zmq::sockopt::linger, 0);
    const auto max_msg = std::max<std::int64_t>(16 << 20, 4 * static_cast<std::int64_t>(p->opts.max_payload_bytes));
    s.set(zmq::sockopt::maxmsgsize, max_msg);
    s.bind(p->opts.bind);
    p->endpoint = s.get(zmq::sockopt::last_endpoint);
    // Disconnects end sessions at once (and bind a session to its connection, see take_disconnects).
    const auto monitor_endpoint = fmt::format("inproc://switchboard-transport-monitor-{}", fmt::ptr(p.get()));
    if (zmq_socket_monitor(s.handle(), monitor_endpoint.c_str(), ZMQ_EVENT_DISCONNECTED) != 0) {
      throw zmq::error_t();
    }
    p->monitor.connect(monitor_endpoint);
  } catch (const zmq::error_t& e) {
    return std::unexpected(transport_error{fmt::format("cannot bind {}: {}", p->opts.bind, e.what())});
  }
  p->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (p->wake_fd < 0) return std::unexpected(transport_error{"eventfd failed"});
  return std::unique_ptr<transport>(new transport(std::move(p)));
}

transport::transport(std::unique_ptr<impl> p) : _impl(std::move(p)) {}

transport::~transport() {
  stop();
  if (_impl->wake_fd >= 0) ::close(_impl->wake_fd);
}

std::string transport::endpoint() const { return _impl->endpoint; }

void transport::wake() noexcept {
  const std::uint64_t one = 1;
  (void)::write(_impl->wake_fd, &one, sizeof one);
}

void transport::start() {
  _impl->thread = std::jthread([this](std::stop_token st) {
    try {
      _impl->run(st);
    } catch (const std::exception& e) {
      spdlog::critical("transport thread failed: {}", e.what());
      std::terminate();
    }
  });
}

void transport::stop_accepting() {
  if (!_impl->thread.joinable()) return;
  _impl->accepting.store(false);
  wake();
  _impl->quiesced.wait(false);
}

void transport::stop() {
  if (!_impl->thread.joinable()) return;
  stop_accepting();
  _impl->thread.request_stop();
  wake();
  _impl->thread.join();
}

void transport::close_token_sessions(std::vector<std::string> names) {
  if (names.empty()) return;
  {
    std::lock_guard lock(_impl->token_closes_mutex);
    for (auto& n : names) _impl->token_closes.push_back(std::move(n));
  }
  _impl->has_token_closes.store(true);
  wake();
}

transport_stats transport::snapshot() const {
  const auto& s = _impl->core.stats();
  auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  return {.delivered = get(s.delivered),
          .bad_frames = get(s.bad_frames),
          .rejected_events = get(s.rejected_events),
          .reaped = get(s.reaped),
          .slow_consumer_drops = get(s.slow_drops),
          .slow_consumer_disconnects = get(s.slow_disconnects),
          .connections = get(s.connections),
          .queued_events = get(s.queued_events),
          .slow_consumer_conflated = get(s.slow_conflated),
          .slow_consumer_spilled = get(s.slow_spilled),
          .spills = get(s.spills),
          .bytes_in = get(s.bytes_in),
          .bytes_out = get(s.bytes_out)};
}

}  // namespace switchboard::transport
