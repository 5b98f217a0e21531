#include "broker/engine/local_engine.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <utility>

namespace switchboard::engine {

namespace {
history_engine::log_error from_store(const store::error& e, bool retry = false) {
  return history_engine::log_error{.code = std::string(protocol_code(e.code)), .message = e.message, .retry = retry};
}
}  // namespace

std::string_view protocol_code(store::errc code) noexcept {
  switch (code) {
    case store::errc::full: return "store_full";
    case store::errc::overloaded: return "overloaded";
    case store::errc::stopped: return "unavailable";
    default: return "store_failed";
  }
}

std::expected<history_engine::position, std::string> local_engine::open(std::string_view channel,
                                                                        std::uint64_t keys_since_ns) {
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

local_engine::~local_engine() {
  if (_open_thread.joinable()) {
    _open_thread.request_stop();
    _opens_cv.notify_all();
    _open_thread.join();
  }
}

void local_engine::open_async(std::string channel, std::uint64_t keys_since_ns, open_completion done) {
  std::lock_guard lock(_opens_mutex);
  if (!_open_thread.joinable()) _open_thread = std::jthread([this](std::stop_token st) { run_opens(st); });
  _opens.push_back(open_request{std::move(channel), keys_since_ns, std::move(done)});
  _opens_cv.notify_one();
}

void local_engine::run_opens(std::stop_token stop) {
  for (;;) {
    open_request r;
    {
      std::unique_lock lock(_opens_mutex);
      _opens_cv.wait(lock, stop, [this] { return !_opens.empty(); });
      if (_opens.empty()) return;  // stopping with nothing left to answer
      r = std::move(_opens.front());
      _opens.pop_front();
    }
    r.done(open(r.channel, r.keys_since_ns));
  }
}

std::expected<void, history_engine::log_error> local_engine::append(const std::vector<entry>& batch,
                                                                    completion& done) {
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
      (*holder)(std::unexpected(from_store(r.error())));
    }
  });
  if (result) return {};
  done = std::move(*holder);
  const store::errc code = result.error().code;
  if (code != store::errc::overloaded && !_refusal_logged.exchange(true)) {
    spdlog::error("engine: append refused ({}): {}", store::errc_name(code), result.error().message);
  }
  return std::unexpected(from_store(result.error(), code == store::errc::overloaded));
}

std::expected<std::uint64_t, history_engine::log_error> local_engine::wipe(std::uint64_t log_id) {
  auto epoch = _store.wipe(log_id);
  if (!epoch) {
    spdlog::error("engine: wiping the log of channel id {} failed ({}): {}", log_id,
                  store::errc_name(epoch.error().code), epoch.error().message);
    return std::unexpected(from_store(epoch.error()));
  }
  return *epoch;
}

std::expected<std::vector<history_engine::event>, history_engine::log_error> local_engine::read(
    std::uint64_t log_id, std::uint64_t from_seq, std::size_t max_events, std::size_t max_bytes) {
  auto stored = _store.read(log_id, from_seq, max_events, max_bytes);
  if (!stored) return std::unexpected(from_store(stored.error()));
  std::vector<event> out;
  out.reserve(stored->size());
  for (auto& e : *stored) out.push_back(event{e.seq, e.time_ns, std::move(e.key), std::move(e.payload)});
  return out;
}

std::expected<history_engine::position, history_engine::log_error> local_engine::position_of(std::uint64_t log_id) {
  auto epoch = _store.epoch(log_id);
  if (!epoch) return std::unexpected(from_store(epoch.error()));
  auto last = _store.last_seq(log_id);
  if (!last) return std::unexpected(from_store(last.error()));
  return position{.log_id = log_id, .epoch = *epoch, .last_seq = *last, .recent_keys = {}};
}

std::expected<history_engine::extent, history_engine::log_error> local_engine::extent_of(std::uint64_t log_id) {
  auto epoch = _store.epoch(log_id);
  if (!epoch) return std::unexpected(from_store(epoch.error()));
  auto first = _store.first_seq(log_id);
  if (!first) return std::unexpected(from_store(first.error()));
  auto last = _store.last_seq(log_id);
  if (!last) return std::unexpected(from_store(last.error()));
  auto trimmed = _store.trimmed_through(log_id);
  if (!trimmed) return std::unexpected(from_store(trimmed.error()));
  return extent{.epoch = *epoch, .first_seq = *first, .last_seq = *last, .trimmed_through = *trimmed};
}

std::expected<std::uint64_t, history_engine::log_error> local_engine::trim(std::uint64_t log_id, const limits& l,
                                                                          std::uint64_t now_ns) {
  auto removed = _store.trim(log_id, store::retention{l.max_age_ns, l.max_events, l.max_bytes}, now_ns);
  if (!removed) return std::unexpected(from_store(removed.error()));
  return *removed;
}

std::expected<std::vector<std::pair<std::string, std::uint64_t>>, history_engine::log_error> local_engine::list(
    std::string_view after, std::size_t limit) {
  auto page = _store.list_channels_after(after, limit);
  if (!page) return std::unexpected(from_store(page.error()));
  return std::move(*page);
}

}  // namespace switchboard::engine
