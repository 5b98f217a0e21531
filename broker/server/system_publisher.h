// Publishes events the broker itself generates (the media layer's media.cached, media.evicted and
// media.failed on `system.media`) through the broker's normal publish path, from its own thread, so
// subscribers get them like any other event and the code that raises them never waits for a shard.
//
// Operation: post() appends to a bounded queue and returns; the publisher thread publishes in
// order through `publish` (broker_control::publish, which gives this thread its own router
// producer). A full queue drops the event (counted, logged once per burst) rather than block or
// grow: these are notifications, and a stalled router must not stall the media layer.
//
// Concurrency: post() from any thread. Lifecycle: the constructor starts the thread; stop()
// publishes what is queued (bounded by `publish`'s own timeout per event), then joins; idempotent,
// also run by the destructor.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <expected>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace switchboard::server {

class system_publisher {
 public:
  // Publishes one event; an error is a one-line reason (logged, counted as failed).
  using publish_fn =
      std::function<std::expected<void, std::string>(std::string_view channel, std::string_view payload)>;

  explicit system_publisher(publish_fn publish, std::size_t max_queued = 4096);
  system_publisher(const system_publisher&) = delete;
  system_publisher& operator=(const system_publisher&) = delete;
  ~system_publisher();

  // Queues the event; false (and counted as dropped) when the queue is full or stop() was called.
  bool post(std::string channel, std::string payload);
  void stop();

  [[nodiscard]] std::uint64_t published() const noexcept {
    return _published.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t dropped() const noexcept { return _dropped.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t failed() const noexcept { return _failed.load(std::memory_order_relaxed); }

 private:
  void run();

  const publish_fn _publish;
  const std::size_t _max_queued;
  std::mutex _mutex;  // guards the members up to _thread
  std::condition_variable _wake;
  std::deque<std::pair<std::string, std::string>> _queue;
  bool _stopping = false;
  bool _warned_full = false;
  std::atomic<std::uint64_t> _published{0};
  std::atomic<std::uint64_t> _dropped{0};
  std::atomic<std::uint64_t> _failed{0};
  std::thread _thread;  // last: starts after every member above is constructed
};

}  // namespace switchboard::server
