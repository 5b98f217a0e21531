// The transport's output side: sends encoded batches to sessions through a `wire`, keeps what the
// wire could not take in the session's backlog, and applies the slow-consumer policies when that
// backlog overflows (shedding per backlog.h, or ending the session).
//
// Operation: send() tries the wire first when the session has no backlog; otherwise (or when the
// wire is full) the batch is queued and the session is marked stalled; retry() drains stalled
// sessions in order. A send never destroys a session: a vanished peer or a slow-consumer
// disconnect only marks it ended (session_table::end), and the transport reaps it later. Work that
// would re-enter the router from inside a send (drop reports, spills) is collected here and taken
// by the transport's loop.
//
// Concurrency: the transport thread only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "broker/durable/consumer_manager.h"
#include "broker/transport/backlog.h"
#include "broker/transport/channel_views.h"
#include "broker/transport/counters.h"
#include "broker/transport/session.h"

namespace switchboard::transport {

enum class send_result : std::uint8_t { sent, full, gone };

// Where bytes leave the broker: the ZeroMQ ROUTER socket in production; tests and fuzzers plug in
// their own. Follows nng's rule: on `sent` the bytes are consumed; on `full` or `gone` they are
// left in `bytes` for a retry.
class wire {
 public:
  virtual ~wire() = default;
  [[nodiscard]] virtual send_result try_send(const std::string& identity, std::string& bytes) = 0;
};

struct outbox_limits {
  std::size_t subscriber_queue = 1 << 19;  // events queued per session before the policy applies
  // Bytes of queued non-EVENT records (PUBACK, ERR, PONG …) per session: a client that never reads
  // its replies is ended as a slow consumer past this.
  std::size_t reply_queue_bytes = std::size_t{64} << 20;
};

class outbox {
 public:
  static constexpr unsigned no_shard = ~0u;  // output of the durable consumer manager

  // Borrows everything; all must outlive the outbox. `durable` may be null.
  outbox(wire& w, session_table& sessions, channel_views& views, transport_counters& stats, outbox_limits limits,
         durable::consumer_manager::client_input* durable)
      : _wire(w), _sessions(sessions), _views(views), _stats(stats), _limits(limits), _durable(durable) {}

  // Sends one batch to `s` (a no-op when it has ended), or queues it. `events` counts its EVENT
  // records; `droppable`: every EVENT is drop_oldest; `shard`/`tally` feed drop reports.
  void send(session& s, std::string&& bytes, std::uint32_t events = 0, bool droppable = false,
            unsigned shard = no_shard, router::channel_tally&& tally = {});
  // ERR `code` to a session.
  void send_error(session& s, std::uint32_t ref, std::string_view code, std::string_view message);
  // ERR to a routing identity: its live session if any, else best effort (retried for 2 s when the
  // peer's pipe is full) to a peer the broker holds no session for.
  void reply_error(std::string_view identity, std::uint32_t ref, std::string_view code, std::string_view message);

  // True when a backlog or farewell waits for the wire (the loop should retry soon).
  [[nodiscard]] bool busy() const noexcept { return !_stalled.empty() || !_farewells.empty(); }
  // Sends what stalled sessions queued, in order, as far as the wire takes it; expires farewells.
  void retry(clock::time_point now);
  // Forgets a session's place in the retry set (called when it is reaped).
  void forget(router::conn_id id) { _stalled.erase(id); }

  // Work the loop must do outside any send: drop reports for the shards, and spills to start.
  using drop_report = std::pair<unsigned, router::channel_tally>;
  [[nodiscard]] std::vector<drop_report> take_drop_reports() { return std::exchange(_drop_reports, {}); }
  [[nodiscard]] std::vector<std::pair<router::conn_id, spill_request>> take_spills() {
    return std::exchange(_spills, {});
  }

 private:
  struct farewell {  // a last message for a session already ended
    std::string identity;
    std::string bytes;
    clock::time_point deadline;
  };
  using spill_ack = std::tuple<std::uint32_t, std::uint64_t, std::uint64_t>;

  void queue(session& s, queued_batch&& b);
  void overflow(session& s);
  void end_slow(session& s, std::string message);
  [[nodiscard]] event_policy policy_of(const session& s, std::uint32_t sub_id, std::string_view channel);
  [[nodiscard]] std::vector<spill_ack> spill_acks(const session& s, std::string_view bytes) const;
  void send_spill_acks(const session& s, const std::vector<spill_ack>& acks);
  // Durable output that reached the wire gives the consumer manager credit (flow control).
  void credit(const session& s, unsigned shard, std::uint32_t events);
  void adjust_queued(std::size_t before, std::size_t after) noexcept;

  wire& _wire;
  session_table& _sessions;
  channel_views& _views;
  transport_counters& _stats;
  outbox_limits _limits;
  durable::consumer_manager::client_input* _durable;
  std::unordered_set<router::conn_id> _stalled;
  std::vector<farewell> _farewells;
  std::vector<drop_report> _drop_reports;
  std::vector<std::pair<router::conn_id, spill_request>> _spills;
};

}  // namespace switchboard::transport
