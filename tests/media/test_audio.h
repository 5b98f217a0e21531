// Test audio made and inspected with libsndfile in memory: sine tones in any libsndfile format,
// decoding back to mono floats, and the dominant frequency of a signal (Goertzel scan).
#pragma once

#include <sndfile.h>

#include <cmath>
#include <cstring>
#include <numbers>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::media::test_audio {

namespace detail {

struct memory_file {
  std::string bytes;
  sf_count_t position = 0;
};

inline sf_count_t length(void* u) { return static_cast<sf_count_t>(static_cast<memory_file*>(u)->bytes.size()); }
inline sf_count_t seek(sf_count_t offset, int whence, void* u) {
  auto& f = *static_cast<memory_file*>(u);
  const sf_count_t base =
      whence == SEEK_SET ? 0 : whence == SEEK_CUR ? f.position : static_cast<sf_count_t>(f.bytes.size());
  f.position = base + offset;
  return f.position;
}
inline sf_count_t read(void* out, sf_count_t n, void* u) {
  auto& f = *static_cast<memory_file*>(u);
  const sf_count_t available = static_cast<sf_count_t>(f.bytes.size()) - f.position;
  const sf_count_t k = std::max<sf_count_t>(0, std::min(n, available));
  std::memcpy(out, f.bytes.data() + f.position, static_cast<std::size_t>(k));
  f.position += k;
  return k;
}
inline sf_count_t write(const void* in, sf_count_t n, void* u) {
  auto& f = *static_cast<memory_file*>(u);
  if (static_cast<std::size_t>(f.position + n) > f.bytes.size()) f.bytes.resize(static_cast<std::size_t>(f.position + n));
  std::memcpy(f.bytes.data() + f.position, in, static_cast<std::size_t>(n));
  f.position += n;
  return n;
}
inline sf_count_t tell(void* u) { return static_cast<memory_file*>(u)->position; }
inline SF_VIRTUAL_IO vio{length, seek, read, write, tell};

}  // namespace detail

// A `hz` sine at amplitude 0.5, `seconds` long, in every channel, encoded as `sf_format`
// (e.g. SF_FORMAT_WAV | SF_FORMAT_PCM_16). Throws when libsndfile refuses the format.
inline std::string sine(int sf_format, int rate, int channels, double seconds, double hz = 1000.0) {
  detail::memory_file f;
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = sf_format;
  SNDFILE* file = sf_open_virtual(&detail::vio, SFM_WRITE, &info, &f);
  if (file == nullptr) throw std::runtime_error(std::string("sf_open_virtual(write): ") + sf_strerror(nullptr));
  const auto frames = static_cast<sf_count_t>(std::llround(seconds * rate));
  std::vector<float> block(static_cast<std::size_t>(4096 * channels));
  for (sf_count_t done = 0; done < frames;) {
    const sf_count_t n = std::min<sf_count_t>(4096, frames - done);
    for (sf_count_t i = 0; i < n; ++i) {
      const double t = static_cast<double>(done + i) / rate;
      const auto v = static_cast<float>(0.5 * std::sin(2.0 * std::numbers::pi * hz * t));
      for (int c = 0; c < channels; ++c) block[static_cast<std::size_t>(i * channels + c)] = v;
    }
    sf_writef_float(file, block.data(), n);
    done += n;
  }
  sf_close(file);
  return std::move(f.bytes);
}

struct decoded {
  SF_INFO info{};
  std::vector<float> mono;  // first channel
  std::string error;        // libsndfile's reason when it could not open the bytes
};

inline decoded decode(std::string_view bytes) {
  detail::memory_file f;
  f.bytes = std::string(bytes);
  decoded d;
  SNDFILE* file = sf_open_virtual(&detail::vio, SFM_READ, &d.info, &f);
  if (file == nullptr) {
    d.error = sf_strerror(nullptr);
    return d;
  }
  std::vector<float> block(static_cast<std::size_t>(4096 * d.info.channels));
  for (;;) {
    const sf_count_t n = sf_readf_float(file, block.data(), 4096);
    if (n <= 0) break;
    for (sf_count_t i = 0; i < n; ++i) d.mono.push_back(block[static_cast<std::size_t>(i * d.info.channels)]);
  }
  sf_close(file);
  return d;
}

// Power of `hz` in `x` (Goertzel).
inline double power_at(std::span<const float> x, int rate, double hz) {
  const double w = 2.0 * std::numbers::pi * hz / rate;
  const double coeff = 2.0 * std::cos(w);
  double s1 = 0.0;
  double s2 = 0.0;
  for (float v : x) {
    const double s0 = v + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return s1 * s1 + s2 * s2 - coeff * s1 * s2;
}

// The frequency in [low, high] (step `step` Hz) with the most power in `x`.
inline double dominant_hz(std::span<const float> x, int rate, double low, double high, double step) {
  double best = low;
  double best_power = -1.0;
  for (double hz = low; hz <= high; hz += step) {
    const double p = power_at(x, rate, hz);
    if (p > best_power) {
      best_power = p;
      best = hz;
    }
  }
  return best;
}

}  // namespace switchboard::media::test_audio
