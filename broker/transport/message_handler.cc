#include "broker/transport/message_handler.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <switchboard/protocol.h>

#include <algorithm>
#include <chrono>

#include "broker/common/counter.h"
#include "broker/durable/subscription_spec.h"
#include "broker/router/topic.h"
#include "broker/transport/sub_options.h"

namespace switchboard::transport {

namespace proto = switchboard::protocol;
using common::bump;

namespace {

std::uint64_t unix_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

// The name of a broker-to-client record, or empty for a client command.
std::string_view broker_frame_name(const proto::frame& f) {
  return std::visit(
      [](const auto& v) -> std::string_view {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, proto::welcome>) return "WELCOME";
        if constexpr (std::is_same_v<T, proto::event>) return "EVENT";
        if constexpr (std::is_same_v<T, proto::puback>) return "PUBACK";
        if constexpr (std::is_same_v<T, proto::error>) return "ERR";
        if constexpr (std::is_same_v<T, proto::pong>) return "PONG";
        if constexpr (std::is_same_v<T, proto::notice>) return "NOTICE";
        if constexpr (std::is_same_v<T, proto::suback>) return "SUBACK";
        return {};
      },
      f);
}

}  // namespace

void end_spill(const sub_info& sub, durable::consumer_manager* manager) {
  if (sub.spill_name.empty() || manager == nullptr) return;
  if (auto r = manager->remove(sub.spill_name); !r) {
    spdlog::warn("could not remove spill subscription {}: {}", sub.spill_name, r.error().message);
  }
}

std::expected<message_handler::message_shape, message_handler::refusal> message_handler::inspect(
    std::string_view bytes, const session* s) {
  const bool known = s != nullptr;
  message_shape shape;
  proto::frame_reader reader(bytes);
  for (;;) {
    const std::size_t at = reader.offset();
    auto next = reader.next();
    if (!next) return std::unexpected(refusal{std::string(next.error().protocol_code()), next.error().message});
    if (!*next) break;
    const proto::frame& f = **next;
    if (auto name = broker_frame_name(f); !name.empty()) {
      return std::unexpected(refusal{"unknown_command", fmt::format("{} at offset {} is not a client command", name, at)});
    }
    // A BYE from a session the broker does not know (it restarted, or reaped the client) has
    // nothing to end: the message is ignored rather than answered hello_required.
    if (!known && shape.records == 0 && std::holds_alternative<proto::bye>(f)) return message_shape{};
    if (!known && shape.records == 0 && !std::holds_alternative<proto::hello>(f)) {
      return std::unexpected(refusal{"hello_required", "this session is unknown to the broker; send HELLO first"});
    }
    ++shape.records;
    if (const auto* pub = std::get_if<proto::publish>(&f)) {
      if (!known || !publish_ok(*s, *pub)) {
        shape.only_valid_pubs = false;
      } else if (_link.shards() > 1) {
        shape.shard_mask |= std::uint64_t{1} << _link.shard_of(pub->channel);
      }
    } else {
      shape.only_valid_pubs = false;
    }
  }
  if (!known) shape.only_valid_pubs = false;
  if (_link.shards() == 1) shape.shard_mask = 1;
  return shape;
}

void message_handler::handle(const std::string& identity, int peer, std::shared_ptr<const void> owner,
                             std::string_view bytes, std::string_view peer_address) {
  session* s = _sessions.find(identity);
  if (s != nullptr && s->peer != peer) {
    spdlog::info("{}: routing identity reused by a new connection; the new one must HELLO", describe(*s));
    _sessions.end(*s, "its connection was replaced");
    s = nullptr;
  }
  _peer = peer;
  _peer_address = peer_address;
  if (s != nullptr) s->last_seen = clock::now();  // any traffic, even rejected, shows it is alive
  auto shape = inspect(bytes, s);
  if (!shape) {
    if (shape.error().code != "hello_required") bump(_stats.bad_frames);
    if (s != nullptr) {
      spdlog::debug("{}: message rejected: {} ({})", describe(*s), shape.error().code, shape.error().message);
    } else {
      spdlog::debug("message from unknown session (peer {}) rejected: {} ({})",
                    peer_address.empty() ? std::string_view("unknown") : peer_address, shape.error().code,
                    shape.error().message);
    }
    _out.reply_error(identity, 0, shape.error().code, shape.error().message);
    return;
  }
  if (shape->records == 0) return;  // an empty batch (PROTOCOL.md §2), from anyone
  const auto now_ns = unix_ns();

  if (shape->only_valid_pubs) {  // the hot path: one hand-off per shard for the whole batch
    const auto conn = s->id;
    for (unsigned shard = 0; shard < _link.shards(); ++shard) {
      if (shape->shard_mask & (std::uint64_t{1} << shard)) {
        _link.submit(shard, router::command{router::publish_batch{conn, owner, bytes, now_ns, true}});
      }
    }
    return;
  }

  // General path: runs of PUB records go to the shards; other records run in order between them.
  proto::frame_reader reader(bytes);
  std::size_t run_begin = 0;
  std::size_t run_end = 0;
  auto flush_run = [&] {
    if (run_end > run_begin && s != nullptr) {
      _link.submit_all(router::command{
          router::publish_batch{s->id, owner, bytes.substr(run_begin, run_end - run_begin), now_ns, true}});
    }
    run_begin = run_end = reader.offset();
  };
  for (;;) {
    const std::size_t at = reader.offset();
    auto next = reader.next();
    if (!next || !*next) break;
    const proto::frame& f = **next;
    if (const auto* pub = std::get_if<proto::publish>(&f)) {
      if (publish_ok(*s, *pub)) {
        if (run_end != at) run_begin = at;
        run_end = reader.offset();
      } else {
        // A refused record ends the run: the shards only ever see records they may publish.
        flush_run();
        if (s->ended) return;
        refuse_publish(*s, *pub);
      }
    } else {
      flush_run();
      if (s != nullptr && s->ended) return;
      s = control(identity, s, f);
    }
    if (s == nullptr || s->ended) return;  // HELLO was refused or the session ended: nothing after it runs
  }
  flush_run();
}

