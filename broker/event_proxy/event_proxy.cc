#include "broker/event_proxy/event_proxy.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>
#include <switchboard/client.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "broker/common/epoch_text.h"
#include "broker/event_proxy/stream_params.h"
#include "broker/event_proxy/stream_ticket.h"
#include "broker/router/topic.h"
#include "client/cloudevent/cloudevent.h"

namespace switchboard::event_proxy {
namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

std::uint64_t unix_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

std::int64_t unix_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One SSE message: `id:` (when given) and one `data:` line, then the blank line that dispatches it.
std::string sse_message(std::string_view id, std::string_view json) {
  std::string out;
  out.reserve(id.size() + json.size() + 16);
  if (!id.empty()) {
    out += "id: ";
    out += id;
    out += '\n';
  }
  out += "data: ";
  out += json;
  out += "\n\n";
  return out;
}

bool may_subscribe(const admin::channel_permissions& perms, const auth::principal& who) {
  const auto& allowed = perms.subscribe;
  return std::ranges::find(allowed, "*") != allowed.end() ||
         std::ranges::find(allowed, who.tenant) != allowed.end() ||
         std::ranges::find(allowed, who.name) != allowed.end();
}

// One open SSE stream.
struct stream_state {
  struct held_event {
    std::string channel;
    std::uint64_t epoch = 0;
    std::uint64_t seq = 0;
    std::string chunk;
  };

  std::uint64_t id = 0;
  std::string pattern;
  std::string peer;
  std::string who;
  std::shared_ptr<admin::response_stream> out;

  std::mutex mutex;
  bool live = false;                  // false while resuming: events go to `held`; guarded
  bool ended = false;                 // closed (by us or the connection); guarded
  std::vector<held_event> held;       // guarded by mutex
  std::size_t held_bytes = 0;         // guarded by mutex
  std::unique_ptr<subscription> sub;  // guarded by mutex; released when the stream ends
  // After a replay: events of this channel and epoch up to this seq were sent already. A live
  // event can still arrive after the replay read it (the log may be readable before the shard
  // delivers), so this holds for the stream's whole life, not only for what was held. Guarded.
  std::string replayed_channel;
  std::uint64_t replayed_epoch = 0;
  std::uint64_t replayed_upto = 0;

  [[nodiscard]] bool replayed(std::string_view channel, std::uint64_t epoch, std::uint64_t seq) const {
    return seq <= replayed_upto && epoch == replayed_epoch && channel == replayed_channel;
  }
};

}  // namespace

struct event_proxy::impl {
  impl(proxy_options o, admin::control& c) : opts(std::move(o)), ctl(c) {}

  const proxy_options opts;
  admin::control& ctl;
  const ticket_signer signer;

  std::mutex client_mutex;
  std::shared_ptr<client> internal;  // guarded by client_mutex; created by the first stream

  std::mutex streams_mutex;
  std::unordered_map<std::uint64_t, std::shared_ptr<stream_state>> streams;  // guarded by streams_mutex
  std::uint64_t next_id = 1;                                                 // guarded by streams_mutex
  bool stopping = false;                                                     // guarded by streams_mutex
  std::condition_variable_any heartbeat_cv;
  std::jthread heartbeats;

  std::atomic<std::uint64_t> open_streams{0};
  std::atomic<std::uint64_t> events_total{0};
  std::atomic<std::uint64_t> closed_slow_total{0};
  std::atomic<std::uint64_t> resumes_total{0};
  std::atomic<std::uint64_t> notices{0};

  // The client I/O thread's cache of the last formatted event (one event reaching N streams is
  // formatted once). Only the internal client's I/O thread touches these.
  std::string cache_channel;
  std::uint64_t cache_epoch = 0;
  std::uint64_t cache_seq = 0;
  std::string cache_chunk;

  std::expected<std::shared_ptr<client>, admin::api_error> connected_client();
  // open_stream, with its errors answered here (so that they carry the CORS headers a page needs
  // to read them).
  std::expected<admin::http_response, admin::api_error> open(const admin::stream_request& req);
  std::expected<admin::http_response, admin::api_error> open_stream(const admin::stream_request& req);
  std::expected<admin::http_response, admin::api_error> preflight(const admin::http_request& req) const;
  std::expected<admin::http_response, admin::api_error> issue_ticket(const admin::module_request& req) const;
  void add_cors(const admin::http_request& req, admin::http_response& r) const;
  std::string metrics_text() const;

