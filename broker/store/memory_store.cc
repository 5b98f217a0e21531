#include "broker/store/memory_store.h"

#include "broker/store/checks.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace switchboard::store {

std::expected<std::unique_ptr<store>, error> store::open_memory(const store_options& options) {
  return std::make_unique<memory_store>(options);
}

memory_store::memory_store(const store_options& options)
    : _random(std::random_device{}()),
      _commits(options.max_queued_events,
               [this](const std::vector<detail::pending_append>& group) { return write_group(group); }) {}

memory_store::~memory_store() { stop(); }

void memory_store::start() { _commits.start(); }
void memory_store::stop() { _commits.stop(); }

std::expected<void, error> memory_store::put_config(kind k, std::string_view key, std::string_view value) {
  if (auto ok = detail::check_config_key(k, key, true); !ok) return ok;
  std::lock_guard lock(_mutex);
  auto& configs = _configs[static_cast<std::size_t>(k)];
  configs.insert_or_assign(std::string(key), std::string(value));
  return {};
}

std::expected<std::optional<std::string>, error> memory_store::get_config(kind k, std::string_view key) {
  if (auto ok = detail::check_config_key(k, key, false); !ok) return std::unexpected(ok.error());
  std::lock_guard lock(_mutex);
  const auto& configs = _configs[static_cast<std::size_t>(k)];
  auto it = configs.find(key);
  if (it == configs.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

std::expected<void, error> memory_store::delete_config(kind k, std::string_view key) {
  if (auto ok = detail::check_config_key(k, key, true); !ok) return ok;
  std::lock_guard lock(_mutex);
  auto& configs = _configs[static_cast<std::size_t>(k)];
  if (auto it = configs.find(key); it != configs.end()) configs.erase(it);
  return {};
}

std::expected<std::vector<std::pair<std::string, std::string>>, error> memory_store::list_configs(kind k) {
  if (auto ok = detail::check_config_key(k, {}, false); !ok) return std::unexpected(ok.error());
  std::lock_guard lock(_mutex);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, value] : _configs[static_cast<std::size_t>(k)]) {
    if (!detail::is_reserved(k, key)) out.emplace_back(key, value);
  }
  return out;
}

std::expected<std::uint64_t, error> memory_store::channel_id(std::string_view name) {
  std::lock_guard lock(_mutex);
  auto it = _channel_ids.find(name);
  if (it != _channel_ids.end()) return it->second;
  const std::uint64_t id = _next_channel_id++;
  _channel_ids.emplace(std::string(name), id);
  return id;
}

std::expected<std::vector<std::pair<std::string, std::uint64_t>>, error> memory_store::list_channels() {
  std::lock_guard lock(_mutex);
  return std::vector<std::pair<std::string, std::uint64_t>>(_channel_ids.begin(), _channel_ids.end());
}

std::expected<std::vector<std::pair<std::string, std::uint64_t>>, error> memory_store::list_channels_after(
    std::string_view after, std::size_t limit) {
  std::lock_guard lock(_mutex);
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (auto it = after.empty() ? _channel_ids.begin() : _channel_ids.upper_bound(after);
       it != _channel_ids.end() && out.size() < limit; ++it) {
    out.emplace_back(it->first, it->second);
  }
  return out;
}

std::uint64_t memory_store::new_epoch(std::uint64_t old_epoch) {
  std::uint64_t e = 0;
  while (e == 0 || e == old_epoch) e = _random();
  return e;
}

std::expected<std::uint64_t, error> memory_store::epoch(std::uint64_t channel_id) {
  std::lock_guard lock(_mutex);
  auto [it, inserted] = _epochs.try_emplace(channel_id, 0);
  if (inserted) it->second = new_epoch(0);
  return it->second;
}

std::expected<void, error> memory_store::append(std::vector<append_request>&& batch,
                                                append_completion&& done) {
  return _commits.submit(std::move(batch), std::move(done));
}

std::expected<void, error> memory_store::write_group(const std::vector<detail::pending_append>& group) {
  std::lock_guard lock(_mutex);
  for (const detail::pending_append& p : group) {
    for (const append_request& r : p.batch) {
      _logs[r.channel_id].insert_or_assign(r.seq, stored_event{r.seq, r.time_ns, r.key, r.payload});
    }
  }
  return {};
}

