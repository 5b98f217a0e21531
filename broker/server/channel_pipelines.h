// Builds the router's channel_pipeline (router.h) from a channel's effective configuration:
// compiles validate and translate, resolves the order, and carries route, publish_to_parent and
// the delegate/webhook attributes (bound by broker/server/pipeline_sinks.h: opaque to the router,
// read back by the sink hooks).
//
// Operation: shards resolve a channel's policy when they first see it and after every config
// change, so a pattern such as `acme.calls.>` is resolved once per call channel. The cache keys a
// compiled pipeline by its attributes' JSON, so those channels share one compiled pipeline and
// compile it once per configuration change, not once per channel.
//
// Concurrency: get() from any thread (shard threads); a mutex guards the cache (held for a map
// lookup; compiling happens outside it). Memory: entries are weak, dropped when no channel uses them.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "broker/channels/channel_config.h"
#include "broker/router/router.h"

namespace switchboard::server {

class pipeline_cache {
 public:
  // Null when the config sets no processing attribute (the router's fast path). A spec that no
  // longer compiles (impossible for configs the registry accepted) leaves its stage out; logged.
  [[nodiscard]] std::shared_ptr<const router::channel_pipeline> get(const channels::channel_config& effective,
                                                                    std::size_t max_payload_bytes);

 private:
  std::mutex _mutex;
  std::map<std::string, std::weak_ptr<const router::channel_pipeline>, std::less<>> _cache;
  std::size_t _inserts = 0;
};

}  // namespace switchboard::server
