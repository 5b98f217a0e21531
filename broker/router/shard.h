// One router shard: a thread that owns a subset of channels (see router.h).
//
// Operation: the shard thread pops commands from its inbound SPSC queues (one per producer),
// assigns per-channel sequence numbers, matches each event against its subscription trie (cached
// per channel, invalidated when subscriptions change), and appends EVENT/PUBACK records to
// per-connection output buffers. A buffer is handed to the outbound queue when it reaches
// flush_bytes or when the inbound queues run dry, so batches grow under load and single events
// leave at once when idle.
//
// Durable channels: an accepted event gets its seq at once, but is delivered and acknowledged
// only after the event log reports it synced. Events are collected into one log batch per drain
// of the inbound queues (group commit across publishers); completions come back through a
// dedicated SPSC queue fed by the log's thread, in append order.
//
// Concurrency: everything below `private:` is owned by the shard thread, except the queues (SPSC,
// one side each) and the stats atomics (written only by the shard thread, read anywhere).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broker/common/counter.h"
#include "broker/common/histogram.h"
#include "broker/common/spsc_queue.h"
#include "broker/common/string_map.h"
#include "broker/router/router.h"
#include "broker/router/topic.h"

namespace switchboard::router {

class shard {
 public:
  shard(router& owner, unsigned index);
  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;

  // Before start(): one inbound queue per producer.
  void add_inbound(std::size_t capacity);
  // Threaded: starts the shard thread. Inline: no thread; the router's consumer calls step().
  void start(bool threaded);
  void stop();

  // Inline mode only, on the consumer thread: processes what is queued now (never sleeps).
  // Returns true if it did any work. After stop() it finishes every queued command first.
  bool step();

  [[nodiscard]] bool try_submit(unsigned producer, command& cmd);
  [[nodiscard]] std::optional<outbound> try_take();
  [[nodiscard]] bool has_output() const noexcept;
  // Inline mode: commands or log completions are waiting for step().
  [[nodiscard]] bool has_work() const noexcept;
  // Inline mode, consumer thread: nothing queued, nothing waiting for the log, no output.
  [[nodiscard]] bool quiescent() const noexcept;
  [[nodiscard]] shard_stats snapshot() const noexcept;
  [[nodiscard]] const common::histogram<common::latency_bounds_s.size()>& latency() const noexcept { return _latency; }
  // Steady-clock ns the shard has had queued work without progress (0 = none), as of `now_ns`.
  [[nodiscard]] std::uint64_t stalled_ns(std::uint64_t now_ns) const noexcept;
  // Before start(), with more than one shard: the producer this shard submits routed events with.
  void set_peer_producer(router::producer* p) noexcept { _peer = p; }

