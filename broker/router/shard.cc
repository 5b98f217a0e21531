#include "broker/router/shard.h"

#include <fmt/format.h>
#include <switchboard/protocol.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace switchboard::router {

namespace proto = switchboard::protocol;
using common::bump;
using common::lower;

namespace {
constexpr std::size_t max_in_flight_batches = 4096;
}

shard::shard(router& owner, unsigned index)
    : _owner(owner),
      _index(index),
      _outbound(owner.options().queue_capacity),
      _completions(2 * max_in_flight_batches),
      _opened(4096) {}

void shard::add_inbound(std::size_t capacity) {
  _inbound.push_back(std::make_unique<common::spsc_queue<command>>(capacity));
}

void shard::start(bool threaded) {
  _threaded = threaded;
  if (threaded) _thread = std::jthread([this](std::stop_token st) { run(st); });
}

void shard::stop() {
  if (!_threaded) return;  // the consumer thread drives the shard until router::quiescent()
  if (!_thread.joinable()) return;
  _thread.request_stop();
  wake();
  _thread.join();
}

void shard::wake() noexcept {
  if (!_threaded) {
    _owner.notify_consumer();
    return;
  }
  _wake.fetch_add(1, std::memory_order_seq_cst);
  _wake.notify_one();
}

bool shard::try_submit(unsigned producer, command& cmd) {
  if (!_inbound[producer]->try_push(cmd)) return false;
  if (!_threaded || _idle.load(std::memory_order_seq_cst)) wake();
  return true;
}

std::optional<outbound> shard::try_take() {
  if (_threaded) return _outbound.try_pop();
  if (_inline_out.empty()) return std::nullopt;
  std::optional<outbound> o(std::move(_inline_out.front()));
  _inline_out.pop_front();
  return o;
}

bool shard::has_output() const noexcept { return _threaded ? !_outbound.empty() : !_inline_out.empty(); }

bool shard::quiescent() const noexcept {
  return !has_work() && _in_flight.empty() && _opens_pending == 0 && _delegates_pending == 0 && !has_output();
}

bool shard::has_work() const noexcept {
  return !_completions.empty() || !_opened.empty() || !_building.items.empty() || !_route_overflow.empty() ||
         _has_answers.load(std::memory_order_acquire) ||
         std::ranges::any_of(_inbound, [](const auto& q) { return !q->empty(); });
}

shard_stats shard::snapshot() const noexcept {
  return {.published = _published.load(std::memory_order_relaxed),
          .delivered = _delivered.load(std::memory_order_relaxed),
          .channels = _channel_count.load(std::memory_order_relaxed),
          .subscriptions = _subscription_count.load(std::memory_order_relaxed),
          .channels_expired = _expired.load(std::memory_order_relaxed),
          .durable_open = _durable_open.load(std::memory_order_relaxed),
          .pipeline_rejected = _pipeline_rejected.load(std::memory_order_relaxed),
          .routed = _routed.load(std::memory_order_relaxed),
          .route_refused = _route_refused.load(std::memory_order_relaxed),
          .parent_deliveries = _parent_deliveries.load(std::memory_order_relaxed),
          .delegated = _delegated.load(std::memory_order_relaxed),
          .delegate_dropped = _delegate_dropped.load(std::memory_order_relaxed),
          .webhooks = _webhooks.load(std::memory_order_relaxed),
          .filtered = _filtered.load(std::memory_order_relaxed),
          .delegate_pending = _delegate_pending.load(std::memory_order_relaxed),
          .queue_depth = [this] {
            std::uint64_t n = 0;
            for (const auto& q : _inbound) n += q->approx_size();
            return n;
          }()};
}

std::uint64_t shard::stalled_ns(std::uint64_t now_ns) const noexcept {
  const std::uint64_t last = _progress_ns.load(std::memory_order_relaxed);
  if (last == 0 || now_ns <= last) return 0;
  const bool queued = std::ranges::any_of(_inbound, [](const auto& q) { return q->approx_size() > 0; });
  return queued ? now_ns - last : 0;
}

// Pops and handles queued commands (bounded per queue per call) and applies log completions;
// hands output over every `flush_every` commands. True if anything was done.
namespace {
std::uint64_t steady_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}
std::uint64_t wall_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}
}  // namespace

