// How a shard runs a channel's pipeline (router.h channel_pipeline; docs/PIPELINE.md).
//
// Operation: an accepted event of a channel with a pipeline becomes a pipeline_event and runs
// pipeline::run_stages from order position 0. validate and translate run in process; at each hook
// the shard performs it and resumes:
//   delegate           handed to pipeline_hooks::delegate (a sink thread); the event waits in the
//                      channel's `pending` FIFO until the answer comes back (finish_delegates)
//   route              each target gets a routed_publish (its own pipeline; path + hops carried,
//                      loops and the hop limit refused with an error event on this channel)
//   webhook            remembered: handed to pipeline_hooks::webhook once the event has its seq
//   publish_to_parent  each parent gets a routed_publish with as_parent (numbered and delivered
//                      there, no pipeline)
// When the order is finished, commit() numbers and delivers the event (or queues it for the log).
//
// Order: a channel numbers its events in arrival order. While an event waits for its delegate,
// later events of the channel queue behind it in `pending`; they run ahead as far as their own
// delegate (so delegates of one channel overlap), but every other hook and the numbering happen
// only at the front of the FIFO.
//
// Concurrency: shard thread only, except the delegate answers, which sink threads append to
// _answers under _answers_mutex (channels without a delegate never touch it).
#include <fmt/format.h>

#include <algorithm>

#include "broker/pipeline/route.h"
#include "broker/router/shard.h"
#include "broker/router/topic.h"

