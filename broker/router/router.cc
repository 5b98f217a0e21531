#include "broker/router/router.h"

#include <algorithm>
#include <chrono>

#include "broker/router/shard.h"
#include "broker/router/topic.h"

namespace switchboard::router {

router::router(router_options opts) : _opts(opts) {
  if (_opts.shards == 0) _opts.shards = 1;
  for (unsigned i = 0; i < _opts.shards; ++i) _shards.push_back(std::make_unique<shard>(*this, i));
}

router::~router() { stop(); }

router::producer& router::add_producer() {
  auto p = std::make_unique<producer>();
  p->_router = this;
  p->_index = static_cast<unsigned>(_producers.size());
  for (auto& s : _shards) s->add_inbound(_opts.queue_capacity);
  _producers.push_back(std::move(p));
  return *_producers.back();
}

bool router::producer::try_submit(unsigned shard, command& cmd) {
  return _router->_shards[shard]->try_submit(_index, cmd);
}

void router::start(std::function<void()> wake_consumer) {
  _wake_consumer = std::move(wake_consumer);
  // Each shard publishes routed events (route, publish_to_parent) on other shards' channels
  // through a producer of its own, so the router stays single-producer per queue.
  if (_shards.size() > 1) {
    for (auto& s : _shards) s->set_peer_producer(&add_producer());
  }
  for (auto& s : _shards) s->start(!_opts.inline_shards);
  _started = true;
}

void router::stop() {
  if (!_started) return;
  _started = false;
  for (auto& s : _shards) s->stop();
}

unsigned router::shards() const noexcept { return static_cast<unsigned>(_shards.size()); }

unsigned router::shard_of(std::string_view channel) const noexcept {
  return _shards.size() == 1 ? 0 : ::switchboard::router::shard_of(channel, shards());
}

std::optional<outbound> router::try_take(unsigned shard) { return _shards[shard]->try_take(); }

bool router::quiescent() const noexcept {
  return std::ranges::all_of(_shards, [](const auto& s) { return s->quiescent(); });
}

bool router::poll() {
  bool worked = false;
  for (auto& s : _shards) worked = s->step() || worked;
  return worked;
}

bool router::consumer_try_idle() {
  _consumer_idle.store(true, std::memory_order_seq_cst);
  for (auto& s : _shards) {
    if (s->has_output() || (_opts.inline_shards && s->has_work())) {
      _consumer_idle.store(false, std::memory_order_relaxed);
      return false;
    }
  }
  return true;
}

void router::consumer_awake() noexcept { _consumer_idle.store(false, std::memory_order_relaxed); }

void router::notify_consumer() {
  if (_consumer_idle.load(std::memory_order_seq_cst) && _consumer_idle.exchange(false)) _wake_consumer();
}

shard_stats router::snapshot() const {
  shard_stats total;
  for (const auto& s : _shards) {
    const auto one = s->snapshot();
    total.published += one.published;
    total.delivered += one.delivered;
    total.channels += one.channels;
    total.channels_expired += one.channels_expired;
    total.durable_open += one.durable_open;
    total.pipeline_rejected += one.pipeline_rejected;
    total.routed += one.routed;
    total.route_refused += one.route_refused;
    total.parent_deliveries += one.parent_deliveries;
    total.delegated += one.delegated;
    total.delegate_dropped += one.delegate_dropped;
    total.webhooks += one.webhooks;
    total.filtered += one.filtered;
    total.delegate_pending += one.delegate_pending;
  }
  // Every shard holds every subscription (patterns may match any shard's channels): count once.
  total.subscriptions = _shards.front()->snapshot().subscriptions;
  return total;
}

shard_stats router::shard_snapshot(unsigned shard) const { return _shards.at(shard)->snapshot(); }

std::string router::latency_metrics() const {
  std::vector<const common::histogram<common::latency_bounds_s.size()>*> parts;
  for (const auto& s : _shards) parts.push_back(&s->latency());
  return common::histogram<common::latency_bounds_s.size()>::render(
      "switchboard_publish_deliver_seconds",
      "Publish to deliver latency (accept to the EVENT queued for the network; durable: after the group commit), "
      "sampled one event in 64.",
      parts);
}

std::uint64_t router::stalled_ns() const {
  const auto now = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                  std::chrono::steady_clock::now().time_since_epoch())
                                                  .count());
  std::uint64_t worst = 0;
  for (const auto& s : _shards) worst = std::max(worst, s->stalled_ns(now));
  return worst;
}

}  // namespace switchboard::router
