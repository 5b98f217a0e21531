// A test engine that behaves like a replicated engine (the Redis engine to come) can fail over:
// appends are held "unreplicated" until sync() forwards them to the history that survives (a
// local engine on an in-memory store) and acknowledges them; fail_over() loses every unsynced
// append (its publishers get ERR `unavailable`) and moves every history to a new epoch, its seq
// continuing from what survived. The conformance suite must pass against it like the real engines.
// Thread-safety: every member may be called from any thread (one mutex).
#pragma once

#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "broker/engine/local_engine.h"
#include "broker/store/store.h"

namespace switchboard::engine::testing {

class failover_engine final : public history_engine {
 public:
  failover_engine() : _store(store::store::open_memory().value()), _inner(*_store) { _store->start(); }
  ~failover_engine() override { _store->stop(); }

  std::expected<position, std::string> open(std::string_view channel, std::uint64_t keys_since_ns) override {
    auto p = _inner.open(channel, keys_since_ns);
    if (p) {
      std::lock_guard lock(_mutex);
      p->epoch = epoch_of(p->log_id, p->epoch);
    }
    return p;
  }
  std::expected<void, log_error> append(const std::vector<entry>& batch, completion& done) override {
    std::lock_guard lock(_mutex);
    pending p;
    for (const auto& e : batch) {
      p.payloads.push_back(std::make_unique<std::pair<std::string, std::string>>(std::string(e.key), std::string(e.payload)));
      p.entries.push_back(entry{e.log_id, e.seq, e.time_ns, p.payloads.back()->first, p.payloads.back()->second});
    }
    p.done = std::move(done);
    _unsynced.push_back(std::move(p));
    return {};
  }
  std::expected<std::uint64_t, log_error> wipe(std::uint64_t log_id) override {
    auto e = _inner.wipe(log_id);
    if (e) {
      std::lock_guard lock(_mutex);
      _epochs.erase(log_id);
    }
    return e;
  }
  std::expected<std::vector<event>, log_error> read(std::uint64_t log_id, std::uint64_t from_seq,
                                                    std::size_t max_events, std::size_t max_bytes) override {
    return _inner.read(log_id, from_seq, max_events, max_bytes);
  }
  std::expected<extent, log_error> extent_of(std::uint64_t log_id) override {
    auto x = _inner.extent_of(log_id);
    if (x) {
      std::lock_guard lock(_mutex);
      x->epoch = epoch_of(log_id, x->epoch);
    }
    return x;
  }
  std::expected<position, log_error> position_of(std::uint64_t log_id) override {
    auto p = _inner.position_of(log_id);
    if (p) {
      std::lock_guard lock(_mutex);
      p->epoch = epoch_of(log_id, p->epoch);
    }
    return p;
  }
  std::expected<std::uint64_t, log_error> trim(std::uint64_t log_id, const limits& l, std::uint64_t now_ns) override {
    return _inner.trim(log_id, l, now_ns);
  }
  std::expected<std::vector<std::pair<std::string, std::uint64_t>>, log_error> list(std::string_view after,
                                                                                    std::size_t limit) override {
    return _inner.list(after, limit);
  }

  // Replicates every held append (in order) and acknowledges it.
  void sync() {
    std::vector<pending> batches;
    {
      std::lock_guard lock(_mutex);
      batches.swap(_unsynced);
    }
    for (auto& p : batches) {
      std::promise<std::expected<void, log_error>> stored;
      completion forward = [&stored](std::expected<void, log_error> r) { stored.set_value(std::move(r)); };
      if (auto queued = _inner.append(p.entries, forward); !queued) {
        p.done(std::unexpected(queued.error()));
        continue;
      }
      p.done(stored.get_future().get());
    }
  }
  // The replica takes over: unsynced appends are lost (refused), every history gets a new epoch.
  void fail_over() {
    std::vector<pending> lost;
    {
      std::lock_guard lock(_mutex);
      lost.swap(_unsynced);
      _generation = _random();
      _epochs.clear();
    }
    for (auto& p : lost) p.done(std::unexpected(log_error{"unavailable", "failed over before replication", false}));
  }

 private:
  struct pending {
    std::vector<std::unique_ptr<std::pair<std::string, std::string>>> payloads;  // key, payload
    std::vector<entry> entries;
    completion done;
  };
  // The epoch a history has after the failovers so far (requires _mutex).
  std::uint64_t epoch_of(std::uint64_t log_id, std::uint64_t stored) {
    if (_generation == 0) return stored;
    auto [it, inserted] = _epochs.try_emplace(log_id, 0);
    if (inserted) it->second = (stored ^ _generation) | 1;
    return it->second;
  }

  std::unique_ptr<store::store> _store;
  local_engine _inner;
  std::mutex _mutex;
  std::vector<pending> _unsynced;
  std::mt19937_64 _random{std::random_device{}()};
  std::uint64_t _generation = 0;                      // 0 = never failed over
  std::map<std::uint64_t, std::uint64_t> _epochs;     // log id -> epoch after the last failover
};

}  // namespace switchboard::engine::testing
