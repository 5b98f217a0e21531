// Options of the admin HTTP API (admin_server). Every field documents its default and trade-off.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace switchboard::admin {

struct admin_options {
  // Address to listen on. 127.0.0.1 keeps the API off the network; "0.0.0.0" (or "::") exposes it,
  // which then relies entirely on the bearer tokens (no TLS here: put a proxy in front).
  std::string bind = "127.0.0.1";
  // TCP port; 0 picks a free one (tests), see admin_server::port(). The port is exclusive (no
  // SO_REUSEPORT): a port another process listens on makes start() fail.
  std::uint16_t port = 7401;
  // Largest request body accepted; larger ones get 413 payload_too_large (before authentication,
  // from the Content-Length alone when there is one). The broker sets it to max_payload_bytes +
  // 64 KiB so that any publishable payload fits; larger = more memory per request in progress.
  std::size_t max_body_bytes = (std::size_t{1} << 20) + 64 * 1024;
  // Largest request line + header fields; larger gets 431 header_too_large and the connection closes.
  std::size_t max_header_bytes = 16 * 1024;
  // Most connections open at once (requests in progress, idle keep-alive, streams). Beyond it a new
  // connection gets a best-effort 503 too_many_connections and is closed at once. Each open
  // connection costs one file descriptor and a few KiB (see docs/PERFORMANCE.md); keep it well
  // below the process's RLIMIT_NOFILE, which the broker's client sockets and store also use.
  std::size_t max_connections = 10'000;
  // A request's header must be complete this long after its first byte (for a connection's first
  // request: after the connection was accepted), else the connection is closed. Bounds what a
  // client that trickles its header ("slowloris") can hold; shorter = stricter on slow links.
  std::chrono::milliseconds header_timeout{10'000};
  // A request's body must be complete this long after its header. 30 s moves the largest body
  // (max_body_bytes) at about 35 KB/s.
  std::chrono::milliseconds body_timeout{30'000};
  // A keep-alive connection with no new request for this long is closed. Idle connections cost a
  // socket, not a thread; shorter frees descriptors sooner, longer saves clients reconnects.
  std::chrono::milliseconds idle_timeout{60'000};
  // A response write, or one write of a streamed response's chunks, must complete within this; a
  // client that stops reading is disconnected (and its stream ends).
  std::chrono::milliseconds write_timeout{30'000};
};

}  // namespace switchboard::admin
