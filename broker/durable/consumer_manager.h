// Durable subscriptions: named, persistent consumers over the event logs of durable channels (like
// JetStream durable consumers). A subscription keeps its spec (pattern, filter, ack policy, start)
// and one cursor per matching channel in the store (kind::subscriptions); a client attaches by name
// and receives everything it missed while away, in seq order per channel, then live events.
//
// Operation: one manager thread owns every subscription. It serves them entirely from the store's
// event log: router shards only tell it "channel X is synced up to seq N" (notifier::notify). For
// each attached subscription and each known channel matching its pattern it reads from cursor+1
// with store::read() in chunks (`read_chunk_events` / `read_chunk_bytes`), applies the filter and
// encodes EVENT records (sub_id = the client's, epoch = the channel log's epoch) into per-connection
// router::outbound batches, which the transport takes with try_take(). It never delivers beyond the
// synced seq it was told about (or found at start-up / rescan).
//   - ack policy `none`: the cursor advances when an event is queued for the transport (at most
//     once: events queued but not yet sent when the connection goes away are lost to it).
//   - `at_least_once`: at most max_ack_pending unacked events in flight; ACK(epoch, seq) removes one
//     (the epoch names the channel); unacked events are sent again after ack_wait_ms, counting
//     deliveries; after max_deliveries deliveries without an ack the event goes to the dead-letter
//     store (kind::dead_letters, key `<subscription>-<channel>-<seq>`) and counts as done. The cursor
//     is the ack floor: every seq at or below it is acked, dead-lettered or filtered out.
//   - gaps: when the next seq a cursor needs has been removed (retention) the subscriber first gets a
//     NOTICE `gap` with detail {"channel":"…","expected_seq":N,"first_seq":M}, then events from M.
//   - start positions, resolved per channel when the subscription is created: `new` = the
//     channel's last seq, `all` = everything still stored, `seq:N` = from N, `time:T` = from the
//     first event published at or after T. A matching channel that first appears after creation is
//     delivered from its beginning, whatever the start position.
//   - persistence: a changed cursor is saved at most every `save_interval` and on stop(). After a
//     restart (or kill -9) a subscription resumes from its last saved cursor, so up to one save
//     interval of events may be delivered again (at-least-once, also for policy `none`).
//   - attach: the reply is a SUBACK (then events) or an ERR, both with the client's sub_id, in the
//     connection's output. Attaching a subscription that is attached elsewhere takes it over: the
//     previous attachment gets ERR `detached`; its unacked events are redelivered at once.
//
// Concurrency: each notifier is used by one producer thread (a router shard), the client_input by
// the transport thread, try_take() by one consumer thread (the transport); admin calls (create, get,
// list, remove, dead_letters, take_dead_letter, stats) from any thread. Producers never block on
// the manager: notify() pushes into a per-notifier SPSC queue, and when that is full it drops the
// notice and marks the manager for a rescan (every known channel's last_seq is re-read, new channel
// ids are listed), so nothing is missed. Client commands go into an SPSC queue; when it is full they
// go to a mutex-guarded overflow list (order is kept), so a command is never lost. Admin calls take
// the state mutex the manager thread holds while it works, so they may wait for one work round.
//
// Limitations: one attachment per subscription (no queue groups). A channel whose log is wiped (a
// new epoch) is noticed at the next rescan or restart, where its cursors start again from 0. The
// manager holds at most `max_output_batches` undelivered output batches and stops reading the log
// while they wait (backpressure from the transport). Redelivery deadlines are found by scanning the
// pending events (O(pending) per round), fine for the default max_ack_pending.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "broker/common/spsc_queue.h"
#include "broker/durable/subscription_spec.h"
#include "broker/engine/engine.h"
#include "broker/router/router.h"
#include "broker/store/store.h"

