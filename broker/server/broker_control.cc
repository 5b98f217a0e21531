#include "broker/server/broker_control.h"

#include <fmt/format.h>
#include <malloc.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <thread>

#include "broker/channels/channel_config.h"
#include "broker/common/epoch_text.h"
#include "broker/router/topic.h"

namespace switchboard::server {

namespace {

admin::api_error to_api(const channels::config_error& e) { return {e.http_status, e.code, e.message}; }

admin::api_error store_error(const store::error& e) {
  spdlog::error("store: {}", e.message);
  if (e.code == store::errc::full) return {507, "store_full", e.message};
  return {503, "store_failed", e.message};
}

admin::api_error engine_error(const engine::history_engine::log_error& e) {
  spdlog::error("engine: {}", e.message);
  return {e.code == "store_full" ? 507 : 503, e.code == "store_full" ? "store_full" : "store_failed", e.message};
}

// Submits `cmd` to `shard`, retrying while its queue is full; 503 busy naming `what` after `deadline`.
std::expected<void, admin::api_error> submit_until(router::router::producer& prod, unsigned shard,
                                                   router::command& cmd,
                                                   std::chrono::steady_clock::time_point deadline,
                                                   std::string_view what) {
  while (!prod.try_submit(shard, cmd)) {
    if (std::chrono::steady_clock::now() > deadline) {
      return std::unexpected(
          admin::api_error{503, "busy", fmt::format("the router did not accept the {} in time", what)});
    }
    std::this_thread::yield();
  }
  return {};
}

// HTTP status of an ERR code a publish can end with (docs/ADMIN_API.md).
int publish_status(std::string_view code) {
  if (code == "payload_too_large") return 413;
  if (code == "invalid_event") return 422;      // the channel's validate/translate refused it
  if (code == "event_dropped") return 409;      // its delegate dropped or dead-lettered it
  if (code == "store_full") return 507;
  return 503;
}

std::uint64_t unix_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

// Each thread that calls into a broker_control gets its own producer slot of that instance on
// first use (instances are told apart by a process-unique id: tests run several brokers).
std::atomic<std::uint64_t> next_instance{1};
thread_local std::vector<std::pair<std::uint64_t, unsigned>> thread_slots;

}  // namespace

std::expected<void, std::string> load_channel_configs(store::store& st, channels::config_registry& registry) {
  auto all = st.list_configs(store::kind::channels);
  if (!all) return std::unexpected("cannot read channel configs: " + all.error().message);
  for (auto& [name, json] : *all) {
    auto config = channels::parse_config(json);
    if (!config) return std::unexpected(fmt::format("stored config of \"{}\" is invalid: {}", name, config.error().message));
    if (auto ok = registry.put(name, std::move(*config)); !ok) {
      return std::unexpected(fmt::format("stored config of \"{}\" is invalid: {}", name, ok.error().message));
    }
  }
  spdlog::info("loaded {} channel config(s)", all->size());
  return {};
}

broker_control::broker_control(parts p) : _p(std::move(p)), _instance(next_instance.fetch_add(1)) {}

router::router::producer& broker_control::producer() {
  auto it = std::ranges::find(thread_slots, _instance, &std::pair<std::uint64_t, unsigned>::first);
  if (it == thread_slots.end()) {
    thread_slots.emplace_back(_instance, _next_slot.fetch_add(1));
    it = std::prev(thread_slots.end());
  }
  // More calling threads than slots would break the one-producer-per-queue rule: refuse loudly.
  if (it->second >= _p.producers.size()) {
    spdlog::critical("admin thread slot {} exceeds the {} router producers", it->second, _p.producers.size());
    std::terminate();
  }
  return *_p.producers[it->second];
}

std::expected<std::string, admin::api_error> broker_control::store_config(std::string_view name,
                                                                          channels::channel_config config) {
  if (auto ok = channels::validate_config(config); !ok) return std::unexpected(to_api(ok.error()));
  if (auto ok = _p.st.put_config(store::kind::channels, name, channels::to_json(config)); !ok) {
    return std::unexpected(store_error(ok.error()));
  }
  if (auto ok = _p.registry.put(name, std::move(config)); !ok) return std::unexpected(to_api(ok.error()));
  spdlog::info("channel config {} updated (generation {})", name, _p.registry.generation());
  return get_channel(name);
}

std::expected<std::string, admin::api_error> broker_control::put_channel(std::string_view name,
                                                                         std::string_view body) {
  auto config = channels::parse_config(body, channels::parse_mode::full);
  if (!config) return std::unexpected(to_api(config.error()));
  std::lock_guard lock(_config_mutex);
  return store_config(name, std::move(*config));
}

std::expected<std::string, admin::api_error> broker_control::patch_channel(std::string_view name,
                                                                           std::string_view body) {
  auto patch = channels::parse_config(body, channels::parse_mode::patch);
  if (!patch) return std::unexpected(to_api(patch.error()));
  std::lock_guard lock(_config_mutex);
  auto merged = channels::merge_patch(_p.registry.get(name).value_or(channels::channel_config{}), *patch);
  if (!merged) return std::unexpected(to_api(merged.error()));
  return store_config(name, std::move(*merged));
}

std::expected<std::string, admin::api_error> broker_control::get_channel(std::string_view name) {
  if (channels::is_pattern(name)) {
    auto own = _p.registry.get(name);
    if (!own) return std::unexpected(admin::api_error{404, "not_found", fmt::format("no config for pattern \"{}\"", name)});
    channels::effective_config eff;
    eff.name = std::string(name);
    eff.config = *own;
    for (std::size_t i = 0; i < channels::attribute_count; ++i) {
      eff.sources[i] = own->has(static_cast<channels::attribute>(i)) ? "pattern" : "unset";
    }
    return channels::effective_to_json(eff);
  }
  auto eff = _p.registry.effective(name);
  if (!eff) return std::unexpected(to_api(eff.error()));
  const bool configured = std::ranges::any_of(eff->sources, [](const std::string& s) { return s != "default"; });
  if (!configured) {
    return std::unexpected(admin::api_error{
        404, "not_found", fmt::format("no config applies to \"{}\" (neither its own nor a pattern's)", name)});
  }
  return channels::effective_to_json(*eff);
}

std::expected<void, admin::api_error> broker_control::delete_channel(std::string_view name) {
  std::lock_guard lock(_config_mutex);
  if (!_p.registry.get(name)) {
    return std::unexpected(admin::api_error{404, "not_found", fmt::format("no config stored for \"{}\"", name)});
  }
  if (auto ok = _p.st.delete_config(store::kind::channels, name); !ok) return std::unexpected(store_error(ok.error()));
  (void)_p.registry.erase(name);
  spdlog::info("channel config {} deleted", name);
  return {};
}

std::expected<std::vector<router::channel_stats>, admin::api_error> broker_control::shard_stats() {
  auto& prod = producer();
  std::vector<std::future<std::vector<router::channel_stats>>> replies;
  for (unsigned s = 0; s < _p.rt.shards(); ++s) {
    auto promise = std::make_shared<std::promise<std::vector<router::channel_stats>>>();
    replies.push_back(promise->get_future());
    router::command cmd{router::stats_query{promise}};
    if (auto ok = submit_until(prod, s, cmd, std::chrono::steady_clock::now() + std::chrono::seconds(5), "query");
        !ok) {
      return std::unexpected(ok.error());
    }
  }
  std::vector<router::channel_stats> all;
  for (auto& f : replies) {
    if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
      return std::unexpected(admin::api_error{503, "busy", "a router shard did not answer in time"});
    }
    auto part = f.get();
    all.insert(all.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
  }
  return all;
}

std::expected<std::vector<admin::channel_stats>, admin::api_error> broker_control::list_channels() {
  auto live = shard_stats();
  if (!live) return std::unexpected(live.error());
  std::map<std::string, admin::channel_stats> by_name;
  for (auto& s : *live) by_name[s.name] = std::move(s);
  for (auto& [name, config] : _p.registry.list()) by_name[name].name = name;
  // Durable channels with a log on disk that no shard has opened since the start (no traffic yet)
  // are listed too, with the log's last seq: that is where their numbering continues.
  std::map<std::string, std::uint64_t, std::less<>> log_ids;
  auto listed = _p.engine.for_each_history([&](std::string&& name, std::uint64_t id) {
    log_ids.emplace(std::move(name), id);
    return true;
  });
  if (!listed) return std::unexpected(engine_error(listed.error()));
  for (auto& [name, id] : log_ids) {
    if (by_name.contains(name)) continue;
    auto eff = _p.registry.effective(name);
    if (!eff || !eff->config.durable.value_or(false)) continue;
    by_name[name].name = name;
  }
  // `durable` is what the configuration says (own or inherited), whether or not traffic came yet.
  for (auto& [name, entry] : by_name) {
    if (channels::is_pattern(name)) {
      auto own = _p.registry.get(name);
      entry.durable = own && own->durable.value_or(false);
    } else if (auto eff = _p.registry.effective(name)) {
      entry.durable = eff->config.durable.value_or(false);
    }
    if (!entry.durable || entry.last_seq != 0) continue;
    if (auto id = log_ids.find(name); id != log_ids.end()) {
      auto x = _p.engine.extent_of(id->second);
      if (!x) return std::unexpected(engine_error(x.error()));
      entry.last_seq = x->last_seq;
    }
  }
  std::vector<admin::channel_stats> out;
  for (auto& [name, s] : by_name) out.push_back(std::move(s));
  return out;
}

std::expected<admin::publish_result, admin::api_error> broker_control::publish(std::string_view channel,
                                                                               std::string_view payload,
                                                                               std::string_view key,
                                                                               std::chrono::milliseconds timeout) {
  if (auto ok = router::validate_channel(channel); !ok) {
    return std::unexpected(admin::api_error{400, ok.error().code, ok.error().message});
  }
  if (payload.size() > _p.opts.max_payload_bytes) {
    return std::unexpected(admin::api_error{
        413, "payload_too_large",
        fmt::format("payload of {} bytes on channel \"{}\" exceeds the limit of {} bytes", payload.size(), channel,
                    _p.opts.max_payload_bytes)});
  }
  auto promise = std::make_shared<std::promise<router::publish_reply>>();
  auto reply = promise->get_future();
  router::command cmd{router::direct_publish{.channel = std::string(channel), .key = std::string(key),
                                             .payload = std::string(payload), .time_ns = unix_ns(),
                                             .reply = promise}};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (auto ok = submit_until(producer(), _p.rt.shard_of(channel), cmd, deadline, "event"); !ok) {
    return std::unexpected(ok.error());
  }
  if (reply.wait_until(deadline) != std::future_status::ready) {
    return std::unexpected(admin::api_error{504, "timeout", "the event was not acknowledged in time"});
  }
  auto r = reply.get();
  if (!r.error_code.empty()) {
    return std::unexpected(admin::api_error{publish_status(r.error_code), r.error_code, r.error_message});
  }
  // A repeat deduplicated by its idempotency key was not published again: not counted.
  if (!r.duplicate) _http_published.fetch_add(1, std::memory_order_relaxed);
  return admin::publish_result{.epoch = r.epoch, .seq = r.seq, .duplicate = r.duplicate};
}

std::expected<admin::history_page, admin::api_error> broker_control::history(std::string_view channel,
                                                                             std::uint64_t from_seq,
                                                                             std::size_t limit) {
  auto eff = _p.registry.effective(channel);
  if (!eff) return std::unexpected(to_api(eff.error()));
  if (!eff->config.durable.value_or(false)) {
    return std::unexpected(admin::api_error{404, "not_found",
                                            fmt::format("channel \"{}\" is not durable; it keeps no history", channel)});
  }
  // Through the engine, like the router: where the history lives is the engine's business.
  auto log = _p.engine.open(channel, 0);
  if (!log) return std::unexpected(admin::api_error{503, "store_failed", log.error()});
  auto ext = _p.engine.extent_of(log->log_id);
  if (!ext) return std::unexpected(engine_error(ext.error()));
  auto events = _p.engine.read(log->log_id, std::max<std::uint64_t>(from_seq, 1), limit, 16u << 20);
  if (!events) return std::unexpected(engine_error(events.error()));
  admin::history_page page;
  page.epoch = ext->epoch;
  page.first_seq = ext->first_seq;
  page.next_seq = std::max<std::uint64_t>(from_seq, 1);
  for (auto& e : *events) {
    page.next_seq = e.seq + 1;
    page.events.push_back(admin::history_event{.seq = e.seq, .time_ns = e.time_ns, .payload = std::move(e.payload)});
  }
  return page;
}

std::expected<std::uint64_t, admin::api_error> broker_control::wipe_history(std::string_view channel) {
  auto eff = _p.registry.effective(channel);
  if (!eff) return std::unexpected(to_api(eff.error()));
  if (!eff->config.durable.value_or(false)) {
    return std::unexpected(admin::api_error{404, "not_found",
                                            fmt::format("channel \"{}\" is not durable; it keeps no history", channel)});
  }
  // The owning shard numbers the channel: it stores what it accepted before, then wipes.
  auto promise = std::make_shared<std::promise<router::wipe_reply>>();
  auto reply = promise->get_future();
  router::command cmd{router::wipe_history{.channel = std::string(channel), .reply = promise}};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  if (auto ok = submit_until(producer(), _p.rt.shard_of(channel), cmd, deadline, "command"); !ok) {
    return std::unexpected(ok.error());
  }
  if (reply.wait_until(deadline) != std::future_status::ready) {
    return std::unexpected(admin::api_error{504, "timeout", "the channel's shard did not answer in time"});
  }
  auto r = reply.get();
  if (!r.error_code.empty()) {
    const int status = r.error_code == "not_found" ? 404 : r.error_code == "store_full" ? 507 : 500;
    return std::unexpected(admin::api_error{status, r.error_code, r.error_message});
  }
  spdlog::info("channel {}: history wiped, new epoch {}", channel, common::epoch_text(r.epoch));
  return r.epoch;
}

namespace {
admin::api_error to_api(const durable::manager_error& e) { return {e.http_status, e.code, e.message}; }
}  // namespace

std::expected<std::string, admin::api_error> broker_control::create_subscription(std::string_view body) {
  auto spec = durable::parse_spec(body);
  if (!spec) return std::unexpected(to_api(spec.error()));
  auto created = _p.consumers.create(*spec);
  if (!created) return std::unexpected(to_api(created.error()));
  spdlog::info("durable subscription {} {}", spec->name, *created ? "created" : "already existed (identical)");
  return get_subscription(spec->name);
}

std::expected<std::string, admin::api_error> broker_control::get_subscription(std::string_view name) {
  auto r = _p.consumers.get(name);
  if (!r) return std::unexpected(to_api(r.error()));
  return std::move(*r);
}

std::expected<std::string, admin::api_error> broker_control::list_subscriptions() {
  auto r = _p.consumers.list();
  if (!r) return std::unexpected(to_api(r.error()));
  return std::move(*r);
}

std::expected<void, admin::api_error> broker_control::delete_subscription(std::string_view name) {
  auto r = _p.consumers.remove(name);
  if (!r) return std::unexpected(to_api(r.error()));
  spdlog::info("durable subscription {} deleted", name);
  return {};
}

std::expected<std::string, admin::api_error> broker_control::list_dead_letters() {
  auto r = _p.consumers.dead_letters();
  if (!r) return std::unexpected(to_api(r.error()));
  return std::move(*r);
}

std::expected<admin::publish_result, admin::api_error> broker_control::redrive_dead_letter(std::string_view id) {
  // Keep the stored record until the event is re-published, so a failed redrive loses nothing.
  auto raw = _p.st.get_config(store::kind::dead_letters, id);
  if (!raw) return std::unexpected(store_error(raw.error()));
  if (!*raw) return std::unexpected(admin::api_error{404, "not_found", fmt::format("no dead letter \"{}\"", id)});
  auto letter = _p.consumers.take_dead_letter(id);
  if (!letter) return std::unexpected(to_api(letter.error()));
  auto published = publish(letter->channel, letter->payload, {}, std::chrono::seconds(10));
  if (!published) {
    if (auto restored = _p.st.put_config(store::kind::dead_letters, id, **raw); !restored) {
      spdlog::error("redrive of {} failed and the dead letter could not be restored: {}", id,
                    restored.error().message);
    }
    return std::unexpected(published.error());
  }
  spdlog::info("dead letter {} re-published on {} as seq {}", id, letter->channel, published->seq);
  return published;
}

void broker_control::enforce_retention() {
  constexpr std::size_t page_size = 4096;
  const auto budget_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  const auto now = unix_ns();
  do {
    auto page = _p.st.list_channels_after(_retention_after, page_size);
    if (!page) {
      spdlog::error("retention: cannot list channels: {}", page.error().message);
      return;
    }
    _retention_after = page->size() < page_size ? std::string() : page->back().first;
    for (const auto& [name, id] : *page) {
      auto eff = _p.registry.effective(name);
      if (!eff || !eff->config.durable.value_or(false) || !eff->config.retention) continue;
      const auto& r = *eff->config.retention;
      engine::history_engine::limits limits{
          .max_age_ns = r.max_age ? static_cast<std::uint64_t>(std::chrono::nanoseconds(*r.max_age).count()) : 0,
          .max_events = r.max_events.value_or(0),
          .max_bytes = r.max_bytes.value_or(0)};
      if (limits.max_age_ns == 0 && limits.max_events == 0 && limits.max_bytes == 0) continue;
      auto removed = _p.engine.trim(id, limits, now);
      if (!removed) {
        spdlog::error("retention of {} failed: {}", name, removed.error().message);
      } else if (*removed > 0) {
        _trimmed.fetch_add(*removed, std::memory_order_relaxed);
        spdlog::debug("retention removed {} event(s) from {}", *removed, name);
      }
    }
  } while (!_retention_after.empty() && std::chrono::steady_clock::now() < budget_end);
}

void broker_control::expire_idle_channels() {
  // Give memory freed by earlier passes back to the system: glibc keeps freed small blocks in its
  // arenas, so without this the RSS would stay at the peak of live channels (issue 12 target:
  // within 10 % of the value before a burst of a million calls). Costs a walk of the heap, so only
  // after many channels went, or every 10 s while a few keep going.
  const std::uint64_t expired = _p.rt.snapshot().channels_expired;
  const auto now_steady = std::chrono::steady_clock::now();
  if (expired != _expired_at_trim &&
      (expired - _expired_at_trim >= 10'000 || now_steady - _last_trim >= std::chrono::seconds(10))) {
    _expired_at_trim = expired;
    _last_trim = now_steady;
    ::malloc_trim(0);
  }
  auto& prod = producer();
  const auto now = unix_ns();
  for (unsigned s = 0; s < _p.rt.shards(); ++s) {
    router::command cmd{router::expire_idle{.now_ns = now}};
    (void)prod.try_submit(s, cmd);  // a busy shard is asked again in a second
  }
}

std::expected<void, admin::api_error> broker_control::readiness() const {
  // A router shard with work queued that has not turned for this long is stuck: not ready.
  constexpr std::uint64_t stall_limit_ns = 5'000'000'000;
  if (const auto stalled = _p.rt.stalled_ns(); stalled > stall_limit_ns) {
    return std::unexpected(admin::api_error{
        503, "router_stalled",
        fmt::format("a router shard has had work queued without progress for {} ms", stalled / 1'000'000)});
  }
  const auto h = _p.st.current_health();
  switch (h.state) {
    case store::health_state::ok: return {};
    case store::health_state::full: return std::unexpected(admin::api_error{503, "store_full", h.reason});
    case store::health_state::corrupt:
      return std::unexpected(admin::api_error{503, "store_corrupt", h.reason});
    case store::health_state::failed: return std::unexpected(admin::api_error{503, "store_failed", h.reason});
  }
  return {};
}

admin::channel_permissions broker_control::permissions(std::string_view channel) {
  const auto eff = _p.registry.snapshot()->effective(channel);
  if (!eff.config.permissions) return {};
  return admin::channel_permissions{eff.config.permissions->publish, eff.config.permissions->subscribe};
}

std::string broker_control::metrics() {
  const auto r = _p.rt.snapshot();
  const auto t = _p.transport_stats();
  std::string out;
  auto counter = [&](std::string_view name, std::string_view help, std::uint64_t v, std::string_view type = "counter") {
    out += fmt::format("# HELP switchboard_{} {}\n# TYPE switchboard_{} {}\nswitchboard_{} {}\n", name, help, name, type,
                       name, v);
  };
  counter("published_total", "Events accepted from publishers.", r.published);
  counter("delivered_total", "EVENT records handed to the network.", t.delivered);
  counter("routed_total", "Event deliveries produced by the router shards.", r.delivered);
  counter("http_published_total", "Events published through the admin API (deduplicated repeats not counted).",
          _http_published.load());
  counter("rejected_events_total", "PUB records answered with ERR.", t.rejected_events);
  counter("bad_frames_total", "Client messages rejected by the codec.", t.bad_frames);
  counter("slow_consumer_dropped_total", "Events dropped by the drop_oldest policy.", t.slow_consumer_drops);
  counter("slow_consumer_disconnects_total", "Sessions dropped by the disconnect policy.", t.slow_consumer_disconnects);
  counter("slow_consumer_conflated_total", "Events replaced by a newer one with the same conflate key.",
          t.slow_consumer_conflated);
  counter("slow_consumer_spilled_total", "Queued events handed over to the log (slow_consumer spill).",
          t.slow_consumer_spilled);
  counter("slow_consumer_spills_total", "Live subscriptions switched to log serving.", t.spills);
  counter("reaped_total", "Sessions dropped for missing heartbeats.", t.reaped);
  counter("client_received_bytes_total", "Bytes of client protocol messages received (record bytes).", t.bytes_in);
  counter("client_sent_bytes_total", "Bytes of protocol messages handed to the network for clients.", t.bytes_out);
  counter("retention_trimmed_total", "Events removed by retention.", _trimmed.load());
  counter("connections", "Client sessions.", t.connections, "gauge");
  counter("subscriptions", "Live subscriptions.", r.subscriptions, "gauge");
  counter("channels", "Channels in the router's memory.", r.channels, "gauge");
  counter("channels_expired_total", "Channels dropped from memory after --channel-idle-s.", r.channels_expired);
  counter("durable_logs_open", "Durable channels in memory with their log open.", r.durable_open, "gauge");
  counter("pipeline_rejected_total", "Events refused by a channel's validate or translate stage.", r.pipeline_rejected);
  counter("pipeline_routed_total", "Copies published on other channels by the route stage.", r.routed);
  counter("pipeline_route_refused_total", "Routes refused for a loop or the hop limit (error events published).",
          r.route_refused);
  counter("pipeline_parent_deliveries_total", "Events delivered on parent channels by publish_to_parent.",
          r.parent_deliveries);
  counter("pipeline_delegated_total", "Events handed to a channel's delegates.", r.delegated);
  counter("pipeline_delegate_dropped_total", "Events dropped or dead-lettered at the delegate stage.",
          r.delegate_dropped);
  counter("pipeline_delegate_pending", "Events waiting for a delegate's answer.", r.delegate_pending, "gauge");
  counter("pipeline_webhook_events_total", "Events handed to the webhook stage.", r.webhooks);
  counter("subscriber_filtered_total", "Events a subscriber's filter kept from it.", r.filtered);
  std::string depth = "# HELP switchboard_shard_queue_depth Commands waiting in a router shard's inbound queues.\n"
                      "# TYPE switchboard_shard_queue_depth gauge\n";
  out += "# HELP switchboard_shard_channels Channels in memory per router shard.\n"
         "# TYPE switchboard_shard_channels gauge\n";
  for (unsigned shard = 0; shard < _p.rt.shards(); ++shard) {
    const auto one = _p.rt.shard_snapshot(shard);
    out += fmt::format("switchboard_shard_channels{{shard=\"{}\"}} {}\n", shard, one.channels);
    depth += fmt::format("switchboard_shard_queue_depth{{shard=\"{}\"}} {}\n", shard, one.queue_depth);
  }
  out += depth;
  out += _p.rt.latency_metrics();
  out += _p.st.commit_metrics();
  counter("subscriber_queued_events", "Events waiting in per-client queues.", t.queued_events, "gauge");
  counter("config_generation", "Generation of the channel config snapshot.", _p.registry.generation(), "gauge");
  const auto d = _p.consumers.stats();
  counter("durable_subscriptions", "Durable subscriptions defined.", d.subscriptions, "gauge");
  counter("durable_attached", "Durable subscriptions with a client attached.", d.attached, "gauge");
  counter("durable_pending", "Events delivered to durable subscribers and not yet acknowledged.", d.pending,
          "gauge");
  counter("durable_delivered_total", "Events delivered to durable subscribers.", d.delivered);
  counter("durable_redeliveries_total", "Events redelivered after their ack wait.", d.redeliveries);
  counter("dead_letters_total", "Events moved to the dead-letter store.", d.dead_letters);
  counter("durable_store_errors_total", "Store errors met by the durable consumer manager.", d.store_errors);
  const auto h = _p.st.current_health();
  out += "# HELP switchboard_store_health 1 for the store's current health state (ok, full, corrupt, failed).\n"
         "# TYPE switchboard_store_health gauge\n";
  for (auto state : {store::health_state::ok, store::health_state::full, store::health_state::corrupt,
                     store::health_state::failed}) {
    out += fmt::format("switchboard_store_health{{state=\"{}\"}} {}\n", store::health_name(state),
                       h.state == state ? 1 : 0);
  }
  return out;
}

}  // namespace switchboard::server
