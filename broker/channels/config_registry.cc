// Config registry: snapshots, pattern ranking and effective-config resolution. Contracts are in
// config_registry.h.
#include "broker/channels/config_registry.h"

#include <algorithm>
#include <stdexcept>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#if defined(__SANITIZE_THREAD__)
// TSan's dynamic annotations (exported by libtsan; no header ships them).
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
#endif

namespace switchboard::channels {
namespace {

// libstdc++ 12 implements std::atomic<std::shared_ptr> with a lock bit in the control-block pointer,
// taken and released with atomic operations TSan does not recognise as a lock, so TSan reports the
// plain read of the stored pointer inside load() as racing with the swap inside store()
// (google/sanitizers#1558; GCC 13 added TSan annotations to the library itself). Under TSan a
// reader therefore ignores the plain reads inside load(): the lock's acquire/release atomics are
// still tracked, so the snapshot's contents stay checked, and writers (serialised by a mutex) stay
// fully checked. Compiles to nothing otherwise.
class tsan_ignore_reads {
 public:
#if defined(__SANITIZE_THREAD__)
  tsan_ignore_reads() noexcept { AnnotateIgnoreReadsBegin(__FILE__, __LINE__); }
  ~tsan_ignore_reads() { AnnotateIgnoreReadsEnd(__FILE__, __LINE__); }
#else
  tsan_ignore_reads() noexcept = default;
#endif
  tsan_ignore_reads(const tsan_ignore_reads&) = delete;
  tsan_ignore_reads& operator=(const tsan_ignore_reads&) = delete;
};

constexpr std::string_view source_channel = "channel";
constexpr std::string_view source_default = "default";

// How specific a pattern is; smaller sorts first (see the rules in config_registry.h).
struct specificity {
  std::size_t literals = 0;
  std::size_t wildcards = 0;
  bool has_rest = false;  // ends in `>`

  static specificity of(std::string_view pattern) noexcept {
    specificity s;
    for (;;) {
      const std::size_t dot = pattern.find('.');
      const std::string_view token = pattern.substr(0, dot);
      if (token == "*") {
        ++s.wildcards;
      } else if (token == ">") {
        ++s.wildcards;
        s.has_rest = true;
      } else {
        ++s.literals;
      }
      if (dot == std::string_view::npos) return s;
      pattern.remove_prefix(dot + 1);
    }
  }

  // True when `a` (named a_name) is more specific than `b` (named b_name).
  static bool before(const specificity& a, std::string_view a_name, const specificity& b, std::string_view b_name) {
    if (a.literals != b.literals) return a.literals > b.literals;
    if (a.wildcards != b.wildcards) return a.wildcards < b.wildcards;
    if (a.has_rest != b.has_rest) return !a.has_rest;
    return a_name < b_name;
  }
};

channel_config defaults_config(const registry_defaults& d) {
  channel_config c;
  c.durable = false;
  c.retention = retention_policy{};
  c.slow_consumer = d.slow_consumer;
  c.dedupe_window = std::chrono::milliseconds(0);
  c.max_payload_bytes = d.max_payload_bytes;
  c.permissions = permission_lists{};
  c.route = std::vector<std::string>{};
  c.publish_to_parent = false;
  c.order = default_stage_order();
  return c;
}

config_error name_error(router::topic_error e) { return config_error{400, std::move(e.code), std::move(e.message)}; }

}  // namespace

bool is_pattern(std::string_view name) noexcept {
  for (;;) {
    const std::size_t dot = name.find('.');
    const std::string_view token = name.substr(0, dot);
    if (token == "*" || token == ">") return true;
    if (dot == std::string_view::npos) return false;
    name.remove_prefix(dot + 1);
  }
}

std::string effective_to_json(const effective_config& effective) {
  // to_json writes cleared attributes as null: mark every unset one to get "all attributes".
  channel_config all = effective.config;
  for (std::size_t i = 0; i < attribute_count; ++i) {
    all.cleared.set(i, !all.has(static_cast<attribute>(i)));
  }
  const std::string config_json = to_json(all);

  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  const auto str = [&](std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); };
  w.StartObject();
  w.Key("name");
  str(effective.name);
  w.Key("config");
  w.RawValue(config_json.data(), config_json.size(), rapidjson::kObjectType);
  w.Key("sources");
  w.StartObject();
  for (std::size_t i = 0; i < attribute_count; ++i) {
    const std::string_view key = attribute_name(static_cast<attribute>(i));
    w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
    str(effective.sources[i]);
  }
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

// ---------------------------------------------------------------------------------------------

config_snapshot::config_snapshot(std::uint64_t generation, registry_defaults defaults, config_map configs)
    : _generation(generation), _defaults(defaults), _configs(std::move(configs)), _default_config(defaults_config(_defaults)) {
  std::vector<std::pair<specificity, ranked_pattern>> ranked;
  for (const auto& [name, config] : _configs) {
    if (is_pattern(name)) ranked.emplace_back(specificity::of(name), ranked_pattern{name, &config});
  }
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return specificity::before(a.first, a.second.name, b.first, b.second.name);
  });
  _patterns.reserve(ranked.size());
  for (const auto& [spec, pattern] : ranked) {
    _by_rank.insert(pattern.name, static_cast<std::uint32_t>(_patterns.size()));
    _patterns.push_back(pattern);
  }
}

