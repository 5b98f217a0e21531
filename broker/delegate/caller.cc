// Delegate calls over the HTTP client: sequential chains, parallel fan-out and merge, failure policies
// and statistics. Contracts: caller.h.
#include "broker/delegate/caller.h"

#include <algorithm>
#include <iterator>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "broker/http_client/signature.h"
#include "broker/router/topic.h"

namespace switchboard::delegate {
namespace {

using clock = std::chrono::steady_clock;

enum class failure_kind : std::uint8_t { none, timeout, connect, status, answer, other };

// A header value without control characters (names and ids are validated upstream; this keeps a
// stray CR/LF from ever reaching the request).
std::string header_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (const char ch : v) {
    const auto b = static_cast<unsigned char>(ch);
    if (b >= 0x20 && b != 0x7f) out.push_back(ch);
  }
  return out;
}

void add(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
  counter.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace

struct caller::result {
  answer ans;      // on failure, ans.reason is the whole line `delegate "<uri>" <reason>`
  int status = 0;  // the HTTP status when there was a response
  failure_kind failure = failure_kind::none;
};

struct caller::call_state {
  request req;
  std::move_only_function<void(outcome)> done;
  std::string error;      // the first failure's line
  int failed_status = 0;  // and its status
  // Sequential (touched by one thread at a time: the caller's, then each completion in turn).
  std::size_t next = 0;  // index of the delegate to call next
  std::string current;   // the event as the next delegate gets it
  metadata meta;         // merged so far
  // Parallel: results[i] is written once, by URI i's completion or by the submitter when submit()
  // failed, before that party decrements `remaining`; whoever brings it to 0 finishes.
  std::vector<result> results;
  std::atomic<std::size_t> remaining{0};
};

http_client::request caller::make_request(const call_state& s, const std::string& uri,
                                          std::string body) const {
  const config& cfg = *s.req.cfg;
  http_client::request hr;
  hr.method = "POST";
  hr.url = uri;
  hr.headers.add("Content-Type", "application/json");
  hr.headers.add("Switchboard-Event-Id", header_value(s.req.event_id));
  hr.headers.add("Switchboard-Channel", header_value(s.req.channel));
  if (!cfg.secret.empty()) {
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
    hr.headers.add(std::string(http_client::signature_header),
                   http_client::sign(cfg.secret, now.count(), body));
  }
  hr.body = std::move(body);
  hr.total_timeout = cfg.timeout;
  hr.connect_timeout = std::min(cfg.timeout, connect_timeout_cap);
  hr.max_redirects = 0;
  hr.max_response_bytes = cfg.max_response_bytes;
  return hr;
}

caller::result caller::judge(std::expected<http_client::response, http_client::error> r, const call_state& s,
                             const std::string& uri, clock::time_point started) {
  const config& cfg = *s.req.cfg;
  result out;
  std::string reason;
  if (r) {
    out.status = r->status;
    out.ans = interpret_answer(r->status, r->body, cfg.max_response_bytes);
    if (out.ans.what == answer::kind::drop) add(_stats.dropped_by_delegate);
    if (out.ans.what != answer::kind::failure) return out;
    reason = std::move(out.ans.reason);
    out.failure = r->status == 200 || r->status == 201 ? failure_kind::answer : failure_kind::status;
  } else {
    const http_client::error& e = r.error();
    const auto connect_limit = std::min(cfg.timeout, connect_timeout_cap);
    switch (e.code) {
      case http_client::errc::timeout:
        out.failure = failure_kind::timeout;
        // Only two timers run: the connect one fires first when it is shorter than the total.
        if (connect_limit < cfg.timeout && clock::now() - started < cfg.timeout) {
          reason = fmt::format("could not connect within {} ms", connect_limit.count());
        } else {
          reason = fmt::format("timed out after {} ms", cfg.timeout.count());
        }
        break;
      case http_client::errc::connect_failed:
        out.failure = failure_kind::connect;
        reason = fmt::format("could not connect: {}", e.message);
        break;
      case http_client::errc::too_large:
        out.failure = failure_kind::answer;
        reason = fmt::format("answered a body larger than {} bytes", cfg.max_response_bytes);
        break;
      case http_client::errc::cancelled:
        out.failure = failure_kind::other;
        reason = "was cancelled (the HTTP client stopped)";
        break;
      case http_client::errc::overloaded:
        out.failure = failure_kind::other;
        reason = "was not called: the HTTP client's queue is full";
        break;
      default:
        out.failure = failure_kind::other;
        reason = fmt::format("failed: {}: {}", http_client::errc_name(e.code), e.message);
        break;
    }
  }
  out.ans.what = answer::kind::failure;
  out.ans.reason = fmt::format("delegate {} {}", router::quote_name(uri), reason);
  add(_stats.failures);
  switch (out.failure) {
    case failure_kind::timeout: add(_stats.timeouts); break;
    case failure_kind::connect: add(_stats.connect_failures); break;
    case failure_kind::status: add(_stats.bad_status); break;
    case failure_kind::answer: add(_stats.bad_answers); break;
    default: add(_stats.other_failures); break;
  }
  return out;
}

void caller::call(request r, std::move_only_function<void(outcome)> done) {
  add(_stats.events);
  auto s = std::make_shared<call_state>();
  s->req = std::move(r);
  s->done = std::move(done);
  if (s->req.cfg->uris.empty()) {
    outcome o;
    o.payload = std::move(s->req.payload);
    finish(*s, std::move(o));
    return;
  }
  if (s->req.cfg->how == mode::parallel) {
    start_parallel(s);
  } else {
    s->current = s->req.payload;
    run_sequential(std::move(s));
  }
}

// Submits the next delegate of the chain; a submit() that fails inline is judged at once and the
// chain goes on from here (a loop, not recursion). Returns when a request is in flight or the event
// is finished.
void caller::run_sequential(std::shared_ptr<call_state> s) {
  const config& cfg = *s->req.cfg;
  while (s->next < cfg.uris.size()) {
    const std::string& uri = cfg.uris[s->next];
    add(_stats.calls);
    const auto started = clock::now();
    auto submitted =
        _http.submit(make_request(*s, uri, s->current),
                     [this, s, &uri, started](std::expected<http_client::response, http_client::error> r) {
                       record_latency(clock::now() - started);
                       if (take_sequential(*s, judge(std::move(r), *s, uri, started))) run_sequential(s);
                     });
    if (submitted) return;
    if (!take_sequential(*s, judge(std::unexpected(std::move(submitted.error())), *s, uri, started))) return;
  }
  outcome o;
  o.payload = std::move(s->current);
  o.meta = std::move(s->meta);
  o.error = std::move(s->error);
  o.failed_status = s->failed_status;
  finish(*s, std::move(o));
}

// Applies one answer of the chain. True: go on with the next delegate; false: the event is finished.
bool caller::take_sequential(call_state& s, result r) {
  const config& cfg = *s.req.cfg;
  switch (r.ans.what) {
    case answer::kind::pass:
      s.current = std::move(r.ans.payload);
      merge(s.meta, r.ans.meta);
      ++s.next;
      return true;
    case answer::kind::drop: {
      outcome o;
      o.act = outcome::action::drop;
      o.error = std::move(s.error);
      o.failed_status = s.failed_status;
      finish(s, std::move(o));
      return false;
    }
    case answer::kind::failure: break;
  }
  if (s.error.empty()) {
    s.error = std::move(r.ans.reason);
    s.failed_status = r.status;
  }
  if (cfg.on_failure == failure_policy::pass) {
    ++s.next;
    return true;
  }
  outcome o;
  o.error = std::move(s.error);
  o.failed_status = s.failed_status;
  if (cfg.on_failure == failure_policy::drop) {
    o.act = outcome::action::drop;
  } else {
    o.act = outcome::action::dead_letter;
    o.payload = std::move(s.req.payload);
  }
  finish(s, std::move(o));
  return false;
}

void caller::start_parallel(const std::shared_ptr<call_state>& s) {
  const config& cfg = *s->req.cfg;
  const std::size_t n = cfg.uris.size();
  s->results.resize(n);
  s->remaining.store(n, std::memory_order_relaxed);
  // Every request is built before the first is submitted: once submitted, the last completion may
  // finish the event (and move from s->req) while this loop still runs.
  std::vector<http_client::request> requests;
  requests.reserve(n);
  for (const std::string& uri : cfg.uris) requests.push_back(make_request(*s, uri, s->req.payload));
  const auto arrive = [this](call_state& st) {
    if (st.remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) finish_parallel(st);
  };
  for (std::size_t i = 0; i < n; ++i) {
    const std::string& uri = cfg.uris[i];  // cfg is immutable and kept alive by s
    add(_stats.calls);
    const auto started = clock::now();
    auto submitted = _http.submit(
        std::move(requests[i]),
        [this, s, i, &uri, started, arrive](std::expected<http_client::response, http_client::error> r) {
          record_latency(clock::now() - started);
          s->results[i] = judge(std::move(r), *s, uri, started);
          arrive(*s);
        });
    if (!submitted) {
      s->results[i] = judge(std::unexpected(std::move(submitted.error())), *s, uri, started);
      arrive(*s);
    }
  }
}

void caller::finish_parallel(call_state& s) {
  const config& cfg = *s.req.cfg;
  bool any_drop = false;
  bool any_failure = false;
  std::vector<std::string_view> passed;
  metadata meta;
  for (result& r : s.results) {
    switch (r.ans.what) {
      case answer::kind::drop: any_drop = true; break;
      case answer::kind::failure:
        if (!any_failure) {
          s.error = std::move(r.ans.reason);
          s.failed_status = r.status;
        }
        any_failure = true;
        break;
      case answer::kind::pass:
        passed.push_back(r.ans.payload);
        merge(meta, r.ans.meta);
        break;
    }
  }

  outcome o;
  if (!any_drop && (!any_failure || cfg.on_failure == failure_policy::pass) && passed.size() > 1) {
    auto merged = merge_objects(passed);  // cannot fail: interpret_answer passed each as an object
    if (merged && (cfg.max_response_bytes == 0 || merged->size() <= cfg.max_response_bytes)) {
      o.payload = std::move(*merged);
    } else {
      if (!any_failure) {
        s.error = fmt::format("delegates' merged answer is larger than {} bytes", cfg.max_response_bytes);
        s.failed_status = 0;
      }
      any_failure = true;
      add(_stats.failures);
      add(_stats.bad_answers);
      passed.clear();
      meta = {};
    }
  }
  o.error = std::move(s.error);
  o.failed_status = s.failed_status;
  if (any_drop || (any_failure && cfg.on_failure == failure_policy::drop)) {
    o.act = outcome::action::drop;
  } else if (any_failure && cfg.on_failure == failure_policy::dead_letter) {
    o.act = outcome::action::dead_letter;
    o.payload = std::move(s.req.payload);
  } else {
    if (passed.empty())
      o.payload = std::move(s.req.payload);
    else if (passed.size() == 1)
      o.payload = std::string(passed.front());
    o.meta = std::move(meta);
  }
  finish(s, std::move(o));
}

void caller::finish(call_state& s, outcome o) {
  switch (o.act) {
    case outcome::action::pass: add(_stats.passed); break;
    case outcome::action::drop: add(_stats.dropped); break;
    case outcome::action::dead_letter: add(_stats.dead_lettered); break;
  }
  auto done = std::move(s.done);
  done(std::move(o));
}

void caller::record_latency(clock::duration elapsed) noexcept {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  const auto& bounds = stats::bucket_bounds;
  const auto i =
      static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin());
  add(_stats.buckets[i]);  // i == bounds.size(): the +Inf bucket
  add(_stats.latency_sum_us,
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count()));
}