namespace switchboard::router {

using common::bump;
using common::lower;

namespace {

// The payload version a stage produced, kept alive beyond the context's next use.
std::shared_ptr<const std::string> own(std::string_view payload) {
  return std::make_shared<const std::string>(payload);
}

}  // namespace

void shard::start_pipeline(channel_state& ch, pipeline_event&& e) {
  if (ch.pending && !ch.pending->empty()) {
    // Behind an event waiting for its delegate: queue, then run ahead as far as this one's delegate.
    ch.pending->push_back(std::move(e));
    (void)run_pipeline(ch, ch.pending->back(), false);
    return;
  }
  if (run_pipeline(ch, e, true) != run_result::waiting) return;
  if (!ch.pending) ch.pending = std::make_unique<std::deque<pipeline_event>>();
  _holding.push_back(ch.serial);  // so drop() finds its acknowledgement
  ch.pending->push_back(std::move(e));
}

shard::run_result shard::run_pipeline(channel_state& ch, pipeline_event& e, bool front) {
  const auto& order = e.pipe->stages.order;
  for (;;) {
    auto step = pipeline::run_stages(e.pipe->stages, e.payload, e.next, _cx);
    if (!step) {
      ++ch.rejected;
      bump(_pipeline_rejected);
      if (e.routed) {
        if (auto* hooks = _owner.options().hooks) hooks->rejected(ch.name, "invalid_event", step.error().message);
      } else {
        refuse(e.ack, "invalid_event", step.error().message);
      }
      return run_result::finished;
    }
    if (step->payload.data() != e.payload.data() || step->payload.size() != e.payload.size()) {
      auto s = own(step->payload);  // translate's output lives in _cx until its next use
      e.payload = *s;
      e.owner = std::move(s);
    }
    if (!step->hook) {
      e.next = order.size();
      if (!front) return run_result::paused;
      finish_pipeline(ch, e);
      return run_result::finished;
    }
    const pipeline::stage hook = *step->hook;
    auto* hooks = _owner.options().hooks;
    if (hook == pipeline::stage::delegate) {
      e.next = step->next;
      if (!e.pipe->delegate || hooks == nullptr) continue;
      e.st = pipeline_event::state::waiting;
      e.ticket = ++ch.next_ticket;
      ++_delegates_pending;
      bump(_delegate_pending);
      bump(_delegated);
      hooks->delegate(_index, e.pipe->delegate, ch.name, std::string(e.payload),
                      [this, serial = ch.serial, ticket = e.ticket](delegate_answer a) {
                        {
                          std::lock_guard lock(_answers_mutex);
                          _answers.push_back(delegated{.serial = serial, .ticket = ticket, .answer = std::move(a)});
                        }
                        _has_answers.store(true, std::memory_order_seq_cst);
                        if (!_threaded || _idle.load(std::memory_order_seq_cst)) wake();
                      });
      return run_result::waiting;
    }
    if (!front) {
      e.next = step->next - 1;  // run_stages from the hook's position returns the hook again
      return run_result::paused;
    }
    e.next = step->next;
    switch (hook) {
      case pipeline::stage::route:
        if (e.route) perform_route(ch, e);
        break;
      case pipeline::stage::publish_to_parent:
        if (e.parents && e.pipe->publish_to_parent) perform_parents(ch, e);
        break;
      case pipeline::stage::webhook:
        if (e.pipe->webhook && hooks != nullptr) {
          e.webhook = true;
          e.webhook_payload = e.payload;
          e.webhook_owner = e.owner;
        }
        break;
      default: break;
    }
  }
}

void shard::finish_pipeline(channel_state& ch, pipeline_event& e) {
  const std::uint64_t seq = commit(ch, e.key, e.payload, e.time_ns, e.owner, std::move(e.ack));
  if (!e.webhook) return;
  if (auto* hooks = _owner.options().hooks) {
    bump(_webhooks);
    hooks->webhook(_index, e.pipe->webhook,
                   webhook_event{.channel = ch.name, .epoch = ch.epoch, .seq = seq, .time_ns = e.time_ns,
                                 .payload = e.webhook_payload, .only_sinks = e.sinks ? &*e.sinks : nullptr});
  }
}

void shard::perform_route(channel_state& ch, pipeline_event& e) {
  if (e.pipe->route.empty()) return;
  std::vector<std::string> path;
  std::uint32_t hops = 0;
  if (e.routed) {
    path = e.routed->path;
    hops = e.routed->hops;
  }
  if (path.empty() || path.back() != ch.name) path.emplace_back(ch.name);
  for (const std::string& target : e.pipe->route) {
    auto d = pipeline::check_route(path, hops, target, e.pipe->max_hops);
    if (d.verdict != pipeline::route_verdict::ok) {
      bump(_route_refused);
      if (auto* hooks = _owner.options().hooks) hooks->rejected(ch.name, pipeline::errc_name(d.as_error().code), d.message);
      route_error(ch, d.error_event, e.time_ns);
      continue;
    }
    bump(_routed);
    routed_publish r{.channel = target, .payload = std::string(e.payload), .time_ns = e.time_ns, .path = path,
                     .hops = hops + 1, .as_parent = false};
    r.path.push_back(target);
    send_routed(std::move(r));
  }
}

void shard::perform_parents(channel_state& ch, pipeline_event& e) {
  for (const std::string_view parent : pipeline::parent_channels(ch.name)) {
    if (parent.empty() || !validate_channel(parent)) continue;
    send_routed(routed_publish{.channel = std::string(parent), .payload = std::string(e.payload),
                               .time_ns = e.time_ns, .path = {}, .hops = 0, .as_parent = true});
  }
}

// The error event goes on the channel that tried to route, numbered like any event but without
// running that channel's pipeline again (it would route again).
void shard::route_error(channel_state& ch, const std::string& event_json, std::uint64_t time_ns) {
  auto s = own(event_json);
  (void)commit(ch, {}, *s, time_ns, s, ack_target{});
}

void shard::send_routed(routed_publish&& r) {
  const unsigned target = _owner.shard_of(r.channel);
  if (target == _index || _peer == nullptr) {
    auto owner = std::make_shared<routed_publish>(std::move(r));
    accept(owner->channel, {}, owner->payload, owner->time_ns, owner, ack_target{}, owner.get());
    return;
  }
  command cmd(std::move(r));
  // Never wait for another shard (it may be waiting for this one): a full queue keeps the command
  // here, retried in order by flush_routes().
  if (!_route_overflow.empty() || !_peer->try_submit(target, cmd)) _route_overflow.emplace_back(target, std::move(cmd));
}

bool shard::flush_routes() {
  bool any = false;
  while (!_route_overflow.empty()) {
    auto& [target, cmd] = _route_overflow.front();
    if (!_peer->try_submit(target, cmd)) break;
    _route_overflow.pop_front();
    any = true;
  }
  return any;
}

bool shard::finish_delegates() {
  if (!_has_answers.load(std::memory_order_acquire)) return false;
  std::vector<delegated> answers;
  {
    std::lock_guard lock(_answers_mutex);
    answers.swap(_answers);
    _has_answers.store(false, std::memory_order_relaxed);
  }
  auto* hooks = _owner.options().hooks;
  for (auto& a : answers) {
    --_delegates_pending;
    lower(_delegate_pending);
    auto it = _by_serial.find(a.serial);
    if (it == _by_serial.end()) continue;  // (a channel with pending events never expires)
    channel_state& ch = *it->second;
    if (!ch.pending) continue;
    auto e = std::ranges::find_if(*ch.pending, [&](const pipeline_event& p) { return p.ticket == a.ticket; });
    if (e == ch.pending->end()) continue;
    auto& answer = a.answer;
    switch (answer.act) {
      case delegate_answer::action::pass: {
        auto s = std::make_shared<const std::string>(std::move(answer.payload));
        e->payload = *s;
        e->owner = std::move(s);
        e->route = answer.route;
        e->parents = answer.publish_to_parent;
        e->sinks = std::move(answer.webhook_sinks);
        e->st = pipeline_event::state::ready;
        break;
      }
      case delegate_answer::action::drop:
      case delegate_answer::action::dead_letter: {
        bump(_delegate_dropped);
        const bool dead = answer.act == delegate_answer::action::dead_letter;
        if (dead && hooks != nullptr) hooks->dead_letter(ch.name, e->payload, answer.error);
        if (!e->routed) {
          refuse(e->ack, "event_dropped",
                 dead ? fmt::format("the delegate failed and the event was dead-lettered: {}", answer.error)
                      : (answer.error.empty() ? std::string("the channel's delegate dropped the event")
                                              : fmt::format("the delegate failed and the event was dropped: {}",
                                                            answer.error)));
        }
        e->st = pipeline_event::state::dropped;
        break;
      }
    }
    drain_pending(ch);
  }
  return !answers.empty();
}

// Runs the front of the channel's FIFO for as long as it can: answered events resume after their
// delegate, events that waited behind them perform their hooks and are numbered, in order.
void shard::drain_pending(channel_state& ch) {
  auto& q = *ch.pending;
  while (!q.empty()) {
    auto& front = q.front();
    if (front.st == pipeline_event::state::waiting) return;
    if (front.st == pipeline_event::state::ready && run_pipeline(ch, front, true) == run_result::waiting) return;
    q.pop_front();
  }
}

}  // namespace switchboard::router
