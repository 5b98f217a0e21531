// Micro-benchmarks for broker/router/topic.h: trie matching at several subscription counts,
// pattern_matches, validation and the channel hash.
//
// Release numbers only:  cmake -B build-rel -DCMAKE_BUILD_TYPE=Release && ninja -C build-rel topic_bench
//                        build-rel/bench/topic_bench
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "broker/router/topic.h"

namespace {

using switchboard::router::topic_trie;

// Subscriptions spread over n/100 tenants (at least 1), 70% exact, 20% `*`, 10% `>`:
//   t<k>.calls.CA<i>.status   t<k>.calls.*.<event>   t<k>.calls.CA<i>.>
std::string pattern_for(std::size_t i, std::size_t tenants) {
  static constexpr const char* events[] = {"status", "fetch", "instruction", "fallback", "error"};
  // std::string("t").append(…) rather than "t" + …: g++ 12 -O3 raises a false -Wrestrict on the latter.
  const std::string tenant = std::string("t").append(std::to_string(i % tenants));
  switch (i % 10) {
    case 7:
    case 8: return tenant + ".calls.*." + events[i % 5];
    case 9: return tenant + ".calls.CA" + std::to_string(i) + ".>";
    default: return tenant + ".calls.CA" + std::to_string(i) + ".status";
  }
}

std::size_t tenants_for(std::size_t n) { return n / 100 == 0 ? 1 : n / 100; }

// Tries are built once per size (Google Benchmark calls the function several times per size).
const topic_trie<std::uint32_t>& trie_with(std::size_t n) {
  static std::map<std::size_t, std::unique_ptr<topic_trie<std::uint32_t>>> cache;
  auto& slot = cache[n];
  if (!slot) {
    slot = std::make_unique<topic_trie<std::uint32_t>>();
    const std::size_t tenants = tenants_for(n);
    for (std::size_t i = 0; i < n; ++i) {
      (void)slot->insert(pattern_for(i, tenants), static_cast<std::uint32_t>(i));
    }
  }
  return *slot;
}

// Published channels: a rotating set of 256 call ids spread over the subscribed ids, so that most
// hit an exact or `>` subscription and all meet their tenant's `*` subscriptions.
std::vector<std::string> channels_for(std::size_t n) {
  const std::size_t tenants = tenants_for(n);
  std::vector<std::string> out;
  for (std::size_t j = 0; j < 256; ++j) {
    const std::size_t i = (j * 7919) % n;
    const std::string event = j % 2 == 0 ? ".status" : ".fetch";
    out.push_back(std::string("t").append(std::to_string(i % tenants)) + ".calls.CA" + std::to_string(i) + event);
  }
  return out;
}

void bm_trie_match(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& trie = trie_with(n);
  const auto channels = channels_for(n);
  std::size_t next = 0;
  std::size_t visited = 0;
  for (auto _ : state) {
    trie.match(channels[next], [&](const std::uint32_t& v) { visited += v; });
    next = (next + 1) % channels.size();
  }
  benchmark::DoNotOptimize(visited);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_trie_match)->Arg(10)->Arg(1000)->Arg(100000);

void bm_trie_match_miss(benchmark::State& state) {
  const auto& trie = trie_with(static_cast<std::size_t>(state.range(0)));
  std::size_t visited = 0;
  for (auto _ : state) {
    trie.match("nobody.listens.here.status", [&](const std::uint32_t& v) { visited += v; });
  }
  benchmark::DoNotOptimize(visited);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_trie_match_miss)->Arg(10)->Arg(100000);

// The linear alternative the trie replaces, for scale: one pattern_matches per subscription.
void bm_linear_scan(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<std::string> patterns;
  for (std::size_t i = 0; i < n; ++i) patterns.push_back(pattern_for(i, tenants_for(n)));
  const auto channels = channels_for(n);
  std::size_t next = 0;
  std::size_t hits = 0;
  for (auto _ : state) {
    for (const auto& p : patterns) hits += switchboard::router::pattern_matches(p, channels[next]);
    next = (next + 1) % channels.size();
  }
  benchmark::DoNotOptimize(hits);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_linear_scan)->Arg(10)->Arg(1000);

void bm_validate_channel(benchmark::State& state) {
  const std::string name = state.range(0) == 0 ? std::string("acme.calls.CA0123456789abcdef.status")
                                               : std::string(1000, 'x') + ".tail";
  for (auto _ : state) {
    auto r = switchboard::router::validate_channel(name);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * name.size()));
}
BENCHMARK(bm_validate_channel)->Arg(0)->Arg(1);

void bm_validate_channel_invalid(benchmark::State& state) {
  const std::string name = "acme.calls..status";  // error path: builds the message
  for (auto _ : state) {
    auto r = switchboard::router::validate_channel(name);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(bm_validate_channel_invalid);

void bm_shard_of(benchmark::State& state) {
  const std::string name = "acme.calls.CA0123456789abcdef.status";
  unsigned sum = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(name.data());
    sum += switchboard::router::shard_of(name, 7);
  }
  benchmark::DoNotOptimize(sum);
}
BENCHMARK(bm_shard_of);

}  // namespace

BENCHMARK_MAIN();