 private:
  struct connection_out;
  struct channel_state;
  struct subscriber {
    conn_id conn = 0;
    std::uint32_t sub_id = 0;
    slow_policy policy = slow_policy::disconnect;
    bool policy_explicit = false;
    std::string pattern;
    connection_out* out = nullptr;
    std::string tenant;
    std::string principal;
    std::shared_ptr<const pipeline::compiled_filter> filter;  // null = every event
  };
  struct connection_out {
    conn_id conn = 0;
    std::string buf;
    std::uint32_t events = 0;
    bool droppable = true;
    bool dirty = false;
    channel_tally tally;
    std::unordered_map<std::uint32_t, std::unique_ptr<subscriber>> subs;
  };
  // Where an acknowledgement goes: nowhere, a connection's PUBACK, or a direct publisher's reply.
  struct ack_target {
    conn_id conn = 0;
    std::uint32_t request_id = 0;
    bool wanted = false;
    std::shared_ptr<std::promise<publish_reply>> reply;
  };
  // One event on its way through a channel's pipeline (see pipeline_run.cc).
  struct pipeline_event {
    std::shared_ptr<const channel_pipeline> pipe;  // the configuration it started under
    std::string_view key, payload;                 // payload: the current version
    std::shared_ptr<const void> owner;             // keeps key and payload alive
    std::uint64_t time_ns = 0;
    ack_target ack;
    std::shared_ptr<const routed_publish> routed;  // a route copy: its path and hops; null = published here
    std::size_t next = 0;                          // the order position to run from
    enum class state : std::uint8_t { ready, waiting, dropped } st = state::ready;
    std::uint64_t ticket = 0;                      // matches a delegate's answer
    bool route = true, parents = true;             // a delegate may switch them off for this event
    std::optional<std::vector<std::string>> sinks;  // a delegate's webhook selection
    bool webhook = false;                          // reached the webhook stage
    std::string_view webhook_payload;              // the payload there (kept alive by webhook_owner)
    std::shared_ptr<const void> webhook_owner;
  };
  enum class run_result : std::uint8_t { finished, waiting, paused };
  struct delegated {
    std::uint64_t serial = 0, ticket = 0;
    delegate_answer answer;
  };
  // Idempotency key -> seq, and the keys in arrival order for expiry.
  struct dedupe_window {
    common::string_map<std::uint64_t> recent_keys;
    struct recent_key {
      std::uint64_t time_ns = 0;
      std::uint64_t seq = 0;  // expiry removes the key only while it still maps to this seq
      std::string key;
    };
    std::deque<recent_key> key_times;
  };
  struct channel_state {
    std::string_view name;  // the key in _channels
    std::uint64_t serial = 0;          // this incarnation's handle in output tallies (never reused)
    std::uint64_t last_active_ns = 0;  // time of the last publish
    std::uint64_t seq = 0;
    std::uint64_t epoch = 0;
    std::uint64_t generation = ~std::uint64_t{0};  // subscription generation of `matches`
    std::vector<subscriber*> matches;
    std::uint64_t policy_generation = ~std::uint64_t{0};
    channel_policy policy;
    std::uint64_t log_id = 0;  // 0 = no log opened
    bool opening = false;      // the engine is opening its log: publishes are held meanwhile
    std::uint64_t synced_seq = 0;  // highest seq known durable (durable channels)
    std::uint64_t published = 0, delivered = 0, dropped = 0;
    // Durable items (events and duplicate acknowledgements) not yet completed by the log: they point
    // at this state, which therefore must stay.
    std::uint64_t unsynced = 0;
    // Wipes waiting for `unsynced` to reach 0 (all get one result), and the publishes held back.
    std::vector<std::shared_ptr<std::promise<wipe_reply>>> wipes;
    struct held_publish {
      std::string_view key, payload;
      std::uint64_t time_ns = 0;
      std::shared_ptr<const void> owner;
      ack_target ack;
      const routed_publish* routed = nullptr;  // kept alive by owner
    };
    std::vector<held_publish> held;
    // Events in the channel's pipeline that wait for a delegate, and the events behind them (a
    // channel numbers its events in arrival order). Allocated on the first such event.
    std::unique_ptr<std::deque<pipeline_event>> pending;
    std::uint64_t next_ticket = 0;
    std::uint64_t rejected = 0;
    // Dedupe window (allocated on the first key: most channels never use one, and a channel's
    // footprint decides how many idle calls fit in memory).
    std::unique_ptr<dedupe_window> dedupe;
  };
  struct durable_item {
    channel_state* ch = nullptr;
    std::uint64_t seq = 0;
    std::uint64_t time_ns = 0;
    std::string_view key;  // idempotency key (empty = none), forgotten again if the append fails
    std::string_view payload;
    ack_target ack;
    bool ack_only = false;  // a deduplicated publish: acknowledge, deliver nothing
    bool first_failed = false;  // ack_only: the publish it duplicates was not stored
  };
  struct durable_batch {
    std::vector<durable_item> items;
    std::vector<event_log::entry> entries;
    std::vector<std::shared_ptr<const void>> owners;  // keep payload bytes alive
  };

  void run(std::stop_token st);
  bool drain_inputs();
  void wake() noexcept;
  void handle(command& cmd);
  void publish(const publish_batch& b);
  void publish_direct(direct_publish& d);
  void accept(std::string_view channel, std::string_view key, std::string_view payload, std::uint64_t time_ns,
              const std::shared_ptr<const void>& owner, ack_target&& ack, const routed_publish* routed = nullptr);
  // Numbers an accepted event and delivers it (or queues it for the log); returns its seq.
  std::uint64_t commit(channel_state& ch, std::string_view key, std::string_view payload, std::uint64_t time_ns,
                       const std::shared_ptr<const void>& owner, ack_target&& ack);
  // The pipeline (pipeline_run.cc).
  void start_pipeline(channel_state& ch, pipeline_event&& e);
  run_result run_pipeline(channel_state& ch, pipeline_event& e, bool front);
  void finish_pipeline(channel_state& ch, pipeline_event& e);
  void perform_route(channel_state& ch, pipeline_event& e);
  void perform_parents(channel_state& ch, pipeline_event& e);
  void send_routed(routed_publish&& r);
  void drain_pending(channel_state& ch);
  bool finish_delegates();
  bool flush_routes();
  void route_error(channel_state& ch, const std::string& event_json, std::uint64_t time_ns);
  void deliver(channel_state& ch, std::uint64_t seq, std::uint64_t time_ns, std::string_view payload);
  void acknowledge(const ack_target& ack, const channel_state& ch, std::uint64_t seq, bool duplicate);
  void refuse(const ack_target& ack, std::string_view code, std::string_view message);
  bool dedupe(channel_state& ch, std::string_view key, std::uint64_t time_ns, const ack_target& ack,
              const std::shared_ptr<const void>& owner);
  void refresh_policy(channel_state& ch);
  void rebuild_matches(channel_state& ch);
  void submit_durable();
  bool finish_durable();
  void fail_durable(durable_batch& batch, const event_log::log_error& error);
  void wipe(wipe_history& w);
  void finish_wipe(channel_state& ch);
  void expire(std::uint64_t now_ns);
  // A durable log the engine opened (or failed to) on its own thread.
  struct opened_log {
    std::uint64_t serial = 0;
    std::expected<event_log::position, std::string> result;
  };
  bool finish_opens();
  void hold(channel_state& ch, std::string_view key, std::string_view payload, std::uint64_t time_ns,
            const std::shared_ptr<const void>& owner, ack_target&& ack, const routed_publish* routed = nullptr);
  void finish_open(channel_state& ch, std::expected<event_log::position, std::string>& result);
  [[nodiscard]] bool may_expire(channel_state& ch);
  void subscribe(subscribe_command& c);
  void unsubscribe(const unsubscribe_command& c);
  void drop(conn_id conn);
  void report_stats(stats_query& q);
  connection_out& out_for(conn_id conn);
  channel_state& channel(std::string_view name);
  void mark_dirty(connection_out& out);
  void flush(connection_out& out);
  void flush_dirty();
  void push_outbound(outbound&& o);

