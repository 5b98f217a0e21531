#include "broker/webhook/dispatcher.h"

#include <fmt/format.h>
#include <poll.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <utility>

#include "broker/common/counter.h"
#include "broker/http_client/signature.h"
#include "broker/webhook/dead_letter.h"
#include "broker/webhook/retry.h"

namespace switchboard::webhook {
namespace detail {

using clock = std::chrono::steady_clock;

struct job {
  delivery d;
  std::uint32_t attempts = 0;  // attempts made so far
  clock::time_point deadline;  // end of the retry budget
  int last_status = 0;
  std::string last_error;
  std::string redrive_id;  // non-empty: redriven from this dead letter
  http_client::transfer_id transfer = 0;
  bool probe = false;  // the half-open breaker's probe
  sink_state* state = nullptr;
};

struct sink_state {
  std::string channel;
  std::string name;
  std::shared_ptr<const sink> target;  // latest config seen; written by the dispatcher under _sinks_mutex

  // Dispatcher thread only.
  std::deque<std::unique_ptr<job>> ready;
  std::size_t in_flight_now = 0;
  std::size_t held = 0;  // ready + retrying + in flight: what max_queued_per_sink bounds
  breaker_state breaker = breaker_state::closed;
  std::uint32_t consecutive_failures = 0;
  clock::time_point open_until;
  bool probe_in_flight = false;
  bool active = false;  // in dispatcher::_active

  // Written by the dispatcher thread, read by any.
  std::atomic<std::uint64_t> deliveries{0}, retries{0}, failures{0}, dead_letters{0}, in_flight{0}, queued{0};
  std::atomic<std::uint8_t> breaker_now{0};
  int last_status = 0;     // guarded by the dispatcher's _sinks_mutex (written under it)
  std::string last_error;  // guarded by the dispatcher's _sinks_mutex
};

// What the engine thread and the admin threads hand to the dispatcher thread. Shared with every
// in-flight completion, so a completion that arrives after the dispatcher is gone finds it closed.
struct inbox {
  struct completed {
    std::uint64_t token = 0;
    int status = 0;
    std::string retry_after;
    std::string error_text;
    bool cancelled = false;
    bool permanent_error = false;  // the request itself was refused (bad URL)
  };

  inbox() : fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd < 0) throw std::runtime_error(std::string("webhook: eventfd: ") + std::strerror(errno));
  }
  ~inbox() { ::close(fd); }
  inbox(const inbox&) = delete;
  inbox& operator=(const inbox&) = delete;

  void signal() const {
    if (sleeping.load(std::memory_order_seq_cst)) {
      const std::uint64_t one = 1;
      [[maybe_unused]] const auto n = ::write(fd, &one, sizeof one);
    }
  }
  void push(completed c) {
    {
      std::lock_guard lock(mutex);
      if (closed) return;
      completions.push_back(std::move(c));
    }
    signal();
  }

  const int fd;
  std::atomic<bool> sleeping{false};  // the dispatcher is (about to be) in poll(): writers signal fd
  std::mutex mutex;                   // protects everything below
  bool closed = false;
  std::vector<completed> completions;
  std::vector<std::unique_ptr<job>> redrives;
  std::set<std::string, std::less<>> redriving;  // dead-letter ids queued or in progress
};

}  // namespace detail

namespace {

using detail::job;
using detail::sink_state;
using clock = std::chrono::steady_clock;

std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

error store_error(const store::error& e) {
  return {errc::store_failed, fmt::format("store: {}: {}", store::errc_name(e.code), e.message)};
}

std::string dead_letter_key(std::string_view id) { return fmt::format("{}{}", dead_letter_prefix, id); }

}  // namespace

std::string_view errc_name(errc code) noexcept {
  switch (code) {
    case errc::not_found: return "not_found";
    case errc::conflict: return "conflict";
    case errc::unavailable: return "unavailable";
    case errc::store_failed: return "store_failed";
  }
  return "store_failed";
}

