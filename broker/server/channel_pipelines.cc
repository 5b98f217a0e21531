#include "broker/server/channel_pipelines.h"

#include <spdlog/spdlog.h>

#include <vector>

#include "broker/pipeline/stage_order.h"
#include "broker/server/pipeline_sinks.h"

namespace switchboard::server {

namespace {

bool has_processing(const channels::channel_config& c) {
  return c.validate || c.translate || c.delegate || c.webhook || (c.route && !c.route->empty()) ||
         c.publish_to_parent.value_or(false);
}

// The processing attributes only, as the cache key.
std::string key_of(const channels::channel_config& c, std::size_t max_payload_bytes) {
  channels::channel_config k;
  k.validate = c.validate;
  k.translate = c.translate;
  k.delegate = c.delegate;
  k.route = c.route;
  k.webhook = c.webhook;
  k.publish_to_parent = c.publish_to_parent;
  k.order = c.order;
  return channels::to_json(k) + std::to_string(max_payload_bytes);
}

std::shared_ptr<const router::channel_pipeline> build(const channels::channel_config& c, std::size_t max_payload_bytes) {
  auto p = std::make_shared<router::channel_pipeline>();
  if (c.order) {
    std::vector<std::string_view> names;
    for (auto s : *c.order) names.push_back(channels::to_string(s));
    if (auto order = pipeline::stage_order::from_names(names); order) {
      p->stages.order = *order;
    } else {
      spdlog::error("pipeline: order {} does not compile: {}", channels::to_json(c), order.error().message);
    }
  }
  if (c.validate) {
    if (auto v = pipeline::validate_spec::compile(c.validate->json); v) {
      p->stages.validate = std::move(*v);
    } else {
      spdlog::error("pipeline: validate spec {} does not compile: {}", c.validate->json, v.error().message);
    }
  }
  if (c.translate) {
    if (auto t = pipeline::translate_spec::compile(c.translate->json); t) {
      p->stages.translate = std::move(*t);
    } else {
      spdlog::error("pipeline: translate spec {} does not compile: {}", c.translate->json, t.error().message);
    }
  }
  p->stages.max_output_bytes = max_payload_bytes;
  if (c.route) p->route = *c.route;
  p->publish_to_parent = c.publish_to_parent.value_or(false);
  if (c.delegate) p->delegate = bind_delegate(*c.delegate, max_payload_bytes);
  if (c.webhook && !c.webhook->sinks.empty()) p->webhook = bind_webhook(*c.webhook);
  return p;
}

}  // namespace

std::shared_ptr<const router::channel_pipeline> pipeline_cache::get(const channels::channel_config& effective,
                                                                    std::size_t max_payload_bytes) {
  if (!has_processing(effective)) return nullptr;
  const std::string key = key_of(effective, max_payload_bytes);
  {
    std::lock_guard lock(_mutex);
    if (auto it = _cache.find(key); it != _cache.end()) {
      if (auto p = it->second.lock()) return p;
    }
  }
  auto built = build(effective, max_payload_bytes);
  std::lock_guard lock(_mutex);
  if (auto& slot = _cache[key]; auto p = slot.lock()) return p;  // another shard built it meanwhile
  _cache[key] = built;
  if (++_inserts % 256 == 0) std::erase_if(_cache, [](const auto& kv) { return kv.second.expired(); });
  return built;
}

}  // namespace switchboard::server
