// The router's event_log implemented over broker/store: channel logs are the store's `events`
// column family, appends go through its group-commit thread.
// Concurrency: open() and append() are called from router shard threads; completions run on the
// store thread, in append order (the store guarantees it).
#pragma once

#include <memory>

#include "broker/router/router.h"
#include "broker/store/store.h"

namespace switchboard::server {

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
      requests.push_back(store::append_request{.channel_id = e.log_id, .seq = e.seq, .time_ns = e.time_ns,
                                               .key = std::string(e.key), .payload = std::string(e.payload)});
    }
    // The store leaves the completion intact when it refuses the batch; keep `done` recoverable.
    auto holder = std::make_shared<completion>(std::move(done));
    auto result = _store.append(std::move(requests), [holder](std::expected<void, store::error> r) {
      if (r) {
        (*holder)({});
      } else {
        (*holder)(std::unexpected(r.error().message));
      }
    });
    if (!result) {
      done = std::move(*holder);
      return false;
    }
    return true;
  }

 private:
  store::store& _store;
};

}  // namespace switchboard::server
