// The configs of exact channels and patterns, and the effective config of a channel resolved from
// them (DESIGN.md, "Channel configuration attributes": attributes set on a pattern are inherited by
// matching channels; a channel's own attribute overrides).
//
// Resolution, attribute by attribute (each top-level attribute is resolved on its own; an object
// attribute such as `retention` or `permissions` is taken whole from one source):
//   1. the channel's own config, if it sets the attribute            -> source "channel"
//   2. else the most specific matching pattern that sets it          -> source = the pattern
//   3. else the built-in default                                     -> source "default"
// "Most specific" orders the matching patterns by, in turn:
//   a. more literal (non-wildcard) tokens first            (`acme.calls.*` before `acme.*.*`)
//   b. then fewer wildcard tokens                          (`acme.>` before `acme.*.*`)
//   c. then a pattern without `>` before one with `>`      (`acme.calls.*` before `acme.calls.>`)
//   d. then the byte-wise smaller pattern name, so the choice is deterministic (`a.*.c` and
//      `a.b.*` tie on a-c; `a.*.c` wins because '*' < 'b').
// Only patterns containing a wildcard inherit: a config stored under an exact channel name applies
// to that channel only.
// Built-in defaults: durable false; retention {} (no limits); slow_consumer from
// registry_defaults (built-in "disconnect"); dedupe_window 0; max_payload_bytes from
// registry_defaults; permissions anyone (["*"] / ["*"]); route []; publish_to_parent false; order
// validate, translate, delegate, route, webhook, publish_to_parent. conflate_key, schema, translate,
// delegate and webhook have no default: they stay unset (null in effective_to_json), meaning "no
// such stage" (conflate_key is always set when the effective slow_consumer is "conflate").
//
// Concurrency: the registry is mutated by the admin thread and read on the publish path by router
// shards. Every mutation builds a new immutable `config_snapshot` and publishes it through an
// std::atomic<std::shared_ptr<const config_snapshot>>; readers never see a half-applied change and
// never wait for a writer's work (libstdc++'s atomic shared_ptr takes a short internal spin lock
// around the pointer copy only). Shards are expected to cache effective configs and re-resolve when
// generation() changes.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/channels/channel_config.h"
#include "broker/router/topic.h"

namespace switchboard::channels {

// Registry-wide defaults for attributes nobody sets.
struct registry_defaults {
  // The broker's --max-payload-bytes; a channel or pattern may set its own.
  std::uint64_t max_payload_bytes = 1 << 20;
  // The broker's --slow-consumer policy. Must not be `conflate` (there is no default key): the
  // registry constructor throws std::invalid_argument (a start-up configuration error).
  slow_consumer_policy slow_consumer = slow_consumer_policy::disconnect;
};

// A channel's fully resolved config and where each attribute came from.
struct effective_config {
  std::string name;
  // Every attribute that has a default is set; see the header comment for those that may be unset.
  channel_config config;
  // Indexed by attribute: "channel", a pattern name (e.g. "acme.calls.>"), or "default".
  std::array<std::string, attribute_count> sources;

  [[nodiscard]] const std::string& source(attribute a) const noexcept {
    return sources[static_cast<std::size_t>(a)];
  }
};

// {"name":…,"config":{every attribute, null when unset},"sources":{attribute:source,…}}.
[[nodiscard]] std::string effective_to_json(const effective_config& effective);

// True when `name` holds a `*` or `>` token (it names a pattern rather than one channel). Does not
// validate.
[[nodiscard]] bool is_pattern(std::string_view name) noexcept;

// One immutable generation of the registry: the configs plus an index of the patterns.
//
// Operation: configs live in a name-ordered map; patterns are ranked once by specificity and put in
// a topic_trie keyed by rank, so effective() costs one trie walk over the channel's tokens, a sort
// of the (few) matching ranks, and one pass over the attributes.
// Thread-safety: immutable after construction; every member function may be called from any
// number of threads at once.
class config_snapshot {
 public:
  using config_map = std::map<std::string, channel_config, std::less<>>;

  // Preconditions: every key passes validate_channel or validate_pattern; every config passes
  // validate_config. `configs` is taken over.
  config_snapshot(std::uint64_t generation, registry_defaults defaults, config_map configs);
  config_snapshot(const config_snapshot&) = delete;
  config_snapshot& operator=(const config_snapshot&) = delete;
  ~config_snapshot() = default;

