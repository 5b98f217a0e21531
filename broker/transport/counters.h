// The transport's counters: written by the transport thread only (single writer, relaxed), read
// by transport::snapshot() from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace switchboard::transport {

struct transport_counters {
  std::atomic<std::uint64_t> delivered{0}, bad_frames{0}, rejected_events{0}, reaped{0}, slow_drops{0},
      slow_disconnects{0}, connections{0}, queued_events{0}, slow_conflated{0}, slow_spilled{0}, spills{0};
  // Message bodies read from clients and handed to ZeroMQ for them (records, not ZMTP framing).
  std::atomic<std::uint64_t> bytes_in{0}, bytes_out{0};
};

}  // namespace switchboard::transport
