// What the transport needs of a channel's effective configuration (permissions, slow-consumer
// policy, conflate key, durability), resolved from the config registry and cached per config
// generation: one registry resolution per channel per generation, and a one-entry cache for the
// common run of records on one channel.
//
// Limitations: the cache holds one entry per channel seen in the current generation, at most
// max_views (then it starts over); it is cleared whenever any config changes.
// Concurrency: one owning thread (the transport's); the registry itself is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "broker/channels/config_registry.h"
#include "broker/common/string_map.h"
#include "broker/transport/backlog.h"

namespace switchboard::transport {

struct channel_view {
  channels::permission_lists permissions;
  overflow_policy policy = overflow_policy::disconnect;
  std::string conflate_key;
  bool durable = false;
};

class channel_views {
 public:
  // `policies` may be null (no per-channel configuration: every channel gets the defaults); it
  // must outlive this object.
  explicit channel_views(const channels::config_registry* policies) : _policies(policies) {}

  // The view of `channel`; valid until the next call.
  [[nodiscard]] const channel_view& of(std::string_view channel);
  // Housekeeping (the owning thread, about every 100 ms): every 10 s, a cache grown beyond 1024
  // channels is released, so a burst of channels (a million calls) does not keep its memory; hot
  // channels are resolved again once.
  void trim(std::chrono::steady_clock::time_point now);
  // The channel's permission lists, or null when there is no configuration at all.
  [[nodiscard]] const channels::permission_lists* permissions_of(std::string_view channel) {
    return _policies == nullptr ? nullptr : &of(channel).permissions;
  }

 private:
  static constexpr std::size_t max_views = 1 << 16;
  std::chrono::steady_clock::time_point _next_trim{};
  const channels::config_registry* _policies;
  common::string_map<channel_view> _views;
  const std::pair<const std::string, channel_view>* _last = nullptr;
  std::uint64_t _generation = ~std::uint64_t{0};
};

}  // namespace switchboard::transport
