#include "broker/durable/consumer_manager.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <utility>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>

#include "broker/common/epoch_text.h"
#include "broker/router/topic.h"
#include "switchboard/protocol.h"

namespace switchboard::durable {

namespace detail {
struct payload_parser {
  simdjson::dom::parser parser;
};
}  // namespace detail

namespace {

namespace dom = simdjson::dom;
using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

// Longest the manager sleeps with nothing to do (a safety net; wake-ups are explicit).
constexpr std::chrono::seconds idle_wait{5};
// Poll interval while the output queue is full (try_take() also wakes the manager).
constexpr std::chrono::milliseconds output_poll{10};
// Keys of kind::dead_letters that the pipeline writes (the webhook sink, broker/webhook/dead_letter.h,
// and the delegate stage, broker/server/pipeline_sinks.cc): not ours, left out of the listing and
// never taken by a subscription redrive.
bool pipeline_dead_letter(std::string_view key) { return key.starts_with("webhook/") || key.starts_with("delegate/"); }

void put(json_writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// An epoch as stored in a cursor or dead letter: the hex string (common/epoch_text.h), or the JSON
// number written by versions before the string form.
bool stored_epoch(simdjson::simdjson_result<simdjson::dom::element> value, std::uint64_t& out) {
  std::string_view text;
  if (value.get(text) == simdjson::SUCCESS) {
    auto e = common::parse_epoch_text(text);
    if (!e) return false;
    out = *e;
    return true;
  }
  return value.get(out) == simdjson::SUCCESS;
}

// "cursors":{channel:{"epoch","acked_seq"[,"pending"]}}: what is persisted, and (with pending)
// what the admin API shows.
template <typename Cursors>
void write_cursors(json_writer& w, const Cursors& cursors, bool with_pending) {
  put(w, "cursors");
  w.StartObject();
  for (const auto& [name, cur] : cursors) {
    put(w, name);
    w.StartObject();
    put(w, "epoch");
    put(w, common::epoch_text(cur.epoch));
    put(w, "acked_seq");
    w.Uint64(cur.floor());
    if (with_pending) {
      put(w, "pending");
      w.Uint64(cur.pending.size());
    }
    w.EndObject();
  }
  w.EndObject();
}

std::string to_string(const rapidjson::StringBuffer& b) { return {b.GetString(), b.GetSize()}; }

manager_error unavailable() {
  return manager_error{503, "unavailable", "durable subscriptions are not running"};
}
manager_error store_failed(const store::error& e) {
  return manager_error{500, "store_failed", "store: " + e.message};
}
manager_error store_failed(const engine::history_engine::log_error& e) {
  return manager_error{500, "store_failed", "store: " + e.message};
}
manager_error not_found(std::string_view name) {
  return manager_error{404, "not_found", "durable subscription " + quote_name(name) + " does not exist"};
}

std::uint64_t wall_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

std::string rfc3339(std::uint64_t ns) {
  const auto secs = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%03uZ", static_cast<unsigned>((ns / 1'000'000) % 1000));
  return std::string(buf, n) + frac;
}

constexpr char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                   static_cast<unsigned char>(in[i + 2]);
    out +=
        {b64_chars[(v >> 18) & 63], b64_chars[(v >> 12) & 63], b64_chars[(v >> 6) & 63], b64_chars[v & 63]};
  }
  if (i + 1 == in.size()) {
    const auto v = static_cast<unsigned char>(in[i]) << 16;
    out += {b64_chars[(v >> 18) & 63], b64_chars[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const auto v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {b64_chars[(v >> 18) & 63], b64_chars[(v >> 12) & 63], b64_chars[(v >> 6) & 63], '='};
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (const char c : in) {
    if (c == '=') break;
    const char* p = std::strchr(b64_chars, c);
    if (p == nullptr || c == '\0') return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(p - b64_chars);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

}  // namespace

struct consumer_manager::channel_state {
  std::string name;
  std::uint64_t id = 0;
  std::uint64_t epoch = 0;
  std::uint64_t synced = 0;  // highest seq known to be durable
  // Who may receive it (the channel's `permissions`), as of policy generation `policy_generation`.
  std::vector<std::string> subscribe_allow{"*"};
  std::uint64_t policy_generation = ~std::uint64_t{0};
};

struct consumer_manager::cursor {
  struct pending_event {
    std::uint32_t deliveries = 0;
    clock::time_point deadline{};
  };
  std::uint64_t epoch = 0;                         // the channel history this cursor refers to
  std::uint64_t next = 1;                          // next seq to read
  std::map<std::uint64_t, pending_event> pending;  // sent, not acked (at_least_once)

  // Every seq at or below is done (acked, dead-lettered, filtered out or sent under `none`).
  [[nodiscard]] std::uint64_t floor() const {
    return pending.empty() ? next - 1 : pending.begin()->first - 1;
  }
};

struct consumer_manager::subscription {
  subscription_spec spec;
  std::map<std::string, cursor, std::less<>> cursors;  // by channel name
  std::optional<std::pair<router::conn_id, std::uint32_t>> attached;
  std::string tenant, principal;  // of the attachment (empty: internal, may receive everything)
  std::vector<channel_state*> matching;
  std::uint64_t matching_generation = ~std::uint64_t{0};
  std::size_t pending = 0;  // sum of cursors' pending sizes
  std::uint64_t delivered = 0;
  std::uint64_t redeliveries = 0;
  std::uint64_t dead_lettered = 0;
  bool dirty = false;  // cursors changed since the last save

  [[nodiscard]] bool acked() const { return spec.ack.policy == ack_policy::at_least_once; }
};

// --- handles ---

void consumer_manager::notifier::notify(std::string_view channel, std::uint64_t synced_seq) {
  channel_sync s{std::string(channel), synced_seq};
  if (!_queue.try_push(s)) _manager->_rescan_requested.store(true, std::memory_order_seq_cst);
  _manager->wake_manager();
}

void consumer_manager::client_input::attach(router::conn_id conn, std::uint32_t sub_id, std::string name,
                                            std::optional<subscription_spec> create_if_missing,
                                            std::string expected_pattern, std::string tenant, std::string principal) {
  submit(attach_cmd{conn, sub_id, std::move(name), std::move(create_if_missing), std::move(expected_pattern),
                    std::move(tenant), std::move(principal)});
}
void consumer_manager::client_input::ack(router::conn_id conn, std::uint32_t sub_id, std::uint64_t epoch,
                                         std::uint64_t seq) {
  submit(ack_cmd{conn, sub_id, epoch, seq});
}
void consumer_manager::client_input::detach(router::conn_id conn, std::uint32_t sub_id) {
  submit(detach_cmd{conn, sub_id});
}
void consumer_manager::client_input::drop_connection(router::conn_id conn) { submit(drop_cmd{conn}); }
void consumer_manager::client_input::sent(router::conn_id conn, std::uint64_t events) {
  submit(sent_cmd{conn, events});
}

void consumer_manager::client_input::submit(command&& c) {
  if (!_overflow_used.load(std::memory_order_acquire) && _queue.try_push(c)) {
    _manager->wake_manager();
    return;
  }
  {
    std::lock_guard lock(_overflow_mutex);
    _overflow.push_back(std::move(c));
    _overflow_used.store(true, std::memory_order_seq_cst);
  }
  _manager->wake_manager();
}

void consumer_manager::client_input::drain(std::vector<command>& out) {
  while (auto c = _queue.try_pop()) out.push_back(std::move(*c));
  if (!_overflow_used.load(std::memory_order_acquire)) return;
  std::lock_guard lock(_overflow_mutex);
  for (auto& c : _overflow) out.push_back(std::move(c));
  _overflow.clear();
  _overflow_used.store(false, std::memory_order_release);
}

bool consumer_manager::client_input::empty() const {
  return _queue.empty() && !_overflow_used.load(std::memory_order_seq_cst);
}

// --- lifecycle ---

consumer_manager::consumer_manager(store::store& st, engine::history_engine& histories, manager_options options)
    : _store(st),
      _engine(histories),
      _opts(std::move(options)),
      _output(_opts.max_output_batches),
      _parser(std::make_unique<detail::payload_parser>()) {}

consumer_manager::~consumer_manager() { stop(); }

consumer_manager::notifier& consumer_manager::add_notifier() {
  _notifiers.push_back(std::unique_ptr<notifier>(new notifier(*this, _opts.notify_queue_capacity)));
  return *_notifiers.back();
}

consumer_manager::client_input& consumer_manager::add_client_input() {
  _inputs.push_back(std::unique_ptr<client_input>(new client_input(*this, _opts.input_queue_capacity)));
  return *_inputs.back();
}

std::expected<void, manager_error> consumer_manager::start() {
  std::lock_guard lock(_mutex);
  if (_running || _stopped) return {};
  if (auto r = refresh_channels(); !r) return std::unexpected(std::move(r.error()));
  auto stored = _store.list_configs(store::kind::subscriptions);
  if (!stored) return std::unexpected(store_failed(stored.error()));
  dom::parser parser;
  for (const auto& [name, value] : *stored) {
    dom::element root;
    dom::element spec_el;
    if (parser.parse(value).get(root) != simdjson::SUCCESS ||
        root["spec"].get(spec_el) != simdjson::SUCCESS) {
      ++_stat_store_errors;
      continue;
    }
    auto spec = parse_spec(simdjson::to_string(spec_el));
    if (!spec || spec->name != name) {
      ++_stat_store_errors;
      continue;
    }
    auto sub = std::make_unique<subscription>();
    sub->spec = std::move(*spec);
    dom::object cursors;
    if (root["cursors"].get(cursors) == simdjson::SUCCESS) {
      for (const auto member : cursors) {
        std::uint64_t epoch = 0;
        std::uint64_t acked = 0;
        if (!stored_epoch(member.value["epoch"], epoch) ||
            member.value["acked_seq"].get(acked) != simdjson::SUCCESS) {
          ++_stat_store_errors;
          continue;
        }
        cursor c;
        c.epoch = epoch;
        c.next = acked + 1;
        sub->cursors.emplace(std::string(member.key), std::move(c));
      }
    }
    _subs.emplace(name, std::move(sub));
  }
  _running = true;
  _last_save = clock::now();
  publish_stats();
  _thread = std::jthread([this](std::stop_token st) { run(std::move(st)); });
  return {};
}

void consumer_manager::stop() {
  {
    std::lock_guard lock(_mutex);
    if (_stopped) return;
    _stopped = true;
    _running = false;
  }
  if (_thread.joinable()) {
    _thread.request_stop();
    _thread.join();
  }
  std::lock_guard lock(_mutex);
  flush_output();
  save_dirty(true, clock::now());
  publish_stats();
}

void consumer_manager::wake_manager() {
  if (_idle.load(std::memory_order_seq_cst) && _idle.exchange(false, std::memory_order_seq_cst)) {
    { std::lock_guard lock(_wake_mutex); }
    _wake_cv.notify_one();
  }
}

bool consumer_manager::inputs_empty() const {
  if (_rescan_requested.load(std::memory_order_seq_cst)) return false;
  for (const auto& n : _notifiers) {
    if (!n->_queue.empty()) return false;
  }
  for (const auto& i : _inputs) {
    if (!i->empty()) return false;
  }
  return true;
}

void consumer_manager::run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    bool busy = false;
    clock::time_point deadline;
    {
      std::lock_guard lock(_mutex);
      const auto now = clock::now();
      busy = work_round(now);
      deadline = next_deadline(clock::now());
    }
    if (busy) continue;
    std::unique_lock lock(_wake_mutex);
    _idle.store(true, std::memory_order_seq_cst);
    const bool output_room = _output_blocked.load(std::memory_order_seq_cst) &&
                             _taken.load(std::memory_order_seq_cst) != _taken_before_flush;
    if (output_room || !inputs_empty()) {
      _idle.store(false, std::memory_order_seq_cst);
      continue;
    }
    _wake_cv.wait_until(lock, stop, deadline, [this] { return !_idle.load(std::memory_order_seq_cst); });
    _idle.store(false, std::memory_order_seq_cst);
  }
}

// --- one round of work (with _mutex held) ---

bool consumer_manager::work_round(clock::time_point now) {
  take_notices();
  take_commands(now);
  if (_rescan_requested.exchange(false, std::memory_order_seq_cst)) rescan();
  if (_retry_at <= now) _retry_at = clock::time_point::max();
  // With too much output waiting, reading is skipped this round; that is still work to do.
  bool busy = _unsent.size() >= _opts.max_output_batches;
  if (!busy) {
    std::vector<subscription*> attached;
    attached.reserve(_attachments.size());
    for (const auto& [key, sub] : _attachments) attached.push_back(sub);
    for (subscription* sub : attached) {
      redeliver_due(*sub, now);
      for (channel_state* ch : matching_channels(*sub)) {
        if (!may_receive(*sub, *ch)) continue;
        busy |= deliver(*sub, *ch, cursor_of(*sub, *ch), now);
      }
    }
  }
  _taken_before_flush = _taken.load(std::memory_order_seq_cst);
  flush_output();
  save_dirty(false, now);
  publish_stats();
  return busy && !_output_blocked.load(std::memory_order_seq_cst);
}

void consumer_manager::take_notices() {
  for (auto& n : _notifiers) {
    while (auto s = n->_queue.try_pop()) {
      channel_state* ch = learn_channel(s->channel);
      if (ch == nullptr) continue;
      if (s->seq < ch->synced || s->seq == 0) {
        // Numbering went back, or the shard reports a wipe (seq 0): a new epoch, maybe.
        auto x = _engine.position_of(ch->id);
        if (!x) {
          ++_stat_store_errors;
          continue;
        }
        if (x->epoch != ch->epoch) {
          _by_epoch.erase(ch->epoch);
          ch->epoch = x->epoch;
          _by_epoch[x->epoch] = ch;
          ch->synced = s->seq;
        }
      }
      ch->synced = std::max(ch->synced, s->seq);
    }
  }
}

void consumer_manager::take_commands(clock::time_point now) {
  std::vector<client_input::command> commands;
  for (auto& in : _inputs) in->drain(commands);
  for (auto& c : commands) {
    if (auto* a = std::get_if<client_input::attach_cmd>(&c)) {
      handle_attach(*a, now);
    } else if (auto* k = std::get_if<client_input::ack_cmd>(&c)) {
      handle_ack(*k);
    } else if (auto* d = std::get_if<client_input::detach_cmd>(&c)) {
      if (auto it = _attachments.find({d->conn, d->sub_id}); it != _attachments.end())
        detach_sub(*it->second, now);
    } else if (auto* done = std::get_if<client_input::sent_cmd>(&c)) {
      if (auto it = _in_flight.find(done->conn); it != _in_flight.end()) {
        it->second -= std::min(it->second, done->events);
      }
    } else {
      drop_conn(std::get<client_input::drop_cmd>(c).conn, now);
    }
  }
}

std::expected<void, manager_error> consumer_manager::refresh_channels() {
  bool learned = true;
  auto listed = _engine.for_each_history([&](std::string&& name, std::uint64_t id) {
    if (_channels.contains(name)) return true;
    learned = learn_channel(std::move(name), id) != nullptr;
    return learned;
  });
  if (!listed) {
    ++_stat_store_errors;
    return std::unexpected(store_failed(listed.error()));
  }
  if (!learned) {
    return std::unexpected(manager_error{500, "store_failed", "store: cannot read a channel's log position"});
  }
  return {};
}

consumer_manager::channel_state* consumer_manager::learn_channel(std::string_view name) {
  if (auto it = _channels.find(name); it != _channels.end()) return it->second.get();
  auto log = _engine.open(name, 0);
  if (!log) {
    ++_stat_store_errors;
    return nullptr;
  }
  return learn_channel(std::string(name), log->log_id);
}

consumer_manager::channel_state* consumer_manager::learn_channel(std::string name, std::uint64_t id) {
  // Epoch and high-water only (not extent_of(): no read of the oldest event, so a damaged block
  // there does not stop the manager from starting).
  auto x = _engine.position_of(id);
  if (!x) {
    ++_stat_store_errors;
    return nullptr;
  }
  auto ch = std::make_unique<channel_state>(channel_state{name, id, x->epoch, x->last_seq});
  channel_state* raw = ch.get();
  _channels.emplace(std::move(name), std::move(ch));
  _by_epoch[x->epoch] = raw;
  ++_channel_generation;
  return raw;
}

void consumer_manager::rescan() {
  ++_stat_rescans;
  (void)refresh_channels();
  for (auto& [name, ch] : _channels) {
    auto x = _engine.position_of(ch->id);
    if (!x) {
      ++_stat_store_errors;
      continue;
    }
    if (x->epoch != ch->epoch) {
      _by_epoch.erase(ch->epoch);
      ch->epoch = x->epoch;
      _by_epoch[x->epoch] = ch.get();
      ch->synced = x->last_seq;
    }
    ch->synced = std::max(ch->synced, x->last_seq);
  }
}

const std::vector<consumer_manager::channel_state*>& consumer_manager::matching_channels(subscription& s) {
  if (s.matching_generation != _channel_generation) {
    s.matching.clear();
    for (auto& [name, ch] : _channels) {
      if (router::pattern_matches(s.spec.pattern, name)) s.matching.push_back(ch.get());
    }
    s.matching_generation = _channel_generation;
  }
  return s.matching;
}

bool consumer_manager::may_receive(const subscription& sub, channel_state& ch) {
  if (_opts.policies == nullptr || (sub.tenant.empty() && sub.principal.empty())) return true;
  if (const auto g = _opts.policies->generation(); g != ch.policy_generation) {
    ch.subscribe_allow = _opts.policies->lookup(ch.name).subscribe_allow;
    ch.policy_generation = g;
  }
  const auto& allow = ch.subscribe_allow;
  return std::ranges::find(allow, "*") != allow.end() || std::ranges::find(allow, sub.tenant) != allow.end() ||
         std::ranges::find(allow, sub.principal) != allow.end();
}

consumer_manager::cursor& consumer_manager::cursor_of(subscription& sub, channel_state& ch) {
  auto it = sub.cursors.find(ch.name);
  if (it == sub.cursors.end()) {
    // A channel that appeared after the subscription was created: from its beginning.
    cursor c;
    c.epoch = ch.epoch;
    it = sub.cursors.emplace(ch.name, std::move(c)).first;
    sub.dirty = true;
    return it->second;
  }
  cursor& c = it->second;
  if (c.epoch != ch.epoch) {
    // The channel's history was restarted (wiped): its old positions mean nothing any more.
    const std::uint64_t old_epoch = c.epoch;
    sub.pending -= c.pending.size();
    c.pending.clear();
    c.next = 1;
    c.epoch = ch.epoch;
    sub.dirty = true;
    if (sub.attached) {
      rapidjson::StringBuffer buf;
      json_writer w(buf);
      w.StartObject();
      put(w, "channel");
      put(w, ch.name);
      put(w, "old_epoch");
      put(w, common::epoch_text(old_epoch));
      put(w, "epoch");
      put(w, common::epoch_text(ch.epoch));
      w.EndObject();
      std::string rec;
      protocol::frame_writer(rec).write(protocol::notice{sub.attached->second, "epoch", to_string(buf)});
      push_record(sub.attached->first, rec);
    }
  }
  return c;
}

bool consumer_manager::deliver(subscription& sub, channel_state& ch, cursor& cur, clock::time_point now) {
  if (cur.next > ch.synced || _retry_at != clock::time_point::max()) return false;
  std::size_t limit = _opts.read_chunk_events;
  if (_opts.connection_window != 0 && sub.attached) {
    const auto in_flight = _in_flight[sub.attached->first];
    if (in_flight >= _opts.connection_window) return false;
    limit = std::min<std::size_t>(limit, _opts.connection_window - in_flight);
  }
  if (sub.acked()) {
    if (sub.pending >= sub.spec.ack.max_ack_pending) return false;
    limit = std::min<std::size_t>(limit, sub.spec.ack.max_ack_pending - sub.pending);
  }
  limit = static_cast<std::size_t>(std::min<std::uint64_t>(limit, ch.synced - cur.next + 1));
  auto events = _engine.read(ch.id, cur.next, limit, _opts.read_chunk_bytes);
  if (!events) {
    ++_stat_store_errors;
    _retry_at = now + _opts.retry_interval;
    return false;
  }
  sub.dirty = true;
  // Seqs missing between cur.next and what the log holds: taken by retention (a gap the subscriber
  // is told about) or never stored because their append failed (not a gap: nothing was lost).
  const auto skip_to = [&](std::uint64_t next) -> bool {
    auto x = _engine.extent_of(ch.id);
    if (!x) {
      ++_stat_store_errors;
      _retry_at = now + _opts.retry_interval;
      return false;
    }
    if (cur.next <= x->trimmed_through) push_gap(sub, ch, cur.next, next);
    cur.next = next;
    return true;
  };
  if (events->empty()) {  // nothing stored up to the synced seq
    (void)skip_to(ch.synced + 1);
    return true;
  }
  const auto wait = std::chrono::milliseconds(sub.spec.ack.ack_wait_ms);
  for (const engine::history_engine::event& ev : *events) {
    if (ev.seq > cur.next && !skip_to(ev.seq)) return true;
    if (ev.seq > ch.synced) break;
    cur.next = ev.seq + 1;
    if (!filter_matches(sub.spec.filter, ev.payload)) continue;
    push_event(sub, ch, ev);
    ++sub.delivered;
    ++_stat_delivered;
    if (sub.acked()) {
      cur.pending.emplace(ev.seq, cursor::pending_event{1, now + wait});
      ++sub.pending;
    }
  }
  return true;
}

void consumer_manager::redeliver_due(subscription& sub, clock::time_point now) {
  if (!sub.acked() || sub.pending == 0 || !sub.attached) return;
  const auto wait = std::chrono::milliseconds(sub.spec.ack.ack_wait_ms);
  for (auto& [name, cur] : sub.cursors) {
    if (cur.pending.empty()) continue;
    auto ch_it = _channels.find(name);
    if (ch_it == _channels.end()) continue;
    channel_state& ch = *ch_it->second;
    for (auto it = cur.pending.begin(); it != cur.pending.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      const std::uint64_t seq = it->first;
      auto events = _engine.read(ch.id, seq, 1, 1);
      if (!events) {
        ++_stat_store_errors;
        _retry_at = now + _opts.retry_interval;
        return;
      }
      const bool present = !events->empty() && events->front().seq == seq;
      if (!present) {  // removed by retention before it was acked
        push_gap(sub, ch, seq, events->empty() ? ch.synced + 1 : events->front().seq);
      } else if (it->second.deliveries >= sub.spec.ack.max_deliveries) {
        dead_letter_event(sub, ch, seq, it->second.deliveries, &events->front());
      } else {
        push_event(sub, ch, events->front());
        ++it->second.deliveries;
        it->second.deadline = now + wait;
        ++sub.redeliveries;
        ++_stat_redeliveries;
        ++it;
        continue;
      }
      it = cur.pending.erase(it);
      --sub.pending;
      sub.dirty = true;
    }
  }
}

void consumer_manager::dead_letter_event(subscription& sub, channel_state& ch, std::uint64_t seq,
                                         std::uint32_t deliveries, const engine::history_engine::event* ev) {
  // The epoch makes ids unique across wipes of the channel's history.
  const std::string id = sub.spec.name + "-" + ch.name + "-" + common::epoch_text(ch.epoch) + "-" + std::to_string(seq);
  const std::uint64_t now_ns = wall_ns();
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  put(w, "id");
  put(w, id);
  put(w, "subscription");
  put(w, sub.spec.name);
  put(w, "channel");
  put(w, ch.name);
  put(w, "epoch");
  put(w, common::epoch_text(ch.epoch));
  put(w, "seq");
  w.Uint64(seq);
  put(w, "deliveries");
  w.Uint(deliveries);
  put(w, "reason");
  put(w, "max_deliveries (" + std::to_string(sub.spec.ack.max_deliveries) + ") exceeded without ack");
  put(w, "time");
  put(w, rfc3339(now_ns));
  put(w, "time_ns");
  w.Uint64(now_ns);
  if (ev != nullptr) {
    put(w, "event_time_ns");
    w.Uint64(ev->time_ns);
    dom::element ignored;
    if (_parser->parser.parse(ev->payload).get(ignored) == simdjson::SUCCESS) {
      put(w, "data");
      w.RawValue(ev->payload.data(), ev->payload.size(), rapidjson::kObjectType);
    } else {
      put(w, "data_base64");
      put(w, base64_encode(ev->payload));
    }
  }
  w.EndObject();
  if (auto r = _store.put_config(store::kind::dead_letters, id, to_string(buf)); !r) {
    // Counted as done all the same: holding the cursor back forever on a store failure would stop
    // the subscription; the failure shows in store_errors.
    ++_stat_store_errors;
  }
  ++sub.dead_lettered;
  ++_stat_dead_letters;
}

void consumer_manager::handle_attach(client_input::attach_cmd& c, clock::time_point now) {
  auto reply_error = [&](const manager_error& e) {
    std::string rec;
    protocol::frame_writer(rec).write(protocol::error{c.sub_id, e.code, e.message});
    push_record(c.conn, rec);
  };
  if (!_running) return reply_error(unavailable());
  const std::pair key{c.conn, c.sub_id};
  auto sub_it = _subs.find(c.name);
  if (sub_it == _subs.end()) {
    if (!c.spec) return reply_error(not_found(c.name));
    if (c.spec->name != c.name) {
      return reply_error(
          manager_error{422, "invalid_attribute",
                        "attribute \"name\" must be the name of the subscription being attached"});
    }
    if (auto r = create_locked(*c.spec); !r) return reply_error(r.error());
    sub_it = _subs.find(c.name);
  } else if (c.spec && *c.spec != sub_it->second->spec) {
    return reply_error(manager_error{
        409, "conflict",
        "durable subscription " + quote_name(c.name) + " already exists with a different spec"});
  }
  if (!c.expected_pattern.empty() && c.expected_pattern != sub_it->second->spec.pattern) {
    // The caller checked its permissions against expected_pattern: never serve another one.
    return reply_error(manager_error{409, "conflict",
                                     "durable subscription " + quote_name(c.name) + " has pattern " +
                                         quote_name(sub_it->second->spec.pattern) + ", not " +
                                         quote_name(c.expected_pattern)});
  }
  subscription& sub = *sub_it->second;
  if (auto it = _attachments.find(key); it != _attachments.end() && it->second != &sub)
    detach_sub(*it->second, now);
  if (sub.attached && *sub.attached != key) {
    std::string rec;
    protocol::frame_writer(rec).write(protocol::error{
        sub.attached->second, "detached",
        "durable subscription " + quote_name(sub.spec.name) + " was attached by another connection"});
    push_record(sub.attached->first, rec);
    _attachments.erase(*sub.attached);
  }
  sub.attached = key;
  sub.tenant = c.tenant;
  sub.principal = c.principal;
  _attachments[key] = &sub;
  for (auto& [name, cur] : sub.cursors) {
    for (auto& [seq, p] : cur.pending) p.deadline = now;  // the new attachment gets them at once
  }
  std::string rec;
  protocol::frame_writer(rec).write(protocol::suback{c.sub_id});
  push_record(c.conn, rec);
}

void consumer_manager::handle_ack(const client_input::ack_cmd& c) {
  auto it = _attachments.find({c.conn, c.sub_id});
  if (it == _attachments.end() || !it->second->acked()) return;
  subscription& sub = *it->second;
  auto ch = _by_epoch.find(c.epoch);
  if (ch == _by_epoch.end()) return;
  auto cur = sub.cursors.find(ch->second->name);
  if (cur == sub.cursors.end() || cur->second.epoch != c.epoch) return;
  if (cur->second.pending.erase(c.seq) == 1) {
    --sub.pending;
    sub.dirty = true;
  }
}

void consumer_manager::detach_sub(subscription& sub, clock::time_point now) {
  if (!sub.attached) return;
  _attachments.erase(*sub.attached);
  sub.attached.reset();
  for (auto& [name, cur] : sub.cursors) {
    for (auto& [seq, p] : cur.pending) p.deadline = now;
  }
}

void consumer_manager::drop_conn(router::conn_id conn, clock::time_point now) {
  std::vector<subscription*> subs;
  for (auto it = _attachments.lower_bound({conn, 0}); it != _attachments.end() && it->first.first == conn;
       ++it) {
    subs.push_back(it->second);
  }
  for (subscription* s : subs) detach_sub(*s, now);
  _building.erase(conn);
  _in_flight.erase(conn);
  std::erase_if(_unsent, [conn](const router::outbound& o) { return o.conn == conn; });
}

std::expected<bool, manager_error> consumer_manager::create_locked(const subscription_spec& spec) {
  if (auto it = _subs.find(spec.name); it != _subs.end()) {
    if (it->second->spec == spec) return false;
    return std::unexpected(manager_error{
        409, "conflict",
        "durable subscription " + quote_name(spec.name) + " already exists with a different spec"});
  }
  if (auto r = refresh_channels(); !r) return std::unexpected(std::move(r.error()));
  auto sub = std::make_unique<subscription>();
  sub->spec = spec;
  for (auto& [name, ch] : _channels) {
    if (!router::pattern_matches(spec.pattern, name)) continue;
    auto start = start_cursor(spec, *ch);
    if (!start) {
      ++_stat_store_errors;
      return std::unexpected(store_failed(start.error()));
    }
    cursor c;
    // A position names its own history; another epoch gets the `epoch` notice (cursor_of), never
    // events of this history matched by seq.
    c.epoch = spec.start.kind == start_position::from::position ? spec.start.epoch : ch->epoch;
    c.next = *start + 1;
    sub->cursors.emplace(name, std::move(c));
  }
  if (auto r = save(*sub); !r) {
    ++_stat_store_errors;
    return std::unexpected(store_failed(r.error()));
  }
  _subs.emplace(spec.name, std::move(sub));
  publish_stats();
  return true;
}

std::expected<std::uint64_t, engine::history_engine::log_error> consumer_manager::start_cursor(
    const subscription_spec& spec, const channel_state& ch) {
  using from = start_position::from;
  if (spec.start.kind == from::seq) return spec.start.seq - 1;
  if (spec.start.kind == from::position) return spec.start.seq;  // resume after it (cursor_of checks the epoch)
  auto x = _engine.extent_of(ch.id);
  if (!x) return std::unexpected(std::move(x.error()));
  switch (spec.start.kind) {
    case from::new_events: return x->last_seq;
    case from::seq:
    case from::position: break;
    case from::all: return x->first_seq == 0 ? x->last_seq : x->first_seq - 1;  // empty: nothing to replay
    case from::time: {
      // Binary search for the first event at or after T (publish times grow with seq).
      if (x->first_seq == 0) return x->last_seq;
      std::uint64_t lo = x->first_seq;
      std::uint64_t hi = x->last_seq + 1;  // hi: "no such event"
      std::uint64_t found = 0;
      while (lo < hi) {
        const std::uint64_t mid = lo + (hi - lo) / 2;
        auto ev = _engine.read(ch.id, mid, 1, 1);
        if (!ev) return std::unexpected(std::move(ev.error()));
        if (ev->empty() || ev->front().time_ns >= spec.start.time_ns) {
          if (!ev->empty()) found = ev->front().seq;
          hi = mid;
        } else {
          lo = ev->front().seq + 1;
        }
      }
      return found == 0 ? x->last_seq : found - 1;
    }
  }
  return 0;
}

void consumer_manager::save_dirty(bool force, clock::time_point now) {
  if (!force && now - _last_save < _opts.save_interval) return;
  _last_save = now;
  for (auto& [name, sub] : _subs) {
    if (!sub->dirty) continue;
    if (auto r = save(*sub); !r) ++_stat_store_errors;
  }
}

std::expected<void, store::error> consumer_manager::save(subscription& sub) {
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  const std::string spec = spec_to_json(sub.spec);
  w.StartObject();
  put(w, "spec");
  w.RawValue(spec.data(), spec.size(), rapidjson::kObjectType);
  write_cursors(w, sub.cursors, /*with_pending=*/false);
  w.EndObject();
  auto r = _store.put_config(store::kind::subscriptions, sub.spec.name, to_string(buf));
  if (r) sub.dirty = false;
  return r;
}

bool consumer_manager::filter_matches(const event_filter& filter, std::string_view payload) {
  if (filter.empty()) return true;
  dom::object obj;
  if (_parser->parser.parse(payload).get(obj) != simdjson::SUCCESS) return false;
  for (const field_condition& c : filter) {
    dom::element v;
    if (obj.at_key(c.field).get(v) != simdjson::SUCCESS) return false;
    if (c.how == field_condition::match::prefix) {
      std::string_view s;
      if (v.get(s) != simdjson::SUCCESS || !s.starts_with(std::get<std::string>(c.value))) return false;
    } else if (const auto* want = std::get_if<std::string>(&c.value)) {
      std::string_view s;
      if (v.get(s) != simdjson::SUCCESS || s != *want) return false;
    } else if (const auto* want_i = std::get_if<std::int64_t>(&c.value)) {
      std::int64_t i = 0;
      if (!v.is_int64() || v.get(i) != simdjson::SUCCESS || i != *want_i) return false;
    } else {
      bool b = false;
      if (v.get(b) != simdjson::SUCCESS || b != std::get<bool>(c.value)) return false;
    }
  }
  return true;
}

// --- output ---

void consumer_manager::push_event(subscription& sub, const channel_state& ch, const engine::history_engine::event& ev) {
  const auto [conn, sub_id] = *sub.attached;
  router::outbound& out = _building[conn];
  out.conn = conn;
  out.droppable = false;
  protocol::frame_writer(out.bytes).write(
      protocol::event{sub_id, ch.epoch, ev.seq, ev.time_ns, ch.name, ev.payload});
  ++out.events;
  if (_opts.connection_window != 0) ++_in_flight[conn];
  if (out.bytes.size() >= _opts.flush_bytes) {
    _unsent.push_back(std::move(out));
    _building.erase(conn);
  }
}

void consumer_manager::push_gap(subscription& sub, const channel_state& ch, std::uint64_t expected,
                                std::uint64_t first) {
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  put(w, "channel");
  put(w, ch.name);
  put(w, "expected_seq");
  w.Uint64(expected);
  put(w, "first_seq");
  w.Uint64(first);
  w.EndObject();
  std::string rec;
  protocol::frame_writer(rec).write(protocol::notice{sub.attached->second, "gap", to_string(buf)});
  push_record(sub.attached->first, rec);
}

void consumer_manager::push_record(router::conn_id conn, const std::string& bytes) {
  router::outbound& out = _building[conn];
  out.conn = conn;
  out.droppable = false;
  out.bytes += bytes;
}

void consumer_manager::flush_output() {
  for (auto& [conn, out] : _building) {
    if (!out.bytes.empty()) _unsent.push_back(std::move(out));
  }
  _building.clear();
  bool pushed = false;
  while (!_unsent.empty()) {
    if (!_output.try_push(_unsent.front())) {
      _output_blocked.store(true, std::memory_order_seq_cst);
      if (!_output.try_push(_unsent.front())) break;
    }
    _unsent.pop_front();
    pushed = true;
  }
  if (_unsent.empty()) _output_blocked.store(false, std::memory_order_seq_cst);
  if (pushed && _opts.wake) _opts.wake();
}

std::optional<router::outbound> consumer_manager::try_take() {
  auto out = _output.try_pop();
  if (out) {
    // Pairs with run(): either the manager sees this take (it compares _taken after announcing
    // it is idle), or this thread sees the manager idle and wakes it. All four accesses are seq_cst.
    _taken.fetch_add(1, std::memory_order_seq_cst);
    if (_output_blocked.load(std::memory_order_seq_cst)) wake_manager();
  }
  return out;
}

consumer_manager::clock::time_point consumer_manager::next_deadline(clock::time_point now) const {
  clock::time_point at = now + idle_wait;
  for (const auto& [key, sub] : _attachments) {
    if (!sub->acked()) continue;
    for (const auto& [name, cur] : sub->cursors) {
      for (const auto& [seq, p] : cur.pending) at = std::min(at, p.deadline);
    }
  }
  for (const auto& [name, sub] : _subs) {
    if (sub->dirty) {
      at = std::min(at, _last_save + _opts.save_interval);
      break;
    }
  }
  at = std::min(at, _retry_at);
  if (_output_blocked.load(std::memory_order_seq_cst)) at = std::min(at, now + output_poll);
  return at;
}

void consumer_manager::publish_stats() {
  std::uint64_t pending = 0;
  for (const auto& [name, sub] : _subs) pending += sub->pending;
  _stat_subscriptions = _subs.size();
  _stat_attached = _attachments.size();
  _stat_pending = pending;
}

manager_stats consumer_manager::stats() const {
  manager_stats s;
  s.subscriptions = _stat_subscriptions.load();
  s.attached = _stat_attached.load();
  s.pending = _stat_pending.load();
  s.delivered = _stat_delivered.load();
  s.redeliveries = _stat_redeliveries.load();
  s.dead_letters = _stat_dead_letters.load();
  s.store_errors = _stat_store_errors.load();
  s.rescans = _stat_rescans.load();
  return s;
}

// --- admin ---

std::expected<bool, manager_error> consumer_manager::create(const subscription_spec& spec) {
  std::lock_guard lock(_mutex);
  if (!_running) return std::unexpected(unavailable());
  return create_locked(spec);
}

std::string consumer_manager::describe(const subscription& sub) const {
  std::string out = spec_to_json(sub.spec);
  out.pop_back();  // reopen the object to add the state
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  put(w, "attached");
  w.Bool(sub.attached.has_value());
  // false while cursor changes wait for the next save (at most save_interval): what a crash now
  // would redeliver.
  put(w, "saved");
  w.Bool(!sub.dirty);
  write_cursors(w, sub.cursors, /*with_pending=*/true);
  put(w, "pending");
  w.Uint64(sub.pending);
  put(w, "delivered");
  w.Uint64(sub.delivered);
  put(w, "redeliveries");
  w.Uint64(sub.redeliveries);
  put(w, "dead_letters");
  w.Uint64(sub.dead_lettered);
  w.EndObject();
  std::string state = to_string(buf);
  out += ',';
  out.append(state, 1);  // without its own '{'
  return out;
}

std::expected<std::string, manager_error> consumer_manager::get(std::string_view name) {
  std::lock_guard lock(_mutex);
  if (!_running) return std::unexpected(unavailable());
  auto it = _subs.find(name);
  if (it == _subs.end()) return std::unexpected(not_found(name));
  return describe(*it->second);
}

std::expected<std::string, manager_error> consumer_manager::list() {
  std::lock_guard lock(_mutex);
  if (!_running) return std::unexpected(unavailable());
  std::string out = "[";
  for (const auto& [name, sub] : _subs) {
    if (out.size() > 1) out += ',';
    out += describe(*sub);
  }
  out += ']';
  return out;
}

std::expected<void, manager_error> consumer_manager::remove(std::string_view name) {
  std::lock_guard lock(_mutex);
  if (!_running) return std::unexpected(unavailable());
  auto it = _subs.find(name);
  if (it == _subs.end()) return std::unexpected(not_found(name));
  if (auto r = _store.delete_config(store::kind::subscriptions, name); !r) {
    ++_stat_store_errors;
    return std::unexpected(store_failed(r.error()));
  }
  subscription& sub = *it->second;
  if (sub.attached) {
    std::string rec;
    protocol::frame_writer(rec).write(
        protocol::error{sub.attached->second, "subscription_removed",
                        "durable subscription " + quote_name(name) + " was removed"});
    push_record(sub.attached->first, rec);
    _attachments.erase(*sub.attached);
  }
  _subs.erase(it);
  flush_output();
  publish_stats();
  return {};
}

std::expected<std::string, manager_error> consumer_manager::dead_letters() {
  auto all = _store.list_configs(store::kind::dead_letters);
  if (!all) return std::unexpected(store_failed(all.error()));
  std::string out = "[";
  for (const auto& [id, value] : *all) {
    if (pipeline_dead_letter(id)) continue;  // the pipeline's (docs/WEBHOOKS.md, docs/DELEGATES.md)
    if (out.size() > 1) out += ',';
    out += value;
  }
  out += ']';
  return out;
}

std::expected<dead_letter, manager_error> consumer_manager::take_dead_letter(std::string_view id) {
  std::lock_guard lock(_mutex);  // one taker at a time, so a dead letter is redriven once
  auto stored = _store.get_config(store::kind::dead_letters, id);
  if (!stored) return std::unexpected(store_failed(stored.error()));
  if (!stored->has_value() || pipeline_dead_letter(id)) {
    return std::unexpected(
        manager_error{404, "not_found", "dead letter " + quote_name(id) + " does not exist"});
  }
  dom::parser parser;
  dom::object obj;
  dead_letter dl;
  std::string_view s;
  const manager_error bad{500, "store_failed",
                          "dead letter " + quote_name(id) + " is not a subscription dead letter"};
  if (parser.parse(**stored).get(obj) != simdjson::SUCCESS) return std::unexpected(bad);
  dl.id = std::string(id);
  std::uint64_t deliveries = 0;
  if (obj["subscription"].get(s) != simdjson::SUCCESS) return std::unexpected(bad);
  dl.subscription = std::string(s);
  if (obj["channel"].get(s) != simdjson::SUCCESS) return std::unexpected(bad);
  dl.channel = std::string(s);
  if (obj["seq"].get(dl.seq) != simdjson::SUCCESS || obj["deliveries"].get(deliveries) != simdjson::SUCCESS) {
    return std::unexpected(bad);
  }
  dl.deliveries = static_cast<std::uint32_t>(deliveries);
  if (!stored_epoch(obj["epoch"], dl.epoch)) dl.epoch = 0;
  if (obj["time_ns"].get(dl.time_ns) != simdjson::SUCCESS) dl.time_ns = 0;
  if (obj["reason"].get(s) == simdjson::SUCCESS) dl.reason = std::string(s);
  dom::element data;
  if (obj["data"].get(data) == simdjson::SUCCESS) {
    dl.payload = simdjson::to_string(data);
  } else if (obj["data_base64"].get(s) == simdjson::SUCCESS) {
    auto bytes = base64_decode(s);
    if (!bytes) return std::unexpected(bad);
    dl.payload = std::move(*bytes);
  }
  if (auto r = _store.delete_config(store::kind::dead_letters, id); !r) {
    return std::unexpected(store_failed(r.error()));
  }
  return dl;
}

}  // namespace switchboard::durable
