// The in-memory store: the same contract as the RocksDB store, with nothing on disk. Used by
// `--memory` (ephemeral brokers) and tests.
#pragma once

#include "broker/store/group_commit.h"
#include "broker/store/store.h"

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>

namespace switchboard::store {

// Operation: std::map per config kind and per channel log. Appends go through the same
// group-commit queue and store thread as the RocksDB store, so completions run on the store thread
// (never inline in append()) and the overload bound is the same; "durable" means "in the map".
//
// Concurrency: one mutex guards all data; every call takes it briefly. Safe from any thread.
//
// Limitations: everything is lost when the object is destroyed; no memory bound beyond retention.
class memory_store final : public store {
 public:
  explicit memory_store(const store_options& options);
  ~memory_store() override;

  void start() override;
  void stop() override;

  [[nodiscard]] std::expected<void, error> put_config(kind k, std::string_view key,
                                                      std::string_view value) override;
  [[nodiscard]] std::expected<std::optional<std::string>, error> get_config(kind k,
                                                                            std::string_view key) override;
  [[nodiscard]] std::expected<void, error> delete_config(kind k, std::string_view key) override;
  [[nodiscard]] std::expected<std::vector<std::pair<std::string, std::string>>, error> list_configs(
      kind k) override;

  [[nodiscard]] std::expected<std::uint64_t, error> channel_id(std::string_view name) override;
  [[nodiscard]] std::expected<std::vector<std::pair<std::string, std::uint64_t>>, error> list_channels()
      override;
  [[nodiscard]] std::expected<std::vector<std::pair<std::string, std::uint64_t>>, error> list_channels_after(
      std::string_view after, std::size_t limit) override;
  [[nodiscard]] std::expected<std::uint64_t, error> epoch(std::uint64_t channel_id) override;
  [[nodiscard]] std::expected<void, error> append(std::vector<append_request>&& batch,
                                                  append_completion&& done) override;
  [[nodiscard]] std::expected<std::vector<stored_event>, error> read(std::uint64_t channel_id,
                                                                     std::uint64_t from_seq,
                                                                     std::size_t max_events,
                                                                     std::size_t max_bytes) override;
  [[nodiscard]] std::expected<std::uint64_t, error> first_seq(std::uint64_t channel_id) override;
  [[nodiscard]] std::expected<std::uint64_t, error> last_seq(std::uint64_t channel_id) override;
  [[nodiscard]] std::expected<std::uint64_t, error> trimmed_through(std::uint64_t channel_id) override;
  [[nodiscard]] std::expected<std::vector<keyed_event>, error> recent_keys(std::uint64_t channel_id,
                                                                           std::uint64_t since_ns,
                                                                           std::size_t max_keys) override;
  [[nodiscard]] std::expected<std::uint64_t, error> trim(std::uint64_t channel_id, const retention& r,
                                                         std::uint64_t now_ns) override;
  [[nodiscard]] std::expected<std::uint64_t, error> wipe(std::uint64_t channel_id) override;
  // Always ok: memory has no disk to fill or damage (allocation failure ends the process).
  [[nodiscard]] health current_health() const override { return {}; }
  [[nodiscard]] std::string commit_metrics() const override { return _commits.metrics(); }
  [[nodiscard]] const recovery_report& recovery() const override { return _no_recovery; }

 private:
  using log = std::map<std::uint64_t, stored_event>;
  std::expected<void, error> write_group(const std::vector<detail::pending_append>& group);
  std::uint64_t new_epoch(std::uint64_t old_epoch);  // requires _mutex

  std::mutex _mutex;  // guards all members below
  std::array<std::map<std::string, std::string, std::less<>>, kind_count> _configs;
  std::map<std::string, std::uint64_t, std::less<>> _channel_ids;
  std::uint64_t _next_channel_id = 1;
  std::unordered_map<std::uint64_t, std::uint64_t> _epochs;
  std::unordered_map<std::uint64_t, std::uint64_t> _high_water;  // channel id -> highest trimmed seq
  std::unordered_map<std::uint64_t, log> _logs;
  std::mt19937_64 _random;
  const recovery_report _no_recovery;

  detail::group_commit _commits;  // last: its thread must stop before the maps go away
};

}  // namespace switchboard::store
