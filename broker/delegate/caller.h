// The delegate stage's HTTP side (DESIGN.md "Sinks", docs/DELEGATES.md): calls a channel's delegate
// URIs for one event and reports what to do with it.
//
// Operation: call() POSTs the event to each URI of the config through the broker's HTTP client
//   POST <uri>
//   Content-Type: application/json
//   Switchboard-Event-Id: <event id>
//   Switchboard-Channel: <channel>
//   Switchboard-Signature: t=<unix>,v1=<hmac>     (only when the config has a secret)
//   <the event as it stands>
// and interprets each answer (answer.h). Sequential: one delegate after the other, each gets the
// previous output; a 204 stops at once; a failure applies on_failure (pass: the next delegate gets the
// event as it was before the failed one). Parallel: all requests at once with the same input; once
// every answer is in, any 204 drops the event, else any failure under drop / dead_letter does, else the
// pass answers are merged in list order (merge_objects; a failed delegate under `pass` contributes
// nothing; when none passed, the input goes on unchanged). Metadata is merged in the same order. No
// redirect is followed (a 3xx is a failure: a POST body is not re-sent elsewhere).
//
// Timing: each request may take config.timeout (connect included; the connect phase alone at most
// connect_timeout_cap). Sequential lists take up to N × timeout, parallel ones about one timeout.
//
// Concurrency: call() may be called from any thread at once, never blocks and runs no HTTP itself.
// `done` runs exactly once: on the HTTP client's engine thread once the last answer is in, or inline
// in call() (on the caller's thread) when no request could be submitted at all (the client is stopped
// or its queue is full: the failure policy then applies to every delegate). Whatever thread it runs
// on, it must not block and must not stop or destroy the client or the caller. The statistics are
// atomics, read by metrics() from any thread.
//
// Lifecycle: the caller borrows the client, which must be started and outlive it. Stop the client
// (it completes every transfer in flight with "cancelled", which runs the pending `done`s) before
// destroying the caller. An event whose transfers are cancelled gets the failure policy.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>

#include "broker/delegate/answer.h"
#include "broker/delegate/config.h"
#include "broker/http_client/http_client.h"

namespace switchboard::delegate {

// The connect phase of a delegate request gets min(config.timeout, this): a dead host fails after 2 s
// even with a long timeout, while one lost SYN (Linux resends it after 1 s) still connects.
inline constexpr std::chrono::milliseconds connect_timeout_cap{2000};

// What the stage does with the event.
struct outcome {
  enum class action : std::uint8_t { pass, drop, dead_letter } act = action::pass;
  // pass: the event to continue with (the input itself when every delegate failed under `pass`).
  // dead_letter: the event as the stage received it (replaying it re-runs the whole stage).
  // drop: empty.
  std::string payload;
  metadata meta;  // pass: the merged "_switchboard" switches of the answers that passed
  // Set when a delegate failed, even if the policy passed the event on: the first failure, one line,
  // e.g. `delegate "http://127.0.0.1:81/x" timed out after 200 ms`. Empty otherwise.
  std::string error;
  int failed_status = 0;  // HTTP status of that failure (e.g. 500), 0 when it had none (timeout, …)
};

struct request {
  std::string channel;
  std::string event_id;
  std::string payload;                // the event (JSON) as it enters the delegate stage
  std::shared_ptr<const config> cfg;  // must not be null
};

class caller {
 public:
  // Statistics since construction. Writers: call() (any thread) and completions (engine thread);
  // relaxed atomics, read by metrics().
  struct stats {
    std::atomic<std::uint64_t> events{0};    // call()s
    std::atomic<std::uint64_t> calls{0};     // delegate requests attempted (one per URI per event)
    std::atomic<std::uint64_t> failures{0};  // requests that failed, any reason (sum of the next)
    std::atomic<std::uint64_t> timeouts{0};
    std::atomic<std::uint64_t> connect_failures{0};
    std::atomic<std::uint64_t> bad_status{0};           // a status other than 200, 201, 204
    std::atomic<std::uint64_t> bad_answers{0};          // not a JSON object, too large, invalid metadata
    std::atomic<std::uint64_t> other_failures{0};       // overloaded, cancelled, TLS, …
    std::atomic<std::uint64_t> dropped_by_delegate{0};  // 204 answers
    std::atomic<std::uint64_t> passed{0};               // outcomes by action
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> dead_lettered{0};
    // Latency of every request that reached the engine, failed or not.
    static constexpr std::array<double, 11> bucket_bounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                             0.5,   1.0,  2.5,   5.0,  10.0};
    // Non-cumulative counts per bucket; the last one is (10 s, +Inf).
    std::array<std::atomic<std::uint64_t>, bucket_bounds.size() + 1> buckets{};
    std::atomic<std::uint64_t> latency_count{0};
    std::atomic<std::uint64_t> latency_sum_us{0};
  };

  explicit caller(http_client::client& http) : _http(http) {}
  caller(const caller&) = delete;
  caller& operator=(const caller&) = delete;

  // Starts the delegate calls for one event; `done` gets the outcome (see the class comment for the
  // thread it runs on). Never blocks. Precondition: r.cfg is not null. A config without URIs passes
  // the event on at once (`done` runs inline).
  void call(request r, std::move_only_function<void(outcome)> done);

  [[nodiscard]] const stats& statistics() const noexcept { return _stats; }

  // Prometheus text with HELP and TYPE lines: switchboard_delegate_events_total{outcome},
  // switchboard_delegate_calls_total, switchboard_delegate_failures_total{reason} (reason: timeout,
  // connect, status, answer, other), switchboard_delegate_drops_total (204 answers) and the histogram
  // switchboard_delegate_seconds.
  [[nodiscard]] std::string metrics() const;

 private:
  struct call_state;  // one event's calls in progress (caller.cc)
  struct result;      // one delegate's answer, judged (caller.cc)

  [[nodiscard]] http_client::request make_request(const call_state& s, const std::string& uri,
                                                  std::string body) const;
  [[nodiscard]] result judge(std::expected<http_client::response, http_client::error> r, const call_state& s,
                             const std::string& uri, std::chrono::steady_clock::time_point started);
  void run_sequential(std::shared_ptr<call_state> s);
  [[nodiscard]] bool take_sequential(call_state& s, result r);
  void start_parallel(const std::shared_ptr<call_state>& s);
  void finish_parallel(call_state& s);
  void finish(call_state& s, outcome o);
  void record_latency(std::chrono::steady_clock::duration elapsed) noexcept;

  http_client::client& _http;
  stats _stats;
};

}  // namespace switchboard::delegate