namespace switchboard::durable {

namespace detail {
struct payload_parser;  // the manager thread's JSON parser for filters (simdjson stays in the .cc)
}  // namespace detail

// Errors of manager calls have the same shape as spec errors: HTTP status, stable code, message.
// Codes: not_found (404), conflict (409), unavailable (503: not started or stopped),
// store_failed (500), plus everything parse_spec reports.
using manager_error = spec_error;

struct manager_options {
  // Called (on the manager thread, or an admin thread after remove()) after output was pushed for
  // try_take(), so the transport wakes up. Must be cheap and must not call back into the manager.
  std::function<void()> wake;
  // Capacity of each notifier's queue. A full queue costs a rescan of every channel, not a loss.
  std::size_t notify_queue_capacity = 4096;
  // Capacity of the client command queue; beyond it commands take the overflow list (a mutex).
  std::size_t input_queue_capacity = 16384;
  // Output batches waiting for try_take(). More smooths bursts; fewer bounds memory sooner (the
  // manager stops reading logs while this many are waiting).
  std::size_t max_output_batches = 1024;
  // A connection's output batch is handed over at this size.
  std::size_t flush_bytes = 64 * 1024;
  // Events per connection handed to try_take() and not yet reported by client_input::sent(); the
  // manager reads no further for that connection until the client takes some (credit-based flow
  // control: a subscriber that stops reading costs this many events, whatever its ack policy).
  // 0 = no window (the consumer of try_take() then must bound its own queue).
  std::size_t connection_window = 0;
  // Channel permissions (subscribe_allow), checked per attachment and channel; null = everyone may
  // receive every channel. Must outlive the manager.
  const router::policy_source* policies = nullptr;
  // One store::read() per (subscription, channel) per round reads at most this much.
  std::size_t read_chunk_events = 256;
  std::size_t read_chunk_bytes = 1u << 20;
  // Changed cursors are saved at most this often (each save is a synced store write). Longer means
  // fewer writes and more redelivery after a crash.
  std::chrono::milliseconds save_interval{50};
  // After a store error the affected work is retried after this long.
  std::chrono::milliseconds retry_interval{100};
};

struct manager_stats {
  std::uint64_t subscriptions = 0;
  std::uint64_t attached = 0;
  std::uint64_t pending = 0;  // unacked events in flight, all subscriptions
  std::uint64_t delivered = 0;
  std::uint64_t redeliveries = 0;
  std::uint64_t dead_letters = 0;
  std::uint64_t store_errors = 0;
  std::uint64_t rescans = 0;
};

// A dead letter as take_dead_letter() returns it (what a redrive re-publishes).
struct dead_letter {
  std::string id;
  std::string subscription;
  std::string channel;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  std::uint32_t deliveries = 0;
  std::string reason;
  std::uint64_t time_ns = 0;  // when it was dead-lettered
  std::string payload;        // the event's payload bytes
};

class consumer_manager {
 public:
  // Tells the manager that a durable channel's log is synced up to a seq.
  // Concurrency: one producer thread per notifier.
  class notifier {
   public:
    notifier(const notifier&) = delete;
    notifier& operator=(const notifier&) = delete;
    // Never blocks (except a brief mutex when the manager is asleep, to wake it) and never fails:
    // when the queue is full the notice is dropped and the manager rescans every channel.
    void notify(std::string_view channel, std::uint64_t synced_seq);

   private:
    friend class consumer_manager;
    struct channel_sync {
      std::string channel;
      std::uint64_t seq = 0;
    };
    notifier(consumer_manager& m, std::size_t capacity) : _manager(&m), _queue(capacity) {}
    consumer_manager* _manager;
    common::spsc_queue<channel_sync> _queue;
  };

  // Client requests from the transport thread. Every call returns at once; results (SUBACK, ERR,
  // EVENT, NOTICE) arrive through try_take().
  class client_input {
   public:
    client_input(const client_input&) = delete;
    client_input& operator=(const client_input&) = delete;
    // Attaches subscription `name` to (conn, sub_id). When it does not exist and
    // `create_if_missing` is given, creates it first (its name must equal `name`). Replies SUBACK,
    // or ERR with code not_found, conflict (exists with another spec), invalid_attribute,
    // store_failed or unavailable.
    // `expected_pattern`, when not empty, must equal the subscription's pattern (ERR conflict
    // otherwise): the caller authorised the client for that pattern and no other.
    // `tenant`/`principal` name who attaches: channels whose `permissions` do not let either
    // subscribe are not served to this attachment (empty = an internal consumer, served all).
    void attach(router::conn_id conn, std::uint32_t sub_id, std::string name,
                std::optional<subscription_spec> create_if_missing, std::string expected_pattern = {},
                std::string tenant = {}, std::string principal = {});
    // Acknowledges one event; ignored when (conn, sub_id) is not attached, the policy is `none`,
    // or the event is not pending (already acked or dead-lettered).
    void ack(router::conn_id conn, std::uint32_t sub_id, std::uint64_t epoch, std::uint64_t seq);
    // Stops delivery to (conn, sub_id); unacked events stay pending and are redelivered at once
    // to the next attachment. The subscription itself stays.
    void detach(router::conn_id conn, std::uint32_t sub_id);
    // detach() for every attachment of `conn`, and drops its output not yet taken.
    void drop_connection(router::conn_id conn);
    // Flow control: `events` EVENT records of this manager's output for `conn` reached the client's
    // socket. With manager_options::connection_window set, the manager keeps at most that many
    // events per connection between try_take() and this call.
    void sent(router::conn_id conn, std::uint64_t events);