std::string_view breaker_name(breaker_state s) noexcept {
  switch (s) {
    case breaker_state::closed: return "closed";
    case breaker_state::open: return "open";
    case breaker_state::half_open: return "half_open";
  }
  return "closed";
}

// ---------------------------------------------------------------------------------------- producer

bool dispatcher::producer::drain_overflow() {
  while (!_overflow.empty()) {
    if (!_queue.try_push(_overflow.front())) return false;
    _overflow.pop_front();
  }
  return true;
}

bool dispatcher::producer::post(delivery d) {
  _busy.store(true, std::memory_order_seq_cst);
  if (_owner._stopping.load(std::memory_order_seq_cst)) {
    _busy.store(false, std::memory_order_release);
    return false;
  }
  if (!drain_overflow() || !_queue.try_push(d)) _overflow.push_back(std::move(d));
  _owner._inbox->signal();  // inside the _busy window: stop() cannot free the inbox meanwhile
  _busy.store(false, std::memory_order_release);
  return true;
}

void dispatcher::producer::flush() {
  _busy.store(true, std::memory_order_seq_cst);
  if (!_owner._stopping.load(std::memory_order_seq_cst)) {
    drain_overflow();
    _owner._inbox->signal();
  }
  _busy.store(false, std::memory_order_release);
}

// -------------------------------------------------------------------------------------- dispatcher

dispatcher::dispatcher(http_client::client& http, store::store* dead_letters, dispatcher_options opts)
    : _http(http), _store(dead_letters), _opts(std::move(opts)), _inbox(std::make_shared<detail::inbox>()) {
  _random.seed(_opts.random_seed != 0 ? _opts.random_seed : std::random_device{}());
  _dead_letter_salt = _random() & 0xffff0000u;
}

dispatcher::~dispatcher() { stop(); }

dispatcher::producer& dispatcher::add_producer() {
  _producers.push_back(std::unique_ptr<producer>(new producer(*this, _opts.producer_queue_capacity)));
  return *_producers.back();
}

void dispatcher::start() {
  std::lock_guard lock(_lifecycle);
  if (_started.load() || _stopping.load()) return;
  _started.store(true);
  _thread = std::thread([this] { run(); });
}

void dispatcher::stop() {
  std::lock_guard lock(_lifecycle);
  if (_stopping.exchange(true, std::memory_order_seq_cst)) return;
  // Every post() that did not see _stopping has finished its push once its _busy is false.
  for (const auto& p : _producers) {
    while (p->_busy.load(std::memory_order_acquire)) std::this_thread::yield();
  }
  _final.store(true, std::memory_order_seq_cst);
  if (_thread.joinable()) {
    wake();
    _thread.join();
  } else {
    shutdown();  // never started: dead-letter what the producers hold
  }
}

void dispatcher::wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(_inbox->fd, &one, sizeof one);
}