  router& _owner;
  const unsigned _index;
  std::vector<std::unique_ptr<common::spsc_queue<command>>> _inbound;
  common::spsc_queue<outbound> _outbound;  // threaded mode
  std::deque<outbound> _inline_out;         // inline mode: producer and consumer are one thread
  bool _threaded = true;
  // Log completions (producer: the log's thread): result per batch, in append order.
  common::spsc_queue<std::expected<void, event_log::log_error>> _completions;
  // Opened logs (producer: the engine's open thread).
  common::spsc_queue<opened_log> _opened;
  std::size_t _opens_pending = 0;  // shard thread: open_async requests not yet finished
  std::vector<std::uint64_t> _holding;  // serials of channels that may hold publishes (pruned lazily)
  // Pipeline: the stages' working state, the producer for other shards (routes, parents), routed
  // commands a full queue refused (retried in order), and delegate answers (from sink threads).
  pipeline::context _cx;
  router::producer* _peer = nullptr;
  std::deque<std::pair<unsigned, command>> _route_overflow;
  std::mutex _answers_mutex;  // delegate answers only: never on a plain channel's publish path
  std::vector<delegated> _answers;
  std::atomic<bool> _has_answers{false};
  std::size_t _delegates_pending = 0;
  std::atomic<bool> _idle{false};
  std::atomic<std::uint32_t> _wake{0};
  std::jthread _thread;

  // Shard-thread state.
  common::string_map<channel_state> _channels;
  std::unordered_map<std::uint64_t, channel_state*> _by_serial;  // for drop reports
  std::uint64_t _next_serial = 1;
  // Channels to examine for expiry, (serial, time queued) in time order: each channel is queued
  // when created and re-queued when found busy, so expiry looks at O(expired + re-queued).
  std::deque<std::pair<std::uint64_t, std::uint64_t>> _expiry_queue;
  // Bumped by every expiry pass that dropped a channel: a non-durable channel created after that
  // gets an epoch derived from it, so a channel that comes back never re-uses (epoch, seq).
  std::uint64_t _expiry_generation = 0;
  std::unordered_map<conn_id, connection_out> _conns;
  topic_trie<subscriber*> _trie;
  std::uint64_t _generation = 0;
  std::uint64_t _policy_generation = 0;  // source generation read at the start of each command
  std::vector<connection_out*> _dirty;
  std::string_view _last_channel;  // one-entry cache for batches on one channel
  channel_state* _last_state = nullptr;
  durable_batch _building;               // collecting events for the next log append
  std::deque<durable_batch> _in_flight;  // appended, waiting for their completion (FIFO)

  std::atomic<std::uint64_t> _published{0};
  std::atomic<std::uint64_t> _delivered{0};
  std::atomic<std::uint64_t> _channel_count{0};
  std::atomic<std::uint64_t> _subscription_count{0};
  std::atomic<std::uint64_t> _expired{0};
  std::atomic<std::uint64_t> _durable_open{0};
  common::histogram<common::latency_bounds_s.size()> _latency{common::latency_bounds_s};  // shard thread
  std::uint32_t _latency_sample = 0;
  std::atomic<std::uint64_t> _progress_ns{0};  // steady clock at the last drain that found work or none
  std::atomic<std::uint64_t> _pipeline_rejected{0}, _routed{0}, _route_refused{0}, _parent_deliveries{0},
      _delegated{0}, _delegate_dropped{0}, _webhooks{0}, _filtered{0}, _delegate_pending{0};
};

}  // namespace switchboard::router