  const std::string& frame(const event_view& ev);
  void on_event(stream_state& s, const event_view& ev);
  // Pushes `chunk` (s.mutex held); closes the stream as slow when its queue is full.
  void push_locked(stream_state& s, std::string chunk);
  void close_slow_locked(stream_state& s, std::string_view why);
  void close_all(std::string_view why);
  void heartbeat_loop(std::stop_token stop);
  std::string notice(std::string_view type, std::string_view channel, const std::string& data_json);
  // Replays the history of `from.channel` after from.seq into s.out (or tells why it cannot);
  // returns the last seq replayed in from.epoch (0 = none) so held events up to it are skipped.
  std::uint64_t replay(stream_state& s, const cloudevent::position& from);
};

std::expected<std::shared_ptr<client>, admin::api_error> event_proxy::impl::connected_client() {
  std::lock_guard lock(client_mutex);
  if (internal) return internal;
  client_options co;
  co.url = opts.endpoint;
  co.token = opts.token;
  co.on_error = [this](const error& e) {
    // The broker dropped our subscriptions as slow, or the session was lost (events may be
    // missing): close every stream so that browsers reconnect and resume, never a silent gap.
    if (e.broker_code == "slow_consumer" || e.code == errc::unreachable) {
      spdlog::warn("sse: internal client: {} {}; closing every stream so that clients resume", e.broker_code,
                   e.message);
      close_all("internal client lost events");
    }
  };
  auto c = client::connect(co);
  if (!c) {
    spdlog::error("sse: the event proxy cannot connect to {}: {}", opts.endpoint, c.error().message);
    return std::unexpected(
        admin::api_error{503, "proxy_unavailable",
                         fmt::format("the event proxy cannot reach the broker: {}", c.error().message)});
  }
  internal = std::move(*c);
  return internal;
}

void event_proxy::impl::add_cors(const admin::http_request& req, admin::http_response& r) const {
  if (opts.cors_origins.empty()) return;
  r.headers.emplace_back("Vary", "Origin");
  if (auto origin = allowed_origin(req.header("Origin"), opts.cors_origins)) {
    r.headers.emplace_back("Access-Control-Allow-Origin", std::move(*origin));
  }
}

std::expected<admin::http_response, admin::api_error> event_proxy::impl::preflight(
    const admin::http_request& req) const {
  admin::http_response r;
  r.status = 204;
  add_cors(req, r);
  r.headers.emplace_back("Access-Control-Allow-Methods", "GET");
  r.headers.emplace_back("Access-Control-Allow-Headers", "Authorization, Last-Event-ID, Cache-Control");
  r.headers.emplace_back("Access-Control-Max-Age", "600");
  return r;
}

std::string event_proxy::impl::notice(std::string_view type, std::string_view channel,
                                      const std::string& data_json) {
  const std::string id =
      fmt::format("notice-{}-{}", unix_ns(), notices.fetch_add(1, std::memory_order_relaxed));
  // No `id:` line: a notice must not move the browser's Last-Event-ID.
  return sse_message({}, cloudevent::format_notice(type, channel, id, unix_ns(), data_json));
}

