// libswitchboard_client: see <switchboard/client.h> for the contract.
//
// Operation: every `client` owns one I/O thread, which alone creates, receives on and closes the
// ZeroMQ DEALER socket. Other threads talk to it through `outbox` (a mutex-protected pending batch
// of encoded records, a deque of full batches and a small command queue) and wake it with an
// eventfd only when it is asleep in poll(), so a busy publisher costs no syscall per event. The I/O
// thread swaps the whole pending batch out and sends it as one ZeroMQ message: under load batches
// grow by themselves.
//
// Send asap: when the outbox and the I/O thread's unsent queue are empty (pending_bytes == 0, no
// command), the session is up (`direct_ok`, set only once a reconnect's SUBs are queued) and the
// publisher is not in a burst (see enqueue(): the previous record came more than `send_asap_gap`
// earlier, give or take asap_burst_allowance), the publishing thread sends its record on the socket
// itself, still holding `mu`, so nothing can be queued ahead of or behind it out of order. That
// saves the eventfd write and the I/O thread's wake-up. Every use of the socket object (send,
// recv, getsockopt, open, close) is made under `sock_mu`, by whichever thread holds it. A publisher
// holding `mu` only try_lock()s sock_mu (no lock-order cycle is possible): when the I/O thread
// holds it, or the send would block (EAGAIN: high-water mark), the record is queued the usual way,
// still first in line.
//
// Because other threads use the socket, the I/O thread cannot use zmq_poll() on it; it poll()s the
// socket's ZMQ_FD and the eventfd. ZMQ_FD is edge-triggered: it only signals that ZeroMQ has queued
// internal commands for the socket, which any socket operation (of any thread) may consume, and a
// message already waiting in the socket produces no new signal. So before sleeping the I/O thread
// (after flagging `io_sleeping`) checks ZMQ_EVENTS and does not sleep when POLLIN (or POLLOUT with
// unsent data) is set, and after each direct send the publisher checks ZMQ_EVENTS and wakes the
// I/O thread through the eventfd when POLLIN is set and it sleeps (the send may have eaten the
// edge). Both checks happen under `mu`-ordered io_sleeping, so one of the two always sees a message
// that arrived.
//
// Identifier spaces: ERR carries one `ref` for both PUB request ids and SUB ids, so the client keeps
// them disjoint: subscription ids count up from 1, acknowledged-publish request ids and flush nonces
// count up from 2^31. Fire-and-forget publishes use request id 0.
//
// Session loss (3 silent heartbeat intervals, or ERR `hello_required` after a broker restart): with
// reconnect on, the I/O thread drops the socket, backs off, opens a new DEALER, says HELLO, re-sends
// SUB for every live subscription (same ids), then the unsent batches, then a PING for every
// outstanding flush(). Acknowledged publishes that were waiting for a PUBACK fail with
// errc::unreachable ("session lost") because the client cannot know whether the broker saw them.
//
// Slow consumers: ERR `slow_consumer` means the broker dropped the subscription named by `ref` (or
// all of them when ref is 0). The client reports it through on_error and ends the subscription(s):
// callbacks stop, next() returns errc::rejected with broker_code "slow_consumer". It does not
// resubscribe, because silently resubscribing would hide the loss from the application.
#include <switchboard/client.h>
#include <switchboard/protocol.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <cstdio>
#include <type_traits>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>
#include <zmq.hpp>

namespace switchboard {
namespace detail {

// A subscription as the I/O thread sees it. `subscription::state` derives from it so that the
// public handle and the I/O thread share one object.
struct subscription_core {
  std::uint32_t id = 0;
  std::string pattern;  // immutable after construction
  std::string options;  // immutable after construction
  event_callback callback;  // immutable; empty = pull subscription
  std::size_t capacity = 0;

  // false once unsubscribed or ended: the I/O thread stops delivering. Written by any thread.
  std::atomic<bool> active{true};
  std::atomic<std::uint64_t> dropped{0};

  std::mutex mu;
  std::condition_variable cv;
  std::deque<message> queue;     // mu
  bool acked = false;            // mu: SUBACK seen (at least once)
  std::optional<error> ended;    // mu: why the subscription ended (also a rejected SUB)