std::string message_handler::publish_refusal(const auth::principal& who, std::string_view channel) {
  if (!who.publish) return fmt::format("token \"{}\" has no publish scope", who.name);
  if (auto ok = auth::may_use(who, channel); !ok) return ok.error();
  if (const auto* perms = _views.permissions_of(channel);
      perms != nullptr && !perms->may_publish(who.tenant) && !perms->may_publish(who.name)) {
    return fmt::format("\"{}\" may not publish on channel \"{}\"", who.name, channel);
  }
  return {};
}

bool message_handler::publish_ok(const session& s, const proto::publish& pub) {
  return pub.payload.size() <= _opts.max_payload_bytes && router::validate_channel(pub.channel) &&
         publish_refusal(s.who, pub.channel).empty();
}

void message_handler::refuse_publish(session& s, const proto::publish& pub) {
  bump(_stats.rejected_events);
  if (pub.payload.size() > _opts.max_payload_bytes) {
    _out.send_error(s, pub.request_id, "payload_too_large",
                    fmt::format("payload of {} bytes on channel \"{}\" exceeds the limit of {} bytes",
                                pub.payload.size(), pub.channel, _opts.max_payload_bytes));
  } else if (auto ok = router::validate_channel(pub.channel); !ok) {
    _out.send_error(s, pub.request_id, ok.error().code, ok.error().message);
  } else if (auto why = publish_refusal(s.who, pub.channel); !why.empty()) {
    spdlog::debug("{}: publish on {} refused: {}", describe(s), auth::quote(pub.channel), why);
    _out.send_error(s, pub.request_id, "forbidden", why);
  }
}

session* message_handler::control(const std::string& identity, session* s, const proto::frame& f) {
  if (const auto* h = std::get_if<proto::hello>(&f)) return hello(identity, s, *h);
  if (s == nullptr) return s;  // inspect() guarantees HELLO came first
  if (const auto* sub = std::get_if<proto::subscribe>(&f)) {
    subscribe(*s, *sub);
  } else if (const auto* u = std::get_if<proto::unsubscribe>(&f)) {
    unsubscribe(*s, u->sub_id);
  } else if (const auto* p = std::get_if<proto::ping>(&f)) {
    _link.barrier(s->id, router_link::barrier_kind::pong, p->nonce);
  } else if (std::holds_alternative<proto::bye>(f)) {
    _sessions.end(*s, "the client said BYE");
  } else if (const auto* a = std::get_if<proto::ack>(&f)) {
    // ACKs matter for durable at_least_once subscriptions; for live ones they are no-ops.
    if (auto it = s->subs.find(a->sub_id); it != s->subs.end() && it->second.durable) {
      _opts.durable->ack(s->id, a->sub_id, a->epoch, a->seq);
    }
  }
  return s->ended ? nullptr : s;
}

void message_handler::unsubscribe(session& s, std::uint32_t sub_id) {
  auto sub = s.subs.find(sub_id);
  if (sub == s.subs.end()) {
    _out.send_error(s, sub_id, "unknown_subscription", fmt::format("no subscription with id {} on this session", sub_id));
  } else if (sub->second.durable) {
    _opts.durable->detach(s.id, sub_id);
    end_spill(sub->second, _opts.durable_output);
    s.subs.erase(sub);
  } else {
    s.subs.erase(sub);
    _link.submit_all(router::command{router::unsubscribe_command{s.id, sub_id}});
  }
}

