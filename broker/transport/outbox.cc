#include "broker/transport/outbox.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <switchboard/protocol.h>

#include <algorithm>

#include "broker/common/counter.h"

namespace switchboard::transport {

namespace proto = switchboard::protocol;
using common::bump;

namespace {

std::string error_record(std::uint32_t ref, std::string_view code, std::string_view message) {
  std::string bytes;
  proto::frame_writer(bytes).write(proto::error{.ref = ref, .code = code, .message = message});
  return bytes;
}

}  // namespace

void outbox::send(session& s, std::string&& bytes, std::uint32_t events, bool droppable, unsigned shard,
                  router::channel_tally&& tally) {
  if (s.ended) return;
  if (s.pending.empty()) {
    const auto acks = spill_acks(s, bytes);
    const auto size = bytes.size();
    const auto r = _wire.try_send(s.identity, bytes);
    if (r == send_result::sent) {
      bump(_stats.delivered, events);
      bump(_stats.bytes_out, size);
      send_spill_acks(s, acks);
      credit(s, shard, events);
      return;
    }
    if (r == send_result::gone) {
      _sessions.end(s, "peer disconnected");
      return;
    }
  }
  queue(s, queued_batch{std::move(bytes), events, droppable, shard, std::move(tally)});
}

void outbox::send_error(session& s, std::uint32_t ref, std::string_view code, std::string_view message) {
  send(s, error_record(ref, code, message));
}

void outbox::reply_error(std::string_view identity, std::uint32_t ref, std::string_view code,
                         std::string_view message) {
  if (auto* s = _sessions.find(identity)) {
    send_error(*s, ref, code, message);
    return;
  }
  std::string bytes = error_record(ref, code, message);
  std::string id(identity);
  if (_wire.try_send(id, bytes) == send_result::full) {
    _farewells.push_back({std::move(id), std::move(bytes), clock::now() + std::chrono::seconds(2)});
  }
}

void outbox::queue(session& s, queued_batch&& b) {
  if (b.events == 0) s.pending_reply_bytes += b.bytes.size();
  s.pending_events += b.events;
  bump(_stats.queued_events, b.events);
  s.pending.push_back(std::move(b));
  _stalled.insert(s.id);
  if (s.pending_events > _limits.subscriber_queue) overflow(s);
  if (!s.ended && s.pending_reply_bytes > _limits.reply_queue_bytes) {
    end_slow(s, fmt::format("client left {} bytes of replies unread (limit {}); its session was dropped",
                            s.pending_reply_bytes, _limits.reply_queue_bytes));
  }
}

void outbox::adjust_queued(std::size_t before, std::size_t after) noexcept {
  _stats.queued_events.store(_stats.queued_events.load(std::memory_order_relaxed) + after - before,
                             std::memory_order_relaxed);
}

event_policy outbox::policy_of(const session& s, std::uint32_t sub_id, std::string_view channel) {
  const channel_view& view = _views.of(channel);
  auto sub = s.subs.find(sub_id);
  // Durable subscriptions are paced by the consumer manager (max_ack_pending): never shed.
  if (sub != s.subs.end() && sub->second.durable) return event_policy{overflow_policy::keep, {}};
  overflow_policy p = view.policy;
  if (sub != s.subs.end() && sub->second.policy) p = *sub->second.policy;
  // The log can stand in only for a live subscription to exactly this durable channel.
  if (p == overflow_policy::spill && (_durable == nullptr || !view.durable || sub == s.subs.end() ||
                                      sub->second.durable || sub->second.pattern != channel)) {
    p = overflow_policy::drop_oldest;
  }
  return event_policy{p, view.conflate_key};
}

void outbox::overflow(session& s) {
  const auto before = s.pending_events;
  auto r = shed(s.pending, s.pending_events, _limits.subscriber_queue, 16 * _limits.subscriber_queue,
                [&](std::uint32_t sub_id, std::string_view channel) { return policy_of(s, sub_id, channel); });
  adjust_queued(before, s.pending_events);
  s.pending_reply_bytes = 0;
  for (const auto& b : s.pending) {
    if (b.events == 0) s.pending_reply_bytes += b.bytes.size();
  }
  bump(_stats.slow_drops, r.dropped);
  bump(_stats.slow_conflated, r.conflated);
  bump(_stats.slow_spilled, r.spilled);
  for (auto& report : r.reports) _drop_reports.push_back(std::move(report));
  for (auto& spill : r.spills) {
    // From this moment the shards' live events of that subscription are filtered out: the log
    // will serve everything from spill.first_seq on (the attach itself runs from the loop).
    if (!s.filtered.insert(spill.sub_id).second) continue;
    _spills.emplace_back(s.id, std::move(spill));
  }
  if (s.pending.empty()) _stalled.erase(s.id);
  if (!r.disconnect) return;
  end_slow(s, fmt::format("subscriber fell {} events behind (limit {}); its subscriptions were dropped",
                          s.pending_events, _limits.subscriber_queue));
}

void outbox::end_slow(session& s, std::string message) {
  spdlog::warn("slow consumer: {}: {}", describe(s), message);
  bump(_stats.slow_disconnects);
  _farewells.push_back({s.identity, error_record(0, "slow_consumer", message), clock::now() + std::chrono::seconds(2)});
  _sessions.end(s, "slow consumer");
}

// A spilled subscription is served from the log with at_least_once acks that the transport gives
// itself once a batch is handed to the wire: the consumer manager then never runs more than
// max_ack_pending events ahead of what this client's socket accepted (flow control), and the
// client sees an ordinary live subscription.
std::vector<outbox::spill_ack> outbox::spill_acks(const session& s, std::string_view bytes) const {
  std::vector<spill_ack> acks;
  if (s.spilled == 0) return acks;
  proto::frame_reader reader(bytes);
  for (;;) {
    auto f = reader.next();
    if (!f || !*f) break;
    if (const auto* ev = std::get_if<proto::event>(&**f)) {
      auto sub = s.subs.find(ev->sub_id);
      if (sub != s.subs.end() && !sub->second.spill_name.empty()) acks.emplace_back(ev->sub_id, ev->epoch, ev->seq);
    }
  }
  return acks;
}

void outbox::send_spill_acks(const session& s, const std::vector<spill_ack>& acks) {
  for (auto [sub_id, epoch, seq] : acks) _durable->ack(s.id, sub_id, epoch, seq);
}

void outbox::credit(const session& s, unsigned shard, std::uint32_t events) {
  if (shard == no_shard && events != 0 && _durable != nullptr) _durable->sent(s.id, events);
}

void outbox::retry(clock::time_point now) {
  for (auto it = _stalled.begin(); it != _stalled.end();) {
    session* s = _sessions.find(*it);
    if (s == nullptr) {
      it = _stalled.erase(it);
      continue;
    }
    auto& q = s->pending;
    auto r = send_result::sent;
    while (!q.empty()) {
      auto& b = q.front();
      const auto acks = spill_acks(*s, b.bytes);
      const auto size = b.bytes.size();
      if ((r = _wire.try_send(s->identity, b.bytes)) != send_result::sent) break;
      send_spill_acks(*s, acks);
      credit(*s, b.shard, b.events);
      bump(_stats.delivered, b.events);
      bump(_stats.bytes_out, size);
      adjust_queued(s->pending_events, s->pending_events - b.events);
      s->pending_events -= b.events;
      if (b.events == 0) s->pending_reply_bytes -= std::min(s->pending_reply_bytes, size);
      q.pop_front();
    }
    if (r == send_result::gone) _sessions.end(*s, "peer disconnected");
    it = q.empty() || r == send_result::gone ? _stalled.erase(it) : std::next(it);
  }
  std::erase_if(_farewells,
                [&](farewell& f) { return _wire.try_send(f.identity, f.bytes) != send_result::full || now > f.deadline; });
}

}  // namespace switchboard::transport