bool shard::drain_inputs() {
  constexpr int flush_every = 16;  // commands between hand-overs under sustained load
  _progress_ns.store(steady_ns(), std::memory_order_relaxed);
  bool worked = finish_opens();
  worked |= finish_durable();
  worked |= finish_delegates();
  worked |= flush_routes();
  if (const auto* p = _owner.options().policies) _policy_generation = p->generation();
  int since_flush = 0;
  for (auto& q : _inbound) {
    for (int i = 0; i < flush_every; ++i) {
      auto cmd = q->try_pop();
      if (!cmd) break;
      handle(*cmd);
      worked = true;
      if (++since_flush >= flush_every) {
        submit_durable();
        flush_dirty();
        since_flush = 0;
      }
    }
  }
  return worked;
}

bool shard::step() {
  bool worked = false;
  while (drain_inputs()) worked = true;
  submit_durable();
  flush_dirty();
  if (auto* hooks = _owner.options().hooks; hooks != nullptr && worked) hooks->idle(_index);
  if (!has_work()) _progress_ns.store(0, std::memory_order_relaxed);  // idle: not stalled
  return worked;
}

void shard::run(std::stop_token st) {
  std::stop_callback on_stop(st, [this] { wake(); });
  for (;;) {
    if (drain_inputs()) continue;
    submit_durable();
    flush_dirty();
    const bool durable_idle =
        _in_flight.empty() && _building.items.empty() && _opens_pending == 0 && _delegates_pending == 0;
    if (st.stop_requested() && durable_idle) return;  // everything submitted was processed
    if (auto* hooks = _owner.options().hooks) hooks->idle(_index);
    const auto seen = _wake.load(std::memory_order_seq_cst);
    _idle.store(true, std::memory_order_seq_cst);
    const bool empty = _completions.empty() && _opened.empty() && !_has_answers.load(std::memory_order_seq_cst) &&
                       std::ranges::all_of(_inbound, [](const auto& q) { return q->empty(); });
    // A batch the log refused (overloaded) and routed events a full queue refused are retried
    // without sleeping.
    if (empty && _building.items.empty() && _route_overflow.empty() && !(st.stop_requested() && durable_idle)) {
      _progress_ns.store(0, std::memory_order_relaxed);  // asleep: not stalled
      _wake.wait(seen, std::memory_order_seq_cst);
    } else if (!_building.items.empty() || !_route_overflow.empty()) {
      std::this_thread::yield();
    }
    _idle.store(false, std::memory_order_relaxed);
  }
}

void shard::handle(command& cmd) {
  std::visit(
      [this](auto& c) {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, publish_batch>) {
          publish(c);
        } else if constexpr (std::is_same_v<T, direct_publish>) {
          publish_direct(c);
        } else if constexpr (std::is_same_v<T, subscribe_command>) {
          subscribe(c);
        } else if constexpr (std::is_same_v<T, unsubscribe_command>) {
          unsubscribe(c);
        } else if constexpr (std::is_same_v<T, drop_connection>) {
          drop(c.conn);
        } else if constexpr (std::is_same_v<T, stats_query>) {
          report_stats(c);
        } else if constexpr (std::is_same_v<T, wipe_history>) {
          wipe(c);
        } else if constexpr (std::is_same_v<T, expire_idle>) {
          expire(c.now_ns);
        } else if constexpr (std::is_same_v<T, routed_publish>) {
          auto owner = std::make_shared<routed_publish>(std::move(c));
          accept(owner->channel, {}, owner->payload, owner->time_ns, owner, ack_target{}, owner.get());
        } else if constexpr (std::is_same_v<T, drop_report>) {
          for (auto [serial, n] : c.tally) {
            if (auto it = _by_serial.find(serial); it != _by_serial.end()) it->second->dropped += n;
          }
        } else {
          submit_durable();
          flush_dirty();
          push_outbound(outbound{.conn = c.conn, .bytes = {}, .events = 0, .droppable = true,
                                 .barrier_token = c.token, .tally = {}});
        }
      },
      cmd);
}

shard::channel_state& shard::channel(std::string_view name) {
  if (_last_state != nullptr && name == _last_channel) return *_last_state;
  auto it = _channels.find(name);
  if (it == _channels.end()) {
    it = _channels.emplace(std::string(name), channel_state{}).first;
    channel_state& ch = it->second;
    ch.name = it->first;
    ch.serial = _next_serial++;
    // A new in-memory history. Until this shard first expired a channel it can only be the
    // channel's first since the start (the broker's epoch); after that it may be a channel coming
    // back, whose old (epoch, seq) pairs must not be reused: an epoch derived from the expiry
    // generation, which a later incarnation of the same channel never shares.
    ch.epoch = _owner.options().epoch;
    if (_expiry_generation != 0) {
      std::uint64_t z = ch.epoch + 0x9e3779b97f4a7c15ULL * (_expiry_generation * 64 + _index + 1);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      z ^= z >> 31;
      ch.epoch = (z == 0 || z == _owner.options().epoch) ? z + 1 : z;
    }
    _by_serial.emplace(ch.serial, &ch);
    if (_owner.options().channel_idle_ns != 0) _expiry_queue.emplace_back(ch.serial, 0);
    bump(_channel_count);
  }
  _last_channel = it->first;
  _last_state = &it->second;
  return it->second;
}