  // Increases with every mutation of the registry that published this snapshot (first one: 1).
  [[nodiscard]] std::uint64_t generation() const noexcept { return _generation; }
  [[nodiscard]] const registry_defaults& defaults() const noexcept { return _defaults; }
  // The config stored under exactly `name` (channel or pattern), or nullptr. Valid while this
  // snapshot is alive.
  [[nodiscard]] const channel_config* find(std::string_view name) const;
  // Every stored config, ordered by name.
  [[nodiscard]] const config_map& configs() const noexcept { return _configs; }

  // The effective config of `channel`. Allocates the result (a few small strings); no locks.
  // Precondition: validate_channel(channel) succeeded (the hot path has validated it already).
  [[nodiscard]] effective_config effective(std::string_view channel) const;

 private:
  struct ranked_pattern {
    std::string_view name;  // key in _configs
    const channel_config* config;
  };

  std::uint64_t _generation;
  registry_defaults _defaults;
  config_map _configs;
  channel_config _default_config;               // the built-in defaults as one config
  std::vector<ranked_pattern> _patterns;        // by specificity, most specific first
  router::topic_trie<std::uint32_t> _by_rank;   // pattern -> its index in _patterns
};

// The registry of channel and pattern configs.
//
// Thread-safety: put/patch/erase may be called from any thread; they are serialised by an internal
// mutex (one admin thread is the expected writer). get/list/effective/snapshot/generation may be
// called from any thread at any time, concurrently with writers, and never take that mutex.
// Limitations: each mutation copies the config map (O(configs)); meant for admin-rate changes, not
// per-event ones. Persistence is the caller's job (store to_json(config) under the name).
class config_registry {
 public:
  explicit config_registry(registry_defaults defaults = {});
  config_registry(const config_registry&) = delete;
  config_registry& operator=(const config_registry&) = delete;
  ~config_registry() = default;

  // Stores `config` under `name` (replacing any previous one) and publishes a new snapshot.
  // `name` is a pattern if it holds a `*` or `>` token, else a channel. Fails with
  //   400 invalid_channel / invalid_pattern  (router::validate_* message) for a bad name,
  //   422 invalid_attribute                  (validate_config) for a bad config;
  // nothing changes on failure. Storing a config equal to the current one publishes nothing.
  [[nodiscard]] std::expected<void, config_error> put(std::string_view name, channel_config config);

  // PATCH: merge_patch(current config of `name` or an empty one, patch), then put. Returns the
  // stored result, or the error of either step (nothing changes on failure). Atomic with respect to
  // other writers.
  [[nodiscard]] std::expected<channel_config, config_error> patch(std::string_view name, const channel_config& patch);

  // Removes the config stored under `name`. Returns false (and publishes nothing) if there was none.
  bool erase(std::string_view name);

  // The config stored under exactly `name` (not the effective one), or nullopt.
  [[nodiscard]] std::optional<channel_config> get(std::string_view name) const;

  // Every stored (name, config), ordered by name.
  [[nodiscard]] std::vector<std::pair<std::string, channel_config>> list() const;

  // The effective config of `channel`, or 400 invalid_channel if it is not a valid channel name.
  [[nodiscard]] std::expected<effective_config, config_error> effective(std::string_view channel) const;

  // The current snapshot; never null. Holding it keeps that generation alive.
  [[nodiscard]] std::shared_ptr<const config_snapshot> snapshot() const noexcept;

  // The generation of the current snapshot: one atomic load, cheap enough for every publish. A
  // shard that cached effective configs under generation G re-resolves when this differs from G.
  [[nodiscard]] std::uint64_t generation() const noexcept;

 private:
  // Publishes `configs` as the next generation. Caller holds _write_mutex.
  void publish(config_snapshot::config_map configs);
  // put() without taking the mutex.
  [[nodiscard]] std::expected<void, config_error> put_locked(std::string_view name, channel_config config);

  const registry_defaults _defaults;
  std::mutex _write_mutex;                                    // serialises writers
  std::atomic<std::shared_ptr<const config_snapshot>> _current;  // written under _write_mutex
  std::atomic<std::uint64_t> _generation;                     // == _current's generation, stored after it
};

}  // namespace switchboard::channels
