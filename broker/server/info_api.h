// What the broker says about itself: `GET /v1/info` (version, build, uptime, shape) and the metrics an
// operator expects of any process: `switchboard_build_info{version,commit} 1`, uptime, and the
// standard `process_*` metrics (CPU, resident memory, open file descriptors, start time), read from
// getrusage(2) and /proc/self.
//
// Operation: an admin route module ("/v1/info", GET, any valid token; answered on the HTTP io thread:
// it only formats numbers it already has and reads /proc). Its `metrics` function is appended to
// GET /metrics.
//
// Concurrency: immutable after construction; every member may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "broker/admin/route_module.h"

namespace switchboard::server {

struct broker_facts {
  std::string store;    // "memory" or "rocksdb"
  unsigned shards = 0;  // router shards in use
  bool inline_shards = false;
};

class info_api {
 public:
  explicit info_api(broker_facts facts);

  // The /v1/info module; it refers to this object, which must outlive the admin server's use of it.
  [[nodiscard]] admin::route_module module() const;
  // The GET /v1/info body (one JSON object, then a newline).
  [[nodiscard]] std::string info_json() const;
  // Prometheus text (HELP and TYPE lines included): build info, uptime, process metrics.
  [[nodiscard]] std::string metrics() const;

 private:
  broker_facts _facts;
  std::chrono::system_clock::time_point _started_at;
  std::chrono::steady_clock::time_point _started;
};

}  // namespace switchboard::server