void shard::refresh_policy(channel_state& ch) {
  const auto& opts = _owner.options();
  if (opts.policies == nullptr) {
    if (ch.policy_generation == 0) return;
    ch.policy = channel_policy{};
    ch.policy.slow = opts.default_slow;
    ch.policy.max_payload_bytes = opts.max_payload_bytes;
    ch.policy_generation = 0;
    return;
  }
  if (ch.policy_generation == _policy_generation) return;
  ch.policy = opts.policies->lookup(ch.name);
  ch.policy_generation = _policy_generation;
  ch.generation = ~std::uint64_t{0};  // permissions may have changed: rebuild the subscriber list
  if (ch.policy.durable && ch.log_id == 0 && opts.log != nullptr && !ch.opening) {
    // A dedupe window survives a restart (and an expiry): rebuilt from the keys the log holds.
    std::uint64_t keys_since = 0;
    if (ch.policy.dedupe_window_ns != 0) {
      const auto now = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                      std::chrono::system_clock::now().time_since_epoch())
                                                      .count());
      keys_since = now > ch.policy.dedupe_window_ns ? now - ch.policy.dedupe_window_ns : 1;
    }
    // Opening may need synced writes (a new history): the engine does it on its own thread and
    // the channel's publishes wait in `held` meanwhile; the shard keeps serving everything else.
    ch.opening = true;
    ++_opens_pending;
    opts.log->open_async(std::string(ch.name), keys_since,
                         [this, serial = ch.serial](std::expected<event_log::position, std::string> r) {
                           opened_log o{serial, std::move(r)};
                           while (!_opened.try_push(o)) std::this_thread::yield();
                           if (!_threaded || _idle.load(std::memory_order_seq_cst)) wake();
                         });
  }
}

// Keeps a publish until the channel's log is open (or wiped); drop() can still find its ack.
void shard::hold(channel_state& ch, std::string_view key, std::string_view payload, std::uint64_t time_ns,
                 const std::shared_ptr<const void>& owner, ack_target&& ack, const routed_publish* routed) {
  if (ch.held.empty()) {
    if (_holding.size() >= 1024) {  // prune channels that replayed since (amortised O(1))
      std::erase_if(_holding, [&](std::uint64_t serial) {
        auto it = _by_serial.find(serial);
        return it == _by_serial.end() ||
               (it->second->held.empty() && (!it->second->pending || it->second->pending->empty()));
      });
    }
    _holding.push_back(ch.serial);
  }
  ch.held.push_back(channel_state::held_publish{key, payload, time_ns, owner, std::move(ack), routed});
}

// Applies logs the engine opened: the channel continues its history, then its held publishes run.
bool shard::finish_opens() {
  bool any = false;
  while (auto o = _opened.try_pop()) {
    any = true;
    --_opens_pending;
    auto it = _by_serial.find(o->serial);
    if (it != _by_serial.end()) finish_open(*it->second, o->result);  // (an opening channel never expires)
  }
  return any;
}

void shard::finish_open(channel_state& ch, std::expected<event_log::position, std::string>& result) {
  ch.opening = false;
  auto held = std::move(ch.held);
  ch.held.clear();
  if (!result) {
    // Without a log the channel cannot keep its promise: refuse what waited; the next publish
    // tries to open it again.
    ch.policy_generation = ~std::uint64_t{0};
    const std::string message = fmt::format("the event log of channel \"{}\" could not be opened: {}", ch.name,
                                            result.error());
    for (auto& h : held) refuse(h.ack, "store_failed", message);
    auto wipes = std::move(ch.wipes);
    ch.wipes.clear();
    for (auto& w : wipes) w->set_value(wipe_reply{.epoch = 0, .error_code = "store_failed", .error_message = message});
    return;
  }
  auto& pos = *result;
  ch.log_id = pos.log_id;
  bump(_durable_open);
  ch.epoch = pos.epoch;
  ch.seq = std::max(ch.seq, pos.last_seq);
  ch.synced_seq = ch.seq;
  if (!pos.recent_keys.empty()) {
    if (!ch.dedupe) ch.dedupe = std::make_unique<dedupe_window>();
    for (auto& k : pos.recent_keys) {
      ch.dedupe->recent_keys.insert_or_assign(k.key, k.seq);
      ch.dedupe->key_times.push_back(dedupe_window::recent_key{.time_ns = k.time_ns, .seq = k.seq, .key = std::move(k.key)});
    }
  }
  if (!ch.wipes.empty()) {
    ch.held = std::move(held);  // a wipe asked while opening: it replays them in the new history
    if (ch.unsynced == 0) finish_wipe(ch);
    return;
  }
  for (auto& h : held) accept(ch.name, h.key, h.payload, h.time_ns, h.owner, std::move(h.ack), h.routed);
}

