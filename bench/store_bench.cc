// Group-commit throughput of the RocksDB store: 128-byte events appended in batches of
// batch_events with up to `in_flight` batches queued, each group written with one WAL fsync
// (store_options::sync = true). items_per_second is acknowledged (durable) events per second.
//
//   cmake -S . -B build-store-rel -G Ninja -DCMAKE_BUILD_TYPE=Release
//   ninja -C build-store-rel store_bench && build-store-rel/bench/store_bench
#include "broker/store/store.h"

#include <stdlib.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

namespace {

using switchboard::store::append_request;
using switchboard::store::error;
using switchboard::store::store;
using switchboard::store::store_options;

constexpr std::size_t payload_bytes = 128;

// Counts batches in flight; the benchmark thread waits for room or for all to finish.
class window {
 public:
  explicit window(std::size_t limit) : _limit(limit) {}
  void acquire() {
    std::unique_lock lock(_mutex);
    _changed.wait(lock, [this] { return _in_flight < _limit; });
    ++_in_flight;
  }
  void release(bool ok) {
    {
      std::lock_guard lock(_mutex);
      --_in_flight;
      if (!ok) ++_failures;
    }
    _changed.notify_all();
  }
  std::size_t drain() {
    std::unique_lock lock(_mutex);
    _changed.wait(lock, [this] { return _in_flight == 0; });
    return _failures;
  }

 private:
  const std::size_t _limit;
  std::mutex _mutex;
  std::condition_variable _changed;
  std::size_t _in_flight = 0;
  std::size_t _failures = 0;
};

void append_batches(benchmark::State& state) {
  const auto batch_events = static_cast<std::size_t>(state.range(0));
  const auto in_flight = static_cast<std::size_t>(state.range(1));

  std::string dir = (std::filesystem::temp_directory_path() / "store_bench.XXXXXX").string();
  if (mkdtemp(dir.data()) == nullptr) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  store_options options;
  options.max_queued_events = std::max<std::size_t>(options.max_queued_events, batch_events * in_flight);
  auto opened = store::open_rocksdb(dir, options);
  if (!opened) {
    state.SkipWithError(opened.error().message.c_str());
    return;
  }
  store& s = **opened;
  s.start();
  const std::uint64_t channel = s.channel_id("bench.events").value_or(1);
  const std::string payload(payload_bytes, 'x');
  window w(in_flight);
  std::uint64_t seq = 0;
  std::size_t refused = 0;

  for (auto _ : state) {
    std::vector<append_request> batch;
    batch.reserve(batch_events);
    for (std::size_t i = 0; i < batch_events; ++i) {
      ++seq;
      batch.push_back(append_request{channel, seq, seq, "", payload});
    }
    w.acquire();
    auto done = [&w](std::expected<void, error> r) { w.release(r.has_value()); };
    while (!s.append(std::move(batch), done)) {
      ++refused;  // overloaded: the batch was left intact, retry
    }
  }
  const std::size_t failures = w.drain();
  s.stop();
  if (failures != 0) state.SkipWithError("an append failed");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch_events));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch_events * payload_bytes));
  state.counters["refused"] = static_cast<double>(refused);
  opened->reset();
  std::filesystem::remove_all(dir);
}

// {batch_events, batches in flight}. in_flight 1 = one fsync per batch (latency-bound);
// more in flight lets the store thread group several batches into one fsync.
BENCHMARK(append_batches)
    ->ArgNames({"batch", "in_flight"})
    ->Args({1, 1})
    ->Args({1, 256})
    ->Args({128, 1})
    ->Args({128, 64})
    ->Args({1024, 1})
    ->Args({1024, 16})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