std::uint64_t event_proxy::impl::replay(stream_state& s, const cloudevent::position& from) {
  resumes_total.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t next = from.seq + 1;
  std::uint64_t last = 0;
  for (bool first = true;; first = false) {
    auto page = ctl.history(from.channel, next, opts.replay_page);
    if (!page) {
      rapidjson::StringBuffer buf;
      json_writer w(buf);
      w.StartObject();
      w.Key("channel");
      w.String(from.channel.c_str(), static_cast<rapidjson::SizeType>(from.channel.size()));
      w.Key("last_event_id");
      const std::string pos = cloudevent::format_position(from.channel, from.epoch, from.seq);
      w.String(pos.c_str(), static_cast<rapidjson::SizeType>(pos.size()));
      w.Key("reason");
      w.String(page.error().message.c_str(), static_cast<rapidjson::SizeType>(page.error().message.size()));
      w.EndObject();
      std::lock_guard lock(s.mutex);
      push_locked(s,
                  notice("switchboard.resume_unavailable", from.channel, {buf.GetString(), buf.GetSize()}));
      return 0;
    }
    if (page->epoch != from.epoch) {
      // Another history: the client's seq means nothing in it. Tell, and go on live.
      rapidjson::StringBuffer buf;
      json_writer w(buf);
      w.StartObject();
      w.Key("channel");
      w.String(from.channel.c_str(), static_cast<rapidjson::SizeType>(from.channel.size()));
      w.Key("epoch");
      const std::string epoch = common::epoch_text(page->epoch);
      w.String(epoch.c_str(), static_cast<rapidjson::SizeType>(epoch.size()));
      w.Key("first_seq");
      w.Uint64(page->first_seq);
      w.Key("stale_epoch");
      const std::string stale = common::epoch_text(from.epoch);
      w.String(stale.c_str(), static_cast<rapidjson::SizeType>(stale.size()));
      w.EndObject();
      std::lock_guard lock(s.mutex);
      push_locked(s, notice("switchboard.epoch_changed", from.channel, {buf.GetString(), buf.GetSize()}));
      return 0;
    }
    if (first && page->first_seq > next && page->first_seq != 0) {
      // Retention trimmed what the client missed: say where the history now starts.
      rapidjson::StringBuffer buf;
      json_writer w(buf);
      w.StartObject();
      w.Key("channel");
      w.String(from.channel.c_str(), static_cast<rapidjson::SizeType>(from.channel.size()));
      w.Key("first_seq");
      w.Uint64(page->first_seq);
      w.Key("missed_from_seq");
      w.Uint64(next);
      w.EndObject();
      std::lock_guard lock(s.mutex);
      push_locked(s, notice("switchboard.gap", from.channel, {buf.GetString(), buf.GetSize()}));
    }
    if (page->events.empty()) return last;
    std::lock_guard lock(s.mutex);
    for (const admin::history_event& e : page->events) {
      if (s.ended) return last;
      const std::string pos = cloudevent::format_position(from.channel, page->epoch, e.seq);
      push_locked(s, sse_message(pos, cloudevent::format_event(from.channel, page->epoch, e.seq, e.time_ns,
                                                               e.payload)));
      last = e.seq;
    }
    if (page->next_seq <= next) return last;
    next = page->next_seq;
  }
}

std::expected<admin::http_response, admin::api_error> event_proxy::impl::open(
    const admin::stream_request& req) {
  auto r = open_stream(req);
  if (r) return r;
  const admin::api_error& e = r.error();
  spdlog::debug("sse: GET /v1/stream from {} -> {} {}: {}", req.request.peer, e.status, e.code, e.message);
  admin::http_response answer = admin::error_response(e.status, e.code, e.message, e.detail_json);
  add_cors(req.request, answer);
  return answer;
}