void dispatcher::run() {
  while (true) {
    const bool final = _final.load(std::memory_order_acquire);
    drain_producers(final);
    drain_inbox();
    if (final) break;
    auto now = clock::now();
    fire_timers(now);
    dispatch(now);

    now = clock::now();
    const auto until = next_wake(now);
    _inbox->sleeping.store(true, std::memory_order_seq_cst);
    bool idle = !_final.load(std::memory_order_seq_cst);
    for (const auto& p : _producers) idle = idle && p->_queue.empty();
    if (idle) {
      std::lock_guard lock(_inbox->mutex);
      idle = _inbox->completions.empty() && _inbox->redrives.empty();
    }
    if (idle && until > now) {
      int timeout_ms = -1;
      if (until != clock::time_point::max()) {
        const auto wait = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
        timeout_ms = static_cast<int>(std::min<std::int64_t>(wait, 60'000));
      }
      pollfd pfd{_inbox->fd, POLLIN, 0};
      ::poll(&pfd, 1, timeout_ms);
    }
    _inbox->sleeping.store(false, std::memory_order_relaxed);
    std::uint64_t count = 0;
    [[maybe_unused]] const auto n = ::read(_inbox->fd, &count, sizeof count);
  }
  shutdown();
}

dispatcher::clock::time_point dispatcher::next_wake(clock::time_point now) const {
  auto until = clock::time_point::max();
  if (!_timers.empty()) until = _timers.front().due;
  if (_http_backoff) until = std::min(until, now + std::chrono::milliseconds(10));
  for (const sink_state* s : _active) {
    if (s->breaker == breaker_state::open) until = std::min(until, s->open_until);
  }
  return until;
}

sink_state& dispatcher::state_of(const delivery& d) {
  std::string key = d.channel;
  key += '/';
  key += d.target->name;
  const auto it = _sinks.find(key);
  if (it != _sinks.end()) {
    sink_state& s = *it->second;
    if (s.target != d.target) {
      std::lock_guard lock(_sinks_mutex);
      s.target = d.target;
    }
    return s;
  }
  auto fresh = std::make_unique<sink_state>();
  fresh->channel = d.channel;
  fresh->name = d.target->name;
  fresh->target = d.target;
  sink_state& s = *fresh;
  std::lock_guard lock(_sinks_mutex);
  _sinks.emplace(std::move(key), std::move(fresh));
  return s;
}

void dispatcher::drain_producers(bool final) {
  const auto now = clock::now();
  const auto take = [&](delivery&& d) {
    if (!d.target) {
      spdlog::error("webhook: delivery of {} on {} has no sink; dropped", d.event_id, d.channel);
      return;
    }
    auto j = std::make_unique<job>();
    j->d = std::move(d);
    j->deadline = now + _opts.retry_budget;
    enqueue(std::move(j));
  };
  for (const auto& p : _producers) {
    // Bounded per round so one busy producer cannot starve completions.
    for (std::size_t i = 0; i < 4096 || final; ++i) {
      auto d = p->_queue.try_pop();
      if (!d) break;
      take(std::move(*d));
    }
    if (final) {  // the producer has left post() for good (see stop())
      for (delivery& d : p->_overflow) take(std::move(d));
      p->_overflow.clear();
    }
  }
}

void dispatcher::enqueue(job_ptr j) {
  sink_state& s = state_of(j->d);
  j->state = &s;
  if (s.held >= _opts.max_queued_per_sink) {
    const std::string reason = fmt::format("sink queue full ({} deliveries held)", s.held);
    give_up(std::move(j), reason);
    return;
  }
  ++s.held;
  common::bump(s.queued);
  s.ready.push_back(std::move(j));
  if (!s.active) {
    s.active = true;
    _active.push_back(&s);
  }
}

void dispatcher::drain_inbox() {
  std::vector<detail::inbox::completed> completions;
  std::vector<job_ptr> redrives;
  {
    std::lock_guard lock(_inbox->mutex);
    completions.swap(_inbox->completions);
    redrives.swap(_inbox->redrives);
  }
  for (auto& c : completions) {
    complete(c.token, c.status, std::move(c.retry_after), std::move(c.error_text), c.cancelled,
             c.permanent_error);
  }
  const auto now = clock::now();
  for (auto& j : redrives) {
    j->deadline = now + _opts.retry_budget;
    enqueue(std::move(j));
  }
}

void dispatcher::fire_timers(clock::time_point now) {
  const auto later = [](const timer& a, const timer& b) {
    return a.due != b.due ? a.due > b.due : a.order > b.order;
  };
  while (!_timers.empty() && _timers.front().due <= now) {
    std::pop_heap(_timers.begin(), _timers.end(), later);
    job_ptr j = std::move(_timers.back().j);
    _timers.pop_back();
    sink_state& s = *j->state;
    s.ready.push_back(std::move(j));
    if (!s.active) {
      s.active = true;
      _active.push_back(&s);
    }
  }
}

void dispatcher::set_breaker(sink_state& s, breaker_state b) {
  if (s.breaker == b) return;
  spdlog::log(b == breaker_state::open ? spdlog::level::warn : spdlog::level::info,
              "webhook: {}/{} breaker {} -> {} after {} consecutive failures", s.channel, s.name,
              breaker_name(s.breaker), breaker_name(b), s.consecutive_failures);
  s.breaker = b;
  s.breaker_now.store(static_cast<std::uint8_t>(b), std::memory_order_relaxed);
}

void dispatcher::dispatch(clock::time_point now) {
  _http_backoff = false;
  for (std::size_t i = 0; i < _active.size();) {
    sink_state& s = *_active[i];
    if (dispatch_sink(s, now)) {
      ++i;
    } else {
      s.active = false;
      _active[i] = _active.back();
      _active.pop_back();
    }
  }
}

// Submits what the sink's limits allow. Returns whether the sink still has ready deliveries.
bool dispatcher::dispatch_sink(sink_state& s, clock::time_point now) {
  if (s.breaker == breaker_state::open) {
    if (now < s.open_until) return !s.ready.empty();
    set_breaker(s, breaker_state::half_open);
    // Deliveries that waited behind the breaker past their budget give up now.
    std::deque<job_ptr> keep;
    for (auto& j : s.ready) {
      if (j->deadline <= now) {
        --s.held;
        common::lower(s.queued);
        give_up(std::move(j), "retry budget exhausted while the breaker was open");
      } else {
        keep.push_back(std::move(j));
      }
    }
    s.ready.swap(keep);
  }
  const std::size_t limit =
      s.breaker == breaker_state::half_open ? 1 : std::max<std::size_t>(s.target->max_in_flight, 1);
  while (!s.ready.empty() && s.in_flight_now < limit) {
    if (s.breaker == breaker_state::half_open && s.probe_in_flight) break;
    job_ptr j = std::move(s.ready.front());
    s.ready.pop_front();
    if (s.breaker == breaker_state::half_open) j->probe = true;
    if (!submit(j)) {  // the client is full: keep the order and try again shortly
      j->probe = false;
      s.ready.push_front(std::move(j));
      _http_backoff = true;
      break;
    }
  }
  return !s.ready.empty();
}

bool dispatcher::submit(job_ptr& j) {
  sink_state& s = *j->state;
  const sink& target = *s.target;  // the latest config: a redrive or retry uses the current secret
  ++j->attempts;
  http_client::request req;
  req.method = "POST";
  req.url = target.url;
  req.body = j->d.body;
  req.headers.add("Content-Type", "application/json");
  req.headers.add("Switchboard-Event-Id", j->d.event_id);
  req.headers.add("Switchboard-Channel", j->d.channel);
  req.headers.add("Switchboard-Attempt", std::to_string(j->attempts));
  if (!target.secret.empty()) {
    const auto unix_now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    req.headers.add(std::string(http_client::signature_header),
                    http_client::sign(target.secret, unix_now, j->d.body));
  }
  for (const auto& [name, value] : target.headers) req.headers.add(name, value);
  req.total_timeout = target.timeout;
  req.connect_timeout = std::min(target.timeout, _opts.connect_timeout);
  req.max_redirects = 0;
  req.max_response_bytes = _opts.max_response_bytes;

  const std::uint64_t token = _next_token++;
  std::weak_ptr<detail::inbox> weak = _inbox;
  auto id =
      _http.submit(std::move(req), [weak, token](std::expected<http_client::response, http_client::error> r) {
        const auto box = weak.lock();
        if (!box) return;
        detail::inbox::completed c;
        c.token = token;
        if (r) {
          c.status = r->status;
          if (const auto ra = r->headers.find("Retry-After")) c.retry_after = *ra;
        } else {
          c.cancelled = r.error().code == http_client::errc::cancelled;
          c.permanent_error = r.error().code == http_client::errc::invalid_request;
          c.error_text = fmt::format("{}: {}", http_client::errc_name(r.error().code), r.error().message);
        }
        box->push(std::move(c));
      });
  if (!id) {
    --j->attempts;
    if (id.error().code == http_client::errc::overloaded || id.error().code == http_client::errc::cancelled) {
      return false;
    }
    // The client refused the request itself (a URL it cannot use): no attempt will ever work.
    ++j->attempts;
    common::lower(s.queued);
    --s.held;
    j->last_error = fmt::format("{}: {}", http_client::errc_name(id.error().code), id.error().message);
    common::bump(s.failures);
    give_up(std::move(j), "request refused");
    return true;
  }
  j->transfer = *id;
  if (j->probe) s.probe_in_flight = true;
  ++s.in_flight_now;
  common::lower(s.queued);
  common::bump(s.in_flight);
  _in_flight.emplace(token, std::move(j));
  return true;
}

void dispatcher::complete(std::uint64_t token, int status, std::string retry_after, std::string error_text,
                          bool cancelled, bool permanent_error) {
  const auto it = _in_flight.find(token);
  if (it == _in_flight.end()) return;
  job_ptr j = std::move(it->second);
  _in_flight.erase(it);
  sink_state& s = *j->state;
  --s.in_flight_now;
  common::lower(s.in_flight);
  if (j->probe) s.probe_in_flight = false;
  j->probe = false;
  const auto now = clock::now();

  const outcome result = error_text.empty() ? classify_status(status)
                         : permanent_error  ? outcome::permanent
                                            : outcome::retry;
  if (result == outcome::delivered) {
    --s.held;
    s.consecutive_failures = 0;
    if (s.breaker != breaker_state::closed) set_breaker(s, breaker_state::closed);
    if (!j->redrive_id.empty()) {
      if (_store != nullptr) {
        if (auto r = _store->delete_config(store::kind::dead_letters, dead_letter_key(j->redrive_id)); !r) {
          spdlog::error("webhook: redriven dead letter {} was delivered but could not be deleted: {}",
                        j->redrive_id, r.error().message);
        }
      }
      std::lock_guard lock(_inbox->mutex);
      _inbox->redriving.erase(j->redrive_id);
    }
    common::bump(s.deliveries);  // after the redriven record is gone: whoever sees the count, sees that
    if (j->attempts > 1) {
      spdlog::info("webhook: {}/{} event {} delivered on attempt {}", s.channel, s.name, j->d.event_id,
                   j->attempts);
    }
    return;
  }

  common::bump(s.failures);
  j->last_status = error_text.empty() ? status : 0;
  j->last_error = error_text.empty() ? fmt::format("HTTP {}", status) : std::move(error_text);
  {
    std::lock_guard lock(_sinks_mutex);
    s.last_status = j->last_status;
    s.last_error = j->last_error;
  }
  spdlog::warn("webhook: {}/{} event {} attempt {} failed: status {} error {}", s.channel, s.name,
               j->d.event_id, j->attempts, j->last_status, j->last_error);
  if (cancelled || _final.load(std::memory_order_relaxed)) {
    --s.held;
    give_up(std::move(j), "broker stopping");
    return;
  }
  if (result == outcome::permanent) {
    if (error_text.empty()) {  // the receiver answered: it is up, whatever it thinks of this event
      s.consecutive_failures = 0;
      if (s.breaker == breaker_state::half_open) set_breaker(s, breaker_state::closed);
    }
    --s.held;
    give_up(std::move(j), "permanent failure");
    return;
  }
  // A retryable failure: the sink looks unhealthy.
  ++s.consecutive_failures;
  if (_opts.breaker_failures > 0 &&
      (s.breaker == breaker_state::half_open ||
       (s.breaker == breaker_state::closed && s.consecutive_failures >= _opts.breaker_failures))) {
    s.open_until = now + _opts.breaker_open_time;
    set_breaker(s, breaker_state::open);
  }
  std::optional<std::chrono::milliseconds> wait;
  if ((status == 429 || status == 503) && !retry_after.empty()) {
    wait = parse_retry_after(retry_after, std::chrono::system_clock::now());
  }
  retry_or_give_up(std::move(j), s, wait, now);
}

void dispatcher::retry_or_give_up(job_ptr j, sink_state& s,
                                  std::optional<std::chrono::milliseconds> retry_after,
                                  clock::time_point now) {
  if (j->attempts >= _opts.max_attempts) {
    --s.held;
    const std::string reason = fmt::format("attempts exhausted ({})", j->attempts);
    give_up(std::move(j), reason);
    return;
  }
  const auto wait =
      retry_after ? std::min(*retry_after, _opts.max_backoff)
                  : backoff(j->attempts, _opts.initial_backoff, _opts.max_backoff, _opts.jitter, _random);
  if (now + wait > j->deadline) {
    --s.held;
    give_up(std::move(j), "retry budget exhausted");
    return;
  }
  common::bump(s.retries);
  common::bump(s.queued);
  _timers.push_back(timer{now + wait, _timer_order++, std::move(j)});
  std::push_heap(_timers.begin(), _timers.end(), [](const timer& a, const timer& b) {
    return a.due != b.due ? a.due > b.due : a.order > b.order;
  });
}

// Writes the dead letter. `j` is no longer counted in its sink's held/queued.
void dispatcher::give_up(job_ptr j, std::string_view reason) {
  sink_state& s = *j->state;
  dead_letter dl;
  const auto now = std::chrono::system_clock::now();
  dl.id = !j->redrive_id.empty() ? j->redrive_id : new_dead_letter_id(now, _dead_letter_salt++);
  dl.channel = j->d.channel;
  dl.sink = s.name;
  dl.url = s.target->url;
  dl.event_id = j->d.event_id;
  dl.epoch = j->d.epoch;
  dl.seq = j->d.seq;
  dl.attempts = j->attempts;
  dl.last_status = j->last_status;
  dl.last_error = j->last_error;
  dl.reason = reason;
  dl.failed_at = format_failed_at(now);
  dl.body = std::move(j->d.body);
  spdlog::error("webhook: {}/{} event {} dead-lettered as {} ({}) after {} attempts: last status {} error {}",
                dl.channel, dl.sink, dl.event_id, dl.id, dl.reason, dl.attempts, dl.last_status,
                dl.last_error);
  if (_store != nullptr) {
    if (auto r = _store->put_config(store::kind::dead_letters, dead_letter_key(dl.id), to_json(dl)); !r) {
      common::bump(_dead_letter_write_errors);
      spdlog::error("webhook: dead letter {} for {}/{} event {} could not be stored ({}); the event is lost",
                    dl.id, dl.channel, dl.sink, dl.event_id, r.error().message);
    }
  }
  common::bump(s.dead_letters);  // after the write: whoever sees the count finds the record
  if (!j->redrive_id.empty()) {
    std::lock_guard lock(_inbox->mutex);
    _inbox->redriving.erase(j->redrive_id);
  }
}

void dispatcher::shutdown() {
  for (const auto& [token, j] : _in_flight) _http.cancel(j->transfer);
  const auto deadline = clock::now() + _opts.stop_grace;
  while (true) {
    std::vector<detail::inbox::completed> completions;
    {
      std::lock_guard lock(_inbox->mutex);
      completions.swap(_inbox->completions);
    }
    for (auto& c : completions) {
      complete(c.token, c.status, std::move(c.retry_after), std::move(c.error_text), c.cancelled,
               c.permanent_error);
    }
    const auto now = clock::now();
    if (_in_flight.empty() || now >= deadline) break;
    _inbox->sleeping.store(true, std::memory_order_seq_cst);
    bool empty = false;
    {
      std::lock_guard lock(_inbox->mutex);
      empty = _inbox->completions.empty();
    }
    if (empty) {
      pollfd pfd{_inbox->fd, POLLIN, 0};
      ::poll(&pfd, 1, static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count()));
    }
    _inbox->sleeping.store(false, std::memory_order_relaxed);
    std::uint64_t count = 0;
    [[maybe_unused]] const auto n = ::read(_inbox->fd, &count, sizeof count);
  }
  {
    std::lock_guard lock(_inbox->mutex);
    _inbox->closed = true;     // late completions are dropped: their deliveries are dead-lettered below
    _inbox->redrives.clear();  // still in the store: nothing to write
    _inbox->redriving.clear();
  }
  for (auto& [token, j] : _in_flight) {
    --j->state->in_flight_now;
    common::lower(j->state->in_flight);
    --j->state->held;
    give_up(std::move(j), "broker stopping");
  }
  _in_flight.clear();
  drain_producers(true);
  for (auto& t : _timers) {
    common::lower(t.j->state->queued);
    --t.j->state->held;
    give_up(std::move(t.j), "broker stopping");
  }
  _timers.clear();
  for (sink_state* s : _active) {
    for (auto& j : s->ready) {
      common::lower(s->queued);
      --s->held;
      give_up(std::move(j), "broker stopping");
    }
    s->ready.clear();
    s->active = false;
  }
  _active.clear();
}

// ------------------------------------------------------------------------------------ dead letters

std::expected<void, error> dispatcher::redrive(std::string_view id) {
  if (_store == nullptr) return std::unexpected(error{errc::unavailable, "dead letters are not stored"});
  if (_stopping.load()) return std::unexpected(error{errc::unavailable, "the broker is stopping"});
  const auto missing = [&] {
    return std::unexpected(error{errc::not_found, fmt::format("dead letter \"{}\" does not exist", id)});
  };
  if (!is_dead_letter_id(id)) return missing();
  auto stored = _store->get_config(store::kind::dead_letters, dead_letter_key(id));
  if (!stored) return std::unexpected(store_error(stored.error()));
  if (!stored->has_value()) return missing();
  auto dl = parse_dead_letter(**stored);
  if (!dl) {
    return std::unexpected(
        error{errc::store_failed, fmt::format("dead letter \"{}\" is damaged: {}", id, dl.error())});
  }
  std::shared_ptr<const sink> target;
  {
    std::lock_guard lock(_sinks_mutex);
    const auto it = _sinks.find(dl->channel + "/" + dl->sink);
    if (it != _sinks.end()) target = it->second->target;
  }
  if (!target && _opts.find_sink) target = _opts.find_sink(dl->channel, dl->sink);
  if (!target) {
    return std::unexpected(
        error{errc::conflict,
              fmt::format("sink \"{}\" is not configured on channel \"{}\"", dl->sink, dl->channel)});
  }
  auto j = std::make_unique<job>();
  j->d.channel = std::move(dl->channel);
  j->d.event_id = std::move(dl->event_id);
  j->d.epoch = dl->epoch;
  j->d.seq = dl->seq;
  j->d.target = std::move(target);
  j->d.body = std::move(dl->body);
  j->redrive_id = std::string(id);
  {
    std::lock_guard lock(_inbox->mutex);
    if (_inbox->closed || _stopping.load()) {
      return std::unexpected(error{errc::unavailable, "the broker is stopping"});
    }
    if (!_inbox->redriving.insert(j->redrive_id).second) {
      return std::unexpected(error{errc::conflict, fmt::format("dead letter \"{}\" is being redriven", id)});
    }
    _inbox->redrives.push_back(std::move(j));
  }
  _inbox->signal();
  spdlog::info("webhook: dead letter {} queued for redrive", id);
  return {};
}

std::expected<void, error> dispatcher::delete_dead_letter(std::string_view id) {
  if (_store == nullptr) return std::unexpected(error{errc::unavailable, "dead letters are not stored"});
  const auto missing = [&] {
    return std::unexpected(error{errc::not_found, fmt::format("dead letter \"{}\" does not exist", id)});
  };
  if (!is_dead_letter_id(id)) return missing();
  {
    std::lock_guard lock(_inbox->mutex);
    if (_inbox->redriving.contains(id)) {
      return std::unexpected(error{errc::conflict, fmt::format("dead letter \"{}\" is being redriven", id)});
    }
  }
  auto stored = _store->get_config(store::kind::dead_letters, dead_letter_key(id));
  if (!stored) return std::unexpected(store_error(stored.error()));
  if (!stored->has_value()) return missing();
  if (auto r = _store->delete_config(store::kind::dead_letters, dead_letter_key(id)); !r) {
    return std::unexpected(store_error(r.error()));
  }
  return {};
}

std::expected<std::string, error> dispatcher::list_dead_letters(std::string_view channel) const {
  if (_store == nullptr) return std::unexpected(error{errc::unavailable, "dead letters are not stored"});
  auto all = _store->list_configs(store::kind::dead_letters);
  if (!all) return std::unexpected(store_error(all.error()));
  std::string out = "[";
  simdjson::dom::parser parser;
  for (const auto& [key, value] : *all) {
    if (!key.starts_with(dead_letter_prefix)) continue;
    if (!channel.empty()) {
      std::string_view c;
      if (parser.parse(value)["channel"].get_string().get(c) != simdjson::SUCCESS || c != channel) continue;
    }
    if (out.size() > 1) out += ',';
    out += value;
  }
  out += ']';
  return out;
}

// ------------------------------------------------------------------------------------------ status

std::vector<sink_status> dispatcher::sinks() const {
  std::vector<sink_status> out;
  std::lock_guard lock(_sinks_mutex);
  out.reserve(_sinks.size());
  for (const auto& [key, s] : _sinks) {
    sink_status st;
    st.channel = s->channel;
    st.name = s->name;
    st.url = s->target->url;
    st.breaker = static_cast<breaker_state>(s->breaker_now.load(std::memory_order_relaxed));
    st.deliveries = s->deliveries.load(std::memory_order_relaxed);
    st.retries = s->retries.load(std::memory_order_relaxed);
    st.failures = s->failures.load(std::memory_order_relaxed);
    st.dead_letters = s->dead_letters.load(std::memory_order_relaxed);
    st.in_flight = s->in_flight.load(std::memory_order_relaxed);
    st.queued = s->queued.load(std::memory_order_relaxed);
    st.last_status = s->last_status;
    st.last_error = s->last_error;
    out.push_back(std::move(st));
  }
  return out;
}

std::string dispatcher::metrics() const {
  struct family {
    const char* name;
    const char* type;
    const char* help;
    std::atomic<std::uint64_t> sink_state::*counter;
  };
  static constexpr family families[] = {
      {"switchboard_webhook_deliveries_total", "counter", "Webhook deliveries answered 2xx.",
       &sink_state::deliveries},
      {"switchboard_webhook_retries_total", "counter", "Webhook retries scheduled after a failed attempt.",
       &sink_state::retries},
      {"switchboard_webhook_failures_total", "counter",
       "Failed webhook attempts (any status or transfer error).", &sink_state::failures},
      {"switchboard_webhook_dead_letters_total", "counter", "Webhook deliveries given up and dead-lettered.",
       &sink_state::dead_letters},
      {"switchboard_webhook_in_flight", "gauge", "Webhook requests in flight.", &sink_state::in_flight},
      {"switchboard_webhook_queued", "gauge", "Webhook deliveries waiting or waiting for a retry.",
       &sink_state::queued},
  };
  std::lock_guard lock(_sinks_mutex);
  std::string out;
  for (const family& f : families) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name, f.type);
    for (const auto& [key, s] : _sinks) {
      out += fmt::format("{}{{sink=\"{}\"}} {}\n", f.name, escape_label(key), ((*s).*(f.counter)).load());
    }
  }
  out +=
      "# HELP switchboard_webhook_breaker_open Whether the sink's circuit breaker is open or half-open (1) "
      "or "
      "closed (0).\n# TYPE switchboard_webhook_breaker_open gauge\n";
  for (const auto& [key, s] : _sinks) {
    const auto b = static_cast<breaker_state>(s->breaker_now.load(std::memory_order_relaxed));
    out += fmt::format("switchboard_webhook_breaker_open{{sink=\"{}\"}} {}\n", escape_label(key),
                       b == breaker_state::closed ? 0 : 1);
  }
  out += fmt::format(
      "# HELP switchboard_webhook_dead_letter_write_errors_total Dead letters the store refused (lost).\n"
      "# TYPE switchboard_webhook_dead_letter_write_errors_total counter\n"
      "switchboard_webhook_dead_letter_write_errors_total {}\n",
      _dead_letter_write_errors.load(std::memory_order_relaxed));
  return out;
}

}  // namespace switchboard::webhook
