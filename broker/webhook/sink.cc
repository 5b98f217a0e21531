#include "broker/webhook/sink.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "broker/common/epoch_text.h"

namespace switchboard::webhook {
namespace {

bool is_token(std::string_view s) {
  if (s.empty() || s.size() > 256) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) != 0 || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool reserved_header(std::string_view name) {
  if (iequals(name, "content-type") || iequals(name, "content-length") || iequals(name, "host")) return true;
  return name.size() >= 12 && iequals(name.substr(0, 12), "switchboard-");
}

}  // namespace

std::string event_id(std::string_view channel, std::uint64_t epoch, std::uint64_t seq) {
  return fmt::format("{}@{}:{}", channel, common::epoch_text(epoch), seq);
}

std::expected<std::vector<std::shared_ptr<const sink>>, std::string> parse_sinks(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::array array;
  if (parser.parse(json.data(), json.size()).get_array().get(array) != simdjson::SUCCESS) {
    return std::unexpected(std::string("webhook must be a JSON array of sink objects"));
  }
  std::vector<std::shared_ptr<const sink>> out;
  std::set<std::string, std::less<>> names;
  std::size_t index = 0;
  for (const simdjson::dom::element element : array) {
    const auto fail = [index](std::string_view field, std::string_view what) {
      return std::unexpected(fmt::format("webhook[{}].{} {}", index, field, what));
    };
    simdjson::dom::object object;
    if (element.get_object().get(object) != simdjson::SUCCESS) {
      return std::unexpected(fmt::format("webhook[{}] must be an object", index));
    }
    auto s = std::make_shared<sink>();
    bool has_name = false;
    bool has_url = false;
    for (const auto field : object) {
      const std::string_view key = field.key;
      std::string_view text;
      if (key == "name" || key == "url" || key == "secret") {
        if (field.value.get_string().get(text) != simdjson::SUCCESS) return fail(key, "must be a string");
        if (key == "name") {
          if (text.empty() || text.size() > 128 || text.find('/') != std::string_view::npos)
            return fail(key, "must be 1 to 128 characters without '/'");
          s->name = text;
          has_name = true;
        } else if (key == "url") {
          if (!(text.starts_with("http://") || text.starts_with("https://")) || text.size() > 2048)
            return fail(key, "must be an http:// or https:// URL");
          s->url = text;
          has_url = true;
        } else {
          s->secret = text;
        }
      } else if (key == "max_in_flight" || key == "timeout_ms") {
        std::uint64_t n = 0;
        if (field.value.get_uint64().get(n) != simdjson::SUCCESS)
          return fail(key, "must be a positive integer");
        if (key == "max_in_flight") {
          if (n < 1 || n > 1024) return fail(key, "must be between 1 and 1024");
          s->max_in_flight = n;
        } else {
          if (n < 1 || n > 300000) return fail(key, "must be between 1 and 300000");
          s->timeout = std::chrono::milliseconds(n);
        }
      } else if (key == "headers") {
        simdjson::dom::object headers;
        if (field.value.get_object().get(headers) != simdjson::SUCCESS)
          return fail(key, "must be an object of strings");
        for (const auto h : headers) {
          std::string_view value;
          if (h.value.get_string().get(value) != simdjson::SUCCESS)
            return fail(key, "must be an object of strings");
          if (!is_token(h.key)) return fail(key, fmt::format("has an invalid header name \"{}\"", h.key));
          if (reserved_header(h.key)) return fail(key, fmt::format("cannot set \"{}\"", h.key));
          if (value.find_first_of("\r\n") != std::string_view::npos ||
              value.find('\0') != std::string_view::npos)
            return fail(key, fmt::format("\"{}\" has a control character", h.key));
          s->headers.emplace_back(std::string(h.key), std::string(value));
        }
      } else {
        return std::unexpected(fmt::format("webhook[{}] has an unknown field \"{}\"", index, key));
      }
    }
    if (!has_name) return fail("name", "is required");
    if (!has_url) return fail("url", "is required");
    if (!names.insert(s->name).second) return fail("name", fmt::format("\"{}\" is used twice", s->name));
    out.push_back(std::move(s));
    ++index;
  }
  return out;
}

}  // namespace switchboard::webhook
