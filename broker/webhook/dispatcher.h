// The asynchronous webhook sink (DESIGN.md "Sinks", docs/WEBHOOKS.md): POSTs each event to the
// channel's webhook sinks, signed, with bounded concurrency per sink, retries with exponential
// backoff and jitter (honouring Retry-After on 429/503), a circuit breaker per sink, and dead
// letters (store::kind::dead_letters, keys "webhook/<id>") that the admin API lists and redrives.
//
// Operation: router shards post() deliveries through their own producer (a lock-free SPSC queue,
// so a slow or dead receiver never slows the publisher). One dispatcher thread takes them, keeps a
// ready queue, an in-flight count and a breaker per sink (identity: channel + sink name) and a
// min-heap of retry times, and submits requests to the shared http_client (libcurl multi on its own
// engine thread, connections kept alive). Completions come back from the engine thread through a
// small mutex-protected inbox and an eventfd; the dispatcher never blocks on the network. A
// delivery ends delivered (2xx), or in a dead letter with its last status and error: at once for a
// permanent answer (see retry.h), after max_attempts or the retry budget for retryable ones, when
// its sink's queue is full, or at stop() ("broker stopping").
//
// Concurrency: producer::post()/flush() on the producer's own thread, lock-free. redrive(),
// delete_dead_letter(), list_dead_letters(), sinks() and metrics() from any thread (they take short
// mutexes; the dead-letter calls read or write the store synchronously, so call them from a worker,
// never from a router shard). Dead letters are written by the dispatcher thread (synchronous, synced
// store writes: a burst of failures slows the dispatcher, never the publisher).
//
// Lifecycle: construct → add_producer() per shard → start() → … → stop() (idempotent; also run by
// the destructor). stop() refuses new posts (post() returns false), cancels in-flight requests and
// waits up to stop_grace for their completions, then writes every delivery not yet delivered
// (in flight, queued, waiting for a retry, in a producer's overflow) to the dead letters with
// last_error "broker stopping", so nothing is lost across a restart. The http_client must outlive
// the dispatcher's stop(); stop the dispatcher before the client.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broker/common/spsc_queue.h"
#include "broker/http_client/http_client.h"
#include "broker/store/store.h"
#include "broker/webhook/sink.h"

