// The router: single-writer shards that own channels and subscriptions.
//
// Operation: a channel belongs to exactly one shard (shard_of(channel name)). A shard thread owns
// its channels' sequence numbers, its copy of every subscription (wildcard patterns can match
// channels of any shard, so a SUB goes to every shard), and per-connection output buffers. Work
// reaches a shard only through lock-free SPSC queues, one per producer per shard; output leaves
// through one SPSC queue per shard towards its consumer (the transport). Nothing on the
// publish -> deliver path takes a mutex.
//
// Ordering: commands from one producer reach a shard in the order submitted, and a channel lives on
// one shard, so events from one publisher on one channel reach every subscriber in publish order.
//
// Concurrency: each `producer` is used by one thread; try_take/consumer_* are called by one consumer
// thread; snapshot() from any thread. start()/stop() from the owning thread.
// Lifecycle: channels are created on first publish and dropped from memory when idle (see
// router_options::channel_idle_ns and expire_idle).
#pragma once

#include <atomic>
#include <cstdint>
#include <expected>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "broker/engine/engine.h"
#include "broker/pipeline/filter.h"
#include "broker/pipeline/pipeline.h"
#include "broker/pipeline/route.h"

namespace switchboard::router {

using conn_id = std::uint64_t;

// What happens to a subscriber's events when it falls behind. The router only marks output
// batches made entirely of drop_oldest events (the transport may drop them whole); the transport
// applies the policies (see broker/transport/backlog.h).
enum class slow_policy : std::uint8_t { disconnect, drop_oldest, conflate, spill };

// A channel's event pipeline as the router runs it (DESIGN.md "Channel configuration attributes";
// docs/PIPELINE.md): the in-process stages and their order, and what the hook stages need.
// Immutable once resolved; shared by every event that started under it, so a configuration change
// applies to the next event while events already in a delegate finish under the old one.
struct channel_pipeline {
  pipeline::channel_stages stages;        // validate, translate and the order of every stage
  std::vector<std::string> route;         // channels the event is also published to (own pipelines)
  bool publish_to_parent = false;         // also deliver on a.b and a for a.b.c (no pipeline there)
  std::size_t max_hops = pipeline::default_max_hops;
  // Opaque to the router: handed to pipeline_hooks. Null = the stage has nothing to do.
  std::shared_ptr<const void> delegate;
  std::shared_ptr<const void> webhook;
};

// What a delegate answered for one event (pipeline_hooks::delegate).
struct delegate_answer {
  enum class action : std::uint8_t { pass, drop, dead_letter };
  action act = action::pass;
  std::string payload;                  // pass: the event to continue with
  bool route = true;                    // false: skip the route stage for this event
  bool publish_to_parent = true;        // false: skip publish_to_parent for this event
  std::optional<std::vector<std::string>> webhook_sinks;  // set: only these sinks (by name)
  std::string error;                    // why a delegate failed (even when the policy passed it)
};

// One event handed to the webhook stage (after it was numbered).
struct webhook_event {
  std::string_view channel;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  std::uint64_t time_ns = 0;
  std::string_view payload;  // as it was when the event reached the webhook stage
  const std::vector<std::string>* only_sinks = nullptr;  // a delegate's selection, or null = all
};

// The HTTP stages, performed off the shard threads by the server's sink workers (the router knows
// neither libcurl nor the sinks: DESIGN.md dependency rules).
// Concurrency: webhook() and delegate() are called from shard threads (each passes its index) and
// must never block. delegate()'s `done` may run on any thread, exactly once.
class pipeline_hooks {
 public:
  virtual ~pipeline_hooks() = default;
  virtual void webhook(unsigned shard, const std::shared_ptr<const void>& spec, const webhook_event& e) = 0;
  virtual void delegate(unsigned shard, const std::shared_ptr<const void>& spec, std::string_view channel,
                        std::string payload, std::move_only_function<void(delegate_answer)> done) = 0;
  // An event a delegate asked to dead-letter (or whose delegate failed under that policy).
  virtual void dead_letter(std::string_view channel, std::string_view payload, std::string_view reason) = 0;
  // An event the pipeline dropped or refused that nobody is told about otherwise (a routed copy
  // refused by its target's validate, a delegate's drop): logged and counted by the server.
  virtual void rejected(std::string_view channel, std::string_view code, std::string_view message) = 0;
  // The shard is about to go idle: hand over anything buffered for it (never blocks).
  virtual void idle(unsigned /*shard*/) {}
};

// What the router needs to know about a channel, resolved from its configuration (own attributes,
// inherited pattern attributes, broker defaults) by the policy_source.
struct channel_policy {
  bool durable = false;
  slow_policy slow = slow_policy::disconnect;
  std::size_t max_payload_bytes = 1 << 20;
  std::uint64_t dedupe_window_ns = 0;  // 0 = no deduplication
  // Who may receive the channel's events: tenants or token names, "*" = anyone. Enforced per
  // subscriber when a channel's subscriber list is built, so a wildcard subscription never
  // receives a channel its principal may not subscribe to.
  std::vector<std::string> subscribe_allow{"*"};
  // The channel has a configuration of its own (not only attributes inherited from patterns): it
  // stays in memory while idle (see router_options::channel_idle_ns).
  bool configured = false;
  // Null: events pass through unchanged (the fast path).
  std::shared_ptr<const channel_pipeline> pipeline;
};

// Resolves channel policies. Shards cache a channel's policy and re-resolve it when generation()
// changes, so a configuration change applies to the very next event.
// Concurrency: lookup() and generation() are called from every shard thread concurrently.
class policy_source {
 public:
  virtual ~policy_source() = default;
  [[nodiscard]] virtual channel_policy lookup(std::string_view channel) const = 0;
  [[nodiscard]] virtual std::uint64_t generation() const noexcept = 0;
};

// The durable event log as the router sees it: the engine seam (broker/engine/engine.h). The router
// numbers events itself today and asks the engine to store them; the server plugs in the local
// engine (broker/store underneath).
using event_log = engine::history_engine;

// Told when events of a durable channel are synced (and delivered), so consumers that read the
// log (durable subscriptions) know how far they may read; seq 0 means the channel's history was
// wiped (a new epoch). One listener per shard: it is called only from the thread that runs that
// shard and must never block.
class sync_listener {
 public:
  virtual ~sync_listener() = default;
  virtual void synced(std::string_view channel, std::uint64_t seq) = 0;
};

// Events per channel in an output batch: (channel serial, count). A serial names one in-memory
// incarnation of a channel on its shard and is never reused, so a report about a channel that has
// expired since is simply ignored.
using channel_tally = std::vector<std::pair<std::uint64_t, std::uint32_t>>;

// Result of a publish made through the router by a non-socket producer (the admin API).
struct publish_reply {
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  bool duplicate = false;
  std::string error_code;  // empty = success; else e.g. payload_too_large, store_failed
  std::string error_message;
};

struct channel_stats {
  std::string name;
  std::uint64_t published = 0;
  std::uint64_t delivered = 0;
  std::uint64_t subscribers = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t dropped = 0;
  bool durable = false;
  std::uint64_t rejected = 0;  // refused by the channel's pipeline (validate, translate)
};

// Publish every valid PUB record in `records` (encoded protocol records, already validated by the
// codec) whose channel belongs to the receiving shard. `owner` keeps the bytes alive.
struct publish_batch {
  conn_id conn = 0;
  std::shared_ptr<const void> owner;
  std::string_view records;
  std::uint64_t time_ns = 0;
  // The producer checked that every record is a PUB with a valid channel and payload size, so the
  // shard may skip re-validating (the hot path).
  bool prevalidated = false;
};
struct subscribe_command {
  conn_id conn = 0;
  std::uint32_t sub_id = 0;
  std::string pattern;  // validated by the producer
  slow_policy policy = slow_policy::disconnect;
  bool policy_explicit = false;  // the subscriber chose `policy`; otherwise the channel's applies
  std::string tenant;            // the subscriber's principal, checked against subscribe_allow
  std::string principal;
  // Only events whose payload matches (pipeline/filter.h); null = every event.
  std::shared_ptr<const pipeline::compiled_filter> filter;
};
struct unsubscribe_command {
  conn_id conn = 0;
  std::uint32_t sub_id = 0;
};
// One event published by a non-socket producer; `reply` is fulfilled when it is acknowledged.
struct direct_publish {
  std::string channel;
  std::string key;
  std::string payload;
  std::uint64_t time_ns = 0;
  std::shared_ptr<std::promise<publish_reply>> reply;
};
// Purge a durable channel's history and start a new epoch (DELETE /v1/channels/{name}/events).
// Events published on the channel before it are stored first; events published while it waits for
// them are held back and numbered in the new history. Attached durable subscriptions are told
// through the sync listener (synced(channel, 0)) and get the `epoch` notice.
struct wipe_reply {
  std::uint64_t epoch = 0;  // the new epoch
  std::string error_code;   // empty = success; not_found (not a durable channel), store_failed, …
  std::string error_message;
};
struct wipe_history {
  std::string channel;
  std::shared_ptr<std::promise<wipe_reply>> reply;
};
// Per-channel stats of one shard.
struct stats_query {
  std::shared_ptr<std::promise<std::vector<channel_stats>>> reply;
};
// Drop channels idle since before `now_ns - channel_idle_ns` from memory (sent about once a second
// by the server's housekeeping thread; cost proportional to the channels it examines, not to all).
struct expire_idle {
  std::uint64_t now_ns = 0;
};
// The transport dropped events of these channels (slow consumer, drop_oldest): count them.
struct drop_report {
  channel_tally tally;
};
// The connection is gone: forget its subscriptions and buffered output.
struct drop_connection {
  conn_id conn = 0;
};
// Answered with an outbound barrier reply carrying `token` once everything submitted before it
// has been processed (used for SUBACK and PING/PONG).
struct barrier {
  conn_id conn = 0;
  std::uint64_t token = 0;
};
// An event another shard's pipeline publishes on a channel of this one: a `route` copy (runs the
// target's own pipeline; `path` holds the channels it went through) or a `publish_to_parent`
// delivery (as_parent: numbered and delivered on the parent, no pipeline there).
struct routed_publish {
  std::string channel;
  std::string payload;
  std::uint64_t time_ns = 0;
  std::vector<std::string> path;
  std::uint32_t hops = 0;
  bool as_parent = false;
};
using command = std::variant<publish_batch, subscribe_command, unsubscribe_command, drop_connection, barrier,
                             direct_publish, stats_query, drop_report, wipe_history, expire_idle, routed_publish>;

// Encoded records for one connection (EVENT, PUBACK batches), or a barrier reply.
struct outbound {
  conn_id conn = 0;
  std::string bytes;
  std::uint32_t events = 0;   // EVENT records in `bytes`
  bool droppable = true;      // every EVENT belongs to a drop_oldest subscription
  std::optional<std::uint64_t> barrier_token;
  // Events per channel in `bytes` (channel serials of the producing shard); sent back in a
  // drop_report if the transport drops the batch.
  channel_tally tally;
};

struct router_options {
  unsigned shards = 1;
  std::size_t max_payload_bytes = 1 << 20;
  std::uint64_t epoch = 0;           // history epoch carried in EVENT/PUBACK
  std::size_t queue_capacity = 4096;  // commands per producer per shard; outbound per shard
  std::size_t flush_bytes = 64 * 1024;  // a connection's output buffer is handed over at this size
  slow_policy default_slow = slow_policy::disconnect;
  const policy_source* policies = nullptr;  // null = every channel gets the defaults above
  event_log* log = nullptr;                 // null = durable channels behave as non-durable
  std::vector<sync_listener*> sync_listeners;  // empty, or one per shard
  std::size_t max_durable_batch = 1 << 16;  // events a shard holds waiting for the log
  // Channel lifecycle: a channel with no subscribers, no configuration of its own, nothing waiting
  // for the log and no publish for this long is dropped from memory at the next expire_idle (so
  // between 1× and 2× this after its last event). A durable channel keeps its log and positions
  // (the next publish reopens it and continues its seq); a non-durable one that comes back starts
  // a new in-memory history under a new epoch. 0 = never. Short values free memory sooner at the
  // cost of re-resolving policies (and reopening logs) of channels that come back.
  std::uint64_t channel_idle_ns = 300'000'000'000;
  // No shard threads: the consumer thread runs the shards itself through poll(). Saves two
  // thread hand-offs per event (lower latency, less CPU on small machines) at the cost of
  // pipelining the router with the transport. The single-writer rule is unchanged: only the
  // consumer thread touches shard state.
  bool inline_shards = false;
  // The HTTP stages (delegate, webhook) and pipeline reports; null = those stages do nothing.
  pipeline_hooks* hooks = nullptr;
};

struct shard_stats {
  std::uint64_t published = 0;
  std::uint64_t delivered = 0;
  std::uint64_t channels = 0;          // gauge: channels in memory
  std::uint64_t subscriptions = 0;
  std::uint64_t channels_expired = 0;  // dropped from memory after channel_idle_ns
  std::uint64_t durable_open = 0;      // gauge: durable channels with their log open
  // Pipeline (counters): events refused by validate/translate, routed copies published, route
  // refusals (loop / hop limit), parent deliveries, events sent to / dropped by delegates,
  // webhook hand-offs, events a subscriber filter kept from a subscriber.
  std::uint64_t pipeline_rejected = 0;
  std::uint64_t routed = 0;
  std::uint64_t route_refused = 0;
  std::uint64_t parent_deliveries = 0;
  std::uint64_t delegated = 0;
  std::uint64_t delegate_dropped = 0;
  std::uint64_t webhooks = 0;
  std::uint64_t filtered = 0;
  std::uint64_t delegate_pending = 0;  // gauge: events waiting for a delegate
  std::uint64_t queue_depth = 0;       // gauge: commands waiting in the shard's inbound queues
};

class shard;

class router {
 public:
  explicit router(router_options opts);
  router(const router&) = delete;
  router& operator=(const router&) = delete;
  ~router();