void shard::publish(const publish_batch& b) {
  const auto& opts = _owner.options();
  const unsigned shards = _owner.shards();
  proto::frame_reader reader(b.records);
  for (;;) {
    auto next = reader.next();
    if (!next || !*next) break;  // the producer validated the bytes; stop at the end
    const auto* pub = std::get_if<proto::publish>(&**next);
    if (pub == nullptr) continue;
    if (shards > 1 && shard_of(pub->channel, shards) != _index) continue;
    // Rejected records were answered with ERR by the producer; skip them here.
    if (!b.prevalidated && (pub->payload.size() > opts.max_payload_bytes || !validate_channel(pub->channel))) {
      continue;
    }
    accept(pub->channel, pub->key, pub->payload, b.time_ns, b.owner,
           ack_target{.conn = b.conn, .request_id = pub->request_id, .wanted = pub->ack_requested, .reply = {}});
  }
}

void shard::publish_direct(direct_publish& d) {
  // The strings live in a shared holder so a durable batch can keep them alive.
  auto owner = std::make_shared<direct_publish>(std::move(d));
  accept(owner->channel, owner->key, owner->payload, owner->time_ns, owner,
         ack_target{.conn = 0, .request_id = 0, .wanted = true, .reply = owner->reply});
}

void shard::accept(std::string_view name, std::string_view key, std::string_view payload, std::uint64_t time_ns,
                   const std::shared_ptr<const void>& owner, ack_target&& ack, const routed_publish* routed) {
  channel_state& ch = channel(name);
  if (!ch.wipes.empty()) {  // numbered in the new history once the wipe is done
    hold(ch, key, payload, time_ns, owner, std::move(ack), routed);
    return;
  }
  refresh_policy(ch);
  if (ch.opening) {  // numbered once the engine has opened the log
    hold(ch, key, payload, time_ns, owner, std::move(ack), routed);
    return;
  }
  if (ch.policy_generation == ~std::uint64_t{0}) {
    refuse(ack, "store_failed", fmt::format("the event log of channel \"{}\" could not be opened", name));
    return;
  }
  if (payload.size() > ch.policy.max_payload_bytes) {
    ++ch.dropped;
    refuse(ack, "payload_too_large",
           fmt::format("payload of {} bytes on channel \"{}\" exceeds the limit of {} bytes", payload.size(), name,
                       ch.policy.max_payload_bytes));
    return;
  }
  ch.last_active_ns = std::max(ch.last_active_ns, time_ns);
  if (!key.empty() && ch.policy.dedupe_window_ns > 0 && dedupe(ch, key, time_ns, ack, owner)) return;
  const bool as_parent = routed != nullptr && routed->as_parent;
  if (ch.policy.pipeline && !as_parent) {
    pipeline_event e;
    e.pipe = ch.policy.pipeline;
    e.key = key;
    e.payload = payload;
    e.owner = owner;
    e.time_ns = time_ns;
    e.ack = std::move(ack);
    if (routed != nullptr) e.routed = std::static_pointer_cast<const routed_publish>(owner);
    start_pipeline(ch, std::move(e));
    return;
  }
  if (as_parent) bump(_parent_deliveries);
  (void)commit(ch, key, payload, time_ns, owner, std::move(ack));
}

std::uint64_t shard::commit(channel_state& ch, std::string_view key, std::string_view payload, std::uint64_t time_ns,
                            const std::shared_ptr<const void>& owner, ack_target&& ack) {
  const std::uint64_t seq = ++ch.seq;
  ++ch.published;
  bump(_published);
  if (!key.empty() && ch.policy.dedupe_window_ns > 0) {
    if (!ch.dedupe) ch.dedupe = std::make_unique<dedupe_window>();
    ch.dedupe->recent_keys.insert_or_assign(std::string(key), seq);
    ch.dedupe->key_times.push_back(dedupe_window::recent_key{.time_ns = time_ns, .seq = seq, .key = std::string(key)});
  }
  if (!ch.policy.durable || ch.log_id == 0) {
    deliver(ch, seq, time_ns, payload);
    acknowledge(ack, ch, seq, false);
    return seq;
  }
  if (_building.owners.empty() || _building.owners.back() != owner) _building.owners.push_back(owner);
  _building.entries.push_back(
      event_log::entry{.log_id = ch.log_id, .seq = seq, .time_ns = time_ns, .key = key, .payload = payload});
  _building.items.push_back(durable_item{.ch = &ch, .seq = seq, .time_ns = time_ns, .key = key, .payload = payload,
                                        .ack = std::move(ack), .ack_only = false});
  ++ch.unsynced;
  if (_building.items.size() >= _owner.options().max_durable_batch) submit_durable();
  return seq;
}