std::expected<admin::http_response, admin::api_error> event_proxy::impl::open_stream(
    const admin::stream_request& req) {
  const admin::http_request& http = req.request;
  if (http.method == "OPTIONS") return preflight(http);
  auto params = parse_stream_params(http);
  if (!params) return std::unexpected(params.error());

  auth::principal who = req.who;
  if (!req.authenticated) {
    if (params->ticket.empty()) {
      return std::unexpected(
          admin::api_error{401, "unauthorized",
                           "missing credentials: an Authorization header, a ticket or a token parameter"});
    }
    auto verified = signer.verify(params->ticket, params->pattern, unix_s());
    if (!verified) return std::unexpected(admin::api_error{401, "invalid_ticket", verified.error()});
    who = std::move(*verified);
  }
  if (!who.subscribe) {
    return std::unexpected(admin::api_error{
        403, "forbidden", fmt::format("token {} has no subscribe scope", auth::quote(who.name))});
  }
  if (auto ok = auth::may_use(who, params->pattern); !ok) {
    return std::unexpected(admin::api_error{403, "forbidden", ok.error()});
  }
  if (router::validate_channel(params->pattern) && !may_subscribe(ctl.permissions(params->pattern), who)) {
    return std::unexpected(
        admin::api_error{403, "forbidden",
                         fmt::format("{} may not subscribe to channel {}", auth::quote(who.name),
                                     auth::quote(params->pattern))});
  }
  if (http.method == "HEAD") {
    admin::http_response r;
    r.content_type = "text/event-stream";
    add_cors(http, r);
    return r;
  }

  auto s = std::make_shared<stream_state>();
  s->pattern = params->pattern;
  s->peer = http.peer;
  s->who = who.name;
  s->out = std::make_shared<admin::response_stream>(opts.stream_queue_bytes);
  {
    std::lock_guard lock(streams_mutex);
    if (stopping) return std::unexpected(admin::api_error{503, "shutting_down", "the broker is stopping"});
    if (streams.size() >= opts.max_streams) {
      return std::unexpected(admin::api_error{
          503, "too_many_streams", fmt::format("this broker serves at most {} streams", opts.max_streams)});
    }
    s->id = next_id++;
    streams.emplace(s->id, s);
  }
  open_streams.fetch_add(1, std::memory_order_relaxed);
  // From here on, the stream's end (or an error below) unregisters it, exactly once.
  auto forget = [this, weak = std::weak_ptr<stream_state>(s), id = s->id] {
    std::unique_ptr<subscription> sub;
    if (auto st = weak.lock()) {
      std::lock_guard lock(st->mutex);
      st->ended = true;
      sub = std::move(st->sub);
    }
    bool erased = false;
    {
      std::lock_guard lock(streams_mutex);
      erased = streams.erase(id) > 0;
    }
    if (erased) open_streams.fetch_sub(1, std::memory_order_relaxed);
    // `sub` unsubscribes here, outside every lock.
  };
  auto fail = [&](admin::api_error e) {
    forget();
    return std::unexpected(std::move(e));
  };

  (void)s->out->push(fmt::format("retry: {}\n\n", opts.retry.count()));
  auto c = connected_client();
  if (!c) return fail(c.error());
  subscribe_options so;
  so.slow_consumer = "disconnect";  // a loss must end the stream (and be resumed), never be skipped
  if (!params->filter_json.empty()) so.extra_json = "\"filter\":" + params->filter_json;
  auto sub = (*c)->subscribe(
      params->pattern,
      [this, weak = std::weak_ptr<stream_state>(s)](const event_view& ev) {
        if (auto st = weak.lock()) on_event(*st, ev);
      },
      so);
  if (!sub) {
    const error& e = sub.error();
    if (e.broker_code == "invalid_options") return fail(admin::api_error{400, "invalid_filter", e.message});
    if (e.broker_code == "forbidden") return fail(admin::api_error{403, "forbidden", e.message});
    return fail(admin::api_error{503, "proxy_unavailable", fmt::format("subscribe failed: {}", e.message)});
  }
  {
    std::lock_guard lock(s->mutex);
    s->sub = std::move(*sub);
  }

  std::uint64_t replayed = 0;
  if (params->resume_from) replayed = replay(*s, *params->resume_from);
  {
    // Release what arrived meanwhile, skipping what the replay sent.
    std::lock_guard lock(s->mutex);
    if (params->resume_from) {
      s->replayed_channel = params->resume_from->channel;
      s->replayed_epoch = params->resume_from->epoch;
      s->replayed_upto = replayed;
    }
    for (auto& h : s->held) {
      if (s->ended) break;
      if (s->replayed(h.channel, h.epoch, h.seq)) continue;
      push_locked(*s, std::move(h.chunk));
    }
    s->held.clear();
    s->held_bytes = 0;
    s->live = true;
  }
  s->out->on_close(forget);
  spdlog::debug("sse: stream {} opened by {} from {} for {}{}", s->id, auth::quote(who.name), s->peer,
                router::quote_name(s->pattern), params->resume_from ? " (resuming)" : "");

  admin::http_response r;
  r.content_type = "text/event-stream";
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("X-Accel-Buffering", "no");  // nginx: do not buffer the stream
  add_cors(http, r);
  r.stream = s->out;
  return r;
}

