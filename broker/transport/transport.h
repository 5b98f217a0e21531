// ZeroMQ transport: the broker's ROUTER socket and the client sessions behind it.
//
// Operation: one thread owns the ROUTER socket (transport.cc) and drives a transport_core
// (core.h) with it. Where each rule lives:
//   session.h          sessions by id and routing identity; two-phase end, reaped at one point
//   message_handler.h  one whole incoming message: validation, HELLO, PUB runs, SUB/UNSUB/ACK/PING
//   sub_options.h      the SUB options JSON and the durable specs derived from it
//   outbox.h           sending, per-client backlog, slow-consumer policies, spill acks
//   backlog.h          how a backlog is shed (drop_oldest, conflate, spill, disconnect)
//   channel_views.h    the channel configuration the transport needs, cached per generation
//   core.h             all of the above plus the router/consumer-manager hand-offs, without a socket
//
// A message is validated as a whole before anything in it runs: a malformed message is answered
// with ERR malformed_frame / unknown_command and none of its records take effect.
//
// Concurrency: start()/stop_accepting()/stop() from the owning thread; snapshot() from any thread.
// Limitations: one ROUTER socket (one bind endpoint); a client message larger than
// max(16 MiB, 4 x max_payload_bytes) is discarded by ZeroMQ, which then drops that connection.
#pragma once

#include <atomic>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "broker/auth/auth.h"
#include "broker/channels/config_registry.h"
#include "broker/durable/consumer_manager.h"
#include "broker/router/router.h"

namespace switchboard::transport {

struct transport_options {
  std::string bind = "tcp://127.0.0.1:7400";
  // HELLO tokens; null or an open table = every client is the anonymous principal.
  const auth::token_table* tokens = nullptr;
  // Channel `permissions` attributes; null = no per-channel permissions.
  const channels::config_registry* policies = nullptr;
  // Durable subscriptions: commands go to `durable` (used only by the transport thread), output
  // comes from `durable_output`. Null = SUB with a durable name is refused.
  durable::consumer_manager::client_input* durable = nullptr;
  durable::consumer_manager* durable_output = nullptr;
  std::size_t max_payload_bytes = 1 << 20;
  std::size_t subscriber_queue = 1 << 19;
  std::size_t socket_hwm = 1000;  // batches ZeroMQ may buffer per client before ours queue up
  router::slow_policy default_policy = router::slow_policy::disconnect;
  std::uint32_t heartbeat_ms = 5000;
  // Range HELLO's heartbeat_ms is clamped to (WELCOME answers the value in force).
  std::uint32_t min_heartbeat_ms = 10;
  std::uint32_t max_heartbeat_ms = 300'000;
  // Bytes of unread replies (PUBACK, ERR, PONG) queued per client before it is dropped as a slow
  // consumer: a publisher that never reads its PUBACKs cannot grow the broker without bound.
  std::size_t reply_queue_bytes = std::size_t{64} << 20;
  std::uint64_t epoch = 0;
  std::string server_name = "switchboard";
};

struct transport_stats {
  std::uint64_t delivered = 0;  // EVENT records handed to ZeroMQ
  std::uint64_t bad_frames = 0;
  std::uint64_t rejected_events = 0;  // PUB records answered with ERR
  std::uint64_t reaped = 0;
  std::uint64_t slow_consumer_drops = 0;
  std::uint64_t slow_consumer_disconnects = 0;
  std::uint64_t connections = 0;
  std::uint64_t queued_events = 0;  // gauge: events waiting in per-client queues
  std::uint64_t slow_consumer_conflated = 0;  // events replaced by a newer one with the same key
  std::uint64_t slow_consumer_spilled = 0;    // queued events handed over to the log
  std::uint64_t spills = 0;                   // live subscriptions switched to log serving
  std::uint64_t bytes_in = 0;                 // client message bodies received
  std::uint64_t bytes_out = 0;                // message bodies handed to ZeroMQ for clients
};

struct transport_error {
  std::string message;
};

class transport {
 public:
  // Binds the socket (on the calling thread) and registers as a producer of `r`, which must not
  // be started yet.
  [[nodiscard]] static std::expected<std::unique_ptr<transport>, transport_error> create(
      transport_options opts, router::router& r);

  transport(const transport&) = delete;
  transport& operator=(const transport&) = delete;
  ~transport();

  // The bound endpoint with its real port.
  [[nodiscard]] std::string endpoint() const;
  // Wakes the transport thread; safe from any thread (the router calls it).
  void wake() noexcept;

  void start();
  // Stops reading client messages and returns once nothing more will be submitted to the router;
  // output keeps flowing until stop().
  void stop_accepting();
  // Sends what the shards produced (the router must be stopped first), closes the socket, joins.
  void stop();

  [[nodiscard]] transport_stats snapshot() const;

  // The tokens `names` were removed or changed (SIGHUP reload): the transport thread sends their
  // sessions ERR unauthorized and ends them, soon after this returns. Any thread.
  void close_token_sessions(std::vector<std::string> names);

  struct impl;

 private:
  explicit transport(std::unique_ptr<impl> p);
  std::unique_ptr<impl> _impl;
};

}  // namespace switchboard::transport