namespace switchboard::webhook {

// Every default with its trade-off. Tests use small values.
struct dispatcher_options {
  // Attempts per delivery, the first included. With the backoff defaults, 12 attempts span about
  // 17 minutes before jitter (1 s, 2 s, … 512 s); full jitter halves that on average.
  std::uint32_t max_attempts = 12;
  // Wait before the first retry; doubled for each further retry, up to max_backoff.
  std::chrono::milliseconds initial_backoff{1000};
  // Longest wait between two attempts; also caps a Retry-After a receiver asks for.
  std::chrono::milliseconds max_backoff{600'000};
  // Fraction of each backoff that is randomised: 1.0 = full jitter (uniform in [0, backoff]),
  // which spreads a burst of failed deliveries best; 0 = deterministic. Retry-After waits are never
  // shortened by jitter.
  double jitter = 1.0;
  // Retry budget: how long after it was posted (or redriven) a delivery may still be retried. A
  // retry that would start later, or a delivery still waiting behind an open breaker at that time,
  // goes to the dead letters. Longer rides out longer outages but holds more memory per sink.
  std::chrono::milliseconds retry_budget{3'600'000};
  // Consecutive failed attempts (retryable ones: 408, 429, 5xx, timeouts, connect failures) that
  // open a sink's breaker. While open, its deliveries wait (they are not dropped); after
  // breaker_open_time one probe request goes out (half-open): success closes the breaker,
  // failure opens it for another breaker_open_time. 0 disables the breaker.
  std::uint32_t breaker_failures = 5;
  std::chrono::milliseconds breaker_open_time{30'000};
  // Deliveries a sink may hold (waiting, retrying and in flight). Beyond it a new delivery goes to
  // the dead letters at once ("sink queue full"), so a dead sink under load costs bounded memory
  // (10 000 × event size) and nothing is lost.
  std::size_t max_queued_per_sink = 10'000;
  // Capacity of each producer's SPSC queue. A full queue spills into the producer's own overflow
  // list (unbounded; retried by the next post()/flush()), so post() never blocks.
  std::size_t producer_queue_capacity = 8192;
  // Connect timeout of each request, capped by the sink's timeout (which bounds the whole request).
  std::chrono::milliseconds connect_timeout{3000};
  // Largest response body read from a receiver (the body is ignored); larger fails the attempt.
  std::size_t max_response_bytes = 64u << 10;
  // How long stop() waits for the completions of cancelled in-flight requests.
  std::chrono::milliseconds stop_grace{2000};
  // The current config of sink `name` on `channel`, for redriving a dead letter whose sink has not
  // been seen since start (after a restart). Null, or an empty answer: redrive answers conflict.
  // Called on the redriving thread.
  std::function<std::shared_ptr<const sink>(std::string_view channel, std::string_view name)> find_sink;
  // Seed of the jitter's random engine; 0 = from std::random_device.
  std::uint64_t random_seed = 0;
};

enum class errc : std::uint8_t {
  not_found,     // no dead letter with that id
  conflict,      // the dead letter is being redriven, or its sink is not configured any more
  unavailable,   // no store, or the dispatcher is stopping
  store_failed,  // the store reported an error, or a stored record does not parse
};

struct error {
  errc code = errc::store_failed;
  std::string message;
};

// "not_found", "conflict", "unavailable", "store_failed".
[[nodiscard]] std::string_view errc_name(errc code) noexcept;

enum class breaker_state : std::uint8_t { closed, open, half_open };
[[nodiscard]] std::string_view breaker_name(breaker_state s) noexcept;

// One sink as /v1/webhooks/sinks shows it.
struct sink_status {
  std::string channel;
  std::string name;
  std::string url;
  breaker_state breaker = breaker_state::closed;
  std::uint64_t deliveries = 0;    // delivered (2xx)
  std::uint64_t retries = 0;       // retries scheduled
  std::uint64_t failures = 0;      // failed attempts (any reason)
  std::uint64_t dead_letters = 0;  // deliveries given up
  std::uint64_t in_flight = 0;
  std::uint64_t queued = 0;  // waiting or retrying (not in flight)
  int last_status = 0;       // of the last failed attempt (0: none, or no HTTP answer)
  std::string last_error;    // of the last failed attempt
};

namespace detail {
struct job;
struct sink_state;
struct inbox;
}  // namespace detail

class dispatcher {
 public:
  // Used by exactly one thread (a router shard). Lock-free.
  class producer {
   public:
    producer(const producer&) = delete;
    producer& operator=(const producer&) = delete;

    // Hands `d` to the dispatcher. Never blocks and never takes a mutex: a full queue keeps `d` in
    // this producer's overflow, which the next post()/flush() retries. Returns false (and drops
    // nothing that was accepted before) only after stop(); `d` is then not delivered.
    [[nodiscard]] bool post(delivery d);
    // Moves what the overflow holds into the queue, as far as it fits. Call when the thread goes
    // idle, so deliveries do not wait in the overflow for the next post().
    void flush();
    // Deliveries in the overflow (this producer's thread only).
    [[nodiscard]] std::size_t overflow() const noexcept { return _overflow.size(); }

   private:
    friend class dispatcher;
    producer(dispatcher& owner, std::size_t capacity) : _owner(owner), _queue(capacity) {}
    bool drain_overflow();

    dispatcher& _owner;
    common::spsc_queue<delivery> _queue;
    std::deque<delivery> _overflow;  // producer thread; the dispatcher's after stop() saw _busy false
    std::atomic<bool> _busy{false};  // inside post()/flush(): the stop handshake
  };

  // `http` and `dead_letters` must outlive the dispatcher. dead_letters null: dead letters are only
  // counted and logged, and the dead-letter calls answer unavailable.
  dispatcher(http_client::client& http, store::store* dead_letters, dispatcher_options opts = {});
  ~dispatcher();
  dispatcher(const dispatcher&) = delete;
  dispatcher& operator=(const dispatcher&) = delete;

  // Before start(). The reference stays valid for the dispatcher's life.
  [[nodiscard]] producer& add_producer();
  void start();
  void stop();

  // Queues the dead letter `id` (its key without "webhook/") for delivery to its sink's current
  // config (retry counting starts afresh). The record stays in the store until the delivery ends:
  // delivered → deleted; failed again → rewritten under the same id with the new attempts and last
  // status, so a crash or stop at any point loses nothing. Errors: not_found, conflict (being
  // redriven already, or its sink is not configured), unavailable, store_failed. Reads the store.
  [[nodiscard]] std::expected<void, error> redrive(std::string_view id);
  // Deletes the dead letter `id`. not_found, conflict (being redriven), unavailable, store_failed.
  [[nodiscard]] std::expected<void, error> delete_dead_letter(std::string_view id);
  // The webhook dead letters as a JSON array of records (key order, i.e. oldest first), only those
  // of `channel` when it is not empty. unavailable, store_failed.
  [[nodiscard]] std::expected<std::string, error> list_dead_letters(std::string_view channel = {}) const;

  // Every sink seen since start, by channel then name.
  [[nodiscard]] std::vector<sink_status> sinks() const;
  // Prometheus text: switchboard_webhook_{deliveries,retries,failures,dead_letters}_total and the
  // gauges switchboard_webhook_{breaker_open,in_flight,queued}, labelled sink="<channel>/<name>".
  [[nodiscard]] std::string metrics() const;

 private:
  using clock = std::chrono::steady_clock;
  using job_ptr = std::unique_ptr<detail::job>;
  struct timer {
    clock::time_point due;
    std::uint64_t order = 0;  // FIFO among equal due times
    job_ptr j;
  };

  void run();
  void wake();
  void drain_producers(bool final);
  void drain_inbox();
  void enqueue(job_ptr j);
  void fire_timers(clock::time_point now);
  void dispatch(clock::time_point now);
  bool dispatch_sink(detail::sink_state& s, clock::time_point now);
  bool submit(job_ptr& j);
  void complete(std::uint64_t token, int status, std::string retry_after, std::string error_text,
                bool cancelled, bool permanent_error);
  void retry_or_give_up(job_ptr j, detail::sink_state& s,
                        std::optional<std::chrono::milliseconds> retry_after, clock::time_point now);
  void give_up(job_ptr j, std::string_view reason);
  void shutdown();
  [[nodiscard]] detail::sink_state& state_of(const delivery& d);
  [[nodiscard]] clock::time_point next_wake(clock::time_point now) const;
  void set_breaker(detail::sink_state& s, breaker_state b);

  http_client::client& _http;
  store::store* const _store;
  const dispatcher_options _opts;

  std::vector<std::unique_ptr<producer>> _producers;  // fixed after start()
  std::shared_ptr<detail::inbox> _inbox;  // completions and redrives; shared with in-flight completions
  std::atomic<bool> _stopping{false};     // post() refuses, redrive() refuses
  std::atomic<bool> _final{false};        // every producer has left post(): the last drain may run
  std::atomic<bool> _started{false};
  std::mutex _lifecycle;  // serialises start() and stop()
  std::thread _thread;

  // Dispatcher thread only.
  std::unordered_map<std::uint64_t, job_ptr> _in_flight;  // by completion token
  std::uint64_t _next_token = 1;
  std::vector<timer> _timers;  // min-heap by (due, order)
  std::uint64_t _timer_order = 0;
  std::vector<detail::sink_state*> _active;  // sinks with ready deliveries
  bool _http_backoff = false;                // the client refused a submit: retry shortly
  std::mt19937_64 _random;
  std::uint64_t _dead_letter_salt = 0;

  // Sinks: inserted by the dispatcher thread only, under _sinks_mutex; the dispatcher reads the map
  // without it, others read under it. Each state's counters are atomics (single writer).
  mutable std::mutex _sinks_mutex;
  std::map<std::string, std::unique_ptr<detail::sink_state>, std::less<>> _sinks;

  std::atomic<std::uint64_t> _dead_letter_write_errors{0};  // dispatcher thread
};

}  // namespace switchboard::webhook
