#include "broker/server/system_publisher.h"

#include <spdlog/spdlog.h>

namespace switchboard::server {

system_publisher::system_publisher(publish_fn publish, std::size_t max_queued)
    : _publish(std::move(publish)), _max_queued(max_queued), _thread([this] { run(); }) {}

system_publisher::~system_publisher() { stop(); }

bool system_publisher::post(std::string channel, std::string payload) {
  {
    std::lock_guard lock(_mutex);
    if (!_stopping && _queue.size() < _max_queued) {
      _queue.emplace_back(std::move(channel), std::move(payload));
      _warned_full = false;
      _wake.notify_one();
      return true;
    }
    if (!_stopping && !_warned_full) {
      _warned_full = true;
      spdlog::warn("system events: queue of {} full; dropping events for {} until it drains", _max_queued,
                   channel);
    }
  }
  _dropped.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void system_publisher::stop() {
  {
    std::lock_guard lock(_mutex);
    _stopping = true;
  }
  _wake.notify_one();
  if (_thread.joinable()) _thread.join();
}

void system_publisher::run() {
  std::unique_lock lock(_mutex);
  while (true) {
    _wake.wait(lock, [this] { return _stopping || !_queue.empty(); });
    if (_queue.empty()) return;  // stopping and drained
    auto [channel, payload] = std::move(_queue.front());
    _queue.pop_front();
    lock.unlock();
    if (auto ok = _publish(channel, payload); ok) {
      _published.fetch_add(1, std::memory_order_relaxed);
    } else {
      _failed.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("system events: cannot publish on {}: {}", channel, ok.error());
    }
    lock.lock();
  }
}

}  // namespace switchboard::server