  // A handle for one producer thread: submits commands to shards.
  class producer {
   public:
    // Non-blocking: false (command left intact) when that shard's queue is full.
    [[nodiscard]] bool try_submit(unsigned shard, command& cmd);

   private:
    friend class router;
    router* _router = nullptr;
    unsigned _index = 0;
  };

  // Before start(): registers a producer thread and returns its handle (owned by the router).
  [[nodiscard]] producer& add_producer();

  // Starts one thread per shard (none in inline mode). `wake_consumer` is called (from a shard or
  // producer thread) after output or inline work was queued while the consumer had declared
  // itself idle.
  void start(std::function<void()> wake_consumer);
  // Idempotent. Threaded: processes what was already submitted, then joins the shard threads.
  // Inline: returns at once; the consumer keeps polling until quiescent().
  void stop();

  [[nodiscard]] unsigned shards() const noexcept;
  [[nodiscard]] unsigned shard_of(std::string_view channel) const noexcept;
  [[nodiscard]] const router_options& options() const noexcept { return _opts; }

  // Inline mode, consumer thread only: runs every shard on queued work. True if any was done.
  bool poll();
  [[nodiscard]] bool inline_shards() const noexcept { return _opts.inline_shards; }
  // Inline mode, consumer thread: true when every shard is idle with nothing in flight (the
  // consumer may stop). In threaded mode stop() waits for this itself.
  [[nodiscard]] bool quiescent() const noexcept;