std::expected<std::vector<stored_event>, error> memory_store::read(std::uint64_t channel_id,
                                                                   std::uint64_t from_seq,
                                                                   std::size_t max_events,
                                                                   std::size_t max_bytes) {
  std::lock_guard lock(_mutex);
  std::vector<stored_event> out;
  auto log_it = _logs.find(channel_id);
  if (log_it == _logs.end()) return out;
  std::size_t bytes = 0;
  for (auto it = log_it->second.lower_bound(from_seq); it != log_it->second.end() && out.size() < max_events;
       ++it) {
    const std::size_t size = it->second.key.size() + it->second.payload.size();
    if (!out.empty() && bytes + size > max_bytes) break;
    bytes += size;
    out.push_back(it->second);
  }
  return out;
}

std::expected<std::uint64_t, error> memory_store::first_seq(std::uint64_t channel_id) {
  std::lock_guard lock(_mutex);
  auto it = _logs.find(channel_id);
  return it == _logs.end() || it->second.empty() ? 0 : it->second.begin()->first;
}

std::expected<std::uint64_t, error> memory_store::last_seq(std::uint64_t channel_id) {
  std::lock_guard lock(_mutex);
  auto it = _logs.find(channel_id);
  if (it != _logs.end() && !it->second.empty()) return it->second.rbegin()->first;
  auto mark = _high_water.find(channel_id);
  return mark == _high_water.end() ? 0 : mark->second;
}

std::expected<std::vector<store::keyed_event>, error> memory_store::recent_keys(std::uint64_t channel_id,
                                                                                 std::uint64_t since_ns,
                                                                                 std::size_t max_keys) {
  std::lock_guard lock(_mutex);
  std::vector<keyed_event> out;
  auto log_it = _logs.find(channel_id);
  if (log_it == _logs.end()) return out;
  for (auto it = log_it->second.rbegin(); it != log_it->second.rend() && out.size() < max_keys; ++it) {
    if (it->second.time_ns < since_ns) break;
    if (!it->second.key.empty()) out.push_back(keyed_event{it->first, it->second.time_ns, it->second.key});
  }
  std::ranges::reverse(out);
  return out;
}

std::expected<std::uint64_t, error> memory_store::trimmed_through(std::uint64_t channel_id) {
  std::lock_guard lock(_mutex);
  auto mark = _high_water.find(channel_id);
  return mark == _high_water.end() ? 0 : mark->second;
}

std::expected<std::uint64_t, error> memory_store::trim(std::uint64_t channel_id, const retention& r,
                                                       std::uint64_t now_ns) {
  std::lock_guard lock(_mutex);
  auto log_it = _logs.find(channel_id);
  if (log_it == _logs.end() || log_it->second.empty()) return 0;
  log& events = log_it->second;

  // `cut` is the first event kept; everything before it goes.
  auto cut = events.begin();
  if (r.max_age_ns != 0) {
    while (cut != events.end() && now_ns > r.max_age_ns && cut->second.time_ns < now_ns - r.max_age_ns) {
      ++cut;
    }
  }
  if (r.max_events != 0 || r.max_bytes != 0) {
    std::uint64_t kept = 0;
    std::uint64_t bytes = 0;
    for (auto it = events.end(); it != cut;) {
      --it;
      const std::uint64_t size = it->second.key.size() + it->second.payload.size();
      if ((r.max_events != 0 && kept + 1 > r.max_events) ||
          (r.max_bytes != 0 && bytes + size > r.max_bytes)) {
        cut = std::next(it);
        break;
      }
      ++kept;
      bytes += size;
    }
  }
  const auto removed = static_cast<std::uint64_t>(std::distance(events.begin(), cut));
  if (removed != 0) _high_water[channel_id] = std::prev(cut)->first;
  events.erase(events.begin(), cut);
  return removed;
}

std::expected<std::uint64_t, error> memory_store::wipe(std::uint64_t channel_id) {
  std::lock_guard lock(_mutex);
  _logs.erase(channel_id);
  _high_water.erase(channel_id);
  auto [it, inserted] = _epochs.try_emplace(channel_id, 0);
  it->second = new_epoch(inserted ? 0 : it->second);
  return it->second;
}

}  // namespace switchboard::store
