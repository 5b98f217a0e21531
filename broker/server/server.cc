#include "broker/server/server.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "broker/admin/admin_server.h"
#include "broker/auth/auth.h"
#include "broker/channels/config_registry.h"
#include "broker/durable/consumer_manager.h"
#include "broker/router/router.h"
#include "broker/router/topic.h"
#include "broker/server/broker_control.h"
#include "broker/event_proxy/event_proxy.h"
#include "broker/server/channel_pipelines.h"
#include "broker/server/info_api.h"
#include "broker/server/media_layer.h"
#include "broker/server/pipeline_sinks.h"
#include "broker/server/system_publisher.h"
#include "broker/engine/local_engine.h"
#include "broker/store/store.h"
#include "broker/transport/transport.h"

namespace switchboard::server {

namespace {

unsigned default_shards() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 1 ? hw - 1 : 1;
}

std::uint64_t random_epoch() {
  std::random_device rd;
  std::uint64_t e = 0;
  while (e == 0) e = (std::uint64_t{rd()} << 32) | rd();
  return e;
}

router::slow_policy to_router(channels::slow_consumer_policy p) {
  switch (p) {
    case channels::slow_consumer_policy::disconnect: return router::slow_policy::disconnect;
    case channels::slow_consumer_policy::drop_oldest: return router::slow_policy::drop_oldest;
    case channels::slow_consumer_policy::conflate: return router::slow_policy::conflate;
    case channels::slow_consumer_policy::spill: return router::slow_policy::spill;
  }
  return router::slow_policy::disconnect;
}

// Channel policies resolved from the config registry's current snapshot.
class registry_policies final : public router::policy_source {
 public:
  explicit registry_policies(const channels::config_registry& r) : _registry(r) {}
  router::channel_policy lookup(std::string_view channel) const override {
    const auto eff = _registry.snapshot()->effective(channel);
    const auto& c = eff.config;
    const auto max_payload = static_cast<std::size_t>(c.max_payload_bytes.value_or(1 << 20));
    return router::channel_policy{
        .durable = c.durable.value_or(false),
        .slow = to_router(c.slow_consumer.value_or(channels::slow_consumer_policy::disconnect)),
        .max_payload_bytes = max_payload,
        .dedupe_window_ns = c.dedupe_window ? static_cast<std::uint64_t>(
                                                  std::chrono::nanoseconds(*c.dedupe_window).count())
                                            : 0,
        .subscribe_allow = c.permissions ? c.permissions->subscribe : std::vector<std::string>{"*"},
        .configured = std::ranges::any_of(eff.sources, [](const std::string& s) { return s == "channel"; }),
        .pipeline = _pipelines.get(c, max_payload)};
  }
  std::uint64_t generation() const noexcept override { return _registry.generation(); }

 private:
  const channels::config_registry& _registry;
  mutable pipeline_cache _pipelines;
};

// Forwards a shard's "channel synced up to seq" to the durable consumer manager.
class consumer_notifier final : public router::sync_listener {
 public:
  explicit consumer_notifier(durable::consumer_manager::notifier& n) : _n(n) {}
  void synced(std::string_view channel, std::uint64_t seq) override { _n.notify(channel, seq); }

 private:
  durable::consumer_manager::notifier& _n;
};

// Logs what a --recover start found: one warning per channel with a history.
void report_recovery(const store::recovery_report& r) {
  if (!r.recovered) return;
  std::string files;
  for (const auto& f : r.damaged_files) files += (files.empty() ? "" : ", ") + f;
  spdlog::warn("recover: the write-ahead log {} was damaged; recovered by {}; {} channel(s) with a history",
               files, r.mode, r.channels.size());
  for (const auto& c : r.channels) {
    const std::string epochs = fmt::format(
        "epoch {} -> {}", c.old_epoch,
        c.new_epoch == 0 ? std::string("none (the channel's id was lost)") : std::to_string(c.new_epoch));
    if (r.mode != "point_in_time" && c.lost_events > 0) {
      // Records were skipped, not cut: the kept log may have holes rather than a lost tail.
      spdlog::warn(
          "recover: channel \"{}\": {} event(s) that read back in the damaged log are missing (holes); "
          "last seq {} -> {}; {}",
          c.name, c.lost_events, c.last_seq_before, c.last_seq_after, epochs);
    } else if (c.last_seq_after < c.last_seq_before || c.lost_events > 0) {
      spdlog::warn(
          "recover: channel \"{}\": events after seq {} are gone (the damaged log showed seqs up to {}; "
          "{} event(s) that still read back there could not be kept); {}",
          c.name, c.last_seq_after, c.last_seq_before, c.lost_events, epochs);
    } else {
      spdlog::warn(
          "recover: channel \"{}\": no loss seen (last seq {}); {} all the same: events inside the "
          "damaged bytes cannot be told apart by channel",
          c.name, c.last_seq_after, epochs);
    }
  }
}

}  // namespace

