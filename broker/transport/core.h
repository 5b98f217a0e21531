// Everything of the transport except the socket and its thread: sessions, the message handler,
// the output side, and the hand-offs to and from the router shards and the durable consumer
// manager. transport.cc drives it from the ROUTER socket; the fuzz targets and tests drive the very
// same object in-process through any `wire`.
//
// Operation: handle_message() runs one incoming message; drain() moves the shards' and the
// consumer manager's output to sessions; tick() does the loop's housekeeping — retries, spills,
// drop reports, heartbeat sweeps — and ends with reap(), the single point where ended sessions are
// destroyed and their teardown (router drop_connection, durable detach) is submitted.
//
// Concurrency: one thread (the transport's) calls everything except stats(), which is read-only
// and thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/transport/channel_views.h"
#include "broker/transport/counters.h"
#include "broker/transport/message_handler.h"
#include "broker/transport/outbox.h"
#include "broker/transport/session.h"
#include "broker/transport/transport.h"

namespace switchboard::transport {

class transport_core final : public router_link {
 public:
  // Registers as a producer of `r` (which must not be started yet). Borrows `r` and `w`.
  transport_core(const transport_options& opts, router::router& r, wire& w);
  transport_core(const transport_core&) = delete;
  transport_core& operator=(const transport_core&) = delete;

  // One incoming message from `identity` on connection `peer` (any stable number per connection;
  // the socket's file descriptor in transport.cc); `owner` keeps `bytes` alive while the router
  // needs them.
  // `peer_address` (the client's IP, for logs) may be empty.
  void handle_message(const std::string& identity, int peer, std::shared_ptr<const void> owner,
                      std::string_view bytes, std::string_view peer_address = {});
  // Tokens `names` were removed or changed (a reload): their sessions get ERR unauthorized (ref 0)
  // and end. Returns how many.
  std::size_t close_token_sessions(const std::vector<std::string>& names);
  // Connection `peer` closed: its sessions end (and are reaped at the next tick).
  void peer_closed(int peer);
  // A message with more than one frame after the identity: answered ERR malformed_frame.
  void reject_multipart(std::string_view identity);
  // Moves output of the router (and, inline, runs its shards) and of the consumer manager to the
  // sessions. True if anything was done.
  bool drain();
  // Housekeeping, then reap(). Call once per loop turn with no session reference held.
  void tick(clock::time_point now);
  // Destroys ended sessions and submits their teardown. Returns how many.
  std::size_t reap();
  // True when output waits for the wire (the loop should come back within a millisecond).
  [[nodiscard]] bool busy() const noexcept { return _out.busy(); }
  [[nodiscard]] clock::time_point next_sweep() const noexcept { return _next_sweep; }
  [[nodiscard]] const transport_counters& stats() const noexcept { return _stats; }

  // router_link
  [[nodiscard]] unsigned shards() const noexcept override { return _router.shards(); }
  [[nodiscard]] unsigned shard_of(std::string_view channel) const noexcept override {
    return _router.shard_of(channel);
  }
  void submit(unsigned shard, router::command&& cmd) override;
  void submit_all(const router::command& cmd) override;
  void barrier(router::conn_id conn, barrier_kind kind, std::uint64_t value) override;

 private:
  struct barrier_wait {
    router::conn_id conn = 0;
    barrier_kind kind = barrier_kind::pong;
    std::uint64_t value = 0;  // sub_id or nonce
    unsigned remaining = 0;
  };

  void deliver(unsigned shard, router::outbound&& out);
  void start_spill(router::conn_id id, const spill_request& req);
  void sweep(clock::time_point now);

  const transport_options& _opts;
  router::router& _router;
  router::router::producer& _producer;
  transport_counters _stats;
  session_table _sessions;
  channel_views _views;
  outbox _out;
  message_handler _handler;
  std::unordered_map<std::uint64_t, barrier_wait> _barriers;
  std::uint64_t _next_token = 1;
  clock::time_point _next_sweep;
};

}  // namespace switchboard::transport