  // Consumer side. try_take: the next output of that shard, if any.
  [[nodiscard]] std::optional<outbound> try_take(unsigned shard);
  // The consumer declares it is about to sleep; returns false (and stays awake) if output is
  // already waiting. After true, the next output push calls wake_consumer.
  [[nodiscard]] bool consumer_try_idle();
  void consumer_awake() noexcept;

  // Summed over shards.
  [[nodiscard]] shard_stats snapshot() const;
  // One shard's (index < shards()).
  [[nodiscard]] shard_stats shard_snapshot(unsigned shard) const;
  // Publish -> deliver latency (accept time to the EVENT record being queued for the transport;
  // for durable channels that includes the group commit), sampled one event in 64 per shard, as a
  // Prometheus histogram.
  [[nodiscard]] std::string latency_metrics() const;
  // How long the most stalled shard has had work queued without making progress (0 = none): a
  // shard thread that stops turning shows here long before clients time out (/readyz).
  [[nodiscard]] std::uint64_t stalled_ns() const;

 private:
  friend class shard;
  void notify_consumer();

  router_options _opts;
  std::vector<std::unique_ptr<shard>> _shards;
  std::vector<std::unique_ptr<producer>> _producers;
  std::function<void()> _wake_consumer;
  std::atomic<bool> _consumer_idle{false};
  bool _started = false;
};

}  // namespace switchboard::router
