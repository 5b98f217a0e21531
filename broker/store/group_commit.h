// The append path shared by both stores: a bounded queue of append batches and the one store
// thread that drains it, hands everything queued to a writer as ONE group (one WriteBatch and one
// WAL fsync for RocksDB), then runs every batch's completion with the group's result. Many events
// per fsync is what makes hundreds of thousands of acknowledged events per second possible.
#pragma once

#include "broker/common/histogram.h"

#include "broker/store/store.h"

#include <condition_variable>
#include <cstddef>
#include <expected>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace switchboard::store::detail {

struct pending_append {
  std::vector<append_request> batch;
  append_completion done;
};

// Operation: submit() validates and queues a batch; the store thread takes the whole queue at once,
// calls the writer with it, and then each completion, in submission order.
//
// Concurrency: submit() is safe from any number of threads (a mutex-protected deque: this is off
// the publish→deliver path, and one lock per batch, not per event). The writer and completions run
// only on the store thread. start()/stop() are serialised by their own mutex.
//
// Limitations: at most `max_queued_events` events wait (plus the group being written); a batch that
// does not fit fails with errc::overloaded at once, except into an empty queue, so a batch larger
// than the bound is still accepted alone. A group is as large as whatever queued during the previous
// write — there is no separate cap per write.
class group_commit {
 public:
  // Writes one group durably, or reports why not. Called on the store thread only.
  using writer = std::function<std::expected<void, error>(const std::vector<pending_append>&)>;

  group_commit(std::size_t max_queued_events, writer write);
  ~group_commit();
  group_commit(const group_commit&) = delete;
  group_commit& operator=(const group_commit&) = delete;

  void start();
  void stop();
  [[nodiscard]] std::expected<void, error> submit(std::vector<append_request>&& batch,
                                                  append_completion&& done);
  // Prometheus histograms of the groups written so far: events per group, seconds per write.
  [[nodiscard]] std::string metrics() const;

 private:
  enum class state : std::uint8_t { idle, running, stopped };
  void run();

  const std::size_t _max_queued_events;
  const writer _write;

  std::mutex _lifecycle;  // serialises start()/stop(); guards _thread
  std::thread _thread;

  std::mutex _mutex;  // guards everything below
  std::condition_variable _wake;
  state _state = state::idle;
  std::vector<pending_append> _queue;
  std::size_t _queued_events = 0;

  // Written by the store thread only.
  common::histogram<common::size_bounds.size()> _group_events{common::size_bounds};
  common::histogram<common::latency_bounds_s.size()> _write_seconds{common::latency_bounds_s};
};

}  // namespace switchboard::store::detail
