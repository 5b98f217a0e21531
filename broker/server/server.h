// The broker as one object: router shards + ZeroMQ transport (+ store and admin API as they land).
// `switchboard` (broker/main.cc) is a thin wrapper that parses options and runs one `server`;
// tests and benches start the same object in process.
//
// Lifecycle: start() binds and spawns every thread and returns when the broker accepts clients;
// stop() refuses new work, drains what is in flight, joins; idempotent. The destructor calls stop().
// Thread-safety: all member functions may be called from any thread.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "broker/server/options.h"

namespace switchboard::server {

struct start_error {
  std::string message;
  bool invalid_option = false;  // an option value is wrong (exit code 2) rather than the environment
};

// Counters summed over all shards and the transport; each is monotonic except the gauges noted.
struct stats {
  std::uint64_t published = 0;         // events accepted from publishers
  std::uint64_t delivered = 0;         // EVENT records handed to the network
  std::uint64_t slow_consumer_drops = 0;  // events dropped by drop_oldest
  std::uint64_t slow_consumer_disconnects = 0;
  std::uint64_t bad_frames = 0;        // messages rejected by the codec
  std::uint64_t reaped = 0;            // clients dropped for missing heartbeats
  std::uint64_t connections = 0;       // gauge: clients that said HELLO and are still known
  std::uint64_t subscriptions = 0;     // gauge: live subscriptions (counted once, not per shard)
};

// The checks start() makes on option values alone, without binding or opening anything:
// slow-consumer, shards and the tokens (`switchboard --check-config`). Errors are invalid_option.
[[nodiscard]] std::expected<void, start_error> check_options(const options& opts);

struct reload_result {
  std::size_t tokens = 0;             // tokens in force now
  std::vector<std::string> removed;   // names removed or changed; their sessions are being closed
};

class server {
 public:
  // Binds options.bind (a `*` port picks a free one) and starts all threads.
  [[nodiscard]] static std::expected<std::unique_ptr<server>, start_error> start(const options& opts);

  server(const server&) = delete;
  server& operator=(const server&) = delete;
  ~server();

  // The endpoint clients connect to, with the real port (e.g. "tcp://127.0.0.1:40213").
  [[nodiscard]] std::string endpoint() const;
  // The admin API base URL ("http://127.0.0.1:7401"), or empty when the admin API is off.
  [[nodiscard]] std::string admin_url() const;
  [[nodiscard]] stats snapshot() const;
  // Replaces the tokens of the admin API and the protocol (SIGHUP), checked like at start-up; on an
  // error nothing changes. Sessions whose token was removed or changed get ERR unauthorized and
  // are closed; other sessions and every subscription stay.
  [[nodiscard]] std::expected<reload_result, start_error> reload_tokens(std::string_view admin_token,
                                                                        const std::vector<std::string>& tokens);
  void stop();

  struct impl;

 private:
  explicit server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> _impl;
};

}  // namespace switchboard::server
