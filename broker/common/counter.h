// Statistics counters written by one thread and read by any: a relaxed load+store, not a locked
// read-modify-write, because there is a single writer (document which thread on each counter).
#pragma once

#include <atomic>
#include <cstdint>

namespace switchboard::common {

inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// For gauges: the single writer lowers them again.
inline void lower(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
}

}  // namespace switchboard::common
