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

  std::expected<position, std::string> open(std::string_view channel) override {
    auto id = _store.channel_id(channel);
    if (!id) return std::unexpected(id.error().message);
    auto epoch = _store.epoch(*id);
    if (!epoch) return std::unexpected(epoch.error().message);
    auto last = _store.last_seq(*id);
    if (!last) return std::unexpected(last.error().message);
    return position{.log_id = *id, .epoch = *epoch, .last_seq = *last};
  }

  bool append(const std::vector<entry>& batch, completion& done) override {
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
    if (!result) {
      // The router's bool only says "retry later", right for errc::overloaded. errc::stopped cannot
      // happen while shards run (the server stops the store last); errc::invalid_argument cannot
      // happen for router-assigned positions. Either is logged (once) rather than retried silently.
      if (result.error().code != store::errc::overloaded && !_refusal_logged.exchange(true)) {
        spdlog::error("store_log: append refused ({}): {}", store::errc_name(result.error().code),
                      result.error().message);
      }
      done = std::move(*holder);
      return false;
    }
    return true;
  }

 private:
  store::store& _store;
  std::atomic<bool> _refusal_logged{false};
};

}  // namespace switchboard::server