std::string caller::metrics() const {
  const auto get = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  std::string out;
  auto it = std::back_inserter(out);
  fmt::format_to(it,
                 "# HELP switchboard_delegate_events_total Events through the delegate stage, by outcome.\n"
                 "# TYPE switchboard_delegate_events_total counter\n"
                 "switchboard_delegate_events_total{{outcome=\"pass\"}} {}\n"
                 "switchboard_delegate_events_total{{outcome=\"drop\"}} {}\n"
                 "switchboard_delegate_events_total{{outcome=\"dead_letter\"}} {}\n",
                 get(_stats.passed), get(_stats.dropped), get(_stats.dead_lettered));
  fmt::format_to(
      it,
      "# HELP switchboard_delegate_calls_total Delegate requests attempted (one per URI per event).\n"
      "# TYPE switchboard_delegate_calls_total counter\n"
      "switchboard_delegate_calls_total {}\n",
      get(_stats.calls));
  fmt::format_to(it,
                 "# HELP switchboard_delegate_failures_total Delegate requests that failed, by reason.\n"
                 "# TYPE switchboard_delegate_failures_total counter\n"
                 "switchboard_delegate_failures_total{{reason=\"timeout\"}} {}\n"
                 "switchboard_delegate_failures_total{{reason=\"connect\"}} {}\n"
                 "switchboard_delegate_failures_total{{reason=\"status\"}} {}\n"
                 "switchboard_delegate_failures_total{{reason=\"answer\"}} {}\n"
                 "switchboard_delegate_failures_total{{reason=\"other\"}} {}\n",
                 get(_stats.timeouts), get(_stats.connect_failures), get(_stats.bad_status),
                 get(_stats.bad_answers), get(_stats.other_failures));
  fmt::format_to(it,
                 "# HELP switchboard_delegate_drops_total Delegate answers 204 (drop the event).\n"
                 "# TYPE switchboard_delegate_drops_total counter\n"
                 "switchboard_delegate_drops_total {}\n",
                 get(_stats.dropped_by_delegate));
  fmt::format_to(it,
                 "# HELP switchboard_delegate_seconds Delegate request latency, failures included.\n"
                 "# TYPE switchboard_delegate_seconds histogram\n");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < stats::bucket_bounds.size(); ++i) {
    cumulative += get(_stats.buckets[i]);
    fmt::format_to(it, "switchboard_delegate_seconds_bucket{{le=\"{}\"}} {}\n", stats::bucket_bounds[i],
                   cumulative);
  }
  cumulative += get(_stats.buckets[stats::bucket_bounds.size()]);
  fmt::format_to(it,
                 "switchboard_delegate_seconds_bucket{{le=\"+Inf\"}} {}\n"
                 "switchboard_delegate_seconds_sum {}\n"
                 "switchboard_delegate_seconds_count {}\n",
                 cumulative, static_cast<double>(get(_stats.latency_sum_us)) / 1e6, cumulative);
  return out;
}

}  // namespace switchboard::delegate
