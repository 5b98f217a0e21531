// The event proxy over HTTP (docs/STREAMING.md): `GET /v1/stream?pattern=…` streams the events
// matching a pattern as Server-Sent Events, one CloudEvents 1.0 JSON document per event
// (client/cloudevent), for browsers' EventSource and `curl -N`; `POST /v1/stream/tickets` issues
// the short-lived signed tickets a browser opens a stream with (stream_ticket.h).
//
// Operation: the proxy holds ONE internal client (libswitchboard_client) connected to the broker's
// own ZeroMQ endpoint with the admin token, created by the first stream. Each SSE stream is one
// subscription on it; the subscription's callback (on the client's I/O thread) formats the event
// once (a one-entry cache: N streams receiving one event format it once) and pushes the chunk to
// that stream's bounded admin::response_stream. A push that finds the stream's queue full closes
// that stream (counted, logged with pattern and peer): a slow browser never slows another stream
// nor the broker, and it resumes with Last-Event-ID. No thread per stream: 1 000 streams are 1 000
// subscriptions on one connection plus one heartbeat thread for all.
// Resume (Last-Event-ID = `<channel>@<epoch>:<seq>`): the stream subscribes live first, holding
// what arrives, replays the channel's durable history after seq (control::history), then releases
// what it held, skipping what the replay already sent, then and later (an event can be readable
// in the log before the shard delivers it live): no gap, no duplicate. An epoch that is not
// the channel's current one is told (a `switchboard.epoch_changed` notice), never matched by seq;
// a channel that keeps no history is told too (`switchboard.resume_unavailable`); both go on live.
// Rights: the proxy's own subscriptions are the admin token's, so it checks the requester itself,
// as the protocol's SUB does: subscribe scope, tenant rule, and the channel's `permissions` when
// the pattern is a plain channel name.
//
// Concurrency: the stream route and tickets module run on admin workers, concurrently; callbacks
// on the client's I/O thread; heartbeats on the proxy's own thread; stream ends on the HTTP io
// thread. Each stream's state is guarded by its own mutex, the stream set by `_streams_mutex`.
// Lifecycle: create() starts the heartbeat thread; stop() (after the admin server stopped, before
// the transport does) ends every stream and closes the client; idempotent, also the destructor.
// Limitations: exact resume covers the channel of the last event received; a pattern stream's other
// channels resume live. If the internal client loses its session or the broker drops its
// subscriptions as slow, every stream is closed so that browsers reconnect and resume (never a
// silent gap). Needs the admin token when authentication is on (503 proxy_unavailable otherwise).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "broker/admin/control.h"
#include "broker/admin/route_module.h"
#include "broker/admin/stream_route.h"

namespace switchboard::event_proxy {

struct proxy_options {
  // The broker's client endpoint (transport::endpoint(), "tcp://0.0.0.0:…" is rewritten to
  // 127.0.0.1) and the token the internal client says HELLO with (the admin token; empty when
  // authentication is off).
  std::string endpoint;
  std::string token;
  // Origins answered with Access-Control-Allow-Origin (exact match of the Origin header, e.g.
  // "https://app.example.com"); "*" allows any origin. Empty (the default): no CORS headers, so
  // only same-origin pages and non-browser clients can read streams.
  std::vector<std::string> cors_origins;
  // A `: hb` comment line on every idle-or-not stream this often, so proxies and browsers keep
  // the connection and a dead peer is noticed. Shorter = more bytes, faster detection.
  std::chrono::milliseconds heartbeat{15'000};
  // The `retry:` hint sent first: how long a browser waits before reconnecting.
  std::chrono::milliseconds retry{3'000};
  // Lifetime of a stream ticket. Short limits what a leaked URL is worth; it only has to cover the
  // time from issuing to the page opening the stream.
  std::chrono::seconds ticket_ttl{60};
  // Open streams at most; beyond, 503 too_many_streams.
  std::size_t max_streams = 10'000;
  // Bytes one stream may have waiting for its socket (and, while resuming, held live events);
  // beyond, the stream is closed as slow. Larger tolerates longer stalls, costs memory per stream.
  std::size_t stream_queue_bytes = std::size_t{1} << 20;
  // History events read per control::history call while resuming.
  std::size_t replay_page = 1000;
};

class event_proxy {
 public:
  // `ctl` is borrowed and must outlive the proxy. Does not connect yet (the first stream does).
  [[nodiscard]] static std::unique_ptr<event_proxy> create(proxy_options opts, admin::control& ctl);

  event_proxy(const event_proxy&) = delete;
  event_proxy& operator=(const event_proxy&) = delete;
  ~event_proxy();

  // GET /v1/stream (browser_auth: bearer header, ?token=, or ?ticket=), for admin_server::start.
  [[nodiscard]] admin::stream_route stream_route();
  // POST /v1/stream/tickets (bearer-authenticated), with the proxy's /metrics lines.
  [[nodiscard]] admin::route_module tickets_module();
  // Prometheus text: switchboard_sse_streams, _events_total, _closed_slow_total, _resumes_total.
  [[nodiscard]] std::string metrics() const;
  // Ends every stream, stops the heartbeat thread, closes the internal client. Idempotent.
  void stop();

  struct impl;

 private:
  explicit event_proxy(std::unique_ptr<impl> p);
  std::unique_ptr<impl> _impl;
};

}  // namespace switchboard::event_proxy
