// Micro-benchmarks of the wire codec: encoding and decoding a batch of N PUB or EVENT records with
// 128-byte payloads, the shape of the broker's hot path. items/s counts records, bytes/s counts wire
// bytes (headers included).
//
//   build/bench/protocol_bench                          # Release build, for numbers you quote
//   build/bench/protocol_bench --benchmark_filter=decode
#include <switchboard/protocol.h>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>

namespace {

using namespace switchboard::protocol;

constexpr std::size_t payload_bytes = 128;
const std::string channel = "acme.calls.CA0123456789.status";
const std::string payload(payload_bytes, 'x');

publish make_publish(std::int64_t i) {
  return publish{
      .request_id = static_cast<std::uint32_t>(i), .channel = channel, .key = "", .payload = payload};
}

event make_event(std::int64_t i) {
  return event{.sub_id = 1,
               .epoch = 42,
               .seq = static_cast<std::uint64_t>(i),
               .time_ns = 1700000000000000000ULL,
               .channel = channel,
               .payload = payload};
}

template <typename Frame>
Frame make(std::int64_t i) {
  if constexpr (std::is_same_v<Frame, publish>) {
    return make_publish(i);
  } else {
    return make_event(i);
  }
}

template <typename Frame>
std::string make_batch(std::int64_t n) {
  std::string out;
  frame_writer w(out);
  for (std::int64_t i = 0; i < n; ++i) w.write(make<Frame>(i));
  return out;
}

// Encodes N records into a reused buffer (no allocation once it has grown), as a sender does.
template <typename Frame>
void bm_encode(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  std::string out;
  out.reserve(make_batch<Frame>(n).size());
  for (auto _ : state) {
    out.clear();
    frame_writer w(out);
    for (std::int64_t i = 0; i < n; ++i) w.write(make<Frame>(i));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}

// Decodes a batch of N records and touches every payload, as a receiver does.
template <typename Frame>
void bm_decode(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const std::string batch = make_batch<Frame>(n);
  for (auto _ : state) {
    frame_reader reader(batch);
    std::size_t payload_total = 0;
    for (;;) {
      auto r = reader.next();
      if (!r) {
        state.SkipWithError("decode failed");
        return;
      }
      if (!r->has_value()) break;
      payload_total += std::get<Frame>(**r).payload.size();
    }
    benchmark::DoNotOptimize(payload_total);
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(batch.size()));
}

BENCHMARK(bm_encode<publish>)->Name("encode_pub_128B")->RangeMultiplier(16)->Range(1, 4096);
BENCHMARK(bm_decode<publish>)->Name("decode_pub_128B")->RangeMultiplier(16)->Range(1, 4096);
BENCHMARK(bm_encode<event>)->Name("encode_event_128B")->RangeMultiplier(16)->Range(1, 4096);
BENCHMARK(bm_decode<event>)->Name("decode_event_128B")->RangeMultiplier(16)->Range(1, 4096);

}  // namespace

BENCHMARK_MAIN();