  void end(error why) {
    active.store(false, std::memory_order_release);
    {
      std::lock_guard lk(mu);
      if (!ended) ended = std::move(why);
    }
    cv.notify_all();
  }
};

}  // namespace detail

namespace {

using steady = std::chrono::steady_clock;
namespace proto = switchboard::protocol;

constexpr std::uint32_t first_request_id = 0x8000'0000u;
// Outstanding ZeroMQ messages per direction. A sent message is one batch (up to max_batch_bytes),
// so the send side is kept smaller than the receive side to bound memory outside max_pending_bytes.
constexpr int send_hwm = 1000;
constexpr int recv_hwm = 10000;
// Messages read per loop turn before the I/O thread looks at its outbox again.
constexpr int recv_burst = 256;
// Send asap: the first few enqueues after a pause longer than send_asap_gap may still be sent by
// the calling thread (a paced publisher that oversleeps catches up with 2-3 back-to-back
// publishes); beyond that it is a burst and the I/O thread batches it.
constexpr unsigned asap_burst_allowance = 4;

// Concatenates strings and numbers (g++ 12's libstdc++ has no <format>).
template <typename T>
void cat_one(std::string& out, const T& v) {
  if constexpr (std::is_floating_point_v<T>) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", static_cast<double>(v));
    out += buf;
  } else if constexpr (std::is_arithmetic_v<T>) {
    out += std::to_string(v);
  } else {
    out += std::string_view(v);
  }
}
template <typename... Args>
std::string cat(const Args&... args) {
  std::string out;
  (cat_one(out, args), ...);
  return out;
}

error make_error(errc code, std::string message, std::string broker_code = {}) {
  return error{code, std::move(broker_code), std::move(message)};
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

std::string options_json(const subscribe_options& o) {
  if (o.slow_consumer.empty() && o.extra_json.empty()) return {};
  std::string out = "{";
  if (!o.slow_consumer.empty()) {
    out += "\"slow_consumer\":";
    append_json_string(out, o.slow_consumer);
  }
  if (!o.extra_json.empty()) {
    if (out.size() > 1) out += ',';
    out += o.extra_json;
  }
  out += '}';
  return out;
}

std::expected<void, error> check_name(std::string_view name, std::string_view what) {
  if (name.empty()) return std::unexpected(make_error(errc::invalid_argument, cat("empty ", what)));
  if (name.size() > proto::max_name_bytes) {
    return std::unexpected(make_error(
        errc::invalid_argument, cat(what, " is ", name.size(), " bytes, the limit is ", proto::max_name_bytes)));
  }
  return {};
}

// A waiter for an acknowledged publish: either a blocked publish_sync (sync=true: result + cv) or a
// publish_async callback.
struct ack_waiter {
  std::function<void(std::expected<publish_ack, error>)> done;  // async only
  std::optional<std::expected<publish_ack, error>> result;       // sync only, under client mutex
};

}  // namespace

struct subscription::state : detail::subscription_core {};

struct client::impl {
  explicit impl(client_options o) : opts(std::move(o)) {
    if (opts.heartbeat.count() <= 0) opts.heartbeat = std::chrono::milliseconds(2000);
    if (opts.max_batch_bytes == 0) opts.max_batch_bytes = 64 * 1024;
    if (opts.reconnect_min.count() <= 0) opts.reconnect_min = std::chrono::milliseconds(1);
    if (opts.reconnect_max < opts.reconnect_min) opts.reconnect_max = opts.reconnect_min;
  }
  ~impl() {
    if (wake_fd >= 0) ::close(wake_fd);
  }

  client_options opts;
  int wake_fd = -1;
  std::mutex join_mu;  // serialises concurrent close() calls around io.join()
  std::thread io;      // join_mu

  std::atomic<bool> is_connected{false};
  std::atomic<std::uint64_t> reconnect_count{0};
  std::atomic<std::uint32_t> next_sub_id{1};
  std::atomic<std::uint32_t> next_request_id{first_request_id};

  // ---- outbox: everything below is protected by `mu` ----
  enum class command_kind : std::uint8_t { sub, unsub };
  struct command {
    command_kind kind;
    std::shared_ptr<detail::subscription_core> sub;
  };
  std::mutex mu;
  std::condition_variable space_cv;  // publishers waiting for max_pending_bytes to drain
  std::condition_variable done_cv;   // sync waiters (publish_sync, flush, connect)
  std::string batch;                  // records not yet taken by the I/O thread
  std::deque<std::string> full;       // batches that reached max_batch_bytes
  std::vector<std::string> free_buffers;  // recycled batch buffers (keep their capacity)
  std::deque<command> commands;
  std::size_t pending_bytes = 0;      // batch + full + unsent (I/O thread's)
  std::size_t space_waiters = 0;
  bool io_sleeping = false;           // the I/O thread is (about to be) in poll()
  bool direct_ok = false;             // session up, its SUBs queued: publishers may send directly
  steady::time_point last_enqueue{};  // the previous enqueue (send-asap burst detection)
  unsigned asap_streak = 0;           // direct candidates since the last gap longer than send_asap_gap
  bool asap_after_queued = false;     // the previous enqueue was queued (a burst, or no session)
  std::string direct_buf;             // scratch for a directly sent record
  bool wake_sent = false;             // an eventfd write is outstanding
  bool stopping = false;              // close() called: refuse new work
  bool dead = false;                  // the I/O thread has finished
  std::unordered_map<std::uint32_t, std::shared_ptr<ack_waiter>> ack_waiters;
  std::unordered_map<std::uint64_t, bool> flush_waiters;  // nonce -> PONG seen
  // connect() handshake result
  bool handshake_done = false;
  std::optional<error> handshake_error;

  // ---- I/O thread only ----
  std::unordered_map<std::uint32_t, std::shared_ptr<detail::subscription_core>> subs;
  std::deque<std::string> unsent;  // taken from the outbox, not yet accepted by ZeroMQ
  std::vector<std::string> taken;  // scratch

  // Wakes the I/O thread if it sleeps. Call with `mu` held; returns whether to write the eventfd
  // (done after unlocking).
  bool need_wake() {
    if (io_sleeping && !wake_sent) {
      wake_sent = true;
      return true;
    }
    return false;
  }
  void wake() const {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(wake_fd, &one, sizeof one);
  }

  std::expected<std::uint32_t, error> publish_acked(std::string_view channel, std::string_view payload,
                                                    std::string_view key, const std::shared_ptr<ack_waiter>& w);

