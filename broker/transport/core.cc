#include "broker/transport/core.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <switchboard/protocol.h>

#include <thread>

#include "broker/common/counter.h"
#include "broker/durable/subscription_spec.h"
#include "broker/transport/sub_options.h"

namespace switchboard::transport {

namespace proto = switchboard::protocol;
using common::bump;

namespace {

constexpr auto sweep_every = std::chrono::milliseconds(100);

overflow_policy to_overflow(router::slow_policy p) {
  return p == router::slow_policy::drop_oldest ? overflow_policy::drop_oldest : overflow_policy::disconnect;
}

// A durable attach is answered by the consumer manager: SUBACK confirms it; ERR means the
// subscription id is free again (so the client may reuse it without an UNSUB).
void settle_attaches(session& s, std::string_view bytes) {
  proto::frame_reader reader(bytes);
  while (!s.attaching.empty()) {
    auto f = reader.next();
    if (!f || !*f) break;
    if (const auto* ok = std::get_if<proto::suback>(&**f)) {
      s.attaching.erase(ok->sub_id);
    } else if (const auto* err = std::get_if<proto::error>(&**f); err != nullptr && s.attaching.erase(err->ref)) {
      s.subs.erase(err->ref);
    }
  }
}

// Removes the EVENTs of subscriptions that are switching to the log from a shard's batch.
void drop_filtered(const session& s, router::outbound& out) {
  std::string kept;
  std::uint32_t events = 0;
  proto::frame_reader reader(out.bytes);
  for (;;) {
    const std::size_t at = reader.offset();
    auto f = reader.next();
    if (!f || !*f) break;
    const auto* ev = std::get_if<proto::event>(&**f);
    if (ev != nullptr && s.filtered.contains(ev->sub_id)) continue;
    if (ev != nullptr) ++events;
    kept.append(out.bytes, at, reader.offset() - at);
  }
  out.bytes = std::move(kept);
  out.events = events;
  out.tally.clear();  // approximate per-channel stats are not worth re-deriving here
}

handler_options handler_options_of(const transport_options& o) {
  handler_options h;
  h.tokens = o.tokens;
  h.max_payload_bytes = o.max_payload_bytes;
  h.default_policy = to_overflow(o.default_policy);
  h.heartbeat_ms = o.heartbeat_ms;
  h.min_heartbeat_ms = std::min(o.min_heartbeat_ms, o.heartbeat_ms);
  h.max_heartbeat_ms = std::max(o.max_heartbeat_ms, o.heartbeat_ms);
  h.epoch = o.epoch;
  h.server_name = o.server_name;
  h.durable = o.durable;
  h.durable_output = o.durable_output;
  return h;
}

}  // namespace

transport_core::transport_core(const transport_options& opts, router::router& r, wire& w)
    : _opts(opts),
      _router(r),
      _producer(r.add_producer()),
      _views(opts.policies),
      _out(w, _sessions, _views, _stats,
           outbox_limits{.subscriber_queue = opts.subscriber_queue, .reply_queue_bytes = opts.reply_queue_bytes},
           opts.durable),
      _handler(handler_options_of(opts), _sessions, _out, _views, *this, _stats),
      _next_sweep(clock::now() + sweep_every) {}

void transport_core::handle_message(const std::string& identity, int peer, std::shared_ptr<const void> owner,
                                    std::string_view bytes, std::string_view peer_address) {
  bump(_stats.bytes_in, bytes.size());
  _handler.handle(identity, peer, std::move(owner), bytes, peer_address);
}

std::size_t transport_core::close_token_sessions(const std::vector<std::string>& names) {
  std::size_t n = 0;
  for (const std::string& name : names) {
    for (auto id : _sessions.of_token(name)) {
      session* s = _sessions.find(id);
      if (s == nullptr) continue;
      spdlog::warn("{}: its token was removed or changed by a reload; closing it", describe(*s));
      _out.send_error(*s, 0, "unauthorized",
                      fmt::format("token {} was removed or changed; say HELLO with a valid token", auth::quote(name)));
      _sessions.end(*s, "its token was removed or changed");
      ++n;
    }
  }
  return n;
}

void transport_core::peer_closed(int peer) {
  if (const auto n = _sessions.end_peer(peer, "connection closed")) {
    spdlog::debug("connection {} closed: {} session(s) ended", peer, n);
  }
}

void transport_core::reject_multipart(std::string_view identity) {
  bump(_stats.bad_frames);
  _out.reply_error(identity, 0, "malformed_frame", "a message must be a single frame after the identity");
}

// ---------------------------------------------------------------- router hand-off
void transport_core::submit(unsigned shard, router::command&& cmd) {
  while (!_producer.try_submit(shard, cmd)) {
    // The shard is behind: keep its output moving (it may be waiting on us), then retry. Output
    // may end sessions, but never destroys one (see session_table::end).
    drain();
    std::this_thread::yield();
  }
}

void transport_core::submit_all(const router::command& cmd) {
  for (unsigned s = 0; s < _router.shards(); ++s) submit(s, router::command(cmd));
}

void transport_core::barrier(router::conn_id conn, barrier_kind kind, std::uint64_t value) {
  const auto token = _next_token++;
  _barriers.emplace(token, barrier_wait{conn, kind, value, _router.shards()});
  submit_all(router::command{router::barrier{conn, token}});
}

bool transport_core::drain() {
  bool any = _router.inline_shards() && _router.poll();
  if (_opts.durable_output != nullptr) {
    for (int i = 0; i < 1024; ++i) {
      auto out = _opts.durable_output->try_take();
      if (!out) break;
      any = true;
      deliver(outbox::no_shard, std::move(*out));
    }
  }
  for (unsigned s = 0; s < _router.shards(); ++s) {
    for (int i = 0; i < 1024; ++i) {
      auto out = _router.try_take(s);
      if (!out) break;
      any = true;
      deliver(s, std::move(*out));
    }
  }
  return any;
}

void transport_core::deliver(unsigned shard, router::outbound&& out) {
  session* s = _sessions.find(out.conn);
  if (out.barrier_token) {
    auto b = _barriers.find(*out.barrier_token);
    if (b == _barriers.end() || --b->second.remaining > 0) return;
    const auto done = b->second;
    _barriers.erase(b);
    if (s == nullptr) return;
    if (done.kind == barrier_kind::unfilter) {
      s->filtered.erase(static_cast<std::uint32_t>(done.value));
      return;
    }
    std::string bytes;
    if (done.kind == barrier_kind::suback) {
      proto::frame_writer(bytes).write(proto::suback{static_cast<std::uint32_t>(done.value)});
    } else {
      proto::frame_writer(bytes).write(proto::pong{done.value});
    }
    _out.send(*s, std::move(bytes));
    return;
  }
  if (s == nullptr) return;  // the session ended while this was in flight
  if (shard != outbox::no_shard && !s->filtered.empty()) drop_filtered(*s, out);
  if (shard == outbox::no_shard && !s->attaching.empty()) settle_attaches(*s, out.bytes);
  _out.send(*s, std::move(out.bytes), out.events, out.droppable, shard, std::move(out.tally));
}

// ---------------------------------------------------------------- housekeeping
void transport_core::tick(clock::time_point now) {
  if (_out.busy()) _out.retry(now);
  for (const auto& [id, req] : _out.take_spills()) start_spill(id, req);
  for (auto& [shard, tally] : _out.take_drop_reports()) submit(shard, router::command{router::drop_report{std::move(tally)}});
  if (now >= _next_sweep) {
    sweep(now);
    _next_sweep = now + sweep_every;
  }
  reap();
}

void transport_core::sweep(clock::time_point now) {
  _views.trim(now);
  for (auto id : _sessions.expired(now)) {
    session* s = _sessions.find(id);
    bump(_stats.reaped);
    _sessions.end(*s, fmt::format("missed 3 heartbeats ({} ms each)", s->heartbeat.count()));
  }
}

std::size_t transport_core::reap() {
  if (!_sessions.has_ended()) return 0;
  const auto n = _sessions.reap([&](session& s, std::string_view why) {
    spdlog::info("{} closed: {}", describe(s), why);
    common::lower(_stats.queued_events, s.pending_events);
    for (const auto& [sub_id, sub] : s.subs) end_spill(sub, _opts.durable_output);
    _out.forget(s.id);
    submit_all(router::command{router::drop_connection{s.id}});
    if (_opts.durable != nullptr) _opts.durable->drop_connection(s.id);
  });
  _stats.connections.store(_sessions.live(), std::memory_order_relaxed);
  return n;
}

// Replaces a lagging live subscription by a log-serving one that starts at the first event the
// backlog gave up (slow_consumer "spill"): nothing is lost and order is kept.
void transport_core::start_spill(router::conn_id id, const spill_request& req) {
  session* s = _sessions.find(id);
  if (s == nullptr) return;
  auto sub = s->subs.find(req.sub_id);
  if (sub == s->subs.end() || sub->second.durable) return;
  sub->second.durable = true;
  sub->second.spill_name = fmt::format("spill-{}-{}", id, req.sub_id);
  ++s->spilled;
  const auto spill_name = sub->second.spill_name;
  submit_all(router::command{router::unsubscribe_command{id, req.sub_id}});
  barrier(id, barrier_kind::unfilter, req.sub_id);
  auto spec = durable::parse_spec(spill_spec_json(spill_name, req.channel, req.first_seq));
  if (!spec) {
    spdlog::error("spill of session {} sub {} failed: {}", id, req.sub_id, spec.error().message);
    return;
  }
  bump(_stats.spills);
  spdlog::info("session {} sub {} fell behind on {}; serving it from the log at seq {}", id, req.sub_id, req.channel,
               req.first_seq);
  _opts.durable->attach(id, req.sub_id, spill_name, std::move(*spec), {}, s->who.tenant, s->who.name);
}

}  // namespace switchboard::transport
