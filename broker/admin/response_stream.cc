#include "broker/admin/response_stream.h"

#include <utility>

namespace switchboard::admin {

response_stream::response_stream(std::size_t max_queued_bytes) : _max_queued_bytes(max_queued_bytes) {}

response_stream::push_result response_stream::push(std::string chunk) {
  std::function<void()> wake;
  {
    const std::lock_guard lock(_mutex);
    if (_closing || _ended) return push_result::closed;
    if (chunk.empty()) return push_result::queued;
    if (_queued_bytes + chunk.size() > _max_queued_bytes) return push_result::full;
    _queued_bytes += chunk.size();
    _queue.push_back(std::move(chunk));
    if (_wake && !_wake_pending) {
      _wake_pending = true;
      wake = _wake;
    }
  }
  if (wake) wake();
  return push_result::queued;
}

void response_stream::close() {
  std::function<void()> wake;
  {
    const std::lock_guard lock(_mutex);
    if (_closing || _ended) return;
    _closing = true;
    if (_wake && !_wake_pending) {
      _wake_pending = true;
      wake = _wake;
    }
  }
  if (wake) wake();
}

bool response_stream::is_open() const {
  const std::lock_guard lock(_mutex);
  return !_closing && !_ended;
}

void response_stream::on_close(std::function<void()> fn) {
  {
    const std::lock_guard lock(_mutex);
    if (!_ended) {
      _on_close = std::move(fn);
      return;
    }
  }
  if (fn) fn();
}

namespace detail {

void stream_attachment::attach(response_stream& s, std::function<void()> wake) {
  std::function<void()> now;
  {
    const std::lock_guard lock(s._mutex);
    if (s._ended) return;
    s._wake = std::move(wake);
    if ((!s._queue.empty() || s._closing) && !s._wake_pending) {
      s._wake_pending = true;
      now = s._wake;
    }
  }
  if (now) now();
}

stream_attachment::batch stream_attachment::take(response_stream& s) {
  const std::lock_guard lock(s._mutex);
  batch b;
  b.chunks.swap(s._queue);
  s._queued_bytes = 0;
  b.closing = s._closing;
  s._wake_pending = false;
  return b;
}

void stream_attachment::end(response_stream& s) {
  std::function<void()> fn;
  {
    const std::lock_guard lock(s._mutex);
    if (s._ended) return;
    s._ended = true;
    s._queue.clear();
    s._queued_bytes = 0;
    s._wake = nullptr;
    fn = std::move(s._on_close);
    s._on_close = nullptr;
  }
  if (fn) fn();
}

}  // namespace detail
}  // namespace switchboard::admin
