// The protocol rules for one whole incoming client message (PROTOCOL.md): validate it, then run
// its records in order — HELLO opens a session, PUB records go to the router shards in runs (the
// hot path hands a batch of valid PUBs to each shard with no per-record work), SUB/UNSUB/ACK/PING
// are answered or forwarded, BYE ends the session (records after it do not run).
//
// Operation: pass 1 (inspect) decodes the whole message and checks that it holds only client
// commands and, for a peer with no session, starts with HELLO; nothing runs unless it passes, and
// a refused message is answered with one ERR. Pass 2 runs the records. An empty message is an
// empty batch and is ignored whoever sent it. The handler never destroys a session: it ends them
// through session_table::end and re-checks `session::ended` after every step that could end one.
//
// Concurrency: the transport thread only (owns a simdjson parser).
#pragma once

#include <simdjson.h>
#include <switchboard/protocol.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

#include "broker/auth/auth.h"
#include "broker/durable/consumer_manager.h"
#include "broker/router/router.h"
#include "broker/transport/channel_views.h"
#include "broker/transport/counters.h"
#include "broker/transport/outbox.h"
#include "broker/transport/session.h"

namespace switchboard::transport {

// What the handler asks of the rest of the transport: hand-offs to the router shards, and
// barriers (a reply sent once every shard processed what was submitted before).
class router_link {
 public:
  enum class barrier_kind : std::uint8_t { suback, pong, unfilter };
  virtual ~router_link() = default;
  [[nodiscard]] virtual unsigned shards() const noexcept = 0;
  [[nodiscard]] virtual unsigned shard_of(std::string_view channel) const noexcept = 0;
  // Both may run the transport's output side while a shard queue is full (never destroying a session).
  virtual void submit(unsigned shard, router::command&& cmd) = 0;
  virtual void submit_all(const router::command& cmd) = 0;
  virtual void barrier(router::conn_id conn, barrier_kind kind, std::uint64_t value) = 0;
};

struct handler_options {
  const auth::token_table* tokens = nullptr;  // null = every client is the anonymous principal
  std::size_t max_payload_bytes = 1 << 20;
  overflow_policy default_policy = overflow_policy::disconnect;
  std::uint32_t heartbeat_ms = 5000;  // used when HELLO says 0
  // HELLO's heartbeat_ms is clamped to this range (WELCOME answers the value in force), so that a
  // client cannot make its session and subscriptions outlive it for days.
  std::uint32_t min_heartbeat_ms = 10;
  std::uint32_t max_heartbeat_ms = 300'000;
  std::uint64_t epoch = 0;
  std::string server_name = "switchboard";
  // Durable subscriptions (null = SUB with a durable name is refused). `durable_output` removes the
  // log-serving stand-ins of spilled subscriptions.
  durable::consumer_manager::client_input* durable = nullptr;
  durable::consumer_manager* durable_output = nullptr;
};

class message_handler {
 public:
  // Borrows everything; all must outlive the handler.
  message_handler(handler_options opts, session_table& sessions, outbox& out, channel_views& views,
                  router_link& link, transport_counters& stats)
      : _opts(std::move(opts)), _sessions(sessions), _out(out), _views(views), _link(link), _stats(stats) {}

  // Handles one message from the peer with routing identity `identity` on connection `peer`.
  // `owner` keeps `bytes` alive for as long as the router holds views into it. A session opened on
  // another connection under the same identity is ended first (that connection is gone: ZeroMQ
  // never gives two live connections one identity), so a new connection must HELLO again.
  // `peer_address` is the client's IP address for logs (empty = unknown).
  void handle(const std::string& identity, int peer, std::shared_ptr<const void> owner, std::string_view bytes,
              std::string_view peer_address = {});

  // Why `who` may not publish on `channel`, or empty when it may.
  [[nodiscard]] std::string publish_refusal(const auth::principal& who, std::string_view channel);

 private:
  struct message_shape {
    bool only_valid_pubs = true;  // every record is a PUB that will be accepted
    std::uint64_t shard_mask = 0;
    std::size_t records = 0;  // 0: an empty batch
  };
  struct refusal {
    std::string code;
    std::string message;
  };

  [[nodiscard]] std::expected<message_shape, refusal> inspect(std::string_view bytes, const session* s);
  [[nodiscard]] bool publish_ok(const session& s, const protocol::publish& pub);
  void refuse_publish(session& s, const protocol::publish& pub);
  // Runs one non-PUB record; returns the session afterwards (new after HELLO, null if none or ended).
  session* control(const std::string& identity, session* s, const protocol::frame& f);
  session* hello(const std::string& identity, session* s, const protocol::hello& h);
  int _peer = -1;  // connection of the message being handled
  std::string_view _peer_address;  // its IP address (valid during handle())
  void subscribe(session& s, const protocol::subscribe& sub);
  void unsubscribe(session& s, std::uint32_t sub_id);

  handler_options _opts;
  session_table& _sessions;
  outbox& _out;
  channel_views& _views;
  router_link& _link;
  transport_counters& _stats;
  simdjson::ondemand::parser _json;
};

// Removes the log-serving stand-in of a subscription that ended (slow_consumer "spill").
void end_spill(const sub_info& sub, durable::consumer_manager* manager);

}  // namespace switchboard::transport