// True when `key` was seen inside the window: the publish is acknowledged with the first seq.
bool shard::dedupe(channel_state& ch, std::string_view key, std::uint64_t time_ns, const ack_target& ack,
                   const std::shared_ptr<const void>& owner) {
  if (!ch.dedupe) return false;
  auto& window = *ch.dedupe;
  while (!window.key_times.empty() && window.key_times.front().time_ns + ch.policy.dedupe_window_ns < time_ns) {
    const auto& old = window.key_times.front();
    if (auto it = window.recent_keys.find(old.key); it != window.recent_keys.end() && it->second == old.seq) {
      window.recent_keys.erase(it);
    }
    window.key_times.pop_front();
  }
  auto it = window.recent_keys.find(key);
  if (it == window.recent_keys.end()) return false;
  if (ch.policy.durable && ch.log_id != 0 && it->second > ch.synced_seq) {
    // The first publish is not synced yet: acknowledge the duplicate right after it.
    if (_building.owners.empty() || _building.owners.back() != owner) _building.owners.push_back(owner);
    _building.items.push_back(durable_item{.ch = &ch, .seq = it->second, .time_ns = time_ns, .key = key, .payload = {},
                                        .ack = ack, .ack_only = true});
    ++ch.unsynced;
    return true;
  }
  acknowledge(ack, ch, it->second, true);
  return true;
}

// The channel's subscribers: every matching subscription whose principal may subscribe to it.
void shard::rebuild_matches(channel_state& ch) {
  const auto& allow = ch.policy.subscribe_allow;
  const bool anyone = std::ranges::find(allow, "*") != allow.end();
  ch.matches.clear();
  _trie.match(ch.name, [&](subscriber* s) {
    if (anyone || std::ranges::find(allow, s->tenant) != allow.end() ||
        std::ranges::find(allow, s->principal) != allow.end()) {
      ch.matches.push_back(s);
    }
  });
  ch.generation = _generation;
}

void shard::deliver(channel_state& ch, std::uint64_t seq, std::uint64_t time_ns, std::string_view payload) {
  const auto& opts = _owner.options();
  if (ch.generation != _generation) rebuild_matches(ch);
  if (!ch.matches.empty() && (++_latency_sample & 63) == 0) {
    const std::uint64_t now = wall_ns();
    _latency.observe(now > time_ns ? static_cast<double>(now - time_ns) / 1e9 : 0.0);
  }
  std::size_t delivered = 0;
  for (subscriber* s : ch.matches) {
    if (s->filter && !s->filter->matches(payload, _cx)) {
      bump(_filtered);
      continue;
    }
    ++delivered;
    connection_out& out = *s->out;
    proto::frame_writer(out.buf).write(proto::event{
        .sub_id = s->sub_id, .epoch = ch.epoch, .seq = seq, .time_ns = time_ns, .channel = ch.name, .payload = payload});
    ++out.events;
    if (out.tally.empty() || out.tally.back().first != ch.serial) {
      out.tally.emplace_back(ch.serial, 1);
    } else {
      ++out.tally.back().second;
    }
    const auto policy = s->policy_explicit ? s->policy : ch.policy.slow;
    out.droppable = out.droppable && policy == slow_policy::drop_oldest;
    mark_dirty(out);
    if (out.buf.size() >= opts.flush_bytes) flush(out);
  }
  ch.delivered += delivered;
  bump(_delivered, delivered);
}

void shard::acknowledge(const ack_target& ack, const channel_state& ch, std::uint64_t seq, bool duplicate) {
  if (!ack.wanted) return;
  if (ack.reply) {
    ack.reply->set_value(publish_reply{.epoch = ch.epoch, .seq = seq, .duplicate = duplicate, .error_code = {},
                                       .error_message = {}});
    return;
  }
  connection_out& out = out_for(ack.conn);
  proto::frame_writer(out.buf).write(proto::puback{.request_id = ack.request_id, .epoch = ch.epoch, .seq = seq});
  mark_dirty(out);
  if (out.buf.size() >= _owner.options().flush_bytes) flush(out);
}

