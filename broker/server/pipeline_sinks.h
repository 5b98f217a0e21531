// The HTTP stages of channel pipelines (router::pipeline_hooks): the webhook dispatcher
// (broker/webhook) and the delegate caller (broker/delegate) over one outbound HTTP client, plus
// the pipeline's dead letters and reports. The router knows neither: it calls these hooks from its
// shard threads, and they never block there.
//
// Operation:
//   webhook()     one webhook::delivery per sink of the channel's `webhook` attribute (or the sinks
//                 a delegate selected), posted through that shard's dispatcher producer (SPSC)
//   delegate()    delegate::caller::call; the outcome comes back to the shard through its callback
//   dead_letter() an event a delegate failed under on_failure "dead_letter": queued to the
//                 dead-letter writer thread, stored under "delegate/<id>" in kind::dead_letters
//   rejected()    counted and logged (at most one line a second per code, with the channel)
// The opaque specs in router::channel_pipeline are built here (bind_webhook, bind_delegate), so
// the per-event path never converts configuration.
//
// Concurrency: the hooks run on shard threads (each with its own shard index); metrics(),
// dead-letter listing and the admin module on admin workers. Lifecycle: create → start() → the
// router runs → router stopped → stop() (cancels in-flight requests, dead-letters what is left).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "broker/admin/route_module.h"
#include "broker/channels/channel_config.h"
#include "broker/channels/config_registry.h"
#include "broker/delegate/caller.h"
#include "broker/http_client/http_client.h"
#include "broker/router/router.h"
#include "broker/store/store.h"
#include "broker/webhook/dispatcher.h"

namespace switchboard::server {

// What a channel's `webhook` attribute becomes: its sinks, shared by every delivery.
struct webhook_binding {
  std::vector<std::shared_ptr<const webhook::sink>> sinks;
};

[[nodiscard]] std::shared_ptr<const void> bind_webhook(const channels::webhook_spec& spec);
[[nodiscard]] std::shared_ptr<const void> bind_delegate(const channels::delegate_spec& spec,
                                                        std::size_t max_payload_bytes);

class pipeline_sinks final : public router::pipeline_hooks {
 public:
  struct parts {
    store::store& st;                          // webhook and delegate dead letters
    const channels::config_registry& registry;  // a sink's current config, for redrives after a restart
    unsigned shards = 1;
    webhook::dispatcher_options webhook_options;
  };
  // Fails when libcurl cannot be initialised.
  [[nodiscard]] static std::expected<std::unique_ptr<pipeline_sinks>, std::string> create(parts p);
  ~pipeline_sinks() override;

  void start();
  // After the router has stopped (no hook is called any more). Idempotent.
  void stop();

  void webhook(unsigned shard, const std::shared_ptr<const void>& spec, const router::webhook_event& e) override;
  void delegate(unsigned shard, const std::shared_ptr<const void>& spec, std::string_view channel,
                std::string payload, std::move_only_function<void(router::delegate_answer)> done) override;
  void dead_letter(std::string_view channel, std::string_view payload, std::string_view reason) override;
  void rejected(std::string_view channel, std::string_view code, std::string_view message) override;
  void idle(unsigned shard) override;

  // GET/POST/DELETE /v1/webhooks/… (broker/webhook/admin_module.h).
  [[nodiscard]] admin::route_module admin_module();
  // Webhook, delegate and pipeline-report metrics (Prometheus text).
  [[nodiscard]] std::string metrics() const;

 private:
  explicit pipeline_sinks(parts p, std::unique_ptr<http_client::client> http);
  void write_dead_letters(std::stop_token st);

  parts _p;
  std::unique_ptr<http_client::client> _http;
  std::unique_ptr<webhook::dispatcher> _webhooks;
  std::vector<webhook::dispatcher::producer*> _producers;  // one per shard
  std::unique_ptr<delegate::caller> _delegates;
  std::atomic<std::uint64_t> _delegate_seq{0};
  std::atomic<std::uint64_t> _rejected{0}, _dead_letters{0}, _dead_letter_failures{0};
  std::atomic<std::int64_t> _last_reject_log_s{0};
  // Dead letters of the delegate stage, written off the shard threads.
  struct pending_dead_letter {
    std::string channel, payload, reason;
    std::uint64_t failed_at_ms = 0;
  };
  std::mutex _dl_mutex;
  std::condition_variable_any _dl_cv;
  std::deque<pending_dead_letter> _dl_queue;
  std::jthread _dl_writer;
  bool _started = false, _stopped = false;
};

}  // namespace switchboard::server