  // Appends one record to the outbox under the pending-bytes bound. `encode` writes the record.
  template <typename Encode>
  std::expected<void, error> enqueue(std::size_t bytes, Encode&& encode) {
    bool do_wake = false;
    {
      std::unique_lock lk(mu);
      if (stopping || dead) return std::unexpected(make_error(errc::closed, "client is closed"));
      if (opts.send_asap_gap.count() > 0) {
        // Burst detection. A record that finds the outbox busy is queued behind others: a burst,
        // and the clock is not even read (the hot path of a busy publisher). A record that finds
        // it empty goes directly when it comes more than send_asap_gap after the previous such
        // record (or is one of the first asap_burst_allowance after that pause), and was not
        // preceded by a queued record (whose time is unknown: it is queued too, and timed).
        const bool empty = direct_ok && pending_bytes == 0 && batch.empty() && full.empty() && commands.empty();
        bool direct = false;
        if (!empty) {
          asap_after_queued = true;
        } else {
          const steady::time_point now = steady::now();
          if (asap_after_queued) {
            asap_after_queued = false;
            asap_streak = asap_burst_allowance;
          } else if (now - last_enqueue > opts.send_asap_gap) {
            asap_streak = 0;
          }
          last_enqueue = now;
          direct = asap_streak < asap_burst_allowance;
          if (direct) ++asap_streak;
        }
        if (direct) {
          direct_buf.clear();
          encode(direct_buf);
          const bool sent = send_direct(direct_buf, do_wake);
          if (!sent) {
            // Would block, or the I/O thread is using the socket: queue it. The outbox is empty and
            // `mu` was held throughout, so it is still first in line.
            batch += direct_buf;
            asap_after_queued = true;
            pending_bytes += bytes;
            if (need_wake()) do_wake = true;
          }
          if (direct_buf.capacity() > opts.max_batch_bytes) direct_buf = std::string();
          lk.unlock();
          if (do_wake) wake();
          return {};
        }
      }
      if (pending_bytes > 0 && pending_bytes + bytes > opts.max_pending_bytes) {
        ++space_waiters;
        const bool ok = space_cv.wait_for(lk, opts.send_timeout, [&] {
          return stopping || dead || pending_bytes == 0 || pending_bytes + bytes <= opts.max_pending_bytes;
        });
        --space_waiters;
        if (stopping || dead) return std::unexpected(make_error(errc::closed, "client is closed"));
        if (!ok) {
          return std::unexpected(make_error(
              errc::timeout, cat(pending_bytes, " bytes still waiting to be sent after ", opts.send_timeout.count(), " ms")));
        }
      }
      if (!batch.empty() && batch.size() + bytes > opts.max_batch_bytes) {
        full.push_back(std::move(batch));
        if (!free_buffers.empty()) {
          batch = std::move(free_buffers.back());
          free_buffers.pop_back();
        } else {
          batch = std::string();
          batch.reserve(opts.max_batch_bytes);
        }
      }
      encode(batch);
      pending_bytes += bytes;
      do_wake = need_wake();
    }
    if (do_wake) wake();
    return {};
  }

  // Sends one record from a publishing thread. Call with `mu` held (direct_ok and an empty outbox
  // checked). False when the socket is busy or would block: the caller queues the record. Sets
  // `do_wake` when the I/O thread must be woken to receive.
  bool send_direct(const std::string& rec, bool& do_wake) {
    std::unique_lock sl(sock_mu, std::try_to_lock);
    if (!sl.owns_lock() || !sock) return false;
    int ev = 0;
    try {
      if (!sock->send(zmq::buffer(rec), zmq::send_flags::dontwait)) return false;
      // The send may have processed the socket's pending ZeroMQ commands and so consumed the
      // ZMQ_FD edge the sleeping I/O thread waits for: look for a waiting message ourselves.
      ev = sock->get(zmq::sockopt::events);
    } catch (const zmq::error_t&) {
      ev = ZMQ_POLLIN;  // let the I/O thread find out
    }
    last_send_ns.store(steady::now().time_since_epoch().count(), std::memory_order_relaxed);
    if (ev & ZMQ_POLLIN) do_wake = need_wake();
    return true;
  }

  void push_command(command c) {
    bool do_wake = false;
    {
      std::lock_guard lk(mu);
      commands.push_back(std::move(c));
      do_wake = need_wake();
    }
    if (do_wake) wake();
  }

  void report(const error& e) {
    if (!opts.on_error) return;
    try {
      opts.on_error(e);
    } catch (...) {
    }
  }

  // ------------------------------------------------------------------ I/O thread
  enum class phase : std::uint8_t { handshake, connected, backoff };

  zmq::context_t ctx{1};
  // The socket object: created, reset and closed by the I/O thread only, every use under sock_mu
  // (the I/O thread may test `sock` without it, being its only writer).
  std::mutex sock_mu;
  std::optional<zmq::socket_t> sock;
  int sock_fd = -1;  // its ZMQ_FD; I/O thread only
  phase ph = phase::handshake;
  bool first_session = true;
  steady::time_point deadline{};      // handshake: give up; backoff: retry
  std::chrono::milliseconds backoff{0};
  steady::time_point last_recv{};
  std::atomic<steady::rep> last_send_ns{0};  // written by whichever thread sent

  steady::time_point last_send() const {
    return steady::time_point(steady::duration(last_send_ns.load(std::memory_order_relaxed)));
  }