void shard::refuse(const ack_target& ack, std::string_view code, std::string_view message) {
  if (ack.reply) {
    ack.reply->set_value(publish_reply{.epoch = 0, .seq = 0, .duplicate = false, .error_code = std::string(code),
                                       .error_message = std::string(message)});
    return;
  }
  if (ack.conn == 0) return;
  connection_out& out = out_for(ack.conn);
  proto::frame_writer(out.buf).write(proto::error{.ref = ack.request_id, .code = code, .message = message});
  mark_dirty(out);
}

void shard::submit_durable() {
  if (_building.items.empty() || _in_flight.size() >= max_in_flight_batches) return;
  auto* log = _owner.options().log;
  event_log::completion done = [this](std::expected<void, event_log::log_error> result) {
    // Runs on the log's thread, the only producer of _completions.
    while (!_completions.try_push(result)) std::this_thread::yield();
    if (!_threaded || _idle.load(std::memory_order_seq_cst)) wake();
  };
  if (_building.entries.empty()) {
    // Only acknowledgements of duplicates: they wait for the batches before them.
    if (_in_flight.empty()) {
      for (auto& item : _building.items) {
        --item.ch->unsynced;
        if (item.first_failed) {
          refuse(item.ack, "store_failed", "event not stored: the first publish with this idempotency key failed");
        } else {
          acknowledge(item.ack, *item.ch, item.seq, true);
        }
      }
      _building = durable_batch{};
      return;
    }
    auto& last = _in_flight.back();
    for (auto& item : _building.items) last.items.push_back(std::move(item));
    for (auto& o : _building.owners) last.owners.push_back(std::move(o));
    _building = durable_batch{};
    return;
  }
  if (auto queued = log->append(_building.entries, done); !queued) {
    if (queued.error().retry) return;  // overloaded: retried from run()
    // The log will not take it (e.g. stopping): refuse the publishes rather than retry forever.
    // Batches already in flight complete first, so acknowledgements keep their order.
    if (!_in_flight.empty()) return;
    durable_batch failed = std::move(_building);
    _building = durable_batch{};
    fail_durable(failed, queued.error());
    return;
  }
  _in_flight.push_back(std::move(_building));
  _building = durable_batch{};
}

// Refuses every publish of a batch the log did not store. Their idempotency keys are forgotten,
// so a retry with the same key is stored rather than answered with a seq that holds nothing.
void shard::fail_durable(durable_batch& batch, const event_log::log_error& error) {
  const std::string message = fmt::format("event not stored: {}", error.message);
  for (auto& item : batch.items) {
    --item.ch->unsynced;
    if (!item.ack_only && !item.key.empty()) {
      if (auto* window = item.ch->dedupe.get()) {
        if (auto it = window->recent_keys.find(item.key); it != window->recent_keys.end() && it->second == item.seq) {
          window->recent_keys.erase(it);
        }
      }
      // Duplicates of it waiting in later batches must not be acknowledged with its seq.
      const auto mark = [&](durable_batch& later) {
        for (auto& dup : later.items) {
          if (dup.ack_only && dup.ch == item.ch && dup.seq == item.seq) dup.first_failed = true;
        }
      };
      for (auto& later : _in_flight) mark(later);
      mark(_building);
    }
    refuse(item.ack, error.code, message);
  }
  for (auto& item : batch.items) {
    if (!item.ch->wipes.empty() && item.ch->unsynced == 0) finish_wipe(*item.ch);
  }
}

void shard::wipe(wipe_history& w) {
  channel_state& ch = channel(w.channel);
  refresh_policy(ch);
  if (ch.opening) {  // answered once the log is open (finish_open)
    ch.wipes.push_back(std::move(w.reply));
    return;
  }
  auto* log = _owner.options().log;
  if (!ch.policy.durable || ch.log_id == 0 || log == nullptr) {
    w.reply->set_value(wipe_reply{.epoch = 0, .error_code = "not_found",
                                  .error_message = fmt::format("channel \"{}\" is not durable; it keeps no history", w.channel)});
    return;
  }
  ch.wipes.push_back(std::move(w.reply));
  submit_durable();
  if (ch.unsynced == 0) finish_wipe(ch);
}

