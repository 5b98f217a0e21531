// A bounded, lock-free single-producer/single-consumer ring buffer.
//
// Operation: `try_push` and `try_pop` never block and never allocate after construction. The
// capacity is rounded up to a power of two. Each side caches the other side's index so that the
// common case touches only its own cache line.
// Concurrency: exactly one producer thread calls try_push and exactly one consumer thread calls
// try_pop / empty_for_consumer; `approx_size` may be called from anywhere (a hint only).
// Limitations: a full queue makes try_push fail; the caller decides whether to wait or shed.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <memory>
#include <new>
#include <optional>
#include <utility>

namespace switchboard::common {

template <typename T>
class spsc_queue {
 public:
  explicit spsc_queue(std::size_t capacity)
      : _mask(std::bit_ceil(capacity < 2 ? std::size_t{2} : capacity) - 1),
        _slots(std::make_unique<std::optional<T>[]>(_mask + 1)) {}

  spsc_queue(const spsc_queue&) = delete;
  spsc_queue& operator=(const spsc_queue&) = delete;

  // Producer only. On success `value` is moved from; on failure (full) it is left intact.
  [[nodiscard]] bool try_push(T& value) {
    const std::size_t tail = _tail.load(std::memory_order_relaxed);
    if (tail - _head_cache > _mask) {
      _head_cache = _head.load(std::memory_order_acquire);
      if (tail - _head_cache > _mask) return false;
    }
    _slots[tail & _mask].emplace(std::move(value));
    // seq_cst (not just release): see empty().
    _tail.store(tail + 1, std::memory_order_seq_cst);
    return true;
  }
  [[nodiscard]] bool try_push(T&& value) { return try_push(value); }

  // Consumer only. An empty optional when the queue is empty.
  [[nodiscard]] std::optional<T> try_pop() {
    const std::size_t head = _head.load(std::memory_order_relaxed);
    if (head == _tail_cache) {
      _tail_cache = _tail.load(std::memory_order_acquire);
      if (head == _tail_cache) return std::nullopt;
    }
    auto& slot = _slots[head & _mask];
    std::optional<T> out(std::move(*slot));
    slot.reset();
    _head.store(head + 1, std::memory_order_release);
    return out;
  }

  // Any thread: true when nothing is queued at the moment of the call. The push's store and this
  // load are sequentially consistent, so a consumer that announces it is going idle (a seq_cst
  // store) and then sees empty() cannot miss a push whose producer then checks the announcement
  // (a seq_cst load): one of the two always sees the other. This is the idle/wake protocol.
  [[nodiscard]] bool empty() const noexcept {
    return _head.load(std::memory_order_seq_cst) == _tail.load(std::memory_order_seq_cst);
  }
  [[nodiscard]] std::size_t approx_size() const noexcept {
    return _tail.load(std::memory_order_relaxed) - _head.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return _mask + 1; }

 private:
  static constexpr std::size_t line = 64;
  const std::size_t _mask;
  std::unique_ptr<std::optional<T>[]> _slots;
  alignas(line) std::atomic<std::size_t> _head{0};  // written by the consumer
  std::size_t _tail_cache = 0;                       // consumer's copy of _tail
  alignas(line) std::atomic<std::size_t> _tail{0};  // written by the producer
  std::size_t _head_cache = 0;                       // producer's copy of _head
};

}  // namespace switchboard::common
