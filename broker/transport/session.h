// Client sessions of the transport: who is behind a routing identity, what it subscribed, and the
// output the socket could not take yet.
//
// Operation: a session is opened by an accepted HELLO and keyed both by its broker-assigned id
// (what the router and the consumer manager know) and by its ZeroMQ routing identity (what the
// socket knows). Ending a session is two-phase: end() marks it ended and unbinds its identity at
// once, so no later message reaches it, but the session object stays where it is until reap(),
// which the transport calls at exactly one point of its loop. Code that holds a `session&` across
// a call that may end it (a send, a router hand-off) therefore never holds a dangling reference; it
// checks `ended` instead.
//
// Concurrency: the transport thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/auth/auth.h"
#include "broker/common/string_map.h"
#include "broker/router/router.h"
#include "broker/transport/backlog.h"

namespace switchboard::transport {

using clock = std::chrono::steady_clock;

struct sub_info {
  bool durable = false;                   // served by the consumer manager
  std::optional<overflow_policy> policy;  // chosen by the subscriber (else the channel's)
  std::string pattern;
  std::string spill_name;  // the log-serving subscription that replaced it (slow_consumer "spill")
};

struct session {
  router::conn_id id = 0;
  std::string identity;
  // The connection the session was opened on (ZeroMQ's ZMQ_SRCFD of its HELLO). A message under
  // the same routing identity from another connection never reaches this session.
  int peer = -1;
  // The client's IP address as ZeroMQ saw it (the HELLO's `Peer-Address` metadata), for logs; empty
  // when unknown (in-process tests).
  std::string peer_address;
  auth::principal who;
  clock::time_point last_seen;
  std::chrono::milliseconds heartbeat{0};
  std::unordered_map<std::uint32_t, sub_info> subs;
  std::deque<queued_batch> pending;  // what the socket could not take yet
  std::size_t pending_events = 0;
  std::size_t pending_reply_bytes = 0;  // bytes of queued batches without EVENTs (PUBACK, ERR, PONG)
  // Live subscriptions being switched to the log (spill): their EVENTs from the shards are
  // filtered out until every shard confirmed the unsubscribe.
  std::unordered_set<std::uint32_t> filtered;
  unsigned spilled = 0;                         // subscriptions served from the log by "spill"
  std::unordered_set<std::uint32_t> attaching;  // durable attaches not yet answered
  bool ended = false;                           // see session_table::end()
};

// `session 12 (token "acme-app", peer 10.0.0.7)`: how logs name a session, so that every line about
// something a client did says who did it and from where.
[[nodiscard]] std::string describe(const session& s);

class session_table {
 public:
  // Opens a new session for `identity` (which must not be bound to a live session: end that one
  // first). The reference stays valid until the session is reaped.
  session& open(std::string identity, int peer, auth::principal who, std::chrono::milliseconds heartbeat,
                clock::time_point now);
  // Ends every live session opened on connection `peer` (it closed). Returns how many.
  std::size_t end_peer(int peer, std::string_view why);
  // The live session with that id or routing identity; null when unknown or ended.
  [[nodiscard]] session* find(router::conn_id id) noexcept;
  [[nodiscard]] session* find(std::string_view identity) noexcept;
  // Marks `s` ended (idempotent): its identity is unbound at once, the object stays until reap().
  void end(session& s, std::string_view why);
  // Live sessions authenticated as a token named `name`.
  [[nodiscard]] std::vector<router::conn_id> of_token(std::string_view name) const;
  // Live sessions that sent nothing for 3 heartbeats at `now`.
  [[nodiscard]] std::vector<router::conn_id> expired(clock::time_point now) const;
  // Removes every ended session, first calling `teardown(session&, why)` for each. The only
  // place sessions are destroyed; call it where no session reference is held.
  template <typename Teardown>
  std::size_t reap(Teardown&& teardown) {
    auto ended = std::move(_ended);
    _ended.clear();
    for (const auto& [id, why] : ended) {
      auto it = _sessions.find(id);
      if (it == _sessions.end()) continue;
      teardown(it->second, std::string_view(why));
      for (auto [p, end] = _by_peer.equal_range(it->second.peer); p != end; ++p) {
        if (p->second == id) {
          _by_peer.erase(p);
          break;
        }
      }
      _sessions.erase(it);
    }
    return ended.size();
  }
  [[nodiscard]] bool has_ended() const noexcept { return !_ended.empty(); }
  [[nodiscard]] std::size_t live() const noexcept { return _by_identity.size(); }

 private:
  common::string_map<router::conn_id> _by_identity;  // live sessions only
  std::unordered_multimap<int, router::conn_id> _by_peer;  // may hold ended ids until reaped
  std::unordered_map<router::conn_id, session> _sessions;
  std::vector<std::pair<router::conn_id, std::string>> _ended;
  router::conn_id _next_id = 1;
};

}  // namespace switchboard::transport
