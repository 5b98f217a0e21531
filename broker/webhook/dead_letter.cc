#include "broker/webhook/dead_letter.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <vector>

#include "broker/common/epoch_text.h"

namespace switchboard::webhook {
namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void put(json_writer& w, std::string_view key, std::string_view value) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(std::max(n, 0)));
  return out;
}

std::expected<std::string, std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::unexpected(std::string("body_base64 is not base64"));
  std::string out(3 * (text.size() / 4), '\0');
  const int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::unexpected(std::string("body_base64 is not base64"));
  std::size_t size = static_cast<std::size_t>(n);
  // EVP_DecodeBlock counts padding as zero bytes.
  if (!text.empty() && text.back() == '=') --size;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --size;
  out.resize(size);
  return out;
}

}  // namespace

std::string new_dead_letter_id(std::chrono::system_clock::time_point now, std::uint64_t salt) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  return fmt::format("{:016x}-{:08x}", static_cast<std::uint64_t>(ns), salt & 0xffffffffu);
}

bool is_dead_letter_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
  });
}

std::string format_failed_at(std::chrono::system_clock::time_point at) {
  const auto seconds = std::chrono::floor<std::chrono::seconds>(at);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(at - seconds).count();
  return fmt::format("{:%FT%T}.{:03}Z", seconds, ms);
}

std::string to_json(const dead_letter& d) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  put(w, "id", d.id);
  put(w, "source", "webhook");
  put(w, "channel", d.channel);
  put(w, "sink", d.sink);
  put(w, "url", d.url);
  put(w, "event_id", d.event_id);
  put(w, "epoch", common::epoch_text(d.epoch));
  w.Key("seq");
  w.Uint64(d.seq);
  w.Key("attempts");
  w.Uint(d.attempts);
  w.Key("last_status");
  w.Int(d.last_status);
  put(w, "last_error", d.last_error);
  put(w, "reason", d.reason);
  put(w, "failed_at", d.failed_at);
  if (simdjson::validate_utf8(d.body.data(), d.body.size())) {
    put(w, "body", d.body);
  } else {
    put(w, "body_base64", base64_encode(d.body));
  }
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

std::expected<dead_letter, std::string> parse_dead_letter(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  if (parser.parse(json.data(), json.size()).get_object().get(o) != simdjson::SUCCESS) {
    return std::unexpected(std::string("dead letter is not a JSON object"));
  }
  dead_letter d;
  const auto text = [&o](const char* key, std::string& into) -> std::expected<void, std::string> {
    std::string_view s;
    if (o[key].get_string().get(s) != simdjson::SUCCESS)
      return std::unexpected(fmt::format("dead letter field \"{}\" must be a string", key));
    into = s;
    return {};
  };
  std::string source;
  std::string epoch;
  for (const auto& [key, into] : {std::pair<const char*, std::string*>{"id", &d.id},
                                  {"source", &source},
                                  {"channel", &d.channel},
                                  {"sink", &d.sink},
                                  {"url", &d.url},
                                  {"event_id", &d.event_id},
                                  {"epoch", &epoch},
                                  {"last_error", &d.last_error},
                                  {"reason", &d.reason},
                                  {"failed_at", &d.failed_at}}) {
    if (auto r = text(key, *into); !r) return std::unexpected(r.error());
  }
  if (source != "webhook") return std::unexpected(std::string("dead letter is not from a webhook"));
  if (!is_dead_letter_id(d.id))
    return std::unexpected(std::string("dead letter field \"id\" is not a valid id"));
  const auto e = common::parse_epoch_text(epoch);
  if (!e) return std::unexpected(std::string("dead letter field \"epoch\" must be 1 to 16 hex digits"));
  d.epoch = *e;
  std::uint64_t attempts = 0;
  std::int64_t status = 0;
  if (o["seq"].get_uint64().get(d.seq) != simdjson::SUCCESS)
    return std::unexpected(std::string("dead letter field \"seq\" must be an unsigned integer"));
  if (o["attempts"].get_uint64().get(attempts) != simdjson::SUCCESS ||
      attempts > std::numeric_limits<std::uint32_t>::max())
    return std::unexpected(std::string("dead letter field \"attempts\" must be an unsigned integer"));
  if (o["last_status"].get_int64().get(status) != simdjson::SUCCESS || status < 0 || status > 999)
    return std::unexpected(std::string("dead letter field \"last_status\" must be 0 or an HTTP status"));
  d.attempts = static_cast<std::uint32_t>(attempts);
  d.last_status = static_cast<int>(status);
  std::string_view body;
  if (o["body"].get_string().get(body) == simdjson::SUCCESS) {
    d.body = body;
  } else if (o["body_base64"].get_string().get(body) == simdjson::SUCCESS) {
    auto bytes = base64_decode(body);
    if (!bytes) return std::unexpected(bytes.error());
    d.body = std::move(*bytes);
  } else {
    return std::unexpected(std::string("dead letter field \"body\" must be a string"));
  }
  return d;
}

}  // namespace switchboard::webhook
