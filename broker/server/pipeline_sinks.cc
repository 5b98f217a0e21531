#include "broker/server/pipeline_sinks.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "broker/webhook/admin_module.h"

namespace switchboard::server {

namespace {

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::shared_ptr<const webhook::sink> to_sink(const channels::webhook_sink& s) {
  auto out = std::make_shared<webhook::sink>();
  out->name = s.name;
  out->url = s.url;
  out->secret = s.secret.value_or("");
  out->headers = s.headers;
  if (s.max_in_flight) out->max_in_flight = static_cast<std::size_t>(*s.max_in_flight);
  if (s.timeout_ms) out->timeout = std::chrono::milliseconds(*s.timeout_ms);
  return out;
}

void write(rapidjson::Writer<rapidjson::StringBuffer>& w, std::string_view key, std::string_view value) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

}  // namespace

std::shared_ptr<const void> bind_webhook(const channels::webhook_spec& spec) {
  auto b = std::make_shared<webhook_binding>();
  for (const auto& s : spec.sinks) b->sinks.push_back(to_sink(s));
  return b;
}

std::shared_ptr<const void> bind_delegate(const channels::delegate_spec& spec, std::size_t max_payload_bytes) {
  auto c = std::make_shared<delegate::config>();
  c->uris = spec.uris;
  c->how = spec.mode == channels::delegate_mode::parallel ? delegate::mode::parallel : delegate::mode::sequential;
  if (spec.timeout_ms) c->timeout = std::chrono::milliseconds(*spec.timeout_ms);
  switch (spec.on_failure) {
    case channels::failure_policy::pass: c->on_failure = delegate::failure_policy::pass; break;
    case channels::failure_policy::drop: c->on_failure = delegate::failure_policy::drop; break;
    case channels::failure_policy::dead_letter: c->on_failure = delegate::failure_policy::dead_letter; break;
  }
  c->secret = spec.secret.value_or("");
  c->max_response_bytes = max_payload_bytes;
  return c;
}

std::expected<std::unique_ptr<pipeline_sinks>, std::string> pipeline_sinks::create(parts p) {
  http_client::options ho;
  ho.max_in_flight = 1024;   // the per-sink limits bound what each destination gets
  ho.max_queued = 1 << 16;
  ho.max_idle_connections = 256;
  auto http = http_client::client::create(ho);
  if (!http) return std::unexpected("outbound HTTP client: " + http.error().message);
  return std::unique_ptr<pipeline_sinks>(new pipeline_sinks(std::move(p), std::move(*http)));
}

pipeline_sinks::pipeline_sinks(parts p, std::unique_ptr<http_client::client> http)
    : _p(std::move(p)), _http(std::move(http)) {
  auto opts = _p.webhook_options;
  // A dead letter redriven after a restart goes to its sink's current configuration.
  opts.find_sink = [&registry = _p.registry](std::string_view channel,
                                             std::string_view name) -> std::shared_ptr<const webhook::sink> {
    auto eff = registry.effective(channel);
    if (!eff || !eff->config.webhook) return nullptr;
    for (const auto& s : eff->config.webhook->sinks) {
      if (s.name == name) return to_sink(s);
    }
    return nullptr;
  };
  _webhooks = std::make_unique<webhook::dispatcher>(*_http, &_p.st, std::move(opts));
  for (unsigned i = 0; i < _p.shards; ++i) _producers.push_back(&_webhooks->add_producer());
  _delegates = std::make_unique<delegate::caller>(*_http);
}

pipeline_sinks::~pipeline_sinks() { stop(); }

void pipeline_sinks::start() {
  if (_started) return;
  _started = true;
  _http->start();
  _webhooks->start();
  _dl_writer = std::jthread([this](std::stop_token st) { write_dead_letters(st); });
}

void pipeline_sinks::stop() {
  if (!_started || _stopped) return;
  _stopped = true;
  _webhooks->stop();  // dead-letters what is not delivered yet ("broker stopping")
  _http->stop();      // in-flight delegate calls complete as cancelled
  _dl_writer.request_stop();
  _dl_cv.notify_all();
  if (_dl_writer.joinable()) _dl_writer.join();
}

void pipeline_sinks::webhook(unsigned shard, const std::shared_ptr<const void>& spec, const router::webhook_event& e) {
  const auto& binding = *std::static_pointer_cast<const webhook_binding>(spec);
  auto& producer = *_producers.at(shard);
  const std::string id = webhook::event_id(e.channel, e.epoch, e.seq);
  for (const auto& sink : binding.sinks) {
    if (e.only_sinks != nullptr && std::ranges::find(*e.only_sinks, sink->name) == e.only_sinks->end()) continue;
    (void)producer.post(webhook::delivery{.channel = std::string(e.channel), .event_id = id, .epoch = e.epoch,
                                          .seq = e.seq, .target = sink, .body = std::string(e.payload)});
  }
}

void pipeline_sinks::delegate(unsigned /*shard*/, const std::shared_ptr<const void>& spec, std::string_view channel,
                              std::string payload, std::move_only_function<void(router::delegate_answer)> done) {
  // The event has no seq yet: its id for the delegate is unique per broker run.
  const std::string id = fmt::format("{}@pending:{}", channel, _delegate_seq.fetch_add(1) + 1);
  _delegates->call(
      delegate::request{.channel = std::string(channel), .event_id = id, .payload = std::move(payload),
                        .cfg = std::static_pointer_cast<const delegate::config>(spec)},
      [done = std::move(done)](delegate::outcome o) mutable {
        router::delegate_answer a;
        switch (o.act) {
          case delegate::outcome::action::pass: a.act = router::delegate_answer::action::pass; break;
          case delegate::outcome::action::drop: a.act = router::delegate_answer::action::drop; break;
          case delegate::outcome::action::dead_letter: a.act = router::delegate_answer::action::dead_letter; break;
        }
        a.payload = std::move(o.payload);
        a.route = o.meta.route.value_or(true);
        a.publish_to_parent = o.meta.publish_to_parent.value_or(true);
        a.webhook_sinks = std::move(o.meta.webhook);
        a.error = std::move(o.error);
        done(std::move(a));
      });
}

void pipeline_sinks::dead_letter(std::string_view channel, std::string_view payload, std::string_view reason) {
  {
    std::lock_guard lock(_dl_mutex);
    _dl_queue.push_back(pending_dead_letter{.channel = std::string(channel), .payload = std::string(payload),
                                            .reason = std::string(reason),
                                            .failed_at_ms = static_cast<std::uint64_t>(unix_ms())});
  }
  _dl_cv.notify_one();
}

void pipeline_sinks::write_dead_letters(std::stop_token st) {
  std::uint64_t n = 0;
  for (;;) {
    std::deque<pending_dead_letter> batch;
    {
      std::unique_lock lock(_dl_mutex);
      _dl_cv.wait(lock, st, [&] { return !_dl_queue.empty(); });
      batch.swap(_dl_queue);
    }
    for (auto& d : batch) {
      const std::string id = fmt::format("{}-{}", d.failed_at_ms, ++n);
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w(buf);
      w.StartObject();
      write(w, "id", id);
      write(w, "source", "delegate");
      write(w, "channel", d.channel);
      write(w, "last_error", d.reason);
      w.Key("failed_at");
      w.Uint64(d.failed_at_ms);
      write(w, "body", d.payload);
      w.EndObject();
      if (auto ok = _p.st.put_config(store::kind::dead_letters, "delegate/" + id,
                                     std::string_view(buf.GetString(), buf.GetSize()));
          ok) {
        _dead_letters.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("pipeline: event of channel \"{}\" dead-lettered as delegate/{}: {}", d.channel, id, d.reason);
      } else {
        _dead_letter_failures.fetch_add(1, std::memory_order_relaxed);
        spdlog::error("pipeline: event of channel \"{}\" could not be dead-lettered ({}); it is lost: {}", d.channel,
                      ok.error().message, d.reason);
      }
    }
    if (st.stop_requested()) {
      std::lock_guard lock(_dl_mutex);
      if (_dl_queue.empty()) return;
    }
  }
}

void pipeline_sinks::rejected(std::string_view channel, std::string_view code, std::string_view message) {
  _rejected.fetch_add(1, std::memory_order_relaxed);
  const auto now_s = unix_ms() / 1000;
  auto last = _last_reject_log_s.load(std::memory_order_relaxed);
  if (last != now_s && _last_reject_log_s.compare_exchange_strong(last, now_s)) {
    spdlog::warn("pipeline: channel \"{}\": {}: {} (at most one such line a second; see "
                 "switchboard_pipeline_reports_total)",
                 channel, code, message);
  }
}

void pipeline_sinks::idle(unsigned shard) { _producers.at(shard)->flush(); }

admin::route_module pipeline_sinks::admin_module() { return webhook::make_admin_module(*_webhooks); }

std::string pipeline_sinks::metrics() const {
  std::string out = _webhooks->metrics();
  out += _delegates->metrics();
  out += fmt::format(
      "# HELP switchboard_pipeline_reports_total Pipeline refusals nobody else is told about (routed copies "
      "refused by their target, route loops), logged.\n"
      "# TYPE switchboard_pipeline_reports_total counter\nswitchboard_pipeline_reports_total {}\n"
      "# HELP switchboard_pipeline_dead_letters_total Events the delegate stage dead-lettered.\n"
      "# TYPE switchboard_pipeline_dead_letters_total counter\nswitchboard_pipeline_dead_letters_total {}\n"
      "# HELP switchboard_pipeline_dead_letter_failures_total Delegate dead letters the store refused (lost).\n"
      "# TYPE switchboard_pipeline_dead_letter_failures_total counter\n"
      "switchboard_pipeline_dead_letter_failures_total {}\n",
      _rejected.load(), _dead_letters.load(), _dead_letter_failures.load());
  return out;
}

}  // namespace switchboard::server
