#include "broker/store/group_commit.h"

#include <chrono>

#include "broker/store/checks.h"

#include <utility>

namespace switchboard::store::detail {

group_commit::group_commit(std::size_t max_queued_events, writer write)
    : _max_queued_events(max_queued_events), _write(std::move(write)) {}

group_commit::~group_commit() { stop(); }

std::string group_commit::metrics() const {
  const common::histogram<common::size_bounds.size()>* sizes[] = {&_group_events};
  const common::histogram<common::latency_bounds_s.size()>* writes[] = {&_write_seconds};
  return common::histogram<common::size_bounds.size()>::render(
             "switchboard_store_group_commit_events", "Events per group commit (one write and one WAL fsync).", sizes) +
         common::histogram<common::latency_bounds_s.size()>::render(
             "switchboard_store_group_commit_seconds", "Time to write one group durably (WAL fsync included).", writes);
}

void group_commit::start() {
  std::lock_guard lifecycle(_lifecycle);
  {
    std::lock_guard lock(_mutex);
    if (_state != state::idle) return;
    _state = state::running;
  }
  _thread = std::thread([this] { run(); });
}

void group_commit::stop() {
  std::lock_guard lifecycle(_lifecycle);
  {
    std::lock_guard lock(_mutex);
    _state = state::stopped;
  }
  _wake.notify_one();
  if (_thread.joinable()) _thread.join();
}

std::expected<void, error> group_commit::submit(std::vector<append_request>&& batch,
                                                append_completion&& done) {
  if (auto ok = check_batch(batch); !ok) return std::unexpected(std::move(ok.error()));
  {
    std::lock_guard lock(_mutex);
    if (_state != state::running) {
      return std::unexpected(error{errc::stopped, _state == state::idle ? "append: the store is not started"
                                                                        : "append: the store is stopping"});
    }
    if (!_queue.empty() && _queued_events + batch.size() > _max_queued_events) {
      return std::unexpected(error{errc::overloaded, "append: " + std::to_string(_queued_events) +
                                                         " events already queued (max_queued_events " +
                                                         std::to_string(_max_queued_events) + ")"});
    }
    _queued_events += batch.size();
    _queue.push_back(pending_append{std::move(batch), std::move(done)});
  }
  _wake.notify_one();
  return {};
}

void group_commit::run() {
  std::vector<pending_append> group;
  for (;;) {
    {
      std::unique_lock lock(_mutex);
      _wake.wait(lock, [this] { return !_queue.empty() || _state == state::stopped; });
      if (_queue.empty()) return;  // stopped and drained
      group.swap(_queue);
      _queued_events = 0;
    }
    std::size_t events = 0;
    for (const pending_append& p : group) events += p.batch.size();
    const auto t0 = std::chrono::steady_clock::now();
    const std::expected<void, error> result = _write(group);
    _write_seconds.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    _group_events.observe(static_cast<double>(events));
    for (pending_append& p : group) p.done(result);
    group.clear();
  }
}

}  // namespace switchboard::store::detail