  bool open_socket() {
    try {
      std::lock_guard sl(sock_mu);
      sock.emplace(ctx, zmq::socket_type::dealer);
      sock->set(zmq::sockopt::linger, 0);
      sock->set(zmq::sockopt::sndhwm, send_hwm);
      sock->set(zmq::sockopt::rcvhwm, recv_hwm);
      sock->set(zmq::sockopt::immediate, 0);
      sock->connect(opts.url);
      sock_fd = static_cast<int>(sock->get(zmq::sockopt::fd));
      std::string hello;
      proto::frame_writer(hello).write(proto::hello{
          proto::version, static_cast<std::uint32_t>(opts.heartbeat.count()), opts.token});
      (void)sock->send(zmq::buffer(hello), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      {
        std::lock_guard sl(sock_mu);
        sock.reset();
        sock_fd = -1;
      }
      const error err = make_error(errc::invalid_argument, cat("cannot connect to ", opts.url, ": ", e.what()));
      if (first_session) finish_handshake(err);
      return false;
    }
    ph = phase::handshake;
    deadline = steady::now() + opts.connect_timeout;
    last_recv = steady::now();
    last_send_ns.store(last_recv.time_since_epoch().count(), std::memory_order_relaxed);
    return true;
  }

  void close_socket() {
    {
      std::lock_guard lk(mu);
      direct_ok = false;
    }
    if (sock) {
      std::lock_guard sl(sock_mu);
      sock->close();
      sock.reset();
      sock_fd = -1;
    }
    is_connected.store(false, std::memory_order_release);
  }

  // ZMQ_EVENTS of the socket (0 without one). Also processes ZeroMQ's pending commands.
  int socket_events() {
    std::lock_guard sl(sock_mu);
    if (!sock) return 0;
    try {
      return sock->get(zmq::sockopt::events);
    } catch (const zmq::error_t&) {
      return 0;
    }
  }

  void finish_handshake(std::optional<error> err) {
    {
      std::lock_guard lk(mu);
      handshake_done = true;
      handshake_error = std::move(err);
    }
    done_cv.notify_all();
  }

  // Sends one encoded buffer now; false when ZeroMQ would block (the caller keeps it).
  bool send_now(const std::string& bytes) {
    {
      std::lock_guard sl(sock_mu);
      if (!sock) return false;
      try {
        if (!sock->send(zmq::buffer(bytes), zmq::send_flags::dontwait)) return false;
      } catch (const zmq::error_t&) {
        return false;
      }
    }
    last_send_ns.store(steady::now().time_since_epoch().count(), std::memory_order_relaxed);
    return true;
  }

  void on_welcome() {
    const bool reconnected = !first_session;
    ph = phase::connected;
    backoff = std::chrono::milliseconds(0);
    is_connected.store(true, std::memory_order_release);
    if (!reconnected) {
      // Before connect() returns (finish_handshake): a close() right after it must see the
      // session up and send its PING barrier.
      std::lock_guard lk(mu);
      direct_ok = true;
    }
    if (first_session) {
      first_session = false;
      finish_handshake(std::nullopt);
    } else {
      reconnect_count.fetch_add(1, std::memory_order_relaxed);
    }
    if (!reconnected) return;
    // Re-send SUB for every live subscription, before any unsent publish.
    std::string out;
    proto::frame_writer w(out);
    for (auto& [id, s] : subs) {
      if (s->active.load(std::memory_order_acquire)) w.write(proto::subscribe{id, s->pattern, s->options});
    }
    if (!out.empty()) {
      std::lock_guard lk(mu);
      pending_bytes += out.size();
      unsent.push_front(std::move(out));
    }
    // flush() waiters whose PING may have died with the old socket get a new one behind everything.
    std::string pings;
    {
      std::lock_guard lk(mu);
      proto::frame_writer pw(pings);
      for (auto& [nonce, seen] : flush_waiters) {
        if (!seen) pw.write(proto::ping{nonce});
      }
    }
    std::lock_guard lk(mu);
    if (!pings.empty()) {
      // Behind every batch still in the outbox too: append to the outbox.
      batch += pings;
      pending_bytes += pings.size();
    }
    // Only now, with the SUBs ahead of them, may publishers send directly again.
    direct_ok = true;
  }

  void session_lost(std::string why) {
    close_socket();
    report(make_error(errc::unreachable, cat("session lost: ", why)));
    // Waiters for PUBACKs cannot know whether the broker saw their event.
    std::vector<std::shared_ptr<ack_waiter>> failed;
    {
      std::lock_guard lk(mu);
      for (auto& [id, w] : ack_waiters) {
        if (w->done) {
          failed.push_back(w);
        } else {
          w->result = std::unexpected(make_error(errc::unreachable, "session lost before the broker acknowledged"));
        }
      }
      ack_waiters.clear();
    }
    done_cv.notify_all();
    for (auto& w : failed) {
      try {
        w->done(std::unexpected(make_error(errc::unreachable, "session lost before the broker acknowledged")));
      } catch (...) {
      }
    }
    if (!opts.reconnect) {
      stop_everything(make_error(errc::closed, cat("session lost (", why, "), reconnect is off")));
      return;
    }
    backoff = backoff.count() == 0 ? opts.reconnect_min : std::min(backoff * 2, opts.reconnect_max);
    ph = phase::backoff;
    deadline = steady::now() + backoff;
  }

  bool stop_requested = false;  // I/O thread copy of `stopping`
  bool finished = false;

  // Ends the session for good: the loop exits after this.
  void stop_everything(const error& why) {
    finished = true;
    close_socket();
    std::vector<std::shared_ptr<ack_waiter>> async_waiters;
    {
      std::lock_guard lk(mu);
      dead = true;
      for (auto& [id, w] : ack_waiters) {
        if (w->done) {
          async_waiters.push_back(w);
        } else {
          w->result = std::unexpected(why);
        }
      }
      ack_waiters.clear();
      commands.clear();
    }
    done_cv.notify_all();
    space_cv.notify_all();
    for (auto& w : async_waiters) {
      try {
        w->done(std::unexpected(why));
      } catch (...) {
      }
    }
    for (auto& [id, s] : subs) s->end(why);
    subs.clear();
  }

  void deliver(const proto::event& ev) {
    auto it = subs.find(ev.sub_id);
    if (it == subs.end()) return;
    detail::subscription_core& s = *it->second;
    if (!s.active.load(std::memory_order_acquire)) return;
    if (s.callback) {
      const event_view view{ev.sub_id, ev.channel, ev.epoch, ev.seq, ev.time_ns, ev.payload};
      try {
        s.callback(view);
      } catch (const std::exception& e) {
        report(make_error(errc::invalid_argument, cat("subscription ", ev.sub_id, " callback threw: ", e.what())));
      } catch (...) {
        report(make_error(errc::invalid_argument, cat("subscription ", ev.sub_id, " callback threw")));
      }
      return;
    }
    {
      std::lock_guard lk(s.mu);
      if (s.capacity > 0 && s.queue.size() >= s.capacity) {
        s.queue.pop_front();
        s.dropped.fetch_add(1, std::memory_order_relaxed);
      }
      s.queue.push_back(message{ev.sub_id, std::string(ev.channel), ev.epoch, ev.seq, ev.time_ns, std::string(ev.payload)});
    }
    s.cv.notify_one();
  }

  void complete_ack(std::uint32_t ref, std::expected<publish_ack, error> result) {
    std::shared_ptr<ack_waiter> w;
    {
      std::lock_guard lk(mu);
      auto it = ack_waiters.find(ref);
      if (it == ack_waiters.end()) return;
      w = std::move(it->second);
      ack_waiters.erase(it);
      if (!w->done) w->result = std::move(result);
    }
    if (w->done) {
      try {
        w->done(std::move(result));
      } catch (...) {
      }
    } else {
      done_cv.notify_all();
    }
  }

  void on_err(const proto::error& e) {
    error err = make_error(errc::rejected, std::string(e.message), std::string(e.code));
    if (ph == phase::handshake) {
      if (first_session) {
        finish_handshake(err);
        stop_everything(err);
      } else {
        report(err);
        session_lost(cat("broker refused HELLO: ", e.code, " ", e.message));
      }
      return;
    }
    if (e.code == "hello_required") {
      session_lost("the broker does not know this session (restarted?)");
      return;
    }
    if (e.ref >= first_request_id) {
      complete_ack(e.ref, std::unexpected(err));
      return;
    }
    if (e.code == "slow_consumer") {
      report(err);
      if (e.ref != 0 && subs.contains(e.ref)) {
        subs[e.ref]->end(err);
        subs.erase(e.ref);
      } else {
        for (auto& [id, s] : subs) s->end(err);
        subs.clear();
      }
      return;
    }
    if (e.ref != 0) {
      auto it = subs.find(e.ref);
      if (it != subs.end()) {
        bool was_acked = false;
        {
          std::lock_guard lk(it->second->mu);
          was_acked = it->second->acked;
        }
        it->second->end(err);  // wakes a subscribe() waiting for SUBACK
        subs.erase(it);
        if (!was_acked) return;  // subscribe() returns it
      }
    }
    report(err);
  }

  void handle_message(std::string_view bytes) {
    last_recv = steady::now();
    proto::frame_reader reader(bytes);
    for (;;) {
      auto next = reader.next();
      if (!next) {
        report(make_error(errc::protocol, cat("undecodable message from broker: ", next.error().message)));
        return;
      }
      if (!*next) return;
      const proto::frame& f = **next;
      if (const auto* ev = std::get_if<proto::event>(&f)) {
        if (ph == phase::connected) deliver(*ev);
      } else if (const auto* w = std::get_if<proto::welcome>(&f)) {
        (void)w;
        if (ph == phase::handshake) on_welcome();
      } else if (const auto* a = std::get_if<proto::puback>(&f)) {
        complete_ack(a->request_id, publish_ack{a->epoch, a->seq});
      } else if (const auto* e = std::get_if<proto::error>(&f)) {
        on_err(*e);
        if (ph != phase::connected) return;  // the socket may be gone
      } else if (const auto* p = std::get_if<proto::pong>(&f)) {
        if (p->nonce != 0) {
          bool notify = false;
          {
            std::lock_guard lk(mu);
            auto it = flush_waiters.find(p->nonce);
            if (it != flush_waiters.end()) it->second = notify = true;
          }
          if (notify) done_cv.notify_all();
        }
      } else if (const auto* sa = std::get_if<proto::suback>(&f)) {
        auto it = subs.find(sa->sub_id);
        if (it != subs.end()) {
          {
            std::lock_guard lk(it->second->mu);
            it->second->acked = true;
          }
          it->second->cv.notify_all();
        }
      } else if (const auto* n = std::get_if<proto::notice>(&f)) {
        report(make_error(errc::rejected, cat("notice for subscription ", n->sub_id, ": ", n->detail),
                          std::string(n->kind)));
      }
    }
  }

  // Takes the outbox (commands and batches) into I/O-thread state.
  // Commands are encoded under the same lock, so there is no moment when a command has left the
  // outbox but is not yet counted in pending_bytes (a direct send would overtake it).
  void take_outbox() {
    std::deque<command> cmds;  // destroyed after `mu` is released: it may hold a subscription's last reference
    std::lock_guard lk(mu);
    {
      if (ph == phase::connected) {
        for (auto& b : full) unsent.push_back(std::move(b));
        full.clear();
        if (!batch.empty()) {
          std::string fresh;
          if (!free_buffers.empty()) {
            fresh = std::move(free_buffers.back());
            free_buffers.pop_back();
          }
          unsent.push_back(std::exchange(batch, std::move(fresh)));
        }
      }
    }
    if (commands.empty()) return;
    cmds.swap(commands);
    std::string out;
    proto::frame_writer w(out);
    for (auto& c : cmds) {
      if (c.kind == command_kind::sub) {
        if (!c.sub->active.load(std::memory_order_acquire)) continue;
        subs[c.sub->id] = c.sub;
        w.write(proto::subscribe{c.sub->id, c.sub->pattern, c.sub->options});
      } else {
        if (subs.erase(c.sub->id) > 0) w.write(proto::unsubscribe{c.sub->id});
      }
    }
    // SUB/UNSUB go out only on a live session; a reconnect re-sends every live SUB anyway. They
    // go behind what was published (and acknowledged) before them, so `ack(ev); unsubscribe()`
    // reaches the broker in that order.
    if (!out.empty() && ph == phase::connected) {
      pending_bytes += out.size();
      unsent.push_back(std::move(out));
    }
  }

  void send_unsent() {
    if (ph != phase::connected) return;
    std::size_t sent_bytes = 0;
    std::vector<std::string> recycled;
    while (!unsent.empty()) {
      if (!send_now(unsent.front())) break;
      sent_bytes += unsent.front().size();
      std::string buf = std::move(unsent.front());
      unsent.pop_front();
      if (buf.capacity() <= 2 * opts.max_batch_bytes) {
        buf.clear();
        recycled.push_back(std::move(buf));
      }
    }
    if (sent_bytes == 0) return;
    bool notify = false;
    {
      std::lock_guard lk(mu);
      pending_bytes -= std::min(pending_bytes, sent_bytes);
      for (auto& b : recycled) {
        if (free_buffers.size() < 8) free_buffers.push_back(std::move(b));
      }
      notify = space_waiters > 0;
    }
    if (notify) space_cv.notify_all();
  }

  void heartbeat(steady::time_point now) {
    if (ph != phase::connected) return;
    if (now - last_recv > 3 * opts.heartbeat) {
      session_lost(cat("nothing received for ", 3 * opts.heartbeat.count(), " ms"));
      return;
    }
    if (now - last_send() >= opts.heartbeat && unsent.empty()) {
      const std::string ping = proto::encode(proto::ping{0});
      (void)send_now(ping);
    }
  }

  bool outbox_empty() {
    std::lock_guard lk(mu);
    return batch.empty() && full.empty() && commands.empty();
  }

  void run() {
    if (!open_socket()) {
      stop_everything(make_error(errc::closed, "could not open socket"));
      return;
    }
    steady::time_point close_deadline{};
    while (!finished) {
      auto now = steady::now();
      if (ph == phase::handshake && now >= deadline) {
        if (first_session) {
          const error err = make_error(errc::unreachable,
                                       cat("no answer from broker at ", opts.url, " within ", opts.connect_timeout.count(), " ms"));
          finish_handshake(err);
          stop_everything(err);
          break;
        }
        session_lost(cat("no WELCOME within ", opts.connect_timeout.count(), " ms"));
      }
      if (ph == phase::backoff && now >= deadline) {
        if (!open_socket()) continue;
      }
      if (!stop_requested) {
        std::lock_guard lk(mu);
        if (stopping) {
          stop_requested = true;
          close_deadline = now + std::chrono::seconds(1);
        }
      }
      take_outbox();
      send_unsent();
      heartbeat(steady::now());
      if (finished) break;
      if (stop_requested) {
        const bool drained = ph == phase::connected && unsent.empty() && outbox_empty();
        if (drained || steady::now() >= close_deadline || ph != phase::connected) {
          if (drained && sock) {
            // Say BYE so that the broker ends the session at once (PROTOCOL.md §4.13), then let
            // ZeroMQ push what it holds to the wire within what is left of the 1 s budget.
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(close_deadline - steady::now());
            std::lock_guard sl(sock_mu);
            std::string bye;
            proto::frame_writer(bye).write(proto::bye{});
            try {
              (void)sock->send(zmq::buffer(bye), zmq::send_flags::dontwait);
            } catch (const zmq::error_t&) {
              // Not sent: the broker ends the session when the connection closes instead.
            }
            sock->set(zmq::sockopt::linger, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
          }
          stop_everything(make_error(errc::closed, "client closed"));
          break;
        }
      }

      // Poll the socket's ZMQ_FD (edge-triggered, see the top of this file) and the wake eventfd.
      pollfd fds[2] = {};
      nfds_t n = 0;
      if (sock) {
        fds[n].fd = sock_fd;
        fds[n].events = POLLIN;
        ++n;
      }
      fds[n].fd = wake_fd;
      fds[n].events = POLLIN;
      const nfds_t wake_index = n++;

      now = steady::now();
      auto next_due = now + opts.heartbeat;
      if (ph == phase::connected) {
        next_due = std::min({last_send() + opts.heartbeat, last_recv + 3 * opts.heartbeat + std::chrono::milliseconds(1)});
      } else {
        next_due = deadline;
      }
      if (stop_requested) next_due = std::min(next_due, now + std::chrono::milliseconds(5));
      long timeout_ms = std::max<long>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(next_due - now).count() + 1);
      {
        std::lock_guard lk(mu);
        const bool work = !commands.empty() || (ph == phase::connected && (!batch.empty() || !full.empty()));
        if (work) {
          timeout_ms = 0;
        } else {
          io_sleeping = true;
        }
      }
      if (timeout_ms != 0 && sock) {
        // io_sleeping is set: from here on a publisher that sends directly re-checks for input and
        // wakes us. What ZeroMQ already holds produces no new edge on ZMQ_FD: look now.
        const int ev = socket_events();
        if ((ev & ZMQ_POLLIN) || ((ev & ZMQ_POLLOUT) && ph == phase::connected && !unsent.empty())) timeout_ms = 0;
      }
      const int rc = ::poll(fds, n, static_cast<int>(std::min<long>(timeout_ms, 1L << 30)));
      {
        std::lock_guard lk(mu);
        io_sleeping = false;
      }
      if (rc < 0) continue;  // EINTR
      if (fds[wake_index].revents & POLLIN) {
        std::uint64_t v = 0;
        [[maybe_unused]] auto r = ::read(wake_fd, &v, sizeof v);
        std::lock_guard lk(mu);
        wake_sent = false;
      }
      // Read whatever is there, whatever poll said (the ZeroMQ fd is edge-triggered). The socket
      // lock is not held while a message is handled (callbacks, session loss).
      for (int i = 0; i < recv_burst && sock; ++i) {
        zmq::message_t msg;
        {
          std::lock_guard sl(sock_mu);
          if (!sock) break;
          zmq::recv_result_t got;
          try {
            got = sock->recv(msg, zmq::recv_flags::dontwait);
          } catch (const zmq::error_t&) {
            break;
          }
          if (!got) break;
        }
        handle_message(std::string_view(msg.data<char>(), msg.size()));
        if (finished) break;
      }
    }
    close_socket();
    ctx.close();
  }
};

// ---------------------------------------------------------------------- subscription

subscription::subscription(std::shared_ptr<client> owner, std::shared_ptr<state> s, std::uint32_t id)
    : _owner(std::move(owner)), _state(std::move(s)), _id(id) {}

subscription::~subscription() { unsubscribe(); }

std::expected<std::optional<message>, error> subscription::next(std::chrono::milliseconds timeout) {
  if (_state->callback) {
    return std::unexpected(make_error(errc::invalid_argument, "next() on a subscription with a callback"));
  }
  std::unique_lock lk(_state->mu);
  _state->cv.wait_for(lk, timeout, [&] { return !_state->queue.empty() || _state->ended.has_value(); });
  if (!_state->queue.empty()) {
    message m = std::move(_state->queue.front());
    _state->queue.pop_front();
    return m;
  }
  if (_state->ended) return std::unexpected(*_state->ended);
  return std::nullopt;
}

std::uint64_t subscription::dropped() const noexcept { return _state->dropped.load(std::memory_order_relaxed); }

void subscription::unsubscribe() {
  if (!_state->active.exchange(false, std::memory_order_acq_rel)) return;
  _state->end(make_error(errc::closed, "unsubscribed"));
  if (_owner) _owner->_impl->push_command({client::impl::command_kind::unsub, _state});
}

// ---------------------------------------------------------------------- client

client::client(std::unique_ptr<impl> p) : _impl(std::move(p)) {}

client::~client() { close(); }

std::expected<std::shared_ptr<client>, error> client::connect(client_options options) {
  auto p = std::make_unique<impl>(std::move(options));
  p->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (p->wake_fd < 0) return std::unexpected(make_error(errc::protocol, "eventfd failed"));
  impl* raw = p.get();
  std::shared_ptr<client> c(new client(std::move(p)));
  raw->io = std::thread([raw] { raw->run(); });
  std::unique_lock lk(raw->mu);
  raw->done_cv.wait(lk, [&] { return raw->handshake_done; });
  if (raw->handshake_error) {
    error e = *raw->handshake_error;
    lk.unlock();
    c->close();
    return std::unexpected(std::move(e));
  }
  return c;
}

std::expected<void, error> client::publish(std::string_view channel, std::string_view payload) {
  if (auto ok = check_name(channel, "channel"); !ok) return ok;
  const std::size_t bytes = proto::frame_writer::publish_bytes(channel.size(), 0, payload.size());
  if (bytes - proto::header_bytes > proto::max_body_bytes) {
    return std::unexpected(make_error(errc::invalid_argument, "payload too large"));
  }
  return _impl->enqueue(bytes, [&](std::string& out) {
    proto::frame_writer(out).write(proto::publish{0, false, channel, {}, payload});
  });
}

// Registers `w` under a fresh request id and queues the PUB asking for an ack. On failure the
// waiter is removed again and the error returned.
std::expected<std::uint32_t, error> client::impl::publish_acked(std::string_view channel, std::string_view payload,
                                                               std::string_view key,
                                                               const std::shared_ptr<ack_waiter>& w) {
  std::uint32_t id = next_request_id.fetch_add(1, std::memory_order_relaxed);
  if (id < first_request_id) id = next_request_id.exchange(first_request_id + 1);
  {
    std::lock_guard lk(mu);
    ack_waiters[id] = w;
  }
  const std::size_t bytes = proto::frame_writer::publish_bytes(channel.size(), key.size(), payload.size());
  auto queued = enqueue(bytes, [&](std::string& out) {
    proto::frame_writer(out).write(proto::publish{id, true, channel, key, payload});
  });
  if (!queued) {
    std::lock_guard lk(mu);
    ack_waiters.erase(id);
    return std::unexpected(queued.error());
  }
  return id;
}

std::expected<publish_ack, error> client::publish_sync(std::string_view channel, std::string_view payload,
                                                       std::chrono::milliseconds timeout,
                                                       std::string_view idempotency_key) {
  if (auto ok = check_name(channel, "channel"); !ok) return std::unexpected(ok.error());
  auto w = std::make_shared<ack_waiter>();
  auto id = _impl->publish_acked(channel, payload, idempotency_key, w);
  if (!id) return std::unexpected(id.error());
  std::unique_lock lk(_impl->mu);
  const bool done = _impl->done_cv.wait_for(lk, timeout, [&] { return w->result.has_value(); });
  if (!done) {
    _impl->ack_waiters.erase(*id);
    return std::unexpected(make_error(errc::timeout, cat("no PUBACK within ", timeout.count(), " ms")));
  }
  return std::move(*w->result);
}

std::expected<void, error> client::publish_async(std::string_view channel, std::string_view payload,
                                                 std::function<void(std::expected<publish_ack, error>)> done,
                                                 std::string_view idempotency_key) {
  if (auto ok = check_name(channel, "channel"); !ok) return ok;
  if (!done) return std::unexpected(make_error(errc::invalid_argument, "publish_async needs a callback"));
  auto w = std::make_shared<ack_waiter>();
  w->done = std::move(done);
  auto id = _impl->publish_acked(channel, payload, idempotency_key, w);
  if (!id) return std::unexpected(id.error());
  return {};
}

std::expected<void, error> client::flush(std::chrono::milliseconds timeout) {
  const std::uint64_t nonce = _impl->next_request_id.fetch_add(1, std::memory_order_relaxed) | (1ull << 40);
  {
    std::lock_guard lk(_impl->mu);
    _impl->flush_waiters[nonce] = false;
  }
  auto queued = _impl->enqueue(proto::header_bytes + 8,
                               [&](std::string& out) { proto::frame_writer(out).write(proto::ping{nonce}); });
  std::unique_lock lk(_impl->mu);
  if (!queued) {
    _impl->flush_waiters.erase(nonce);
    return std::unexpected(queued.error());
  }
  const bool done = _impl->done_cv.wait_for(lk, timeout, [&] {
    return _impl->flush_waiters[nonce] || _impl->dead;
  });
  const bool seen = _impl->flush_waiters[nonce];
  _impl->flush_waiters.erase(nonce);
  if (seen) return {};
  if (done) return std::unexpected(make_error(errc::closed, "client closed before flush completed"));
  return std::unexpected(make_error(errc::timeout, cat("flush not confirmed within ", timeout.count(), " ms")));
}

std::expected<std::unique_ptr<subscription>, error> client::subscribe(std::string_view pattern, event_callback callback,
                                                                      subscribe_options options,
                                                                      std::chrono::milliseconds timeout) {
  if (auto ok = check_name(pattern, "pattern"); !ok) return std::unexpected(ok.error());
  auto st = std::make_shared<subscription::state>();
  st->id = _impl->next_sub_id.fetch_add(1, std::memory_order_relaxed);
  if (st->id >= first_request_id) return std::unexpected(make_error(errc::invalid_argument, "subscription ids exhausted"));
  st->pattern = std::string(pattern);
  st->options = options_json(options);
  st->callback = std::move(callback);
  st->capacity = _impl->opts.pull_queue;
  {
    std::lock_guard lk(_impl->mu);
    if (_impl->stopping || _impl->dead) return std::unexpected(make_error(errc::closed, "client is closed"));
  }
  _impl->push_command({impl::command_kind::sub, st});
  std::unique_lock lk(st->mu);
  const bool done = st->cv.wait_for(lk, timeout, [&] { return st->acked || st->ended.has_value(); });
  if (st->ended) return std::unexpected(*st->ended);
  if (!done) {
    lk.unlock();
    st->active.store(false);
    _impl->push_command({impl::command_kind::unsub, st});
    return std::unexpected(make_error(errc::timeout, cat("no SUBACK for ", pattern, " within ", timeout.count(), " ms")));
  }
  lk.unlock();
  const std::uint32_t id = st->id;
  return std::unique_ptr<subscription>(new subscription(shared_from_this(), std::move(st), id));
}

void client::ack(const event_view& ev) {
  const proto::ack a{ev.sub_id, ev.epoch, ev.seq};
  (void)_impl->enqueue(proto::header_bytes + 24, [&](std::string& out) { proto::frame_writer(out).write(a); });
}

void client::ack(const message& ev) {
  const proto::ack a{ev.sub_id, ev.epoch, ev.seq};
  (void)_impl->enqueue(proto::header_bytes + 24, [&](std::string& out) { proto::frame_writer(out).write(a); });
}

std::uint64_t client::reconnects() const noexcept { return _impl->reconnect_count.load(std::memory_order_relaxed); }

bool client::connected() const noexcept { return _impl->is_connected.load(std::memory_order_acquire); }

void client::close() {
  // ACKs have no answer, and records still in flight when the connection closes may be discarded
  // by the broker: while the session is up, one bounded PING/PONG round trip first, so everything
  // sent before close() is applied (PROTOCOL.md §4.13). Not from the I/O thread (a callback).
  bool session_up = false;
  {
    std::lock_guard lk(_impl->mu);
    session_up = _impl->direct_ok && !_impl->stopping && !_impl->dead;
  }
  if (session_up && _impl->io.get_id() != std::this_thread::get_id()) (void)flush(std::chrono::milliseconds(1000));
  bool do_wake = false;
  {
    std::lock_guard lk(_impl->mu);
    _impl->stopping = true;
    do_wake = true;
  }
  _impl->space_cv.notify_all();
  if (do_wake) _impl->wake();
  std::lock_guard join_lk(_impl->join_mu);
  if (!_impl->io.joinable()) return;
  if (_impl->io.get_id() == std::this_thread::get_id()) {
    _impl->io.detach();  // close() from a callback: the loop ends on its own
    return;
  }
  _impl->io.join();
}

}  // namespace switchboard