session* message_handler::hello(const std::string& identity, session* s, const proto::hello& h) {
  if (h.version != proto::version) {
    _out.reply_error(identity, 0, "unsupported_version",
                     fmt::format("protocol version {} is not supported; this broker speaks version {}", h.version,
                                 proto::version));
    return s;
  }
  auto who = _opts.tokens != nullptr ? _opts.tokens->authenticate(h.token) : std::optional(auth::anonymous_principal());
  if (!who) {
    spdlog::warn("HELLO with an invalid token rejected (peer {}{})",
                 _peer_address.empty() ? std::string_view("unknown") : _peer_address,
                 s != nullptr ? fmt::format(", on {}", describe(*s)) : std::string());
    _out.reply_error(identity, 0, "unauthorized", "invalid token");
    return s;
  }
  if (s != nullptr) _sessions.end(*s, "new HELLO on the same socket");
  const auto asked = h.heartbeat_ms != 0 ? h.heartbeat_ms : _opts.heartbeat_ms;
  const auto heartbeat = std::clamp(asked, _opts.min_heartbeat_ms, _opts.max_heartbeat_ms);
  session& fresh =
      _sessions.open(identity, _peer, std::move(*who), std::chrono::milliseconds(heartbeat), clock::now());
  fresh.peer_address = std::string(_peer_address);
  _stats.connections.store(_sessions.live(), std::memory_order_relaxed);
  spdlog::info("{} opened (heartbeat {} ms)", describe(fresh), heartbeat);
  std::string bytes;
  proto::frame_writer(bytes).write(proto::welcome{.version = proto::version,
                                                  .heartbeat_ms = heartbeat,
                                                  .max_payload_bytes = static_cast<std::uint32_t>(_opts.max_payload_bytes),
                                                  .epoch = _opts.epoch,
                                                  .server = _opts.server_name});
  _out.send(fresh, std::move(bytes));
  return fresh.ended ? nullptr : &fresh;
}

void message_handler::subscribe(session& s, const proto::subscribe& sub) {
  if (auto ok = router::validate_pattern(sub.pattern); !ok) {
    _out.send_error(s, sub.sub_id, ok.error().code, ok.error().message);
    return;
  }
  if (!s.who.subscribe) {
    _out.send_error(s, sub.sub_id, "forbidden", fmt::format("token \"{}\" has no subscribe scope", s.who.name));
    return;
  }
  if (auto ok = auth::may_use(s.who, sub.pattern); !ok) {
    _out.send_error(s, sub.sub_id, "forbidden", ok.error());
    return;
  }
  if (const auto* perms = router::validate_channel(sub.pattern) ? _views.permissions_of(sub.pattern) : nullptr;
      perms != nullptr && !perms->may_subscribe(s.who.tenant) && !perms->may_subscribe(s.who.name)) {
    _out.send_error(s, sub.sub_id, "forbidden",
                    fmt::format("\"{}\" may not subscribe to channel \"{}\"", s.who.name, sub.pattern));
    return;
  }
  auto options = parse_sub_options(_json, sub.options, _opts.default_policy);
  if (!options) {
    _out.send_error(s, sub.sub_id, "invalid_options", options.error());
    return;
  }
  if (s.subs.contains(sub.sub_id)) {
    _out.send_error(s, sub.sub_id, "duplicate_subscription",
                    fmt::format("subscription id {} is already in use on this session", sub.sub_id));
    return;
  }
  if (!options->durable.empty()) {
    if (_opts.durable == nullptr) {
      _out.send_error(s, sub.sub_id, "invalid_options", "durable subscriptions are not enabled on this broker");
      return;
    }
    if (s.who.tenant != "*") {
      if (options->durable.find('/') != std::string::npos) {
        _out.send_error(s, sub.sub_id, "invalid_options",
                        fmt::format("option durable must not contain \"/\": names are scoped to tenant \"{}\"",
                                    s.who.tenant));
        return;
      }
      options->durable = durable::tenant_scoped_name(s.who.tenant, options->durable);
    }
    std::optional<durable::subscription_spec> create;
    if (!options->spec_members.empty()) {
      auto spec = durable::parse_spec(durable_spec_json(*options, sub.pattern));
      if (!spec) {
        _out.send_error(s, sub.sub_id, "invalid_options", spec.error().message);
        return;
      }
      create = std::move(*spec);
    }
    s.subs.emplace(sub.sub_id, sub_info{.durable = true, .policy = {}, .pattern = std::string(sub.pattern),
                                        .spill_name = {}});
    // The consumer manager answers SUBACK or ERR itself, through its output queue.
    s.attaching.insert(sub.sub_id);
    _opts.durable->attach(s.id, sub.sub_id, options->durable, std::move(create), std::string(sub.pattern),
                          s.who.tenant, s.who.name);
    return;
  }
  s.subs.emplace(sub.sub_id, sub_info{.durable = false,
                                      .policy = options->policy_explicit ? std::optional(options->policy) : std::nullopt,
                                      .pattern = std::string(sub.pattern), .spill_name = {}});
  _link.submit_all(router::command{router::subscribe_command{
      s.id, sub.sub_id, std::string(sub.pattern),
      options->policy == overflow_policy::drop_oldest ? router::slow_policy::drop_oldest
                                                      : router::slow_policy::disconnect,
      options->policy_explicit, s.who.tenant, s.who.name, options->filter}});
  _link.barrier(s.id, router_link::barrier_kind::suback, sub.sub_id);
}

}  // namespace switchboard::transport