// Runs once none of the channel's appends is queued or in flight, so the store holds every event
// of the old history and none can land after the wipe.
void shard::finish_wipe(channel_state& ch) {
  auto replies = std::move(ch.wipes);
  ch.wipes.clear();
  wipe_reply result;
  if (auto e = _owner.options().log->wipe(ch.log_id); e) {
    ch.epoch = *e;
    ch.seq = 0;
    ch.synced_seq = 0;
    ch.dedupe.reset();
    result.epoch = *e;
    if (const auto& listeners = _owner.options().sync_listeners; !listeners.empty()) {
      listeners[_index]->synced(ch.name, 0);
    }
  } else {
    result.error_code = e.error().code;
    result.error_message = e.error().message;
  }
  for (auto& r : replies) r->set_value(result);
  auto held = std::move(ch.held);
  ch.held.clear();
  for (auto& h : held) accept(ch.name, h.key, h.payload, h.time_ns, h.owner, std::move(h.ack), h.routed);
}

// Applies completed log batches: deliver, then acknowledge. True if any completed.
bool shard::finish_durable() {
  bool any = false;
  while (auto result = _completions.try_pop()) {
    any = true;
    durable_batch batch = std::move(_in_flight.front());
    _in_flight.pop_front();
    if (!*result) {
      fail_durable(batch, result->error());
      continue;
    }
    for (auto& item : batch.items) --item.ch->unsynced;
    std::vector<std::pair<channel_state*, std::uint64_t>> synced;  // highest seq per channel, in order
    for (auto& item : batch.items) {
      if (item.first_failed) {
        refuse(item.ack, "store_failed", "event not stored: the first publish with this idempotency key failed");
        continue;
      }
      if (!item.ack_only) {
        item.ch->synced_seq = std::max(item.ch->synced_seq, item.seq);
        deliver(*item.ch, item.seq, item.time_ns, item.payload);
        if (!synced.empty() && synced.back().first == item.ch) {
          synced.back().second = item.seq;
        } else {
          synced.emplace_back(item.ch, item.seq);
        }
      }
      acknowledge(item.ack, *item.ch, item.seq, item.ack_only);
    }
    if (const auto& listeners = _owner.options().sync_listeners; !listeners.empty()) {
      for (auto [ch, seq] : synced) listeners[_index]->synced(ch->name, seq);
    }
    for (auto& item : batch.items) {
      if (!item.ch->wipes.empty() && item.ch->unsynced == 0) finish_wipe(*item.ch);
    }
  }
  return any;
}

// A channel may leave memory when nothing refers to it: no subscriber, no configuration of its own
// (as of its cached policy: one configured since comes back with it on the next publish), nothing
// waiting for the log, no wipe in progress.
bool shard::may_expire(channel_state& ch) {
  if (ch.unsynced != 0 || ch.opening || !ch.wipes.empty() || !ch.held.empty() || ch.policy.configured ||
      (ch.pending && !ch.pending->empty())) {
    return false;
  }
  if (ch.generation != _generation) rebuild_matches(ch);
  return ch.matches.empty();
}

void shard::expire(std::uint64_t now_ns) {
  const std::uint64_t idle = _owner.options().channel_idle_ns;
  if (idle == 0) return;
  // Bounded per pass so one pass never stalls the shard (a burst of a million idle channels
  // leaves over the next passes).
  constexpr std::size_t max_examined = 65536;
  bool dropped = false;
  for (std::size_t n = 0; n < max_examined && !_expiry_queue.empty(); ++n) {
    const auto [serial, queued_ns] = _expiry_queue.front();
    if (queued_ns + idle > now_ns) break;  // the queue is in time order: the rest is younger
    _expiry_queue.pop_front();
    auto it = _by_serial.find(serial);
    if (it == _by_serial.end()) continue;
    channel_state& ch = *it->second;
    if (ch.last_active_ns + idle > now_ns || !may_expire(ch)) {
      _expiry_queue.emplace_back(serial, now_ns);  // look again one idle period from now
      continue;
    }
    if (_last_state == &ch) {
      _last_state = nullptr;
      _last_channel = {};
    }
    if (ch.log_id != 0) lower(_durable_open);
    _by_serial.erase(it);
    const std::string name(ch.name);  // ch.name views the key being erased
    _channels.erase(name);
    lower(_channel_count);
    bump(_expired);
    dropped = true;
  }
  if (!dropped) return;
  ++_expiry_generation;
  // Hash tables keep their bucket arrays after mass erasure (8 bytes per channel ever held, each):
  // shrink them once they are mostly empty, so memory follows the live channels.
  const auto shrink = [](auto& map) {
    if (map.bucket_count() > 1024 && map.size() < map.bucket_count() / 8) map.rehash(0);
  };
  shrink(_channels);
  shrink(_by_serial);
  if (_expiry_queue.empty()) _expiry_queue.shrink_to_fit();
}

shard::connection_out& shard::out_for(conn_id conn) {
  auto [it, inserted] = _conns.try_emplace(conn);
  if (inserted) it->second.conn = conn;
  return it->second;
}