   private:
    friend class consumer_manager;
    struct attach_cmd {
      router::conn_id conn;
      std::uint32_t sub_id;
      std::string name;
      std::optional<subscription_spec> spec;
      std::string expected_pattern;
      std::string tenant;
      std::string principal;
    };
    struct ack_cmd {
      router::conn_id conn;
      std::uint32_t sub_id;
      std::uint64_t epoch;
      std::uint64_t seq;
    };
    struct detach_cmd {
      router::conn_id conn;
      std::uint32_t sub_id;
    };
    struct drop_cmd {
      router::conn_id conn;
    };
    struct sent_cmd {
      router::conn_id conn;
      std::uint64_t events;
    };
    using command = std::variant<attach_cmd, ack_cmd, detach_cmd, drop_cmd, sent_cmd>;

    client_input(consumer_manager& m, std::size_t capacity) : _manager(&m), _queue(capacity) {}
    void submit(command&& c);
    // Consumer side: everything queued, in submission order.
    void drain(std::vector<command>& out);
    [[nodiscard]] bool empty() const;

    consumer_manager* _manager;
    common::spsc_queue<command> _queue;
    mutable std::mutex _overflow_mutex;  // guards _overflow
    std::deque<command> _overflow;
    // Set by the producer when it used _overflow; cleared by the consumer when it emptied it. While
    // set, the producer appends to _overflow so that order is kept.
    std::atomic<bool> _overflow_used{false};
  };

  // Subscriptions, cursors and dead letters are kept in `st` (configuration blobs); the channels'
  // histories are read through `histories` (the engine seam). Both must outlive the manager.
  consumer_manager(store::store& st, engine::history_engine& histories, manager_options options);
  consumer_manager(const consumer_manager&) = delete;
  consumer_manager& operator=(const consumer_manager&) = delete;
  // Calls stop().
  ~consumer_manager();

  // Handles, valid for the manager's lifetime. Call before start().
  [[nodiscard]] notifier& add_notifier();
  [[nodiscard]] client_input& add_client_input();

  // Loads every subscription and cursor from the store, lists the channels with ids and their
  // synced seqs, then starts the manager thread. Fails (and starts nothing) when the store cannot
  // be read; a stored subscription that no longer parses is skipped and counted in store_errors.
  // Idempotent; after stop() it does nothing and succeeds.
  [[nodiscard]] std::expected<void, manager_error> start();
  // Refuses new work, joins the thread and saves every changed cursor. Idempotent. Output not yet
  // taken stays available to try_take().
  void stop();

  // --- admin (any thread; block for at most one manager work round plus a store write) ---
  // Creates `spec` and resolves its start position on every matching channel. Returns true when
  // created, false when an identical spec already existed. 409 conflict when the name exists with
  // another spec; 503 unavailable before start() or after stop(); 500 store_failed.
  [[nodiscard]] std::expected<bool, manager_error> create(const subscription_spec& spec);
  // The subscription as JSON: the spec's members plus "attached", "cursors" ({channel: {"epoch",
  // "acked_seq", "pending"}}), "pending", "delivered", "redeliveries", "dead_letters". 404 not_found.
  [[nodiscard]] std::expected<std::string, manager_error> get(std::string_view name);
  // A JSON array of get() for every subscription, in name order.
  [[nodiscard]] std::expected<std::string, manager_error> list();
  // Deletes the subscription and its cursors; an attached client gets ERR `subscription_removed`.
  // 404 not_found.
  [[nodiscard]] std::expected<void, manager_error> remove(std::string_view name);
  // Every stored dead letter (JSON objects as stored, key order) as a JSON array.
  [[nodiscard]] std::expected<std::string, manager_error> dead_letters();
  // Reads and deletes one dead letter. 404 not_found; 500 store_failed when the stored record is
  // not a subscription dead letter.
  [[nodiscard]] std::expected<dead_letter, manager_error> take_dead_letter(std::string_view id);

  [[nodiscard]] manager_stats stats() const;

  // --- output (one consumer thread) ---
  // The next batch of encoded records for one connection, or empty when none is waiting.
  [[nodiscard]] std::optional<router::outbound> try_take();

 private:
  using clock = std::chrono::steady_clock;
  struct channel_state;
  struct cursor;
  struct subscription;

  void run(std::stop_token stop);
  void wake_manager();
  [[nodiscard]] bool inputs_empty() const;

