// A Prometheus histogram with fixed bucket bounds: one thread observes (single writer, relaxed
// load+store like counter.h), any thread renders it. Several single-writer histograms (one per
// shard) render as one by summing: render() takes a list.
//
// Cost: observe() is a short linear scan over the bounds (a dozen compares) and two relaxed
// stores; callers on hot paths sample (e.g. one event in 64).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace switchboard::common {

template <std::size_t N>
class histogram {
 public:
  // Upper bounds, ascending, in the unit the histogram is rendered in (e.g. seconds).
  explicit constexpr histogram(std::array<double, N> bounds) noexcept : _bounds(bounds) {}

  // Single writer.
  void observe(double v) noexcept {
    std::size_t i = 0;
    while (i < N && v > _bounds[i]) ++i;
    bump(_counts[i]);
    _sum.store(_sum.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
  }

  // `name` with its HELP/TYPE lines, the buckets of every histogram in `parts` added up (they must
  // share bounds). `labels` ("" or `shard="0"` style, without braces) is added to every sample.
  static std::string render(std::string_view name, std::string_view help, std::span<const histogram* const> parts,
                            std::string_view labels = {}) {
    std::string out = fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
    if (parts.empty()) return out;
    const auto& bounds = parts.front()->_bounds;
    const std::string sep = labels.empty() ? "" : std::string(labels) + ",";
    std::uint64_t cumulative = 0;
    double sum = 0;
    for (std::size_t i = 0; i <= N; ++i) {
      for (const auto* h : parts) cumulative += h->_counts[i].load(std::memory_order_relaxed);
      if (i < N) {
        out += fmt::format("{}_bucket{{{}le=\"{}\"}} {}\n", name, sep, bounds[i], cumulative);
      } else {
        out += fmt::format("{}_bucket{{{}le=\"+Inf\"}} {}\n", name, sep, cumulative);
      }
    }
    for (const auto* h : parts) sum += h->_sum.load(std::memory_order_relaxed);
    const std::string braces = labels.empty() ? "" : fmt::format("{{{}}}", labels);
    out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, braces, sum, name, braces, cumulative);
    return out;
  }

 private:
  static void bump(std::atomic<std::uint64_t>& c) noexcept {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  std::array<double, N> _bounds;
  std::array<std::atomic<std::uint64_t>, N + 1> _counts{};  // the last one: above every bound
  std::atomic<double> _sum{0};
};

// Bounds for latencies in seconds, 10 µs to 10 s.
inline constexpr std::array<double, 13> latency_bounds_s = {0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                            0.005,   0.01,    0.025,  0.1,     1.0,   10.0};
// Bounds for sizes (events per group commit), powers of 4.
inline constexpr std::array<double, 10> size_bounds = {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144};

}  // namespace switchboard::common