void shard::subscribe(subscribe_command& c) {
  connection_out& out = out_for(c.conn);
  auto [it, inserted] = out.subs.try_emplace(c.sub_id);
  if (!inserted) return;  // the producer rejects duplicates; keep the first
  it->second = std::make_unique<subscriber>(subscriber{.conn = c.conn,
                                                       .sub_id = c.sub_id,
                                                       .policy = c.policy,
                                                       .policy_explicit = c.policy_explicit,
                                                       .pattern = std::move(c.pattern),
                                                       .out = &out,
                                                       .tenant = std::move(c.tenant),
                                                       .principal = std::move(c.principal),
                                                       .filter = std::move(c.filter)});
  (void)_trie.insert(it->second->pattern, it->second.get());
  ++_generation;
  bump(_subscription_count);
}

void shard::unsubscribe(const unsubscribe_command& c) {
  auto conn = _conns.find(c.conn);
  if (conn == _conns.end()) return;
  auto it = conn->second.subs.find(c.sub_id);
  if (it == conn->second.subs.end()) return;
  (void)_trie.erase(it->second->pattern, it->second.get());
  conn->second.subs.erase(it);
  ++_generation;
  lower(_subscription_count);
}

void shard::drop(conn_id conn) {
  // Publishes still waiting for the log answer no one: an acknowledgement must not re-create the
  // connection's output buffer after it is gone.
  const auto forget = [conn](durable_batch& batch) {
    for (auto& item : batch.items) {
      if (item.ack.conn == conn && !item.ack.reply) item.ack = ack_target{};
    }
  };
  forget(_building);
  for (auto& batch : _in_flight) forget(batch);
  std::erase_if(_holding, [&](std::uint64_t serial) {
    auto it = _by_serial.find(serial);
    if (it == _by_serial.end()) return true;
    auto& ch = *it->second;
    const bool pending = ch.pending && !ch.pending->empty();
    if (ch.held.empty() && !pending) return true;  // replayed / answered since
    for (auto& h : ch.held) {
      if (h.ack.conn == conn && !h.ack.reply) h.ack = ack_target{};
    }
    if (pending) {
      for (auto& e : *ch.pending) {
        if (e.ack.conn == conn && !e.ack.reply) e.ack = ack_target{};
      }
    }
    return false;
  });
  auto it = _conns.find(conn);
  if (it == _conns.end()) return;
  connection_out& out = it->second;
  for (auto& [id, sub] : out.subs) (void)_trie.erase(sub->pattern, sub.get());
  lower(_subscription_count, out.subs.size());
  std::erase(_dirty, &out);
  _conns.erase(it);
  ++_generation;
}

void shard::report_stats(stats_query& q) {
  std::vector<channel_stats> out;
  out.reserve(_channels.size());
  for (auto& [name, ch] : _channels) {
    if (ch.generation != _generation) rebuild_matches(ch);
    out.push_back(channel_stats{.name = name,
                                .published = ch.published,
                                .delivered = ch.delivered,
                                .subscribers = ch.matches.size(),
                                .last_seq = ch.seq,
                                .dropped = ch.dropped,
                                .durable = ch.log_id != 0 && ch.policy.durable,
                                .rejected = ch.rejected});
  }
  q.reply->set_value(std::move(out));
}

void shard::mark_dirty(connection_out& out) {
  if (!out.dirty) {
    out.dirty = true;
    _dirty.push_back(&out);
  }
}

void shard::flush(connection_out& out) {
  if (out.buf.empty()) return;
  const std::size_t size = out.buf.size();
  push_outbound(outbound{.conn = out.conn, .bytes = std::move(out.buf), .events = out.events,
                         .droppable = out.droppable, .barrier_token = std::nullopt, .tally = std::move(out.tally)});
  out.buf = std::string();
  // Pre-size for the next batch like the last one, so a busy connection does not regrow from zero.
  out.buf.reserve(std::min(size + size / 4, _owner.options().flush_bytes + 1024));
  out.tally = {};
  out.events = 0;
  out.droppable = true;
}

void shard::flush_dirty() {
  for (connection_out* out : _dirty) {
    flush(*out);
    out->dirty = false;
  }
  _dirty.clear();
}

void shard::push_outbound(outbound&& o) {
  if (!_threaded) {
    _inline_out.push_back(std::move(o));
    return;
  }
  while (!_outbound.try_push(o)) {
    // The consumer is behind; it never waits on us while we wait on it (it drains output even
    // when it cannot submit), so yielding here cannot deadlock.
    _owner.notify_consumer();
    std::this_thread::yield();
  }
  _owner.notify_consumer();
}

}  // namespace switchboard::router