const std::string& event_proxy::impl::frame(const event_view& ev) {
  if (ev.seq != cache_seq || ev.epoch != cache_epoch || ev.channel != cache_channel || cache_chunk.empty()) {
    cache_channel.assign(ev.channel);
    cache_epoch = ev.epoch;
    cache_seq = ev.seq;
    cache_chunk = sse_message(cloudevent::format_position(ev.channel, ev.epoch, ev.seq),
                              cloudevent::format_event(ev.channel, ev.epoch, ev.seq, ev.time_ns, ev.payload));
  }
  return cache_chunk;
}

void event_proxy::impl::on_event(stream_state& s, const event_view& ev) {
  const std::string& chunk = frame(ev);
  std::lock_guard lock(s.mutex);
  if (s.ended || s.replayed(ev.channel, ev.epoch, ev.seq)) return;
  if (!s.live) {
    s.held_bytes += chunk.size();
    if (s.held_bytes > opts.stream_queue_bytes) {
      close_slow_locked(s, "too many live events arrived while it was resuming");
      return;
    }
    s.held.push_back({std::string(ev.channel), ev.epoch, ev.seq, chunk});
    return;
  }
  push_locked(s, chunk);
}

void event_proxy::impl::push_locked(stream_state& s, std::string chunk) {
  if (s.ended) return;
  const bool is_event = chunk.starts_with("id: ");
  switch (s.out->push(std::move(chunk))) {
    case admin::response_stream::push_result::queued:
      if (is_event) events_total.fetch_add(1, std::memory_order_relaxed);
      return;
    case admin::response_stream::push_result::full:
      close_slow_locked(s, fmt::format("more than {} bytes waiting for the client", opts.stream_queue_bytes));
      return;
    case admin::response_stream::push_result::closed: s.ended = true; return;
  }
}

void event_proxy::impl::close_slow_locked(stream_state& s, std::string_view why) {
  if (s.ended) return;
  s.ended = true;
  s.out->close();
  closed_slow_total.fetch_add(1, std::memory_order_relaxed);
  spdlog::warn("sse: stream {} for pattern {} from {} ({}) closed as slow: {}", s.id,
               router::quote_name(s.pattern), s.peer.empty() ? "?" : s.peer, auth::quote(s.who), why);
}

void event_proxy::impl::close_all(std::string_view why) {
  std::vector<std::shared_ptr<stream_state>> all;
  {
    std::lock_guard lock(streams_mutex);
    for (auto& [id, s] : streams) all.push_back(s);
  }
  for (auto& s : all) {
    std::lock_guard lock(s->mutex);
    if (s->ended) continue;
    s->ended = true;
    s->out->close();
  }
  if (!all.empty()) spdlog::info("sse: {} stream(s) closed: {}", all.size(), why);
}

void event_proxy::impl::heartbeat_loop(std::stop_token stop) {
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(streams_mutex);
      heartbeat_cv.wait_for(lock, stop, opts.heartbeat, [] { return false; });
    }
    if (stop.stop_requested()) return;
    std::vector<std::shared_ptr<stream_state>> all;
    {
      std::lock_guard lock(streams_mutex);
      all.reserve(streams.size());
      for (auto& [id, s] : streams) all.push_back(s);
    }
    for (auto& s : all) {
      std::lock_guard lock(s->mutex);
      if (s->live) push_locked(*s, ": hb\n\n");
    }
  }
}

