// libswitchboard_client: the C++ client of the switchboard broker.
//
// A `client` holds one ZeroMQ DEALER connection to the broker and one background I/O thread that
// receives on it. Publishing normally appends the event to an outgoing batch and returns; the I/O
// thread sends the batch as one ZeroMQ message as soon as it is free (under load many events ride
// in one message). When the client is idle - connected, nothing queued, and the previous publish
// was more than `client_options::send_asap_gap` ago - the publishing thread hands the event to
// ZeroMQ itself instead, which saves waking the I/O thread (lower latency at moderate rates); the
// next publish of a burst is batched again. Either way events of one thread keep their order.
// Subscriptions deliver either to a callback (run on the I/O thread) or to a per-subscription
// queue read with `subscription::next()`.
//
// When the broker goes away (no traffic for three heartbeat intervals, or it answers
// `hello_required` because it restarted), the client reconnects with exponential backoff, says
// HELLO again and re-subscribes every live subscription. Events published while disconnected are
// kept in the outgoing buffer (bounded by `max_pending_bytes`).
//
// Slow consumers: when the broker answers ERR `slow_consumer` it has dropped the subscription (or,
// with ERR ref 0, all of this connection's subscriptions). The client reports it through
// options.on_error and ends the affected subscriptions: their callbacks stop and next() returns
// errc::rejected with broker_code "slow_consumer". It does not resubscribe on its own, even with
// reconnect on, because that would hide the lost events; resubscribe explicitly if that is wanted.
// Acknowledged publishes still waiting for their PUBACK when a session is lost fail with
// errc::unreachable (the broker may or may not have seen them).
//
// Thread-safety: every member function of `client` and `subscription` may be called from any
// thread, concurrently. Callbacks run on the client's I/O thread, one at a time; a callback must
// not block for long and must not call `close()` or destroy the client.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace switchboard {

enum class errc : std::uint8_t {
  unreachable,       // could not reach the broker within connect_timeout
  timeout,           // the operation did not complete in time
  closed,            // the client was closed
  invalid_argument,  // rejected locally before anything was sent (e.g. empty channel name)
  rejected,          // the broker answered ERR; `broker_code` says why
  protocol,          // the broker sent something this client cannot decode
};

struct error {
  errc code = errc::protocol;
  std::string broker_code;  // the broker's stable ERR code when code == errc::rejected
  std::string message;      // readable, one line
};

// Connection options. Every default is documented with its trade-off.
struct client_options {
  // Broker endpoint (ZeroMQ syntax).
  std::string url = "tcp://127.0.0.1:7400";
  // Token sent in HELLO; empty = anonymous (accepted only by a broker without auth).
  std::string token;
  // connect() fails with errc::unreachable when no WELCOME arrives within this time.
  std::chrono::milliseconds connect_timeout{5000};
  // PING interval when idle. The broker drops a client silent for 3 intervals, and the client
  // reconnects when the broker is silent for 3 intervals. Shorter = faster failure detection.
  std::chrono::milliseconds heartbeat{2000};
  // Reconnect automatically (backoff from reconnect_min doubling up to reconnect_max).
  bool reconnect = true;
  std::chrono::milliseconds reconnect_min{50};
  std::chrono::milliseconds reconnect_max{2000};
  // A batch is sent once it holds this many bytes even if the I/O thread is busy. Larger batches
  // mean higher throughput and more memory per in-flight message.
  std::size_t max_batch_bytes = 64 * 1024;
  // publish() waits (up to send_timeout) when this many bytes are waiting to be sent; bounds the
  // client's memory when the broker or network is slower than the publisher.
  std::size_t max_pending_bytes = 32 * 1024 * 1024;
  std::chrono::milliseconds send_timeout{10000};
  // "Send asap": a publish (or ack/flush) made when the client is connected, nothing is queued
  // ahead of it and the previous one on this client was more than this long ago is sent by the
  // calling thread itself (one ZeroMQ send plus one ZMQ_EVENTS check, a few microseconds, with the
  // client's mutex held) instead of being handed to the I/O thread; this saves one thread wake-up
  // per event at moderate rates. The first few (4) publishes after such a pause may go the same
  // way (a paced publisher catching up); publishes closer together than this beyond that, or that
  // find others queued, count as a burst and are batched by the I/O thread as usual, so throughput
  // is not affected. Zero = never send from the calling thread (the previous behaviour).
  std::chrono::microseconds send_asap_gap{20};
  // Pull subscriptions buffer at most this many events; beyond that the oldest is dropped and
  // counted in `subscription::dropped()`.
  std::size_t pull_queue = 1 << 16;
  // Errors that belong to no call (ERR for a publish without ack, slow_consumer, reconnects).
  // Runs on the I/O thread. Default: ignored.
  std::function<void(const error&)> on_error;
};