struct server::impl {
  options opts;
  std::unique_ptr<store::store> st;
  std::unique_ptr<channels::config_registry> registry;
  std::unique_ptr<registry_policies> policies;
  std::unique_ptr<engine::local_engine> log;
  std::unique_ptr<durable::consumer_manager> consumers;
  std::vector<std::unique_ptr<router::sync_listener>> listeners;
  std::atomic<transport::transport*> wake_target{nullptr};
  std::unique_ptr<pipeline_sinks> sinks;  // the router's pipeline hooks: outlives it
  std::unique_ptr<router::router> rt;
  std::unique_ptr<transport::transport> tp;
  std::unique_ptr<broker_control> control;
  std::unique_ptr<system_publisher> system_events;  // media.* on system.media; uses control
  std::unique_ptr<media_layer> media;               // its routes are the admin server's: outlives it
  std::unique_ptr<info_api> info;  // /v1/info and process metrics: outlives the admin server
  std::unique_ptr<event_proxy::event_proxy> events;  // GET /v1/stream: outlives the admin server
  std::unique_ptr<admin::admin_server> admin;
  auth::token_table tokens;
  std::jthread retention;
  std::mutex retention_mutex;
  std::condition_variable_any retention_cv;
  std::atomic<bool> running{false};

  void retention_loop(std::stop_token st);
};

// Housekeeping, off the router's threads: retention every retention_interval_ms, and about once
// a second an expire_idle to every shard (channel lifecycle).
void server::impl::retention_loop(std::stop_token stop) {
  using clock = std::chrono::steady_clock;
  const auto retention_every = std::chrono::milliseconds(opts.retention_interval_ms);
  const auto expiry_every = std::chrono::milliseconds(1000);
  auto next_retention = clock::now() + retention_every;
  auto next_expiry = clock::now() + expiry_every;
  while (!stop.stop_requested()) {
    auto wake = clock::time_point::max();
    if (opts.retention_interval_ms > 0) wake = std::min(wake, next_retention);
    if (opts.channel_idle_s > 0) wake = std::min(wake, next_expiry);
    {
      std::unique_lock lock(retention_mutex);
      retention_cv.wait_until(lock, stop, wake, [] { return false; });
    }
    if (stop.stop_requested()) return;
    const auto now = clock::now();
    if (opts.channel_idle_s > 0 && now >= next_expiry) {
      control->expire_idle_channels();
      next_expiry = now + expiry_every;
    }
    if (opts.retention_interval_ms > 0 && now >= next_retention) {
      control->enforce_retention();
      next_retention = clock::now() + retention_every;
    }
  }
}

std::expected<void, start_error> check_options(const options& opts) {
  if (opts.slow_consumer != "disconnect" && opts.slow_consumer != "drop_oldest") {
    return std::unexpected(start_error{"slow-consumer must be \"disconnect\" or \"drop_oldest\", not \"" +
                                           opts.slow_consumer + "\"",
                                       true});
  }
  if (opts.shards > 64) return std::unexpected(start_error{"shards must be between 0 and 64", true});
  if (auto tokens = auth::token_table::make(opts.admin_token, opts.tokens); !tokens) {
    return std::unexpected(start_error{tokens.error(), true});
  }
  return {};
}

