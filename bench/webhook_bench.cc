// Webhook dispatcher throughput: signed deliveries through the real http_client (libcurl multi,
// keep-alive) to a local cpp-httplib receiver in the same process. Each iteration posts a batch and
// waits until every delivery of it is answered, so items_per_second is end-to-end deliveries/s.
// The receiver shares the CPU: on a small machine it, not the dispatcher, is most of the cost.
//
//   build/bench/webhook_bench --benchmark_min_time=5
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <thread>

#include "broker/webhook/dispatcher.h"
#include "tests/webhook/receiver.h"

namespace {

using namespace switchboard;

void signed_deliveries(benchmark::State& state) {
  const auto in_flight = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t batch = 1000;
  spdlog::set_level(spdlog::level::warn);
  // A thread per connection: curl may open a few more connections than requests in flight.
  test::webhook_receiver receiver(0, 30, static_cast<int>(4 * in_flight + 16));
  http_client::options o;
  o.max_in_flight = 256;
  o.max_queued = 100'000;
  o.max_idle_connections = in_flight;
  auto http = std::move(*http_client::client::create(o));
  http->start();
  webhook::dispatcher_options opts;
  opts.max_queued_per_sink = 1'000'000;
  opts.producer_queue_capacity = 65'536;
  webhook::dispatcher d(*http, nullptr, opts);
  auto& producer = d.add_producer();
  d.start();
  auto target = std::make_shared<webhook::sink>();
  target->name = "bench";
  target->url = receiver.url("/hook");
  target->secret = "whsec_bench";
  target->max_in_flight = in_flight;
  const std::string body =
      R"({"type":"call.status.v1","data":{"call_sid":"CA0123456789abcdef","status":"ringing","from":"+15550001111"}})";
  std::uint64_t seq = 0;
  std::uint64_t answered = 0;
  const auto post_and_wait = [&](std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      webhook::delivery dl;
      dl.channel = "acme.calls";
      dl.epoch = 1;
      dl.seq = ++seq;
      dl.event_id = webhook::event_id(dl.channel, dl.epoch, dl.seq);
      dl.target = target;
      dl.body = body;
      if (!producer.post(std::move(dl))) state.SkipWithError("post refused");
    }
    producer.flush();
    answered += n;
    while (true) {
      const auto sinks = d.sinks();
      if (!sinks.empty() && sinks[0].deliveries + sinks[0].dead_letters >= answered) break;
      if (producer.overflow() > 0) producer.flush();
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // leave the cores to the work
    }
  };
  post_and_wait(4 * in_flight);  // warm-up: open the keep-alive connections outside the timing
  const std::uint64_t warm = answered;
  for (auto _ : state) post_and_wait(batch);
  answered -= warm;
  const auto sinks = d.sinks();
  state.counters["dead_letters"] = static_cast<double>(sinks.empty() ? 0 : sinks[0].dead_letters);
  state.SetItemsProcessed(static_cast<std::int64_t>(answered));
  d.stop();
  http->stop();
}
// cpp-httplib 0.11 listens with a backlog of 5, so many more connections at once make the kernel drop
// SYNs (1 s retransmits): beyond ~32 in flight this measures the receiver's accept queue.
BENCHMARK(signed_deliveries)->Arg(16)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