// One received event. Views are valid only during the callback.
struct event_view {
  std::uint32_t sub_id = 0;
  std::string_view channel;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  std::uint64_t time_ns = 0;  // broker wall clock at accept, Unix ns
  std::string_view payload;
};

// An owned copy of an event, as returned by subscription::next().
struct message {
  std::uint32_t sub_id = 0;
  std::string channel;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  std::uint64_t time_ns = 0;
  std::string payload;
};

struct publish_ack {
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
};

// Per-subscription options, sent to the broker as the SUB options JSON object.
struct subscribe_options {
  // What to do when this subscriber falls behind: "" = the broker's default, "disconnect" or
  // "drop_oldest".
  std::string slow_consumer;
  // Extra raw JSON members merged into the options object (forward compatibility), e.g.
  // R"("durable":"billing","start":"all")". Must be valid JSON members or empty.
  std::string extra_json;
};

using event_callback = std::function<void(const event_view&)>;

class client;

// A live subscription. Destroying it unsubscribes.
class subscription {
 public:
  subscription(const subscription&) = delete;
  subscription& operator=(const subscription&) = delete;
  ~subscription();

  [[nodiscard]] std::uint32_t id() const noexcept { return _id; }
  // Pull API (only for subscriptions made without a callback): the next event, an empty optional
  // when none arrives within `timeout`, or errc::closed / errc::rejected when the subscription ended
  // (e.g. slow_consumer disconnect, client closed).
  [[nodiscard]] std::expected<std::optional<message>, error> next(std::chrono::milliseconds timeout);
  // Events dropped locally because the pull queue was full.
  [[nodiscard]] std::uint64_t dropped() const noexcept;
  // Stops delivery at once and sends UNSUB (the broker answers only if that fails, via on_error);
  // idempotent, never blocks. next() then returns errc::closed.
  void unsubscribe();

 private:
  friend class client;
  struct state;
  subscription(std::shared_ptr<client> owner, std::shared_ptr<state> s, std::uint32_t id);
  std::shared_ptr<client> _owner;
  std::shared_ptr<state> _state;
  std::uint32_t _id;
};

class client : public std::enable_shared_from_this<client> {
 public:
  // Connects, says HELLO and waits for WELCOME. Blocks up to options.connect_timeout.
  // Fails with errc::unreachable (nothing answered) or errc::rejected (e.g. bad token,
  // unsupported_version).
  [[nodiscard]] static std::expected<std::shared_ptr<client>, error> connect(client_options options);

  client(const client&) = delete;
  client& operator=(const client&) = delete;
  ~client();  // close()

  // Queues one event; does not wait for the network. Blocks only while max_pending_bytes are
  // already waiting (then errc::timeout after send_timeout). Fails with errc::invalid_argument for
  // an empty channel and errc::closed after close(). Broker-side rejections of this event (bad
  // channel, payload_too_large) reach options.on_error.
  [[nodiscard]] std::expected<void, error> publish(std::string_view channel, std::string_view payload);

  // Publishes and waits for the broker's PUBACK (for a durable channel: after the event is on disk).
  [[nodiscard]] std::expected<publish_ack, error> publish_sync(std::string_view channel,
                                                                std::string_view payload,
                                                                std::chrono::milliseconds timeout,
                                                                std::string_view idempotency_key = {});

  // Asynchronous acknowledged publish: `done` runs on the I/O thread with the PUBACK or the ERR.
  [[nodiscard]] std::expected<void, error> publish_async(
      std::string_view channel, std::string_view payload,
      std::function<void(std::expected<publish_ack, error>)> done, std::string_view idempotency_key = {});

  // Blocks until everything published so far has been handed to the network and the broker has
  // processed it (a PING/PONG round trip behind it). errc::timeout after `timeout`.
  [[nodiscard]] std::expected<void, error> flush(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Subscribes to an exact channel or a pattern (`*` one token, `>` the rest). With a callback,
  // events are delivered to it on the I/O thread; without one (nullptr), read them with
  // subscription::next(). Returns once the broker confirmed (SUBACK) or rejected the pattern.
  [[nodiscard]] std::expected<std::unique_ptr<subscription>, error> subscribe(
      std::string_view pattern, event_callback callback = nullptr, subscribe_options options = {},
      std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Acknowledges one event of an at_least_once subscription (fire and forget).
  void ack(const event_view& ev);
  void ack(const message& ev);

  // Number of times the client re-established its session after losing it.
  [[nodiscard]] std::uint64_t reconnects() const noexcept;
  [[nodiscard]] bool connected() const noexcept;

  // Stops the I/O thread after trying to send what is queued (up to 1 s), then says BYE so that the
  // broker ends the session at once; idempotent. Pending calls return errc::closed.
  void close();

  struct impl;

 private:
  friend class subscription;
  explicit client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> _impl;
};

}  // namespace switchboard
