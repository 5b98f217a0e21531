#include "broker/transport/channel_views.h"

namespace switchboard::transport {

void channel_views::trim(std::chrono::steady_clock::time_point now) {
  if (now < _next_trim) return;
  _next_trim = now + std::chrono::seconds(10);
  if (_views.size() <= 1024) return;
  _views = {};  // also frees the bucket array, which clear() keeps
  _last = nullptr;
}

const channel_view& channel_views::of(std::string_view channel) {
  static const channel_view defaults{};
  if (_policies == nullptr) return defaults;
  const auto generation = _policies->generation();
  if (generation != _generation) {
    _views.clear();
    _last = nullptr;
    _generation = generation;
  }
  if (_last != nullptr && channel == _last->first) return _last->second;
  auto it = _views.find(channel);
  if (it == _views.end()) {
    const auto eff = _policies->snapshot()->effective(channel);
    channel_view v;
    v.permissions = eff.config.permissions.value_or(channels::permission_lists{});
    v.durable = eff.config.durable.value_or(false);
    v.conflate_key = eff.config.conflate_key.value_or(std::string());
    switch (eff.config.slow_consumer.value_or(channels::slow_consumer_policy::disconnect)) {
      case channels::slow_consumer_policy::disconnect: v.policy = overflow_policy::disconnect; break;
      case channels::slow_consumer_policy::drop_oldest: v.policy = overflow_policy::drop_oldest; break;
      case channels::slow_consumer_policy::conflate: v.policy = overflow_policy::conflate; break;
      case channels::slow_consumer_policy::spill: v.policy = overflow_policy::spill; break;
    }
    if (_views.size() >= max_views) _views.clear();  // a cache: memory follows channels in use
    it = _views.emplace(std::string(channel), std::move(v)).first;
  }
  _last = &*it;
  return it->second;
}

}  // namespace switchboard::transport
