#include "broker/transport/transport.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <switchboard/protocol.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>
#include <zmq.hpp>

#include "broker/common/counter.h"
#include "broker/common/string_map.h"
#include "broker/durable/subscription_spec.h"
#include "broker/router/topic.h"
#include "broker/transport/backlog.h"

namespace switchboard::transport {

namespace proto = switchboard::protocol;
using common::bump;
using clock = std::chrono::steady_clock;

namespace {

std::uint64_t unix_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}


struct parsed_sub_options {
  overflow_policy policy;
  bool policy_explicit = false;
  std::string durable;  // durable subscription name, empty for a live subscription
  // Raw JSON of the durable subscription's "ack", "start" and "filter" members, when given.
  std::vector<std::pair<std::string_view, std::string>> spec_members;
};

// The raw JSON text of one value (object, array or scalar), whitespace trimmed.
std::expected<std::string, std::string> raw_value(simdjson::ondemand::value v) {
  simdjson::ondemand::json_type type;
  if (v.type().get(type) != simdjson::SUCCESS) return std::unexpected("options are not valid JSON");
  std::string_view raw;
  simdjson::error_code err = simdjson::SUCCESS;
  if (type == simdjson::ondemand::json_type::object) {
    simdjson::ondemand::object o;
    err = v.get_object().get(o);
    if (!err) err = o.raw_json().get(raw);
  } else if (type == simdjson::ondemand::json_type::array) {
    simdjson::ondemand::array a;
    err = v.get_array().get(a);
    if (!err) err = a.raw_json().get(raw);
  } else {
    raw = v.raw_json_token();
  }
  if (err) return std::unexpected("options are not valid JSON");
  while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.back()))) raw.remove_suffix(1);
  return std::string(raw);
}

// SUB options: a JSON object (or empty). Unknown members are an error so typos do not pass silently.
std::expected<parsed_sub_options, std::string> parse_sub_options(simdjson::ondemand::parser& parser,
                                                                 std::string_view text,
                                                                 overflow_policy default_policy) {
  parsed_sub_options out{default_policy, false, {}, {}};
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return out;
  simdjson::padded_string padded(text);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS) return std::unexpected("options are not valid JSON");
  simdjson::ondemand::object obj;
  if (const auto err = doc.get_object().get(obj); err != simdjson::SUCCESS) {
    return std::unexpected(err == simdjson::INCORRECT_TYPE ? "options must be a JSON object"
                                                           : "options are not valid JSON");
  }
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) return std::unexpected("options are not valid JSON");
    if (key == "slow_consumer") {
      std::string_view v;
      if (field.value().get_string().get(v) != simdjson::SUCCESS)
        return std::unexpected("option slow_consumer must be a string");
      out.policy_explicit = true;
      if (v == "disconnect") {
        out.policy = overflow_policy::disconnect;
      } else if (v == "drop_oldest") {
        out.policy = overflow_policy::drop_oldest;
      } else {
        return std::unexpected(
            fmt::format("option slow_consumer must be \"disconnect\" or \"drop_oldest\", not \"{}\"", v));
      }
    } else if (key == "durable") {
      std::string_view v;
      if (field.value().get_string().get(v) != simdjson::SUCCESS || v.empty()) {
        return std::unexpected("option durable must be a non-empty string");
      }
      out.durable = std::string(v);
    } else if (key == "ack" || key == "start" || key == "filter") {
      auto raw = raw_value(field.value());
      if (!raw) return std::unexpected(raw.error());
      out.spec_members.emplace_back(key == "ack" ? "ack" : key == "start" ? "start" : "filter", std::move(*raw));
    } else {
      return std::unexpected(fmt::format("unknown option \"{}\"", key));
    }
  }
  if (out.durable.empty() && !out.spec_members.empty()) {
    return std::unexpected(fmt::format("option \"{}\" needs option durable", out.spec_members.front().first));
  }
  return out;
}

// The log-serving subscription that replaces a lagging live one (slow_consumer "spill").
std::string spill_spec(std::string_view name, std::string_view channel, std::uint64_t first_seq) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  const auto start = fmt::format("seq:{}", first_seq);
  w.StartObject();
  w.Key("name");
  w.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
  w.Key("pattern");
  w.String(channel.data(), static_cast<rapidjson::SizeType>(channel.size()));
  w.Key("start");
  w.String(start.data(), static_cast<rapidjson::SizeType>(start.size()));
  // Acknowledged by the transport when the socket takes each batch (see spill_acks): a long
  // ack_wait so nothing is redelivered behind the socket's back.
  w.Key("ack");
  w.StartObject();
  w.Key("policy");
  w.String("at_least_once");
  w.Key("ack_wait_ms");
  w.Uint(3'600'000);
  w.Key("max_deliveries");
  w.Uint(1'000'000);
  w.EndObject();
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

