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
// Limitations: channels are created on first publish and kept until stop (no idle expiry yet).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace switchboard::router {

using conn_id = std::uint64_t;

enum class slow_policy : std::uint8_t { disconnect, drop_oldest };

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
};
struct unsubscribe_command {
  conn_id conn = 0;
  std::uint32_t sub_id = 0;
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
using command = std::variant<publish_batch, subscribe_command, unsubscribe_command, drop_connection, barrier>;

// Encoded records for one connection (EVENT, PUBACK batches), or a barrier reply.
struct outbound {
  conn_id conn = 0;
  std::string bytes;
  std::uint32_t events = 0;   // EVENT records in `bytes`
  bool droppable = true;      // every EVENT belongs to a drop_oldest subscription
  std::optional<std::uint64_t> barrier_token;
};

struct router_options {
  unsigned shards = 1;
  std::size_t max_payload_bytes = 1 << 20;
  std::uint64_t epoch = 0;           // history epoch carried in EVENT/PUBACK
  std::size_t queue_capacity = 4096;  // commands per producer per shard; outbound per shard
  std::size_t flush_bytes = 64 * 1024;  // a connection's output buffer is handed over at this size
};

struct shard_stats {
  std::uint64_t published = 0;
  std::uint64_t delivered = 0;
  std::uint64_t channels = 0;
  std::uint64_t subscriptions = 0;
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

  // Starts one thread per shard. `wake_consumer` is called (from a shard thread) after output was
  // queued while the consumer had declared itself idle.
  void start(std::function<void()> wake_consumer);
  // Idempotent: processes what was already submitted, then joins the shard threads.
  void stop();

  [[nodiscard]] unsigned shards() const noexcept;
  [[nodiscard]] unsigned shard_of(std::string_view channel) const noexcept;
  [[nodiscard]] const router_options& options() const noexcept { return _opts; }

  // Consumer side. try_take: the next output of that shard, if any.
  [[nodiscard]] std::optional<outbound> try_take(unsigned shard);
  // The consumer declares it is about to sleep; returns false (and stays awake) if output is
  // already waiting. After true, the next output push calls wake_consumer.
  [[nodiscard]] bool consumer_try_idle();
  void consumer_awake() noexcept;

  [[nodiscard]] shard_stats snapshot() const;

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