  // Everything below runs with _mutex held.
  bool work_round(clock::time_point now);
  void take_notices();
  void take_commands(clock::time_point now);
  void rescan();
  channel_state* learn_channel(std::string_view name);
  channel_state* learn_channel(std::string name, std::uint64_t id);
  const std::vector<channel_state*>& matching_channels(subscription& sub);
  // Whether the attachment of `sub` may receive `ch` (its permissions), cached per policy generation.
  bool may_receive(const subscription& sub, channel_state& ch);
  void handle_attach(client_input::attach_cmd& c, clock::time_point now);
  void handle_ack(const client_input::ack_cmd& c);
  void detach_sub(subscription& sub, clock::time_point now);
  void drop_conn(router::conn_id conn, clock::time_point now);
  std::expected<bool, manager_error> create_locked(const subscription_spec& spec);
  std::expected<void, manager_error> refresh_channels();
  std::expected<std::uint64_t, engine::history_engine::log_error> start_cursor(const subscription_spec& spec,
                                                          const channel_state& ch);
  cursor& cursor_of(subscription& sub, channel_state& ch);
  bool deliver(subscription& sub, channel_state& ch, cursor& cur, clock::time_point now);
  void redeliver_due(subscription& sub, clock::time_point now);
  void dead_letter_event(subscription& sub, channel_state& ch, std::uint64_t seq, std::uint32_t deliveries,
                         const engine::history_engine::event* ev);
  void save_dirty(bool force, clock::time_point now);
  [[nodiscard]] std::expected<void, store::error> save(subscription& sub);
  [[nodiscard]] std::string describe(const subscription& sub) const;
  [[nodiscard]] bool filter_matches(const event_filter& filter, std::string_view payload);
  void push_event(subscription& sub, const channel_state& ch, const engine::history_engine::event& ev);
  void push_gap(subscription& sub, const channel_state& ch, std::uint64_t expected, std::uint64_t first);
  void push_record(router::conn_id conn, const std::string& bytes);
  void flush_output();
  [[nodiscard]] clock::time_point next_deadline(clock::time_point now) const;
  void publish_stats();

  store::store& _store;
  engine::history_engine& _engine;
  const manager_options _opts;

  // Handles: created before start(), then only read.
  std::vector<std::unique_ptr<notifier>> _notifiers;
  std::vector<std::unique_ptr<client_input>> _inputs;

  // Wake-up protocol: the thread sets _idle (seq_cst), re-checks its inputs, then waits on
  // _wake_cv; a producer that pushed and finds _idle set clears it and notifies under _wake_mutex.
  std::atomic<bool> _idle{false};
  std::atomic<bool> _rescan_requested{false};
  std::mutex _wake_mutex;
  std::condition_variable_any _wake_cv;

  // Output: pushed only with _mutex held (so pushes are serialised), taken by one consumer.
  common::spsc_queue<router::outbound> _output;
  // Set by the manager while finished batches wait for room in _output; try_take() then wakes it.
  std::atomic<bool> _output_blocked{false};
  std::atomic<std::uint64_t> _taken{0};   // batches taken by try_take(), ever
  std::uint64_t _taken_before_flush = 0;  // manager thread: _taken when it last flushed

  mutable std::mutex _mutex;  // guards everything below
  bool _running = false;
  bool _stopped = false;
  std::map<std::string, std::unique_ptr<channel_state>, std::less<>> _channels;  // by name
  std::unordered_map<std::uint64_t, channel_state*> _by_epoch;
  std::uint64_t _channel_generation = 0;  // bumped when a channel is learned
  std::map<std::string, std::unique_ptr<subscription>, std::less<>> _subs;  // by name
  // (conn, sub_id) -> attached subscription
  std::map<std::pair<router::conn_id, std::uint32_t>, subscription*> _attachments;
  std::map<router::conn_id, router::outbound> _building;  // output being assembled this round
  std::unordered_map<router::conn_id, std::uint64_t> _in_flight;  // events not yet reported sent()
  std::deque<router::outbound> _unsent;                   // finished batches waiting for _output
  clock::time_point _last_save{};
  clock::time_point _retry_at = clock::time_point::max();
  std::unique_ptr<detail::payload_parser> _parser;
  std::jthread _thread;

  // Counters, written with _mutex held, read by stats() without it.
  std::atomic<std::uint64_t> _stat_subscriptions{0};
  std::atomic<std::uint64_t> _stat_attached{0};
  std::atomic<std::uint64_t> _stat_pending{0};
  std::atomic<std::uint64_t> _stat_delivered{0};
  std::atomic<std::uint64_t> _stat_redeliveries{0};
  std::atomic<std::uint64_t> _stat_dead_letters{0};
  std::atomic<std::uint64_t> _stat_store_errors{0};
  std::atomic<std::uint64_t> _stat_rescans{0};
};

}  // namespace switchboard::durable