// The durable subscription spec a SUB creates when the name does not exist yet.
std::string spec_json(const parsed_sub_options& o, std::string_view pattern) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("name");
  w.String(o.durable.data(), static_cast<rapidjson::SizeType>(o.durable.size()));
  w.Key("pattern");
  w.String(pattern.data(), static_cast<rapidjson::SizeType>(pattern.size()));
  for (const auto& [key, raw] : o.spec_members) {
    w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
    w.RawValue(raw.data(), raw.size(), rapidjson::kObjectType);
  }
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string_view client_frame_error(const proto::frame& f) {
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

struct transport::impl {
  static constexpr unsigned no_shard = ~0u;  // output of the durable consumer manager

  struct sub_info {
    bool durable = false;                   // served by the consumer manager
    std::optional<overflow_policy> policy;  // chosen by the subscriber (else the channel's)
    std::string pattern;
    std::string spill_name;                 // the log-serving subscription that replaced it
  };
  struct connection {
    router::conn_id id = 0;
    std::string identity;
    auth::principal who;
    clock::time_point last_seen;
    std::chrono::milliseconds heartbeat{0};
    std::unordered_map<std::uint32_t, sub_info> subs;
    std::deque<queued_batch> pending;  // what the socket could not take yet
    std::size_t pending_events = 0;
    // Live subscriptions being switched to the log (spill): their EVENTs from the shards are
    // filtered out until every shard confirmed the unsubscribe.
    std::unordered_set<std::uint32_t> filtered;
    unsigned spilled = 0;  // subscriptions served from the log because of slow_consumer "spill"
    std::unordered_set<std::uint32_t> attaching;  // durable attaches not yet answered by the manager
  };
  enum class barrier_kind : std::uint8_t { suback, pong, unfilter };
  struct barrier_wait {
    router::conn_id conn = 0;
    barrier_kind kind = barrier_kind::pong;
    std::uint64_t value = 0;  // sub_id or nonce
    unsigned remaining = 0;
  };
  // A last message for a session we already forgot (ERR slow_consumer), retried until it fits.
  struct farewell {
    std::string identity;
    std::string bytes;
    clock::time_point deadline;
  };

  transport_options opts;
  router::router& rt;
  router::router::producer& producer;
  zmq::context_t ctx{1};
  zmq::socket_t sock;
  std::string endpoint;
  int wake_fd = -1;
  std::jthread thread;
  std::atomic<bool> accepting{true};
  std::atomic<bool> quiesced{false};
  std::atomic<bool> stopping{false};

  // Transport-thread state.
  std::unordered_map<std::string, router::conn_id> by_identity;
  std::unordered_map<router::conn_id, connection> conns;
  std::unordered_map<std::uint64_t, barrier_wait> barriers;
  std::unordered_set<router::conn_id> stalled;
  std::vector<farewell> farewells;
  std::vector<std::pair<unsigned, std::vector<std::pair<const void*, std::uint32_t>>>> drop_reports;
  router::conn_id next_conn = 1;
  std::uint64_t next_token = 1;
  clock::time_point next_sweep;
  simdjson::ondemand::parser json;
  // What the transport needs of a channel's effective config, valid for one config generation.
  struct channel_view {
    channels::permission_lists permissions;
    overflow_policy policy = overflow_policy::disconnect;
    std::string conflate_key;
    bool durable = false;
  };
  common::string_map<channel_view> views;
  const std::pair<const std::string, channel_view>* last_view = nullptr;
  std::uint64_t views_generation = ~std::uint64_t{0};
  std::vector<std::pair<router::conn_id, spill_request>> pending_spills;
  std::string scratch;  // reply records being assembled for one client message

  struct counters {
    std::atomic<std::uint64_t> delivered{0}, bad_frames{0}, rejected_events{0}, reaped{0}, slow_drops{0},
        slow_disconnects{0}, connections{0}, queued_events{0}, slow_conflated{0}, slow_spilled{0}, spills{0};
  } stats;

  impl(transport_options o, router::router& r)
      : opts(std::move(o)), rt(r), producer(r.add_producer()), sock(ctx, zmq::socket_type::router) {}


  // ---------------------------------------------------------------- sending
  enum class send_result : std::uint8_t { sent, full, gone };

  // Sends one batch to a session, or queues it when the client's pipe is full. May end the
  // session (peer gone, or slow-consumer disconnect): callers must not use `c` afterwards.
  void send_to(connection& c, std::string&& bytes, std::uint32_t events = 0, bool droppable = false,
               unsigned shard = no_shard, std::vector<std::pair<const void*, std::uint32_t>>&& tally = {}) {
    const auto id = c.id;
    if (c.pending.empty()) {
      const auto acks = spill_acks(c, bytes);
      const auto r = try_send(c.identity, bytes);
      if (r == send_result::sent) {
        bump(stats.delivered, events);
        send_spill_acks(c, acks);
        return;
      }
      if (r == send_result::gone) {
        forget(id, "peer disconnected");
        return;
      }
    }
    c.pending.push_back(queued_batch{std::move(bytes), events, droppable, shard, std::move(tally)});
    c.pending_events += events;
    bump(stats.queued_events, events);
    stalled.insert(id);
    if (c.pending_events > opts.subscriber_queue) overflow(c);
  }

  // Never blocks and never copies: ZeroMQ takes the bytes on success; on `full` or `gone` they are
  // left in `bytes` for a retry.
  send_result try_send(const std::string& identity, std::string& bytes) {
    auto* owned = new std::string(std::move(bytes));
    zmq::message_t body(
        owned->data(), owned->size(), [](void*, void* hint) { delete static_cast<std::string*>(hint); }, owned);
    const auto r = try_send(identity, body);
    // Not sent: take the bytes back (`body` is destroyed unsent and only frees the emptied string).
    if (r != send_result::sent) bytes = std::move(*owned);
    return r;
  }

  send_result try_send(const std::string& identity, zmq::message_t& body) {
    try {
      if (!sock.send(zmq::buffer(identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        return send_result::full;
      }
      // The identity frame went out; the body frame cannot fail with EAGAIN now.
      (void)sock.send(body, zmq::send_flags::dontwait);
      return send_result::sent;
    } catch (const zmq::error_t& e) {
      if (e.num() == EHOSTUNREACH) return send_result::gone;
      throw;
    }
  }

  void adjust_queued(std::size_t before, std::size_t after) {
    stats.queued_events.store(stats.queued_events.load(std::memory_order_relaxed) + after - before,
                              std::memory_order_relaxed);
  }

  // How one EVENT of `c` is shed when its backlog overflows (see backlog.h).
  event_policy overflow_policy_of(const connection& c, std::uint32_t sub_id, std::string_view channel) {
    const channel_view& view = channel_of(channel);
    auto sub = c.subs.find(sub_id);
    // Durable subscriptions are paced by the consumer manager (max_ack_pending): never shed.
    if (sub != c.subs.end() && sub->second.durable) return event_policy{overflow_policy::keep, {}};
    overflow_policy p = view.policy;
    if (sub != c.subs.end() && sub->second.policy) p = *sub->second.policy;
    // The log can stand in only for a live subscription to exactly this durable channel.
    if (p == overflow_policy::spill &&
        (opts.durable == nullptr || !view.durable || sub == c.subs.end() || sub->second.durable ||
         sub->second.pattern != channel)) {
      p = overflow_policy::drop_oldest;
    }
    return event_policy{p, view.conflate_key};
  }

  void overflow(connection& c) {
    const auto before = c.pending_events;
    auto r = shed(c.pending, c.pending_events, opts.subscriber_queue, 16 * opts.subscriber_queue,
                  [&](std::uint32_t sub_id, std::string_view channel) { return overflow_policy_of(c, sub_id, channel); });
    adjust_queued(before, c.pending_events);
    bump(stats.slow_drops, r.dropped);
    bump(stats.slow_conflated, r.conflated);
    bump(stats.slow_spilled, r.spilled);
    // Submitted from the loop, never from inside a send (submit may drain output re-entrantly).
    for (auto& report : r.reports) drop_reports.push_back(std::move(report));
    for (auto& spill : r.spills) {
      // From this moment the shards' live events of that subscription are filtered out: the log
      // will serve everything from spill.first_seq on (the attach itself runs from the loop).
      if (!c.filtered.insert(spill.sub_id).second) continue;
      pending_spills.emplace_back(c.id, std::move(spill));
    }
    if (c.pending.empty()) stalled.erase(c.id);
    if (!r.disconnect) return;
    const auto missed = c.pending_events;
    spdlog::warn("slow consumer {}: {} events queued (limit {}), dropping its session", c.id, missed,
                 opts.subscriber_queue);
    bump(stats.slow_disconnects);
    std::string bytes;
    const auto msg = fmt::format("subscriber fell {} events behind (limit {}); its subscriptions were dropped",
                                 missed, opts.subscriber_queue);
    proto::frame_writer(bytes).write(proto::error{.ref = 0, .code = "slow_consumer", .message = msg});
    farewells.push_back({c.identity, std::move(bytes), clock::now() + std::chrono::seconds(2)});
    forget(c.id, "slow consumer");
  }

  // Replaces a lagging live subscription by a log-serving one that starts at the first event the
  // backlog gave up (slow_consumer "spill"): nothing is lost and order is kept.
  void start_spill(router::conn_id id, const spill_request& req) {
    auto* c = lookup(id);
    if (c == nullptr) return;
    auto sub = c->subs.find(req.sub_id);
    if (sub == c->subs.end() || sub->second.durable) return;
    sub->second.durable = true;
    sub->second.spill_name = fmt::format("spill-{}-{}", id, req.sub_id);
    ++c->spilled;
    submit_all(router::command{router::unsubscribe_command{id, req.sub_id}});
    barrier(*c, barrier_kind::unfilter, req.sub_id);
    auto spec = durable::parse_spec(spill_spec(sub->second.spill_name, req.channel, req.first_seq));
    if (!spec) {
      spdlog::error("spill of session {} sub {} failed: {}", id, req.sub_id, spec.error().message);
      return;
    }
    bump(stats.spills);
    spdlog::info("session {} sub {} fell behind on {}; serving it from the log at seq {}", id, req.sub_id,
                 req.channel, req.first_seq);
    opts.durable->attach(id, req.sub_id, sub->second.spill_name, std::move(*spec));
  }

  // A spilled subscription is served from the log with at_least_once acks that the transport gives
  // itself once a batch is handed to the socket: the consumer manager then never runs more than
  // max_ack_pending events ahead of what this client's socket accepted (flow control), and the
  // client sees an ordinary live subscription.
  std::vector<std::tuple<std::uint32_t, std::uint64_t, std::uint64_t>> spill_acks(const connection& c,
                                                                                  std::string_view bytes) {
    std::vector<std::tuple<std::uint32_t, std::uint64_t, std::uint64_t>> acks;
    if (c.spilled == 0) return acks;
    proto::frame_reader reader(bytes);
    for (;;) {
      auto f = reader.next();
      if (!f || !*f) break;
      if (const auto* ev = std::get_if<proto::event>(&**f)) {
        auto sub = c.subs.find(ev->sub_id);
        if (sub != c.subs.end() && !sub->second.spill_name.empty()) acks.emplace_back(ev->sub_id, ev->epoch, ev->seq);
      }
    }
    return acks;
  }
  void send_spill_acks(const connection& c,
                       const std::vector<std::tuple<std::uint32_t, std::uint64_t, std::uint64_t>>& acks) {
    for (auto [sub_id, epoch, seq] : acks) opts.durable->ack(c.id, sub_id, epoch, seq);
  }

  // Removes the log-serving stand-ins of a subscription that ended.
  void end_spill(const sub_info& sub) {
    if (sub.spill_name.empty() || opts.durable_output == nullptr) return;
    if (auto r = opts.durable_output->remove(sub.spill_name); !r) {
      spdlog::warn("could not remove spill subscription {}: {}", sub.spill_name, r.error().message);
    }
  }

  void retry_stalled() {
    std::vector<router::conn_id> gone;
    for (auto it = stalled.begin(); it != stalled.end();) {
      auto c = conns.find(*it);
      if (c == conns.end()) {
        it = stalled.erase(it);
        continue;
      }
      auto& q = c->second.pending;
      auto r = send_result::sent;
      std::vector<std::tuple<std::uint32_t, std::uint64_t, std::uint64_t>> acks;
      while (!q.empty() && ((acks = spill_acks(c->second, q.front().bytes)),
                            (r = try_send(c->second.identity, q.front().bytes)) == send_result::sent)) {
        send_spill_acks(c->second, acks);
        const auto n = q.front().events;
        bump(stats.delivered, n);
        adjust_queued(c->second.pending_events, c->second.pending_events - n);
        c->second.pending_events -= n;
        q.pop_front();
      }
      if (r == send_result::gone) gone.push_back(c->first);
      it = q.empty() ? stalled.erase(it) : std::next(it);
    }
    for (auto id : gone) forget(id, "peer disconnected");
    const auto now = clock::now();
    std::erase_if(farewells,
                  [&](farewell& f) { return try_send(f.identity, f.bytes) != send_result::full || now > f.deadline; });
  }

  // ---------------------------------------------------------------- sessions
  void forget(router::conn_id id, std::string_view why) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    spdlog::debug("session {} ended: {}", id, why);
    common::lower(stats.queued_events, it->second.pending_events);
    by_identity.erase(it->second.identity);
    for (const auto& [sub_id, sub] : it->second.subs) end_spill(sub);
    conns.erase(it);
    stalled.erase(id);
    stats.connections.store(conns.size(), std::memory_order_relaxed);
    submit_all(router::command{router::drop_connection{id}});
    if (opts.durable != nullptr) opts.durable->drop_connection(id);
  }

  void sweep(clock::time_point now) {
    std::vector<router::conn_id> dead;
    for (auto& [id, c] : conns) {
      if (now - c.last_seen > 3 * c.heartbeat) dead.push_back(id);
    }
    for (auto id : dead) {
      spdlog::info("session {} missed 3 heartbeats ({} ms each); dropping it", id, conns.at(id).heartbeat.count());
      bump(stats.reaped);
      forget(id, "heartbeat timeout");
    }
  }

  // ---------------------------------------------------------------- router hand-off
  void submit(unsigned shard, router::command&& cmd) {
    while (!producer.try_submit(shard, cmd)) {
      // The shard is behind: keep its output moving (it may be waiting on us), then retry.
      drain_outbound();
      std::this_thread::yield();
    }
  }
  void submit_all(const router::command& cmd) {
    for (unsigned s = 0; s < rt.shards(); ++s) submit(s, router::command(cmd));
  }
  void barrier(connection& c, barrier_kind kind, std::uint64_t value) {
    const auto token = next_token++;
    barriers.emplace(token, barrier_wait{c.id, kind, value, rt.shards()});
    submit_all(router::command{router::barrier{c.id, token}});
  }

  bool drain_outbound() {
    bool any = rt.inline_shards() && rt.poll();
    if (opts.durable_output != nullptr) {
      for (int i = 0; i < 1024; ++i) {
        auto out = opts.durable_output->try_take();
        if (!out) break;
        any = true;
        deliver(no_shard, std::move(*out));
      }
    }
    for (unsigned s = 0; s < rt.shards(); ++s) {
      for (int i = 0; i < 1024; ++i) {
        auto out = rt.try_take(s);
        if (!out) break;
        any = true;
        deliver(s, std::move(*out));
      }
    }
    return any;
  }

  void deliver(unsigned shard, router::outbound&& out) {
    auto c = conns.find(out.conn);
    if (out.barrier_token) {
      auto b = barriers.find(*out.barrier_token);
      if (b == barriers.end() || --b->second.remaining > 0) return;
      const auto done = b->second;
      barriers.erase(b);
      if (c == conns.end()) return;
      std::string bytes;
      if (done.kind == barrier_kind::unfilter) {
        c->second.filtered.erase(static_cast<std::uint32_t>(done.value));
        return;
      }
      if (done.kind == barrier_kind::suback) {
        proto::frame_writer(bytes).write(proto::suback{static_cast<std::uint32_t>(done.value)});
      } else {
        proto::frame_writer(bytes).write(proto::pong{done.value});
      }
      send_to(c->second, std::move(bytes));
      return;
    }
    if (c == conns.end()) return;  // the session ended while this was in flight
    if (shard != no_shard && !c->second.filtered.empty()) drop_filtered(c->second, out);
    if (shard == no_shard && !c->second.attaching.empty()) settle_attaches(c->second, out.bytes);
    send_to(c->second, std::move(out.bytes), out.events, out.droppable, shard, std::move(out.tally));
  }

  // A durable attach is answered by the consumer manager: SUBACK confirms it; ERR means the
  // subscription id is free again (so the client may reuse it without an UNSUB).
  static void settle_attaches(connection& c, std::string_view bytes) {
    proto::frame_reader reader(bytes);
    while (!c.attaching.empty()) {
      auto f = reader.next();
      if (!f || !*f) break;
      if (const auto* ok = std::get_if<proto::suback>(&**f)) {
        c.attaching.erase(ok->sub_id);
      } else if (const auto* err = std::get_if<proto::error>(&**f); err != nullptr && c.attaching.erase(err->ref)) {
        c.subs.erase(err->ref);
      }
    }
  }

  // Removes the EVENTs of subscriptions that are switching to the log from a shard's batch.
  static void drop_filtered(const connection& c, router::outbound& out) {
    std::string kept;
    std::uint32_t events = 0;
    proto::frame_reader reader(out.bytes);
    for (;;) {
      const std::size_t at = reader.offset();
      auto f = reader.next();
      if (!f || !*f) break;
      const auto* ev = std::get_if<proto::event>(&**f);
      if (ev != nullptr && c.filtered.contains(ev->sub_id)) continue;
      if (ev != nullptr) ++events;
      kept.append(out.bytes, at, reader.offset() - at);
    }
    out.bytes = std::move(kept);
    out.events = events;
    out.tally.clear();  // approximate per-channel stats are not worth re-deriving here
  }

  // ---------------------------------------------------------------- receiving
  void reply_error(const std::string& identity, std::uint32_t ref, std::string_view code, std::string_view message) {
    std::string bytes;
    proto::frame_writer(bytes).write(proto::error{.ref = ref, .code = code, .message = message});
    auto it = by_identity.find(identity);
    if (it != by_identity.end()) {
      send_to(conns.at(it->second), std::move(bytes));
    } else if (try_send(identity, bytes) == send_result::full) {
      farewells.push_back({identity, std::move(bytes), clock::now() + std::chrono::seconds(2)});
    }
  }

  bool receive_some() {
    bool any = false;
    for (int i = 0; i < 256; ++i) {
      zmq::message_t identity;
      if (!sock.recv(identity, zmq::recv_flags::dontwait)) break;
      any = true;
      zmq::message_t body;
      if (identity.more()) (void)sock.recv(body, zmq::recv_flags::none);
      bool extra = false;
      for (bool more = body.more(); more;) {
        zmq::message_t skip;
        (void)sock.recv(skip, zmq::recv_flags::none);
        extra = true;
        more = skip.more();
      }
      std::string id = identity.to_string();
      if (extra) {
        bump(stats.bad_frames);
        reply_error(id, 0, "malformed_frame", "a message must be a single frame after the identity");
        continue;
      }
      handle_message(id, std::move(body));
    }
    return any;
  }

  // Pass 1: the whole message must decode, contain only client commands, and (for an unknown
  // peer) start with HELLO. Nothing runs unless it passes.
  struct message_shape {
    bool only_valid_pubs = true;  // every record is a PUB that will be accepted
    std::uint64_t shard_mask = 0;
    std::size_t records = 0;      // 0: an empty batch, ignored whoever sent it
  };

  std::expected<message_shape, std::pair<std::string, std::string>> inspect(std::string_view bytes,
                                                                            const connection* c) {
    const bool known = c != nullptr;
    message_shape shape;
    proto::frame_reader reader(bytes);
    bool first = true;
    for (;;) {
      const std::size_t at = reader.offset();
      auto next = reader.next();
      if (!next) return std::unexpected(std::pair{std::string(next.error().protocol_code()), next.error().message});
      if (!*next) break;
      const proto::frame& f = **next;
      if (auto name = client_frame_error(f); !name.empty()) {
        return std::unexpected(std::pair{std::string("unknown_command"),
                                         fmt::format("{} at offset {} is not a client command", name, at)});
      }
      const bool is_hello = std::holds_alternative<proto::hello>(f);
      if (!known && first && !is_hello) {
        return std::unexpected(std::pair{std::string("hello_required"),
                                         std::string("this session is unknown to the broker; send HELLO first")});
      }
      first = false;
      ++shape.records;
      if (const auto* pub = std::get_if<proto::publish>(&f)) {
        if (!known || !publish_ok(*c, *pub)) {
          shape.only_valid_pubs = false;
        } else if (rt.shards() > 1) {
          shape.shard_mask |= std::uint64_t{1} << rt.shard_of(pub->channel);
        }
      } else {
        shape.only_valid_pubs = false;
      }
    }
    if (!known) shape.only_valid_pubs = false;
    if (rt.shards() == 1) shape.shard_mask = 1;
    return shape;
  }

  void handle_message(const std::string& identity, zmq::message_t&& msg) {
    auto found = by_identity.find(identity);
    connection* c = found == by_identity.end() ? nullptr : &conns.at(found->second);
    const std::string_view bytes(static_cast<const char*>(msg.data()), msg.size());
    if (c != nullptr) c->last_seen = clock::now();  // any traffic, even rejected, shows it is alive
    auto shape = inspect(bytes, c);
    if (!shape) {
      if (shape.error().first != "hello_required") bump(stats.bad_frames);
      spdlog::debug("rejected message from session {}: {} ({})", c ? c->id : 0, shape.error().first,
                    shape.error().second);
      reply_error(identity, 0, shape.error().first, shape.error().second);
      return;
    }
    // An empty batch (PROTOCOL.md §2): nothing to run, from a known session or not.
    if (shape->records == 0) return;
    const auto now_ns = unix_ns();
    auto owner = std::make_shared<zmq::message_t>(std::move(msg));
    const std::string_view records(static_cast<const char*>(owner->data()), owner->size());

    if (shape->only_valid_pubs) {  // the hot path: one hand-off per shard for the whole batch
      for (unsigned s = 0; s < rt.shards(); ++s) {
        if (shape->shard_mask & (std::uint64_t{1} << s)) {
          submit(s, router::command{router::publish_batch{c->id, owner, records, now_ns, true}});
        }
      }
      return;
    }

    // General path: runs of PUB records go to the shards; other records run in order between them.
    proto::frame_reader reader(records);
    std::size_t run_begin = 0;
    std::size_t run_end = 0;
    auto flush_run = [&] {
      if (run_end > run_begin && c != nullptr) {
        submit_all(router::command{router::publish_batch{c->id, owner, records.substr(run_begin, run_end - run_begin),
                                                         now_ns, true}});
      }
      run_begin = run_end = reader.offset();
    };
    for (;;) {
      const std::size_t at = reader.offset();
      auto next = reader.next();
      if (!next || !*next) break;
      const proto::frame& f = **next;
      if (const auto* pub = std::get_if<proto::publish>(&f)) {
        if (publish_ok(*c, *pub)) {
          if (run_end != at) run_begin = at;
          run_end = reader.offset();
        } else {
          // A refused record ends the run: the shards only ever see records they may publish.
          flush_run();
          const auto id = c->id;
          check_publish(*c, *pub);
          c = lookup(id);
        }
      } else {
        flush_run();
        c = control(identity, c, f);
      }
      if (c == nullptr) return;  // HELLO was refused or the peer vanished: nothing after it may run
    }
    flush_run();
  }

  // The effective config of a channel as the transport uses it, cached for the current config
  // generation (one registry resolution per channel per generation; a one-entry cache for runs on
  // one channel).
  const channel_view& channel_of(std::string_view channel) {
    static const channel_view defaults{};
    if (opts.policies == nullptr) return defaults;
    const auto generation = opts.policies->generation();
    if (generation != views_generation) {
      views.clear();
      last_view = nullptr;
      views_generation = generation;
    }
    if (last_view != nullptr && channel == last_view->first) return last_view->second;
    auto it = views.find(channel);
    if (it == views.end()) {
      const auto eff = opts.policies->snapshot()->effective(channel);
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
      it = views.emplace(std::string(channel), std::move(v)).first;
    }
    last_view = &*it;
    return it->second;
  }
  const channels::permission_lists* permissions_of(std::string_view channel) {
    return opts.policies == nullptr ? nullptr : &channel_of(channel).permissions;
  }

  // Why `who` may not publish on `channel`, or empty when it may.
  std::string publish_refusal(const auth::principal& who, std::string_view channel) {
    if (!who.publish) return fmt::format("token \"{}\" has no publish scope", who.name);
    if (auto ok = auth::may_use(who, channel); !ok) return ok.error();
    if (const auto* perms = permissions_of(channel);
        perms != nullptr && !perms->may_publish(who.tenant) && !perms->may_publish(who.name)) {
      return fmt::format("\"{}\" may not publish on channel \"{}\"", who.name, channel);
    }
    return {};
  }

  // True when the broker will accept this PUB record from `c` (size, channel name, permissions).
  bool publish_ok(const connection& c, const proto::publish& pub) {
    return pub.payload.size() <= opts.max_payload_bytes && router::validate_channel(pub.channel) &&
           publish_refusal(c.who, pub.channel).empty();
  }

  void check_publish(connection& c, const proto::publish& pub) {
    if (pub.payload.size() > opts.max_payload_bytes) {
      bump(stats.rejected_events);
      send_to(c, error_bytes(pub.request_id, "payload_too_large",
                             fmt::format("payload of {} bytes on channel \"{}\" exceeds the limit of {} bytes",
                                         pub.payload.size(), pub.channel, opts.max_payload_bytes)));
    } else if (auto ok = router::validate_channel(pub.channel); !ok) {
      bump(stats.rejected_events);
      send_to(c, error_bytes(pub.request_id, ok.error().code, ok.error().message));
    } else if (auto why = publish_refusal(c.who, pub.channel); !why.empty()) {
      bump(stats.rejected_events);
      spdlog::debug("session {} ({}): publish on {} refused: {}", c.id, c.who.name, pub.channel, why);
      send_to(c, error_bytes(pub.request_id, "forbidden", why));
    }
  }

  static std::string error_bytes(std::uint32_t ref, std::string_view code, std::string_view message) {
    std::string bytes;
    proto::frame_writer(bytes).write(proto::error{.ref = ref, .code = code, .message = message});
    return bytes;
  }

  connection* lookup(router::conn_id id) {
    auto it = conns.find(id);
    return it == conns.end() ? nullptr : &it->second;
  }

  // Runs one non-PUB record; returns the session afterwards (new after HELLO, null if it ended).
  connection* control(const std::string& identity, connection* c, const proto::frame& f) {
    if (const auto* h = std::get_if<proto::hello>(&f)) return hello(identity, c, *h);
    if (c == nullptr) return c;  // inspect() guarantees HELLO came first
    const auto id = c->id;
    if (const auto* s = std::get_if<proto::subscribe>(&f)) {
      subscribe(*c, *s);
    } else if (const auto* u = std::get_if<proto::unsubscribe>(&f)) {
      auto sub = c->subs.find(u->sub_id);
      if (sub == c->subs.end()) {
        send_to(*c, error_bytes(u->sub_id, "unknown_subscription",
                                fmt::format("no subscription with id {} on this session", u->sub_id)));
      } else if (sub->second.durable) {
        opts.durable->detach(c->id, u->sub_id);
        end_spill(sub->second);
        c->subs.erase(sub);
      } else {
        c->subs.erase(sub);
        submit_all(router::command{router::unsubscribe_command{c->id, u->sub_id}});
      }
    } else if (const auto* p = std::get_if<proto::ping>(&f)) {
      barrier(*c, barrier_kind::pong, p->nonce);
    } else if (const auto* a = std::get_if<proto::ack>(&f)) {
      // ACKs matter for durable at_least_once subscriptions; for live ones they are no-ops.
      if (auto sub = c->subs.find(a->sub_id); sub != c->subs.end() && sub->second.durable) {
        opts.durable->ack(c->id, a->sub_id, a->epoch, a->seq);
      }
    }
    return lookup(id);
  }

  connection* hello(const std::string& identity, connection* c, const proto::hello& h) {
    if (h.version != proto::version) {
      reply_error(identity, 0, "unsupported_version",
                  fmt::format("protocol version {} is not supported; this broker speaks version {}", h.version,
                              proto::version));
      return c;
    }
    auto who = opts.tokens != nullptr ? opts.tokens->authenticate(h.token) : std::optional(auth::anonymous_principal());
    if (!who) {
      spdlog::warn("HELLO with an invalid token rejected");
      reply_error(identity, 0, "unauthorized", "invalid token");
      return c;
    }
    if (c != nullptr) forget(c->id, "new HELLO on the same socket");
    const auto id = next_conn++;
    connection& fresh = conns[id];
    fresh.id = id;
    fresh.identity = identity;
    fresh.who = std::move(*who);
    fresh.last_seen = clock::now();
    fresh.heartbeat = std::chrono::milliseconds(h.heartbeat_ms != 0 ? h.heartbeat_ms : opts.heartbeat_ms);
    by_identity[identity] = id;
    stats.connections.store(conns.size(), std::memory_order_relaxed);
    std::string bytes;
    proto::frame_writer(bytes).write(proto::welcome{.version = proto::version,
                                                    .heartbeat_ms = static_cast<std::uint32_t>(fresh.heartbeat.count()),
                                                    .max_payload_bytes = static_cast<std::uint32_t>(opts.max_payload_bytes),
                                                    .epoch = opts.epoch,
                                                    .server = opts.server_name});
    send_to(fresh, std::move(bytes));
    return lookup(id);
  }

  void subscribe(connection& c, const proto::subscribe& s) {
    if (auto ok = router::validate_pattern(s.pattern); !ok) {
      send_to(c, error_bytes(s.sub_id, ok.error().code, ok.error().message));
      return;
    }
    if (!c.who.subscribe) {
      send_to(c, error_bytes(s.sub_id, "forbidden", fmt::format("token \"{}\" has no subscribe scope", c.who.name)));
      return;
    }
    if (auto ok = auth::may_use(c.who, s.pattern); !ok) {
      send_to(c, error_bytes(s.sub_id, "forbidden", ok.error()));
      return;
    }
    if (const auto* perms = router::validate_channel(s.pattern) ? permissions_of(s.pattern) : nullptr;
        perms != nullptr && !perms->may_subscribe(c.who.tenant) && !perms->may_subscribe(c.who.name)) {
      send_to(c, error_bytes(s.sub_id, "forbidden",
                             fmt::format("\"{}\" may not subscribe to channel \"{}\"", c.who.name, s.pattern)));
      return;
    }
    auto options = parse_sub_options(json, s.options,
                                     opts.default_policy == router::slow_policy::drop_oldest
                                         ? overflow_policy::drop_oldest
                                         : overflow_policy::disconnect);
    if (!options) {
      send_to(c, error_bytes(s.sub_id, "invalid_options", options.error()));
      return;
    }
    if (c.subs.contains(s.sub_id)) {
      send_to(c, error_bytes(s.sub_id, "duplicate_subscription",
                             fmt::format("subscription id {} is already in use on this session", s.sub_id)));
      return;
    }
    if (!options->durable.empty()) {
      if (opts.durable == nullptr) {
        send_to(c, error_bytes(s.sub_id, "invalid_options", "durable subscriptions are not enabled on this broker"));
        return;
      }
      std::optional<durable::subscription_spec> create;
      if (!options->spec_members.empty()) {
        auto spec = durable::parse_spec(spec_json(*options, s.pattern));
        if (!spec) {
          send_to(c, error_bytes(s.sub_id, "invalid_options", spec.error().message));
          return;
        }
        create = std::move(*spec);
      }
      c.subs.emplace(s.sub_id, sub_info{.durable = true, .policy = {}, .pattern = std::string(s.pattern),
                                        .spill_name = {}});
      // The consumer manager answers SUBACK or ERR itself, through its output queue.
      c.attaching.insert(s.sub_id);
      opts.durable->attach(c.id, s.sub_id, options->durable, std::move(create), std::string(s.pattern));
      return;
    }
    c.subs.emplace(s.sub_id, sub_info{.durable = false,
                                      .policy = options->policy_explicit ? std::optional(options->policy) : std::nullopt,
                                      .pattern = std::string(s.pattern), .spill_name = {}});
    submit_all(router::command{router::subscribe_command{
        c.id, s.sub_id, std::string(s.pattern),
        options->policy == overflow_policy::drop_oldest ? router::slow_policy::drop_oldest
                                                        : router::slow_policy::disconnect,
        options->policy_explicit, c.who.tenant, c.who.name}});
    barrier(c, barrier_kind::suback, s.sub_id);
  }

  // ---------------------------------------------------------------- the loop
  void run(std::stop_token st) {
    const auto sweep_every = std::chrono::milliseconds(100);
    next_sweep = clock::now() + sweep_every;
    zmq::pollitem_t items[] = {{sock.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd, ZMQ_POLLIN, 0}};
    for (;;) {
      const bool stop_now = st.stop_requested();
      bool worked = drain_outbound();
      if (accepting.load(std::memory_order_relaxed)) {
        worked = receive_some() || worked;
      } else if (!quiesced.load(std::memory_order_relaxed)) {
        quiesced.store(true);
        quiesced.notify_all();
      }
      if (!stalled.empty() || !farewells.empty()) retry_stalled();
      if (!pending_spills.empty()) {
        auto spills = std::move(pending_spills);
        pending_spills.clear();
        for (const auto& [id, req] : spills) start_spill(id, req);
      }
      if (!drop_reports.empty()) {
        auto reports = std::move(drop_reports);
        drop_reports.clear();
        for (auto& [shard, tally] : reports) submit(shard, router::command{router::drop_report{std::move(tally)}});
      }
      const auto now = clock::now();
      if (now >= next_sweep) {
        sweep(now);
        next_sweep = now + sweep_every;
      }
      // The router is stopped (inline: and idle): its output is drained.
      if (stop_now && !worked && (!rt.inline_shards() || rt.quiescent())) break;
      if (worked) continue;
      if (!rt.consumer_try_idle()) continue;
      const auto timeout = (!stalled.empty() || !farewells.empty())
                               ? std::chrono::milliseconds(1)
                               : std::chrono::duration_cast<std::chrono::milliseconds>(next_sweep - now);
      items[0].events = accepting.load(std::memory_order_relaxed) ? ZMQ_POLLIN : 0;
      zmq::poll(items, 2, std::max(timeout, std::chrono::milliseconds(0)));
      rt.consumer_awake();
      if (items[1].revents & ZMQ_POLLIN) {
        std::uint64_t n = 0;
        (void)::read(wake_fd, &n, sizeof n);
      }
    }
    // Best effort: give queued output a moment to leave, then close.
    for (auto deadline = clock::now() + std::chrono::milliseconds(500); !stalled.empty() && clock::now() < deadline;) {
      retry_stalled();
      std::this_thread::yield();
    }
    sock.set(zmq::sockopt::linger, 200);
    sock.close();
  }
};

std::expected<std::unique_ptr<transport>, transport_error> transport::create(transport_options opts,
                                                                              router::router& r) {
  auto p = std::make_unique<impl>(std::move(opts), r);
  try {
    auto& s = p->sock;
    s.set(zmq::sockopt::router_mandatory, 1);
    s.set(zmq::sockopt::sndhwm, static_cast<int>(p->opts.socket_hwm));
    s.set(zmq::sockopt::rcvhwm, 1000);
    s.set(zmq::sockopt::linger, 0);
    const auto max_msg = std::max<std::int64_t>(16 << 20, 4 * static_cast<std::int64_t>(p->opts.max_payload_bytes));
    s.set(zmq::sockopt::maxmsgsize, max_msg);
    s.bind(p->opts.bind);
    p->endpoint = s.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return std::unexpected(transport_error{fmt::format("cannot bind {}: {}", p->opts.bind, e.what())});
  }
  p->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (p->wake_fd < 0) return std::unexpected(transport_error{"eventfd failed"});
  return std::unique_ptr<transport>(new transport(std::move(p)));
}

transport::transport(std::unique_ptr<impl> p) : _impl(std::move(p)) {}

transport::~transport() {
  stop();
  if (_impl->wake_fd >= 0) ::close(_impl->wake_fd);
}

std::string transport::endpoint() const { return _impl->endpoint; }

void transport::wake() noexcept {
  const std::uint64_t one = 1;
  (void)::write(_impl->wake_fd, &one, sizeof one);
}

void transport::start() {
  _impl->thread = std::jthread([this](std::stop_token st) {
    try {
      _impl->run(st);
    } catch (const std::exception& e) {
      spdlog::critical("transport thread failed: {}", e.what());
      std::terminate();
    }
  });
}

void transport::stop_accepting() {
  if (!_impl->thread.joinable()) return;
  _impl->accepting.store(false);
  wake();
  _impl->quiesced.wait(false);
}

void transport::stop() {
  if (!_impl->thread.joinable()) return;
  stop_accepting();
  _impl->thread.request_stop();
  wake();
  _impl->thread.join();
}

transport_stats transport::snapshot() const {
  auto& s = _impl->stats;
  auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  return {.delivered = get(s.delivered),
          .bad_frames = get(s.bad_frames),
          .rejected_events = get(s.rejected_events),
          .reaped = get(s.reaped),
          .slow_consumer_drops = get(s.slow_drops),
          .slow_consumer_disconnects = get(s.slow_disconnects),
          .connections = get(s.connections),
          .queued_events = get(s.queued_events),
          .slow_consumer_conflated = get(s.slow_conflated),
          .slow_consumer_spilled = get(s.slow_spilled),
          .spills = get(s.spills)};
}

}  // namespace switchboard::transport
