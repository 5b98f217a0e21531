// One router shard: a thread that owns a subset of channels (see router.h).
//
// Operation: the shard thread pops commands from its inbound SPSC queues (one per producer),
// assigns per-channel sequence numbers, matches each event against its subscription trie (cached
// per channel, invalidated when subscriptions change), and appends EVENT/PUBACK records to
// per-connection output buffers. A buffer is handed to the outbound queue when it reaches
// flush_bytes or when the inbound queues run dry, so batches grow under load and single events
// leave at once when idle.
// Concurrency: everything below `private:` is owned by the shard thread, except the queues (SPSC,
// one side each) and the stats atomics (written only by the shard thread, read anywhere).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broker/common/spsc_queue.h"
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
  void start();
  void stop();

  [[nodiscard]] bool try_submit(unsigned producer, command& cmd);
  [[nodiscard]] std::optional<outbound> try_take() { return _outbound.try_pop(); }
  [[nodiscard]] bool has_output() const noexcept { return !_outbound.empty(); }
  [[nodiscard]] shard_stats snapshot() const noexcept;

 private:
  struct connection_out;
  struct subscriber {
    conn_id conn = 0;
    std::uint32_t sub_id = 0;
    slow_policy policy = slow_policy::disconnect;
    std::string pattern;
    connection_out* out = nullptr;
  };
  struct connection_out {
    conn_id conn = 0;
    std::string buf;
    std::uint32_t events = 0;
    bool droppable = true;
    bool dirty = false;
    std::size_t last_flush = 0;  // size of the previous hand-over, used to pre-size the next buffer
    std::unordered_map<std::uint32_t, std::unique_ptr<subscriber>> subs;
  };
  struct channel_state {
    std::uint64_t seq = 0;
    std::uint64_t generation = ~std::uint64_t{0};
    std::vector<subscriber*> matches;
  };
  struct name_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  void run(std::stop_token st);
  void handle(command& cmd);
  void publish(const publish_batch& b);
  void subscribe(subscribe_command& c);
  void unsubscribe(const unsubscribe_command& c);
  void drop(conn_id conn);
  connection_out& out_for(conn_id conn);
  channel_state& channel(std::string_view name);
  void mark_dirty(connection_out& out);
  void flush(connection_out& out);
  void flush_dirty();
  void push_outbound(outbound&& o);
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  router& _owner;
  const unsigned _index;
  std::vector<std::unique_ptr<common::spsc_queue<command>>> _inbound;
  common::spsc_queue<outbound> _outbound;
  std::atomic<bool> _idle{false};
  std::atomic<std::uint32_t> _wake{0};
  std::atomic<bool> _stopping{false};
  std::jthread _thread;

  // Shard-thread state.
  std::unordered_map<std::string, channel_state, name_hash, std::equal_to<>> _channels;
  std::unordered_map<conn_id, connection_out> _conns;
  topic_trie<subscriber*> _trie;
  std::uint64_t _generation = 0;
  std::vector<connection_out*> _dirty;
  std::string_view _last_channel;  // one-entry cache for batches on one channel
  channel_state* _last_state = nullptr;

  std::atomic<std::uint64_t> _published{0};
  std::atomic<std::uint64_t> _delivered{0};
  std::atomic<std::uint64_t> _channel_count{0};
  std::atomic<std::uint64_t> _subscription_count{0};
};

}  // namespace switchboard::router
