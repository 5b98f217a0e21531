// What the admin HTTP API may ask of the broker. The HTTP layer (admin_server) parses requests,
// authenticates, and maps errors to status codes; everything else goes through this interface,
// which the broker (broker/server) implements by sending commands to the owning router shards and
// to the store. The admin layer never touches router state directly.
//
// Concurrency: every member may be called from any HTTP worker thread, concurrently. Calls that
// wait for a shard or the store block the calling worker (bounded by the timeouts noted).
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/auth/auth.h"
#include "broker/router/router.h"

namespace switchboard::admin {

// An error the API returns as {"error":{"code":…,"message":…}} with `status`.
struct api_error {
  api_error() = default;
  api_error(int s, std::string c, std::string m, std::string detail = {})
      : status(s), code(std::move(c)), message(std::move(m)), detail_json(std::move(detail)) {}

  int status = 500;
  std::string code;
  std::string message;
  // Optional: a JSON object (written with a JSON writer) answered as the error's "detail", for
  // errors a client acts on, e.g. epoch_changed {"epoch":"…","first_seq":N}.
  std::string detail_json;
};

// Who is calling, after authentication (see broker/auth/auth.h for the tenant rule).
using auth::principal;

struct publish_result {
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  bool duplicate = false;  // acknowledged with the first event's seq by the dedupe window
};

// Per-channel stats as the router reports them (durable: what the channel's config says).
using channel_stats = router::channel_stats;

struct history_event {
  std::uint64_t seq = 0;
  std::uint64_t time_ns = 0;
  std::string payload;
};

struct history_page {
  std::uint64_t epoch = 0;      // the history the seqs belong to
  std::vector<history_event> events;
  std::uint64_t next_seq = 0;   // pass as from_seq to continue
  std::uint64_t first_seq = 0;  // oldest seq still stored (0 = empty)
};

// Who may publish to / subscribe to a channel (its effective `permissions` attribute): tenants or
// token names, "*" = anyone.
struct channel_permissions {
  std::vector<std::string> publish{"*"};
  std::vector<std::string> subscribe{"*"};
};

class control {
 public:
  virtual ~control() = default;

  // The channel's effective permissions (own, inherited from patterns, or the default "*"), so the
  // API applies the same rule as the protocol. Never blocks on a shard.
  [[nodiscard]] virtual channel_permissions permissions(std::string_view channel) = 0;

  // Channel and pattern configuration. Bodies are the JSON the client sent; the broker validates
  // them (400 invalid_json, 422 unknown_attribute / invalid_attribute) and persists before
  // answering. The returned string is the JSON document GET would return for `name`: its
  // effective config and where each value came from.
  [[nodiscard]] virtual std::expected<std::string, api_error> put_channel(std::string_view name,
                                                                          std::string_view body) = 0;
  [[nodiscard]] virtual std::expected<std::string, api_error> patch_channel(std::string_view name,
                                                                            std::string_view body) = 0;
  [[nodiscard]] virtual std::expected<std::string, api_error> get_channel(std::string_view name) = 0;
  [[nodiscard]] virtual std::expected<void, api_error> delete_channel(std::string_view name) = 0;
  // Every channel that has a config or has seen traffic, with live stats; names of configured
  // patterns too (stats zero). Waits for every shard (up to 5 s).
  [[nodiscard]] virtual std::expected<std::vector<channel_stats>, api_error> list_channels() = 0;

  // Publishes one event as if a client had sent PUB with an ack request; returns once acknowledged
  // (for a durable channel: after it is synced). 404 never: publishing creates the channel.
  [[nodiscard]] virtual std::expected<publish_result, api_error> publish(std::string_view channel,
                                                                         std::string_view payload,
                                                                         std::string_view idempotency_key,
                                                                         std::chrono::milliseconds timeout) = 0;
  // History of a durable channel (404 not_found when the channel is not durable or unknown).
  [[nodiscard]] virtual std::expected<history_page, api_error> history(std::string_view channel,
                                                                       std::uint64_t from_seq,
                                                                       std::size_t limit) = 0;

  // Purges a durable channel's history and starts a new epoch (returned); events published before
  // are stored first, attached durable subscriptions get the `epoch` notice. 404 not_found when the
  // channel is not durable. Blocks until the owning shard answers (up to 10 s).
  [[nodiscard]] virtual std::expected<std::uint64_t, api_error> wipe_history(std::string_view channel) = 0;

  // Durable subscriptions; bodies and results are JSON documents (see docs/ADMIN_API.md).
  [[nodiscard]] virtual std::expected<std::string, api_error> create_subscription(std::string_view body) = 0;
  [[nodiscard]] virtual std::expected<std::string, api_error> get_subscription(std::string_view name) = 0;
  [[nodiscard]] virtual std::expected<std::string, api_error> list_subscriptions() = 0;
  [[nodiscard]] virtual std::expected<void, api_error> delete_subscription(std::string_view name) = 0;

  // Dead letters: list as JSON; redrive re-publishes one and removes it.
  [[nodiscard]] virtual std::expected<std::string, api_error> list_dead_letters() = 0;
  [[nodiscard]] virtual std::expected<publish_result, api_error> redrive_dead_letter(std::string_view id) = 0;

  // Prometheus text exposition of every counter and gauge.
  [[nodiscard]] virtual std::string metrics() = 0;
  // Nothing once the broker serves clients and its store is healthy; else the /readyz answer:
  // 503 with code store_full / store_corrupt / store_failed and a message naming the file or error.
  [[nodiscard]] virtual std::expected<void, api_error> ready() = 0;
};

}  // namespace switchboard::admin