std::expected<admin::http_response, admin::api_error> event_proxy::impl::issue_ticket(
    const admin::module_request& req) const {
  if (!req.rest.empty()) return std::unexpected(admin::api_error{404, "not_found", "no such endpoint"});
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view pattern;
  if (parser.parse(req.request.body).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
    return std::unexpected(
        admin::api_error{400, "invalid_json", "the body must be a JSON object {\"pattern\":…}"});
  }
  if (doc["pattern"].get(pattern) != simdjson::SUCCESS || pattern.empty()) {
    return std::unexpected(admin::api_error{400, "missing_parameter", "pattern is required"});
  }
  if (auto ok = router::validate_pattern(pattern); !ok) {
    return std::unexpected(admin::api_error{400, ok.error().code, ok.error().message});
  }
  const auth::principal& who = req.who;
  if (!who.subscribe) {
    return std::unexpected(admin::api_error{
        403, "forbidden", fmt::format("token {} has no subscribe scope", auth::quote(who.name))});
  }
  if (auto ok = auth::may_use(who, pattern); !ok)
    return std::unexpected(admin::api_error{403, "forbidden", ok.error()});
  const std::int64_t expires_at = unix_s() + opts.ticket_ttl.count();
  const std::string ticket = signer.issue(who, pattern, expires_at);
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  w.Key("ticket");
  w.String(ticket.c_str(), static_cast<rapidjson::SizeType>(ticket.size()));
  w.Key("pattern");
  w.String(pattern.data(), static_cast<rapidjson::SizeType>(pattern.size()));
  w.Key("expires_at");
  w.Int64(expires_at);
  w.EndObject();
  auto r = admin::json_response(201, {buf.GetString(), buf.GetSize()});
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

std::string event_proxy::impl::metrics_text() const {
  return fmt::format(
      "# HELP switchboard_sse_streams Server-Sent Events streams open (GET /v1/stream).\n"
      "# TYPE switchboard_sse_streams gauge\n"
      "switchboard_sse_streams {}\n"
      "# HELP switchboard_sse_events_total Events queued to SSE streams (replayed ones included).\n"
      "# TYPE switchboard_sse_events_total counter\n"
      "switchboard_sse_events_total {}\n"
      "# HELP switchboard_sse_closed_slow_total SSE streams closed because their client fell behind.\n"
      "# TYPE switchboard_sse_closed_slow_total counter\n"
      "switchboard_sse_closed_slow_total {}\n"
      "# HELP switchboard_sse_resumes_total SSE streams opened with a Last-Event-ID.\n"
      "# TYPE switchboard_sse_resumes_total counter\n"
      "switchboard_sse_resumes_total {}\n",
      open_streams.load(), events_total.load(), closed_slow_total.load(), resumes_total.load());
}

std::unique_ptr<event_proxy> event_proxy::create(proxy_options opts, admin::control& ctl) {
  constexpr std::string_view any = "tcp://0.0.0.0:";
  if (opts.endpoint.starts_with(any)) opts.endpoint = "tcp://127.0.0.1:" + opts.endpoint.substr(any.size());
  auto p = std::make_unique<impl>(std::move(opts), ctl);
  p->heartbeats = std::jthread([raw = p.get()](std::stop_token st) { raw->heartbeat_loop(st); });
  return std::unique_ptr<event_proxy>(new event_proxy(std::move(p)));
}

event_proxy::event_proxy(std::unique_ptr<impl> p) : _impl(std::move(p)) {}

event_proxy::~event_proxy() { stop(); }

admin::stream_route event_proxy::stream_route() {
  return admin::stream_route{
      .path = "/v1/stream",
      .open = [p = _impl.get()](const admin::stream_request& req) { return p->open(req); },
      .browser_auth = true,
  };
}

admin::route_module event_proxy::tickets_module() {
  admin::route_module m;
  m.prefix = "/v1/stream/tickets";
  m.methods = {"POST"};
  m.handle = [p = _impl.get()](const admin::module_request& req) { return p->issue_ticket(req); };
  m.metrics = [p = _impl.get()] { return p->metrics_text(); };
  return m;
}

std::string event_proxy::metrics() const { return _impl->metrics_text(); }

void event_proxy::stop() {
  {
    std::lock_guard lock(_impl->streams_mutex);
    if (_impl->stopping) return;
    _impl->stopping = true;
  }
  if (_impl->heartbeats.joinable()) {
    _impl->heartbeats.request_stop();
    _impl->heartbeats.join();
  }
  _impl->close_all("the broker is stopping");
  std::shared_ptr<client> c;
  {
    std::lock_guard lock(_impl->client_mutex);
    c = std::move(_impl->internal);
  }
  if (c) c->close();
}

}  // namespace switchboard::event_proxy