const channel_config* config_snapshot::find(std::string_view name) const {
  const auto it = _configs.find(name);
  return it == _configs.end() ? nullptr : &it->second;
}

effective_config config_snapshot::effective(std::string_view channel) const {
  effective_config out;
  out.name = std::string(channel);
  const channel_config* own = find(channel);
  std::vector<std::uint32_t> ranks;
  _by_rank.match(channel, [&](std::uint32_t rank) { ranks.push_back(rank); });
  std::sort(ranks.begin(), ranks.end());

  for (std::size_t i = 0; i < attribute_count; ++i) {
    const auto a = static_cast<attribute>(i);
    if (own != nullptr && own->has(a)) {
      out.config.assign(a, *own);
      out.sources[i] = source_channel;
      continue;
    }
    const auto from = std::find_if(ranks.begin(), ranks.end(),
                                   [&](std::uint32_t r) { return _patterns[r].config->has(a); });
    if (from != ranks.end()) {
      out.config.assign(a, *_patterns[*from].config);
      out.sources[i] = _patterns[*from].name;
    } else {
      out.config.assign(a, _default_config);
      out.sources[i] = source_default;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

config_registry::config_registry(registry_defaults defaults) : _defaults(defaults), _generation(1) {
  if (_defaults.slow_consumer == slow_consumer_policy::conflate) {
    throw std::invalid_argument("the default slow_consumer policy cannot be conflate (it needs a conflate_key)");
  }
  _current.store(std::make_shared<const config_snapshot>(1, _defaults, config_snapshot::config_map{}));
}

std::expected<void, config_error> config_registry::put(std::string_view name, channel_config config) {
  const std::lock_guard lock(_write_mutex);
  return put_locked(name, std::move(config));
}

std::expected<void, config_error> config_registry::put_locked(std::string_view name, channel_config config) {
  if (auto ok = is_pattern(name) ? router::validate_pattern(name) : router::validate_channel(name); !ok) {
    return std::unexpected(name_error(std::move(ok.error())));
  }
  if (auto ok = validate_config(config); !ok) return std::unexpected(std::move(ok.error()));
  const auto current = _current.load(std::memory_order_acquire);
  if (const channel_config* existing = current->find(name); existing != nullptr && *existing == config) return {};
  config_snapshot::config_map configs = current->configs();
  configs.insert_or_assign(std::string(name), std::move(config));
  publish(std::move(configs));
  return {};
}

std::expected<channel_config, config_error> config_registry::patch(std::string_view name,
                                                                   const channel_config& patch) {
  const std::lock_guard lock(_write_mutex);
  const auto current = _current.load(std::memory_order_acquire);
  const channel_config* existing = current->find(name);
  auto merged = merge_patch(existing != nullptr ? *existing : channel_config{}, patch);
  if (!merged) return merged;
  if (auto ok = put_locked(name, *merged); !ok) return std::unexpected(std::move(ok.error()));
  return merged;
}

bool config_registry::erase(std::string_view name) {
  const std::lock_guard lock(_write_mutex);
  const auto current = _current.load(std::memory_order_acquire);
  if (current->find(name) == nullptr) return false;
  config_snapshot::config_map configs = current->configs();
  configs.erase(configs.find(name));
  publish(std::move(configs));
  return true;
}

void config_registry::publish(config_snapshot::config_map configs) {
  const std::uint64_t next = _current.load(std::memory_order_relaxed)->generation() + 1;
  _current.store(std::make_shared<const config_snapshot>(next, _defaults, std::move(configs)),
                 std::memory_order_release);
  _generation.store(next, std::memory_order_release);
}

std::optional<channel_config> config_registry::get(std::string_view name) const {
  const auto current = snapshot();
  if (const channel_config* c = current->find(name)) return *c;
  return std::nullopt;
}

std::vector<std::pair<std::string, channel_config>> config_registry::list() const {
  const auto current = snapshot();
  return {current->configs().begin(), current->configs().end()};
}

std::expected<effective_config, config_error> config_registry::effective(std::string_view channel) const {
  if (auto ok = router::validate_channel(channel); !ok) return std::unexpected(name_error(std::move(ok.error())));
  return snapshot()->effective(channel);
}

std::shared_ptr<const config_snapshot> config_registry::snapshot() const noexcept {
  [[maybe_unused]] const tsan_ignore_reads ignore;
  return _current.load(std::memory_order_acquire);
}

std::uint64_t config_registry::generation() const noexcept { return _generation.load(std::memory_order_acquire); }

}  // namespace switchboard::channels
