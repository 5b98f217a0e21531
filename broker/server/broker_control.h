// The broker side of the admin API: admin::control implemented over the router (commands to the
// owning shard, answered through promises), the config registry and the store.
//
// Concurrency: every member may be called from any admin worker thread. Config mutations are
// serialised by _config_mutex (persist, then publish to the registry, so a rejected or failed
// request changes nothing). Router commands are submitted on the calling worker's own producer
// (one SPSC queue per worker thread per shard: the router stays lock-free).
#pragma once

#include <functional>
#include <mutex>
#include <vector>

#include "broker/admin/control.h"
#include "broker/channels/config_registry.h"
#include "broker/durable/consumer_manager.h"
#include "broker/engine/engine.h"
#include "broker/router/router.h"
#include "broker/server/options.h"
#include "broker/store/store.h"
#include "broker/transport/transport.h"

namespace switchboard::server {

// Loads every persisted channel/pattern config into `registry` (start-up).
[[nodiscard]] std::expected<void, std::string> load_channel_configs(store::store& st,
                                                                    channels::config_registry& registry);

class broker_control final : public admin::control {
 public:
  struct parts {
    const options& opts;
    store::store& st;                 // configuration blobs, channel listing, health
    engine::history_engine& engine;   // durable histories: reads, retention
    channels::config_registry& registry;
    router::router& rt;
    // One per thread that calls in: each admin worker thread and the retention thread.
    std::vector<router::router::producer*> producers;
    std::function<transport::transport_stats()> transport_stats;
    durable::consumer_manager& consumers;
  };
  explicit broker_control(parts p);

  std::expected<std::string, admin::api_error> put_channel(std::string_view name, std::string_view body) override;
  std::expected<std::string, admin::api_error> patch_channel(std::string_view name, std::string_view body) override;
  std::expected<std::string, admin::api_error> get_channel(std::string_view name) override;
  std::expected<void, admin::api_error> delete_channel(std::string_view name) override;
  std::expected<std::vector<admin::channel_stats>, admin::api_error> list_channels() override;
  std::expected<admin::publish_result, admin::api_error> publish(std::string_view channel, std::string_view payload,
                                                                 std::string_view idempotency_key,
                                                                 std::chrono::milliseconds timeout) override;
  std::expected<admin::history_page, admin::api_error> history(std::string_view channel, std::uint64_t from_seq,
                                                               std::size_t limit) override;
  std::expected<std::uint64_t, admin::api_error> wipe_history(std::string_view channel) override;
  std::expected<std::string, admin::api_error> create_subscription(std::string_view body) override;
  std::expected<std::string, admin::api_error> get_subscription(std::string_view name) override;
  std::expected<std::string, admin::api_error> list_subscriptions() override;
  std::expected<void, admin::api_error> delete_subscription(std::string_view name) override;
  std::expected<std::string, admin::api_error> list_dead_letters() override;
  std::expected<admin::publish_result, admin::api_error> redrive_dead_letter(std::string_view id) override;
  std::string metrics() override;
  admin::channel_permissions permissions(std::string_view channel) override;
  // True when readiness() has no reason to refuse.
  std::expected<void, admin::api_error> ready() override { return readiness(); }
  // Why the broker is not ready, as the body /readyz should answer with: 503 with code
  // "store_full", "store_corrupt" or "store_failed" and the store's reason (naming the file or
  // the error). Cheap: reads the store's health cell.
  [[nodiscard]] std::expected<void, admin::api_error> readiness() const;

  // Trims the logs of durable channels with a retention attribute (called periodically from the
  // server's housekeeping thread). Walks the store's channel list a page at a time, resuming where
  // the last call stopped, for at most ~100 ms per call: never blocks a shard, and a data dir with
  // millions of channels is covered over several calls. Housekeeping thread only.
  void enforce_retention();
  // Asks every shard to drop channels idle for --channel-idle-s (router::expire_idle). Never
  // blocks: a shard whose queue is full is asked again next time. Housekeeping thread only.
  void expire_idle_channels();

 private:
  router::router::producer& producer();
  std::expected<std::vector<router::channel_stats>, admin::api_error> shard_stats();
  std::expected<std::string, admin::api_error> store_config(std::string_view name, channels::channel_config config);

  parts _p;
  const std::uint64_t _instance;
  std::atomic<unsigned> _next_slot{0};
  std::mutex _config_mutex;  // serialises persist + publish of channel configs
  std::atomic<std::uint64_t> _trimmed{0};
  std::string _retention_after;  // housekeeping thread: where the retention walk resumes
  std::uint64_t _expired_at_trim = 0;  // housekeeping thread: channels expired at the last malloc_trim
  std::chrono::steady_clock::time_point _last_trim{};  // housekeeping thread
  std::atomic<std::uint64_t> _http_published{0};
};

}  // namespace switchboard::server
