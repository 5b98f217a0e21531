// The local engine: a channel's history in this broker's store (RocksDB, or the in-memory store
// with --memory). The owning shard numbers events (one writer per channel); the store's
// group-commit thread makes them durable and runs the completions in append order. The first
// implementation of engine::history_engine (see engine.h); a cluster engine (Redis) is the next.
//
// Concurrency: as history_engine; the store is thread-safe. The store must outlive the engine.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "broker/engine/engine.h"
#include "broker/store/store.h"

namespace switchboard::engine {

// The ERR code a client sees for a store error (docs/PROTOCOL.md): the store's error kinds kept
// apart, so a full disk (store_full, HTTP 507) is not reported like a failed one (store_failed).
[[nodiscard]] std::string_view protocol_code(store::errc code) noexcept;

class local_engine final : public history_engine {
 public:
  explicit local_engine(store::store& st) : _store(st) {}
  // Answers every open_async() still queued, then joins the open thread.
  ~local_engine() override;
  local_engine(const local_engine&) = delete;
  local_engine& operator=(const local_engine&) = delete;

  std::expected<position, std::string> open(std::string_view channel, std::uint64_t keys_since_ns) override;
  // Runs on the engine's open thread (started on first use), which does the synced writes.
  void open_async(std::string channel, std::uint64_t keys_since_ns, open_completion done) override;
  std::expected<void, log_error> append(const std::vector<entry>& batch, completion& done) override;
  std::expected<std::uint64_t, log_error> wipe(std::uint64_t log_id) override;
  std::expected<std::vector<event>, log_error> read(std::uint64_t log_id, std::uint64_t from_seq,
                                                    std::size_t max_events, std::size_t max_bytes) override;
  std::expected<extent, log_error> extent_of(std::uint64_t log_id) override;
  std::expected<position, log_error> position_of(std::uint64_t log_id) override;
  std::expected<std::uint64_t, log_error> trim(std::uint64_t log_id, const limits& l, std::uint64_t now_ns) override;
  std::expected<std::vector<std::pair<std::string, std::uint64_t>>, log_error> list(std::string_view after,
                                                                                    std::size_t limit) override;

 private:
  struct open_request {
    std::string channel;
    std::uint64_t keys_since_ns = 0;
    open_completion done;
  };
  void run_opens(std::stop_token stop);

  store::store& _store;
  std::mutex _opens_mutex;  // guards _opens and the start of _open_thread
  std::condition_variable_any _opens_cv;
  std::deque<open_request> _opens;
  std::jthread _open_thread;
  std::atomic<bool> _refusal_logged{false};
};

}  // namespace switchboard::engine
