#include "client/cloudevent/cloudevent.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>

#include <charconv>
#include <ctime>

namespace switchboard::cloudevent {
namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr std::size_t epoch_digits = 16;

std::string epoch_hex(std::uint64_t epoch) { return fmt::format("{:016x}", epoch); }

// `s` as a JSON string; bytes of invalid UTF-8 become U+FFFD (lossy, only for such names).
void write_string(json_writer& w, std::string_view s) {
  if (simdjson::validate_utf8(s.data(), s.size())) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    return;
  }
  std::string fixed;
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x80) {
      fixed += c;
    } else {
      fixed += "\xef\xbf\xbd";
    }
  }
  w.String(fixed.data(), static_cast<rapidjson::SizeType>(fixed.size()));
}

void write_key(json_writer& w, std::string_view key) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}

void write_head(json_writer& w, std::string_view id, std::string_view channel, std::string_view type,
                std::uint64_t time_ns) {
  write_key(w, "specversion");
  w.String("1.0");
  write_key(w, "id");
  write_string(w, id);
  write_key(w, "source");
  write_string(w, fmt::format("/switchboard/{}", channel));
  write_key(w, "type");
  write_string(w, type);
  write_key(w, "subject");
  write_string(w, channel);
  write_key(w, "time");
  write_string(w, rfc3339(time_ns));
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace

std::string format_position(std::string_view channel, std::uint64_t epoch, std::uint64_t seq) {
  return fmt::format("{}@{:016x}:{}", channel, epoch, seq);
}

std::optional<position> parse_position(std::string_view text) {
  const std::size_t at = text.rfind('@');
  if (at == std::string_view::npos || at == 0) return std::nullopt;
  const std::string_view rest = text.substr(at + 1);
  if (rest.size() < epoch_digits + 2 || rest[epoch_digits] != ':') return std::nullopt;
  position p;
  p.channel = std::string(text.substr(0, at));
  const std::string_view epoch = rest.substr(0, epoch_digits);
  auto [e_end, e_ec] = std::from_chars(epoch.data(), epoch.data() + epoch.size(), p.epoch, 16);
  if (e_ec != std::errc{} || e_end != epoch.data() + epoch.size()) return std::nullopt;
  if (epoch.front() == '-' || epoch.front() == '+') return std::nullopt;
  const std::string_view seq = rest.substr(epoch_digits + 1);
  if (seq.front() < '0' || seq.front() > '9') return std::nullopt;
  auto [s_end, s_ec] = std::from_chars(seq.data(), seq.data() + seq.size(), p.seq);
  if (s_ec != std::errc{} || s_end != seq.data() + seq.size()) return std::nullopt;
  return p;
}

std::string rfc3339(std::uint64_t time_ns) {
  const auto secs = static_cast<std::time_t>(time_ns / 1'000'000'000u);
  const auto us = static_cast<unsigned>((time_ns / 1'000u) % 1'000'000u);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, us);
}

std::string format_event(std::string_view channel, std::uint64_t epoch, std::uint64_t seq,
                         std::uint64_t time_ns, std::string_view payload) {
  thread_local simdjson::dom::parser parser;
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  write_head(w, format_position(channel, epoch, seq), channel, "switchboard.event", time_ns);
  simdjson::dom::element el;
  if (parser.parse(payload.data(), payload.size(), true).get(el) == simdjson::SUCCESS) {
    write_key(w, "datacontenttype");
    w.String("application/json");
    write_key(w, "data");
    const std::string minified = simdjson::minify(el);
    w.RawValue(minified.data(), minified.size(), rapidjson::kObjectType);
  } else {
    write_key(w, "data_base64");
    const std::string b64 = base64(payload);
    w.String(b64.data(), static_cast<rapidjson::SizeType>(b64.size()));
  }
  write_key(w, "channel");
  write_string(w, channel);
  write_key(w, "epoch");
  const std::string e = epoch_hex(epoch);
  w.String(e.data(), static_cast<rapidjson::SizeType>(e.size()));
  write_key(w, "seq");
  w.Uint64(seq);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string format_notice(std::string_view type, std::string_view channel, std::string_view id,
                          std::uint64_t time_ns, std::string_view data_json) {
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  write_head(w, id, channel, type, time_ns);
  write_key(w, "datacontenttype");
  w.String("application/json");
  write_key(w, "data");
  w.RawValue(data_json.data(), data_json.size(), rapidjson::kObjectType);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace switchboard::cloudevent
