// libsndfile (decode/encode through SF_VIRTUAL_IO on memory) + libsamplerate (streaming resampler).
#include "broker/media/convert.h"

#include <samplerate.h>
#include <sndfile.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

namespace switchboard::media {
namespace {

constexpr int max_input_rate = 768000;
constexpr int max_input_channels = 64;
constexpr sf_count_t block_frames = 8192;

// --- memory as a libsndfile virtual file ---

struct memory_file {
  std::string bytes;  // for writing
  std::string_view input;  // for reading
  sf_count_t position = 0;
  bool writing = false;

  [[nodiscard]] sf_count_t size() const noexcept {
    return static_cast<sf_count_t>(writing ? bytes.size() : input.size());
  }
};

sf_count_t vio_length(void* user) { return static_cast<memory_file*>(user)->size(); }

sf_count_t vio_seek(sf_count_t offset, int whence, void* user) {
  auto& f = *static_cast<memory_file*>(user);
  const sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? f.position : f.size();
  const sf_count_t target = base + offset;
  if (target < 0) return -1;
  f.position = target;
  return f.position;
}

sf_count_t vio_read(void* out, sf_count_t count, void* user) {
  auto& f = *static_cast<memory_file*>(user);
  const sf_count_t available = std::max<sf_count_t>(0, f.size() - f.position);
  const sf_count_t n = std::clamp<sf_count_t>(count, 0, available);
  if (n > 0) {
    const char* data = f.writing ? f.bytes.data() : f.input.data();
    std::memcpy(out, data + f.position, static_cast<std::size_t>(n));
    f.position += n;
  }
  return n;
}

sf_count_t vio_write(const void* in, sf_count_t count, void* user) {
  auto& f = *static_cast<memory_file*>(user);
  if (!f.writing || count < 0) return 0;
  const auto end = static_cast<std::size_t>(f.position + count);
  if (end > f.bytes.size()) f.bytes.resize(end);
  std::memcpy(f.bytes.data() + f.position, in, static_cast<std::size_t>(count));
  f.position += count;
  return count;
}

sf_count_t vio_tell(void* user) { return static_cast<memory_file*>(user)->position; }

SF_VIRTUAL_IO memory_vio{vio_length, vio_seek, vio_read, vio_write, vio_tell};

struct sndfile_closer {
  void operator()(SNDFILE* f) const noexcept { sf_close(f); }
};
using sndfile_ptr = std::unique_ptr<SNDFILE, sndfile_closer>;

struct src_deleter {
  void operator()(SRC_STATE* s) const noexcept { src_delete(s); }
};

int src_type(resampler q) {
  switch (q) {
    case resampler::best: return SRC_SINC_BEST_QUALITY;
    case resampler::medium: return SRC_SINC_MEDIUM_QUALITY;
    case resampler::fastest: return SRC_SINC_FASTEST;
  }
  return SRC_SINC_MEDIUM_QUALITY;
}

// Mono samples in at one rate, accumulated at another. Streaming, so the input never has to be held.
class mono_resampler {
 public:
  mono_resampler(int in_rate, int out_rate, resampler q)
      : _ratio(static_cast<double>(out_rate) / in_rate) {
    if (in_rate != out_rate) {
      int status = 0;
      _state.reset(src_new(src_type(q), 1, &status));
      if (!_state) _error = src_strerror(status);
    }
  }

  [[nodiscard]] const std::optional<std::string>& failure() const noexcept { return _error; }

  void reserve(std::size_t input_frames) { _out.reserve(static_cast<std::size_t>(input_frames * _ratio) + 64); }

  // Feeds `n` frames; `last` flushes the filter. Returns false when libsamplerate failed (failure()).
  bool push(const float* in, long n, bool last) {
    if (!_state) {
      _out.insert(_out.end(), in, in + n);
      return true;
    }
    SRC_DATA d{};
    d.data_in = in;
    d.input_frames = n;
    d.src_ratio = _ratio;
    d.end_of_input = last ? 1 : 0;
    for (;;) {
      const long room = static_cast<long>(std::ceil(static_cast<double>(d.input_frames) * _ratio)) + 256;
      const std::size_t used = _out.size();
      _out.resize(used + static_cast<std::size_t>(room));
      d.data_out = _out.data() + used;
      d.output_frames = room;
      if (const int status = src_process(_state.get(), &d); status != 0) {
        _error = src_strerror(status);
        return false;
      }
      _out.resize(used + static_cast<std::size_t>(d.output_frames_gen));
      d.data_in += d.input_frames_used;
      d.input_frames -= d.input_frames_used;
      if (d.input_frames == 0 && (!last || d.output_frames_gen == 0)) return true;
    }
  }

