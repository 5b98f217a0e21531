#include "broker/router/shard.h"

#include <switchboard/protocol.h>

#include <algorithm>

namespace switchboard::router {

namespace proto = switchboard::protocol;

shard::shard(router& owner, unsigned index)
    : _owner(owner), _index(index), _outbound(owner.options().queue_capacity) {}

void shard::add_inbound(std::size_t capacity) {
  _inbound.push_back(std::make_unique<common::spsc_queue<command>>(capacity));
}

void shard::start() {
  _thread = std::jthread([this](std::stop_token st) { run(st); });
}

void shard::stop() {
  if (!_thread.joinable()) return;
  _thread.request_stop();
  _wake.fetch_add(1, std::memory_order_seq_cst);
  _wake.notify_one();
  _thread.join();
}

bool shard::try_submit(unsigned producer, command& cmd) {
  if (!_inbound[producer]->try_push(cmd)) return false;
  if (_idle.load(std::memory_order_seq_cst)) {
    _wake.fetch_add(1, std::memory_order_seq_cst);
    _wake.notify_one();
  }
  return true;
}

shard_stats shard::snapshot() const noexcept {
  return {_published.load(std::memory_order_relaxed), _delivered.load(std::memory_order_relaxed),
          _channel_count.load(std::memory_order_relaxed), _subscription_count.load(std::memory_order_relaxed)};
}

void shard::run(std::stop_token st) {
  std::stop_callback on_stop(st, [this] {
    _wake.fetch_add(1, std::memory_order_seq_cst);
    _wake.notify_one();
  });
  constexpr int flush_every = 16;  // commands between hand-overs under sustained load
  int since_flush = 0;
  for (;;) {
    bool worked = false;
    for (auto& q : _inbound) {
      for (int i = 0; i < flush_every; ++i) {
        auto cmd = q->try_pop();
        if (!cmd) break;
        handle(*cmd);
        worked = true;
        if (++since_flush >= flush_every) {
          flush_dirty();
          since_flush = 0;
        }
      }
    }
    if (worked) continue;
    flush_dirty();
    since_flush = 0;
    if (st.stop_requested()) return;  // queues are empty: everything submitted was processed
    const auto seen = _wake.load(std::memory_order_seq_cst);
    _idle.store(true, std::memory_order_seq_cst);
    const bool empty = std::ranges::all_of(_inbound, [](const auto& q) { return q->empty(); });
    if (empty && !st.stop_requested()) _wake.wait(seen, std::memory_order_seq_cst);
    _idle.store(false, std::memory_order_relaxed);
  }
}

void shard::handle(command& cmd) {
  std::visit(
      [this](auto& c) {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, publish_batch>) {
          publish(c);
        } else if constexpr (std::is_same_v<T, subscribe_command>) {
          subscribe(c);
        } else if constexpr (std::is_same_v<T, unsubscribe_command>) {
          unsubscribe(c);
        } else if constexpr (std::is_same_v<T, drop_connection>) {
          drop(c.conn);
        } else {
          flush_dirty();
          push_outbound(outbound{.conn = c.conn, .bytes = {}, .events = 0, .droppable = true,
                                 .barrier_token = c.token});
        }
      },
      cmd);
}

shard::channel_state& shard::channel(std::string_view name) {
  if (_last_state != nullptr && name == _last_channel) return *_last_state;
  auto it = _channels.find(name);
  if (it == _channels.end()) {
    it = _channels.emplace(std::string(name), channel_state{}).first;
    bump(_channel_count);
  }
  _last_channel = it->first;
  _last_state = &it->second;
  return it->second;
}

void shard::publish(const publish_batch& b) {
  const auto& opts = _owner.options();
  const unsigned shards = _owner.shards();
  connection_out* publisher = nullptr;
  std::uint64_t published = 0;
  std::uint64_t delivered = 0;
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

    channel_state& ch = channel(pub->channel);
    if (ch.generation != _generation) {
      ch.matches.clear();
      _trie.match(pub->channel, [&](subscriber* s) { ch.matches.push_back(s); });
      ch.generation = _generation;
    }
    const std::uint64_t seq = ++ch.seq;
    ++published;
    for (subscriber* s : ch.matches) {
      connection_out& out = *s->out;
      proto::frame_writer(out.buf).write(proto::event{.sub_id = s->sub_id,
                                                       .epoch = opts.epoch,
                                                       .seq = seq,
                                                       .time_ns = b.time_ns,
                                                       .channel = pub->channel,
                                                       .payload = pub->payload});
      ++out.events;
      out.droppable = out.droppable && s->policy == slow_policy::drop_oldest;
      mark_dirty(out);
      if (out.buf.size() >= opts.flush_bytes) flush(out);
    }
    delivered += ch.matches.size();
    if (pub->ack_requested) {
      if (publisher == nullptr) publisher = &out_for(b.conn);
      proto::frame_writer(publisher->buf)
          .write(proto::puback{.request_id = pub->request_id, .epoch = opts.epoch, .seq = seq});
      mark_dirty(*publisher);
      if (publisher->buf.size() >= opts.flush_bytes) flush(*publisher);
    }
  }
  bump(_published, published);
  bump(_delivered, delivered);
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
  it->second = std::make_unique<subscriber>(
      subscriber{.conn = c.conn, .sub_id = c.sub_id, .policy = c.policy, .pattern = std::move(c.pattern), .out = &out});
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
  _subscription_count.store(_subscription_count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

void shard::drop(conn_id conn) {
  auto it = _conns.find(conn);
  if (it == _conns.end()) return;
  connection_out& out = it->second;
  for (auto& [id, sub] : out.subs) (void)_trie.erase(sub->pattern, sub.get());
  _subscription_count.store(_subscription_count.load(std::memory_order_relaxed) - out.subs.size(),
                            std::memory_order_relaxed);
  std::erase(_dirty, &out);
  _conns.erase(it);
  ++_generation;
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
                         .droppable = out.droppable, .barrier_token = std::nullopt});
  out.buf = std::string();
  // Pre-size for the next batch like the last one, so a busy connection does not regrow from zero.
  out.buf.reserve(std::min(size + size / 4, _owner.options().flush_bytes + 1024));
  out.last_flush = size;
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
  while (!_outbound.try_push(o)) {
    // The consumer is behind; it never waits on us while we wait on it (it drains output even
    // when it cannot submit), so yielding here cannot deadlock.
    _owner.notify_consumer();
    std::this_thread::yield();
  }
  _owner.notify_consumer();
}

}  // namespace switchboard::router
