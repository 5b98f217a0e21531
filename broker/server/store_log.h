// The router's event_log implemented over broker/store: channel logs are the store's `events`
// column family, appends go through its group-commit thread.
// Concurrency: open() and append() are called from router shard threads; completions run on the
// store thread, in append order (the store guarantees it).
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "broker/router/router.h"
#include "broker/store/store.h"

namespace switchboard::server {

// The ERR code a client sees for a store error (docs/PROTOCOL.md): the store's error kinds kept
// apart, so a full disk (store_full, HTTP 507) is not reported like a failed one (store_failed).
[[nodiscard]] inline std::string_view protocol_code(store::errc code) noexcept {
  switch (code) {
    case store::errc::full: return "store_full";
    case store::errc::overloaded: return "overloaded";
    case store::errc::stopped: return "unavailable";
    default: return "store_failed";
  }
}

class store_log final : public router::event_log {
 public:
  explicit store_log(store::store& st) : _store(st) {}

  std::expected<position, std::string> open(std::string_view channel, std::uint64_t keys_since_ns) override {
    // Keys a dedupe window may hold at most after a restart (newest first); a bound on the read.
    constexpr std::size_t max_recent_keys = 1 << 20;
    auto id = _store.channel_id(channel);
    if (!id) return std::unexpected(id.error().message);
    auto epoch = _store.epoch(*id);
    if (!epoch) return std::unexpected(epoch.error().message);
    auto last = _store.last_seq(*id);
    if (!last) return std::unexpected(last.error().message);
    position pos{.log_id = *id, .epoch = *epoch, .last_seq = *last, .recent_keys = {}};
    if (keys_since_ns != 0) {
      auto keys = _store.recent_keys(*id, keys_since_ns, max_recent_keys);
      if (!keys) return std::unexpected(keys.error().message);
      pos.recent_keys.reserve(keys->size());
      for (auto& k : *keys) pos.recent_keys.push_back(keyed_seq{k.seq, k.time_ns, std::move(k.key)});
    }
    return pos;
  }

  std::expected<std::uint64_t, log_error> wipe(std::uint64_t log_id) override {
    auto epoch = _store.wipe(log_id);
    if (!epoch) {
      spdlog::error("store_log: wiping the log of channel id {} failed ({}): {}", log_id,
                    store::errc_name(epoch.error().code), epoch.error().message);
      return std::unexpected(log_error{.code = std::string(protocol_code(epoch.error().code)),
                                       .message = epoch.error().message, .retry = false});
    }
    return *epoch;
  }

  std::expected<void, log_error> append(const std::vector<entry>& batch, completion& done) override {
    std::vector<store::append_request> requests;
    requests.reserve(batch.size());
    for (const auto& e : batch) {
      requests.push_back(store::append_request{.channel_id = e.log_id,
                                               .seq = e.seq,
                                               .time_ns = e.time_ns,
                                               .key = std::string(e.key),
                                               .payload = std::string(e.payload)});
    }
    // The store leaves the completion intact when it refuses the batch; keep `done` recoverable.
    auto holder = std::make_shared<completion>(std::move(done));
    auto result = _store.append(std::move(requests), [holder](std::expected<void, store::error> r) {
      if (r) {
        (*holder)({});
      } else {
        (*holder)(std::unexpected(log_error{std::string(protocol_code(r.error().code)), r.error().message}));
      }
    });
    if (result) return {};
    done = std::move(*holder);
    const store::errc code = result.error().code;
    if (code != store::errc::overloaded && !_refusal_logged.exchange(true)) {
      spdlog::error("store_log: append refused ({}): {}", store::errc_name(code), result.error().message);
    }
    return std::unexpected(log_error{.code = std::string(protocol_code(code)),
                                     .message = result.error().message,
                                     .retry = code == store::errc::overloaded});
  }

 private:
  store::store& _store;
  std::atomic<bool> _refusal_logged{false};
};

}  // namespace switchboard::server
