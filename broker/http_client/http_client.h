// The broker's outbound HTTP client: the one adapter over libcurl (nothing else includes curl).
// Webhooks, telephony and media reach origins through it.
//
// One `client` owns a libcurl multi handle and one engine thread that drives every transfer. Callers
// either submit() a request with a completion callback (asynchronous) or call fetch() (blocks the
// calling thread until the transfer ends; meant for worker threads, never for the router). Connections
// are kept alive and reused across requests to the same origin (the multi handle's connection cache).
//
// An HTTP error status (404, 500, …) is a successful transfer: the caller gets the response and
// decides. `error` is for transfers that did not complete: connect failure, timeout, response too
// large, too many redirects, TLS failure, cancellation.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::http_client {

enum class errc : std::uint8_t {
  invalid_request,     // not an http:// or https:// URL, unknown method, or libcurl refused an option
  connect_failed,      // DNS resolution or TCP connect failed, or the connection was refused
  timeout,             // connect_timeout or total_timeout elapsed
  too_large,           // the response body exceeded max_response_bytes (the transfer was aborted)
  too_many_redirects,  // more than max_redirects redirects were followed
  tls,                 // TLS handshake or certificate verification failed
  cancelled,           // cancel(), stop(), or a submit() after stop()
  overloaded,          // the queue of waiting requests is full (options::max_queued); nothing was queued
  other,               // any other transfer failure (connection reset mid-body, malformed response, …)
};

struct error {
  errc code = errc::other;
  std::string message;  // one readable line, e.g. "timeout: Operation timed out after 200 milliseconds …"
};

// A stable name for `code` ("timeout", "too_large", …) for logs, metrics and tests.
[[nodiscard]] std::string_view errc_name(errc code) noexcept;

// Header fields in arrival order. Names compare case-insensitively (RFC 9110).
class header_list {
 public:
  void add(std::string name, std::string value) { _fields.emplace_back(std::move(name), std::move(value)); }
  void clear() noexcept { _fields.clear(); }
  // The value of the first field named `name` (any case), or empty when there is none. The view borrows
  // from this list and is valid until it is modified or destroyed.
  [[nodiscard]] std::optional<std::string_view> find(std::string_view name) const noexcept;
  [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& fields() const noexcept { return _fields; }

 private:
  std::vector<std::pair<std::string, std::string>> _fields;
};

struct request {
  std::string method = "GET";  // GET, HEAD, POST, PUT, DELETE or PATCH
  std::string url;             // http:// or https:// only (also for redirects)
  header_list headers;         // sent as given; curl adds Host, Accept and, with a body, Content-Length
  std::string body;            // sent when non-empty (POST/PUT/PATCH)
  // Time allowed for DNS + TCP (+ TLS) connect. A short value fails fast on a dead origin.
  std::chrono::milliseconds connect_timeout{5000};
  // Time allowed for the whole transfer including redirects and the body.
  std::chrono::milliseconds total_timeout{30000};
  // Redirects (3xx with Location) followed before failing with errc::too_many_redirects. 0 returns the
  // 3xx response itself without following it.
  int max_redirects = 5;
  // Largest response body accepted. Larger: the transfer is aborted (when Content-Length announces it,
  // before the body is read) and fails with errc::too_large. 0 means no limit.
  std::size_t max_response_bytes = 20u << 20;
};

struct response {
  int status = 0;            // of the final response (after redirects)
  header_list headers;       // of the final response only
  std::string body;          // decoded as received (no Content-Encoding negotiation is requested)
  std::string effective_url; // after redirects
  bool reused_connection = false;  // true when no new connection was opened for this transfer
};

// Called exactly once per accepted submit(), on the engine thread. Must not block and must not call
// fetch() (that would wait for the engine thread it runs on); submit() and cancel() are fine.
using completion = std::move_only_function<void(std::expected<response, error>)>;

using transfer_id = std::uint64_t;

// Every default with its trade-off.
struct options {
  // Transfers running at once. More overlap slow origins better but cost sockets and memory
  // (each holds up to its max_response_bytes).
  std::size_t max_in_flight = 32;
  // Requests waiting for an in-flight slot. Beyond that submit() fails with errc::overloaded
  // instead of growing a queue without bound.
  std::size_t max_queued = 1024;
  // Idle connections kept for reuse (libcurl's connection cache of the multi handle).
  std::size_t max_idle_connections = 16;
  // Verify the TLS peer certificate and host name. Only tests against self-signed origins turn it off.
  bool verify_tls = true;
  // Sent as User-Agent unless the request sets its own.
  std::string user_agent = "switchboard";
};

// Operation: see the file comment. A request is queued, started when one of max_in_flight slots is
// free, and completed exactly once (response or error).
//
// Concurrency: submit(), fetch() and cancel() may be called from any thread concurrently. Only the
// engine thread touches libcurl handles; callers hand requests over through a mutex-protected queue and
// wake it with curl_multi_wakeup().
//
// Lifecycle: create() → start() → … → stop() (idempotent; also run by the destructor). Requests
// submitted before start() wait for it. stop() refuses new requests, completes every queued and
// in-flight transfer with errc::cancelled (on the engine thread, or in stop() itself when the client
// was never started), and joins the engine thread; it does not wait for the network. Never call stop()
// or destroy the client from a completion.
class client {
 public:
  // Fails with errc::other when libcurl cannot be initialised.
  [[nodiscard]] static std::expected<std::unique_ptr<client>, error> create(const options& opts = {});

  virtual ~client() = default;
  client() = default;
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  virtual void start() = 0;
  virtual void stop() = 0;

  // Queues `req`. On success returns an id for cancel(), and `done` will run exactly once on the engine
  // thread. On failure (errc::overloaded, errc::cancelled after stop(), errc::invalid_request) nothing is
  // queued and `done` never runs. Never blocks on the network.
  [[nodiscard]] virtual std::expected<transfer_id, error> submit(request req, completion done) = 0;

  // Blocks until the transfer ends and returns its response or error. Needs start(); call from a worker
  // thread, never from a completion.
  [[nodiscard]] virtual std::expected<response, error> fetch(request req) = 0;

  // Aborts the transfer `id`: its completion runs with errc::cancelled unless it has already completed
  // (then nothing happens). Returns at once; the completion runs on the engine thread.
  virtual void cancel(transfer_id id) = 0;
};

}  // namespace switchboard::http_client