  [[nodiscard]] std::vector<float>& samples() noexcept { return _out; }

 private:
  double _ratio;
  std::unique_ptr<SRC_STATE, src_deleter> _state;
  std::vector<float> _out;
  std::optional<std::string> _error;
};

std::uint32_t le32(const char* p) noexcept {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return std::uint32_t{u[0]} | std::uint32_t{u[1]} << 8 | std::uint32_t{u[2]} << 16 | std::uint32_t{u[3]} << 24;
}

// libsndfile opens a RIFF/WAVE whose data chunk runs past the end of the file and silently shortens
// it; this finds that case. 0 and 0xffffffff are the "unknown length" markers of streaming writers.
std::optional<std::string> wav_truncation(std::string_view in) {
  if (in.size() < 12 || in.substr(0, 4) != "RIFF" || in.substr(8, 4) != "WAVE") return std::nullopt;
  std::size_t pos = 12;
  while (pos + 8 <= in.size()) {
    const std::string_view id = in.substr(pos, 4);
    const std::uint64_t size = le32(in.data() + pos + 4);
    if (id == "data") {
      const std::uint64_t present = in.size() - (pos + 8);
      if (size != 0 && size != 0xffffffffu && size > present) {
        return fmt::format("truncated: the WAV data chunk announces {} bytes but {} are present", size, present);
      }
      return std::nullopt;
    }
    pos += 8 + size + (size & 1);
  }
  return std::nullopt;
}

error invalid(std::string message) { return {errc::media_invalid, std::move(message)}; }

std::string too_long(double seconds, double max_seconds) {
  return fmt::format("too long: {:.1f} s > {:g} s", seconds, max_seconds);
}

std::expected<converted_audio, error> write_wav(std::vector<float>& mono, format fmt) {
  memory_file out;
  out.writing = true;
  out.bytes.reserve(mono.size() * (fmt == format::ulaw_8k ? 1 : 2) + 128);
  SF_INFO info{};
  info.samplerate = sample_rate(fmt);
  info.channels = 1;
  info.format = SF_FORMAT_WAV | (fmt == format::ulaw_8k ? SF_FORMAT_ULAW : SF_FORMAT_PCM_16);
  sndfile_ptr file(sf_open_virtual(&memory_vio, SFM_WRITE, &info, &out));
  if (!file) return std::unexpected(error{errc::io, std::string("cannot write WAV: ") + sf_strerror(nullptr)});
  sf_command(file.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
  const auto frames = static_cast<sf_count_t>(mono.size());
  if (sf_writef_float(file.get(), mono.data(), frames) != frames) {
    return std::unexpected(error{errc::io, std::string("cannot write WAV: ") + sf_strerror(file.get())});
  }
  file.reset();  // sf_close writes the final header sizes
  const auto rate = static_cast<std::uint64_t>(info.samplerate);
  return converted_audio{std::move(out.bytes), (static_cast<std::uint64_t>(frames) * 1000 + rate / 2) / rate};
}

}  // namespace

std::expected<converted_audio, error> convert(std::string_view input, format fmt, const convert_options& options) {
  if (input.empty()) return std::unexpected(invalid("not audio: empty body"));
  if (auto truncated = wav_truncation(input)) return std::unexpected(invalid(std::move(*truncated)));

  memory_file in;
  in.input = input;
  SF_INFO info{};
  sndfile_ptr file(sf_open_virtual(&memory_vio, SFM_READ, &info, &in));
  if (!file) return std::unexpected(invalid(std::string("not audio: libsndfile: ") + sf_strerror(nullptr)));
  if (info.samplerate <= 0 || info.samplerate > max_input_rate) {
    return std::unexpected(invalid(fmt::format("not audio: unsupported sample rate {} Hz", info.samplerate)));
  }
  if (info.channels <= 0 || info.channels > max_input_channels) {
    return std::unexpected(invalid(fmt::format("not audio: unsupported {} channels", info.channels)));
  }
  const bool length_known = info.frames >= 0 && info.frames != SF_COUNT_MAX;
  if (!length_known && (info.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_OGG) {
    return std::unexpected(invalid("truncated: the Ogg stream ends without an end-of-stream page"));
  }
  if (length_known) {
    if (info.frames == 0) return std::unexpected(invalid("not audio: no audio frames"));
    const double seconds = static_cast<double>(info.frames) / info.samplerate;
    if (seconds > options.max_seconds) {
      return std::unexpected(error{errc::too_large, too_long(seconds, options.max_seconds)});
    }
  }
  const auto max_frames = static_cast<sf_count_t>(options.max_seconds * info.samplerate);

  mono_resampler resample(info.samplerate, sample_rate(fmt), options.quality);
  if (resample.failure()) return std::unexpected(error{errc::io, "libsamplerate: " + *resample.failure()});
  if (length_known) resample.reserve(static_cast<std::size_t>(info.frames));
  const auto channels = static_cast<std::size_t>(info.channels);
  std::vector<float> interleaved(static_cast<std::size_t>(block_frames) * channels);
  std::vector<float> mono(static_cast<std::size_t>(block_frames));
  sf_count_t decoded = 0;
  for (;;) {
    const sf_count_t n = sf_readf_float(file.get(), interleaved.data(), block_frames);
    if (n <= 0) break;
    decoded += n;
    if (decoded > max_frames) {
      return std::unexpected(error{errc::too_large, fmt::format("too long: more than {:g} s", options.max_seconds)});
    }
    if (channels == 1) {
      std::copy_n(interleaved.data(), n, mono.data());
    } else {
      const float scale = 1.0f / static_cast<float>(channels);
      for (sf_count_t i = 0; i < n; ++i) {
        const float* frame = interleaved.data() + static_cast<std::size_t>(i) * channels;
        float sum = 0.0f;
        for (std::size_t c = 0; c < channels; ++c) sum += frame[c];
        mono[static_cast<std::size_t>(i)] = sum * scale;
      }
    }
    if (!resample.push(mono.data(), static_cast<long>(n), false)) {
      return std::unexpected(error{errc::io, "libsamplerate: " + *resample.failure()});
    }
  }
  const int status = sf_error(file.get());
  const std::string reason = status != SF_ERR_NO_ERROR ? sf_strerror(file.get()) : "";
  // MP3 lengths are estimates (Xing header or bitrate); allow for encoder delay and padding there.
  const bool mpeg = (info.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_MPEG;
  const sf_count_t tolerance = mpeg ? info.frames / 100 + 2304 : 0;
  if ((length_known && decoded + tolerance < info.frames) || (decoded == 0 && !reason.empty())) {
    std::string message = fmt::format("truncated: decoded {} of {} frames", decoded, length_known ? info.frames : 0);
    if (!reason.empty()) message += " (libsndfile: " + reason + ")";
    return std::unexpected(invalid(std::move(message)));
  }
  if (decoded == 0) return std::unexpected(invalid("not audio: no audio frames"));
  if (!resample.push(mono.data(), 0, true)) {
    return std::unexpected(error{errc::io, "libsamplerate: " + *resample.failure()});
  }
  return write_wav(resample.samples(), fmt);
}

std::expected<converted_audio, error> encode(std::span<const float> mono, int rate, format fmt,
                                             const convert_options& options) {
  if (rate <= 0 || rate > max_input_rate) {
    return std::unexpected(error{errc::invalid_request, fmt::format("unsupported sample rate {} Hz", rate)});
  }
  const double seconds = static_cast<double>(mono.size()) / rate;
  if (seconds > options.max_seconds) {
    return std::unexpected(error{errc::too_large, too_long(seconds, options.max_seconds)});
  }
  mono_resampler resample(rate, sample_rate(fmt), options.quality);
  resample.reserve(mono.size());
  if (resample.failure() || !resample.push(mono.data(), static_cast<long>(mono.size()), true)) {
    return std::unexpected(error{errc::io, "libsamplerate: " + resample.failure().value_or("")});
  }
  return write_wav(resample.samples(), fmt);
}

}  // namespace switchboard::media