std::expected<std::unique_ptr<server>, start_error> server::start(const options& opts) {
  if (auto ok = check_options(opts); !ok) return std::unexpected(ok.error());
  auto p = std::make_unique<impl>();
  p->opts = opts;

  auto tokens = auth::token_table::make(opts.admin_token, opts.tokens);
  if (!tokens) return std::unexpected(start_error{tokens.error(), true});
  p->tokens = std::move(*tokens);

  store::store_options so;
  so.on_damaged_wal = opts.recover ? store::wal_recovery::recover : store::wal_recovery::refuse;
  auto st = opts.memory ? store::store::open_memory(so) : store::store::open_rocksdb(opts.data_dir, so);
  if (!st) {
    std::string message = "cannot open the store in " + opts.data_dir + ": " + st.error().message;
    if (st.error().code == store::errc::corruption && !opts.recover) {
      message +=
          "; to start from what still reads back (losses are reported per channel), run once with --recover";
    }
    return std::unexpected(start_error{std::move(message)});
  }
  p->st = std::move(*st);
  report_recovery(p->st->recovery());
  p->st->start();

  channels::registry_defaults defaults;
  defaults.max_payload_bytes = opts.max_payload_bytes;
  defaults.slow_consumer = opts.slow_consumer == "drop_oldest" ? channels::slow_consumer_policy::drop_oldest
                                                               : channels::slow_consumer_policy::disconnect;
  p->registry = std::make_unique<channels::config_registry>(defaults);
  if (auto loaded = load_channel_configs(*p->st, *p->registry); !loaded) {
    return std::unexpected(start_error{loaded.error()});
  }
  p->policies = std::make_unique<registry_policies>(*p->registry);
  p->log = std::make_unique<engine::local_engine>(*p->st);
  durable::manager_options mo;
  // Durable output per connection between the manager and the client's socket: a subscriber that
  // stops reading costs at most this many events in the transport (plus ZeroMQ's own high-water
  // mark), whatever its ack policy. Never above --subscriber-queue, so durable output alone never
  // trips the slow-consumer policy (its events are never shed, only paced).
  mo.connection_window = std::min<std::size_t>(65536, opts.subscriber_queue);
  mo.policies = p->policies.get();
  mo.wake = [raw = p.get()] {
    if (auto* t = raw->wake_target.load(std::memory_order_acquire)) t->wake();
  };
  p->consumers = std::make_unique<durable::consumer_manager>(*p->st, *p->log, mo);

  const std::uint64_t epoch = random_epoch();
  router::router_options ro;
  ro.shards = opts.shards == 0 ? default_shards() : opts.shards;
  // Automatic sizing on a machine with at most two hardware threads: one shard, run by the
  // transport thread itself (no hand-off); an explicit --shards always gets shard threads.
  ro.inline_shards = opts.shards == 0 && ro.shards == 1;
  ro.max_payload_bytes = opts.max_payload_bytes;
  ro.epoch = epoch;
  ro.default_slow = opts.slow_consumer == "drop_oldest" ? router::slow_policy::drop_oldest
                                                         : router::slow_policy::disconnect;
  ro.policies = p->policies.get();
  ro.log = p->log.get();
  ro.channel_idle_ns = std::uint64_t{opts.channel_idle_s} * 1'000'000'000;
  {
    auto sinks = pipeline_sinks::create(pipeline_sinks::parts{
        .st = *p->st, .registry = *p->registry, .shards = ro.shards, .webhook_options = [&] {
          webhook::dispatcher_options w;
          w.max_attempts = std::max<std::uint32_t>(1, opts.webhook_max_attempts);
          w.initial_backoff = std::chrono::milliseconds(opts.webhook_initial_backoff_ms);
          w.retry_budget = std::chrono::seconds(opts.webhook_retry_budget_s);
          w.breaker_failures = opts.webhook_breaker_failures;
          w.breaker_open_time = std::chrono::milliseconds(opts.webhook_breaker_open_ms);
          return w;
        }()});
    if (!sinks) return std::unexpected(start_error{sinks.error()});
    p->sinks = std::move(*sinks);
    ro.hooks = p->sinks.get();
  }
  for (unsigned i = 0; i < ro.shards; ++i) {
    p->listeners.push_back(std::make_unique<consumer_notifier>(p->consumers->add_notifier()));
    ro.sync_listeners.push_back(p->listeners.back().get());
  }
  p->rt = std::make_unique<router::router>(ro);

  transport::transport_options to;
  to.bind = opts.bind;
  to.tokens = &p->tokens;
  to.policies = p->registry.get();
  to.max_payload_bytes = opts.max_payload_bytes;
  to.subscriber_queue = opts.subscriber_queue;
  to.socket_hwm = opts.socket_hwm;
  to.default_policy = ro.default_slow;
  to.heartbeat_ms = opts.heartbeat_ms;
  to.epoch = epoch;
  to.durable = &p->consumers->add_client_input();
  to.durable_output = p->consumers.get();
  auto tp = transport::transport::create(to, *p->rt);
  if (!tp) return std::unexpected(start_error{tp.error().message});
  p->tp = std::move(*tp);

  // One router producer per thread that calls the control: each HTTP worker and the retention
  // thread submit on their own queues, so the router stays single-producer per queue.
  std::vector<router::router::producer*> admin_producers;
  // (+1 retention, +1 the system events publisher.)
  for (unsigned i = 0; i < admin::admin_server::worker_threads + 2; ++i) {
    admin_producers.push_back(&p->rt->add_producer());
  }
  p->control = std::make_unique<broker_control>(broker_control::parts{
      .opts = p->opts,
      .st = *p->st,
      .engine = *p->log,
      .registry = *p->registry,
      .rt = *p->rt,
      .producers = std::move(admin_producers),
      .transport_stats = [t = p->tp.get()] { return t->snapshot(); },
      .consumers = *p->consumers,
  });

  auto* t = p->tp.get();
  p->wake_target.store(t, std::memory_order_release);
  if (auto started = p->consumers->start(); !started) {
    return std::unexpected(start_error{"cannot load durable subscriptions: " + started.error().message});
  }
  p->sinks->start();
  p->rt->start([t] { t->wake(); });
  p->tp->start();
  p->running = true;

  admin::admin_options ao;
  ao.bind = opts.admin_bind;
  ao.port = opts.admin_port;
  ao.max_body_bytes = opts.max_payload_bytes + 64 * 1024;
  std::vector<admin::route_module> modules;
  if (opts.media) {
    p->system_events = std::make_unique<system_publisher>(
        [ctl = p->control.get()](std::string_view channel, std::string_view payload) -> std::expected<void, std::string> {
          auto r = ctl->publish(channel, payload, {}, std::chrono::seconds(10));
          if (!r) return std::unexpected(r.error().code + ": " + r.error().message);
          return {};
        });
    auto media = media_layer::start(opts, *p->st, [events = p->system_events.get()](std::string_view type, std::string json) {
      if (type == "media.failed") spdlog::warn("media: {}", json);  // id, canonical URL (no secrets), code, message
      rapidjson::StringBuffer buffer;  // {"type":"media.cached","data":{…the event's fields…}}
      rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
      w.StartObject();
      w.Key("type");
      w.String(type.data(), static_cast<rapidjson::SizeType>(type.size()));
      w.Key("data");
      w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
      w.EndObject();
      events->post("system.media", std::string(buffer.GetString(), buffer.GetSize()));
    });
    if (!media) {
      auto s = std::unique_ptr<server>(new server(std::move(p)));
      s->stop();
      return std::unexpected(start_error{media.error()});
    }
    p->media = std::move(*media);
    modules = p->media->modules();
  }
  p->info = std::make_unique<info_api>(broker_facts{
      .store = opts.memory ? "memory" : "rocksdb", .shards = ro.shards, .inline_shards = ro.inline_shards});
  modules.push_back(p->info->module());
  {
    auto webhooks = p->sinks->admin_module();
    webhooks.metrics = [sinks = p->sinks.get()] { return sinks->metrics(); };
    modules.push_back(std::move(webhooks));
  }
  std::vector<admin::stream_route> streams;
  {
    event_proxy::proxy_options eo;
    eo.endpoint = p->tp->endpoint();
    eo.token = opts.admin_token;
    for (std::string_view rest = opts.cors_origins; !rest.empty();) {
      const std::size_t comma = rest.find(',');
      std::string_view origin = rest.substr(0, comma);
      while (!origin.empty() && origin.front() == ' ') origin.remove_prefix(1);
      while (!origin.empty() && origin.back() == ' ') origin.remove_suffix(1);
      if (!origin.empty()) eo.cors_origins.emplace_back(origin);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    eo.heartbeat = std::chrono::milliseconds(std::max<std::uint32_t>(opts.sse_heartbeat_ms, 100));
    eo.retry = std::chrono::milliseconds(opts.sse_retry_ms);
    eo.ticket_ttl = std::chrono::seconds(opts.sse_ticket_ttl_s);
    eo.max_streams = opts.sse_max_streams;
    eo.stream_queue_bytes = std::max<std::size_t>(opts.sse_queue_bytes, 4096);
    p->events = event_proxy::event_proxy::create(std::move(eo), *p->control);
    streams.push_back(p->events->stream_route());
    modules.push_back(p->events->tickets_module());
  }
  auto admin = admin::admin_server::start(ao, p->tokens, *p->control, std::move(streams), std::move(modules));
  if (!admin) {
    auto s = std::unique_ptr<server>(new server(std::move(p)));
    s->stop();
    return std::unexpected(start_error{admin.error()});
  }
  p->admin = std::move(*admin);
  if (opts.retention_interval_ms > 0 || opts.channel_idle_s > 0) {
    p->retention = std::jthread([raw = p.get()](std::stop_token st) { raw->retention_loop(st); });
  }
  spdlog::info("router: {} shard(s){}; store: {}", ro.shards, ro.inline_shards ? " on the transport thread" : "",
               opts.memory ? "memory" : opts.data_dir);
  return std::unique_ptr<server>(new server(std::move(p)));
}

server::server(std::unique_ptr<impl> p) : _impl(std::move(p)) {}

std::expected<reload_result, start_error> server::reload_tokens(std::string_view admin_token,
                                                                const std::vector<std::string>& tokens) {
  auto next = auth::token_table::make(admin_token, tokens);
  if (!next) return std::unexpected(start_error{next.error(), true});
  auto gone = _impl->tokens.replace(*next);
  reload_result r{.tokens = next->size(), .removed = gone};
  for (const auto& name : gone) spdlog::info("reload: token {} removed or changed; its sessions are closed", auth::quote(name));
  _impl->tp->close_token_sessions(std::move(gone));
  return r;
}

server::~server() { stop(); }

std::string server::endpoint() const { return _impl->tp->endpoint(); }

std::string server::admin_url() const { return _impl->admin ? _impl->admin->url() : std::string(); }

stats server::snapshot() const {
  const auto r = _impl->rt->snapshot();
  const auto t = _impl->tp->snapshot();
  return stats{.published = r.published,
               .delivered = t.delivered,
               .slow_consumer_drops = t.slow_consumer_drops,
               .slow_consumer_disconnects = t.slow_consumer_disconnects,
               .bad_frames = t.bad_frames,
               .reaped = t.reaped,
               .connections = t.connections,
               .subscriptions = r.subscriptions};
}

void server::stop() {
  if (!_impl->running.exchange(false)) return;
  if (_impl->retention.joinable()) {
    _impl->retention.request_stop();
    _impl->retention.join();
  }
  if (_impl->media) _impl->media->stop();  // running media resolves end (fetches cut short)
  if (_impl->admin) _impl->admin->stop();  // no new HTTP requests
  if (_impl->events) _impl->events->stop();  // SSE streams end, its internal client closes
  if (_impl->system_events) _impl->system_events->stop();  // publishes what is queued
  _impl->tp->stop_accepting();             // no new work reaches the router
  _impl->rt->stop();                       // shards finish what they were given (and its log writes)
  _impl->consumers->stop();                // durable subscriptions save their cursors
  _impl->tp->stop();                       // all output is sent, the socket closed (inline shards: quiescent)
  _impl->sinks->stop();                    // webhooks not delivered yet are dead-lettered
  _impl->st->stop();                       // the store writes what is queued
}

}  // namespace switchboard::server
