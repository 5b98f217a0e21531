// Broker options. Every field is also a command-line flag and a key in conf/switchboard.conf
// (same name with dashes); defaults here are the documented defaults.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace switchboard::server {

struct options {
  // Client protocol endpoint (ZeroMQ syntax). `tcp://127.0.0.1:*` binds a free port (tests).
  std::string bind = "tcp://127.0.0.1:7400";
  // Admin HTTP API. Port 0 picks a free one.
  std::string admin_bind = "127.0.0.1";
  std::uint16_t admin_port = 7401;
  // Bearer token for the admin API and the protocol HELLO (tenant "*", every scope). With no
  // admin token and no `tokens`, nothing is authenticated (every client may do everything).
  std::string admin_token;
  // More tokens, each "NAME:SECRET:TENANT:SCOPES" (SCOPES: comma list of admin,publish,subscribe);
  // repeat the `token` key in the config file or the --token flag.
  std::vector<std::string> tokens;
  // RocksDB directory; ignored with memory = true.
  std::string data_dir = "./data";
  bool memory = false;
  // Start even though the data dir's write-ahead log is damaged: keep every event that reads back,
  // log per channel what was lost, and give every channel a new epoch. Without it (the default) a
  // damaged log stops the start (exit 1) with a message naming the file, and nothing is changed.
  bool recover = false;
  // Router shard threads; 0 = hardware threads - 1 (at least 1). More shards = more parallel
  // channels, but each shard is one more thread competing for cores.
  unsigned shards = 0;
  // Largest accepted event payload; larger ones get ERR payload_too_large.
  std::size_t max_payload_bytes = 1 << 20;
  // Events a subscriber connection may have queued in the broker before its slow-consumer policy
  // applies. Larger = more tolerance for bursts, more memory per slow client. The default, 524288,
  // is NATS's max_pending in 128-byte events (64 MB of payload), so a subscriber briefly slower than
  // a full-speed publisher is not cut off. Its real cost is about 150 MB of broker RSS per full
  // queue of 128-byte events — events x (payload + ~150 B), ZeroMQ's buffers included (measured,
  // docs/PERFORMANCE.md).
  std::size_t subscriber_queue = 1 << 19;
  // Batches (ZeroMQ messages) the socket buffers per client before the broker's own per-client
  // queue starts to fill; this adds to subscriber_queue. Smaller = slow consumers detected sooner.
  std::size_t socket_hwm = 1000;
  // Default policy for a subscriber that falls behind: "disconnect" or "drop_oldest".
  std::string slow_consumer = "disconnect";
  // Heartbeat interval the broker assumes when a client's HELLO says 0; a client silent for three
  // of its intervals is dropped and its subscriptions removed.
  std::uint32_t heartbeat_ms = 5000;
  // How often retention limits of durable channels are enforced (0 = never). Retention runs on
  // its own thread and never stalls publishes.
  std::uint32_t retention_interval_ms = 1000;
  // A channel with no subscribers, no configuration of its own and no traffic for this long is
  // dropped from memory (checked about once a second, so it goes 1-2x this after its last event).
  // Durable channels keep their logs and positions; a non-durable channel that comes back starts a
  // new history under a new epoch. 0 = never (memory grows with every channel ever used). Shorter
  // frees memory sooner; channels that come back cost a policy lookup (and a log reopen) again.
  std::uint32_t channel_idle_s = 300;
  // Webhook delivery (docs/WEBHOOKS.md; every default and its trade-off in
  // broker/webhook/dispatcher.h): attempts per delivery, the first retry's wait (doubled per retry,
  // full jitter), how long a delivery may keep retrying, and consecutive failures that open a sink's
  // circuit breaker (0 = no breaker) for webhook_breaker_open_ms.
  std::uint32_t webhook_max_attempts = 12;
  std::uint32_t webhook_initial_backoff_ms = 1000;
  std::uint32_t webhook_retry_budget_s = 3600;
  std::uint32_t webhook_breaker_failures = 5;
  std::uint32_t webhook_breaker_open_ms = 30'000;
  // trace, debug, info, warn, error, off.
  std::string log_level = "info";
  // "text" (spdlog's default pattern) or "json" (one object per line: time, level, logger, thread,
  // message; every field escaped). JSON suits log shippers; text suits people.
  std::string log_format = "text";

  // --- media layer (docs/MEDIA.md): POST /v1/media, GET /media/<id> on the admin port ---
  // Serve the media endpoints. Files are cached in <data_dir>/media (with `memory`: a temporary
  // directory removed at stop), their index in the store's media_index column family.
  bool media = true;
  // Largest origin response fetched; a larger one is refused (422 too_large) and nothing is kept.
  std::size_t media_max_bytes = 20u << 20;
  // Longest audio, fetched or spoken, in seconds; longer is refused (422 too_large, "too long").
  std::uint32_t media_max_seconds = 600;
  // Bytes of cached files kept; least recently used files are evicted beyond it (media.evicted).
  // 1 GiB holds about 37 hours of 8 kHz μ-law.
  std::uint64_t media_cache_bytes = 1ull << 30;
  // Query parameters left out of URL media ids (comma list, compared without case), so signed URLs
  // of one object share one cache entry. Empty keeps every parameter.
  std::string media_volatile_params =
      "X-Amz-Signature,X-Amz-Credential,X-Amz-Date,X-Amz-Expires,X-Amz-Security-Token,X-Amz-SignedHeaders,"
      "Signature,Expires,Key-Pair-Id,Policy,sig,token";
  // Whole origin fetch (connect included) in milliseconds; slower is 504 timeout. Each fetch holds
  // one of the media resolve threads meanwhile.
  std::uint32_t media_fetch_timeout_ms = 30'000;

  // --- event proxy (docs/STREAMING.md): GET /v1/stream Server-Sent Events on the admin port ---
  // Origins (comma list, exact "https://host[:port]", or "*") whose pages may read streams across
  // origins (Access-Control-Allow-Origin). Empty: none, only same-origin pages and non-browsers.
  std::string cors_origins;
  // A `: hb` comment on every stream this often (ms); keeps proxies from closing idle streams.
  std::uint32_t sse_heartbeat_ms = 15'000;
  // The `retry:` hint (ms): how long a browser waits before reconnecting a dropped stream.
  std::uint32_t sse_retry_ms = 3'000;
  // Lifetime of a stream ticket (POST /v1/stream/tickets), in seconds.
  std::uint32_t sse_ticket_ttl_s = 60;
  // Streams open at most (503 too_many_streams beyond).
  std::size_t sse_max_streams = 10'000;
  // Bytes one stream may have waiting for its client before it is closed as slow.
  std::size_t sse_queue_bytes = std::size_t{1} << 20;
};

}  // namespace switchboard::server
