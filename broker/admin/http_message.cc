#include "broker/admin/http_message.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace switchboard::admin {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  });
}

// Percent-decodes a query component ('+' is a space); nullopt on a malformed escape.
std::optional<std::string> decode_query(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] != '%') {
      out += s[i];
    } else {
      unsigned v = 0;
      if (i + 2 >= s.size()) return std::nullopt;
      const auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec != std::errc{} || p != s.data() + i + 3) return std::nullopt;
      out += static_cast<char>(v);
      i += 2;
    }
  }
  return out;
}

}  // namespace

std::string_view http_request::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

std::string_view http_request::path() const {
  const std::string_view t = target;
  return t.substr(0, t.find('?'));
}

std::optional<std::string> http_request::query(std::string_view name) const {
  std::string_view t = target;
  const std::size_t q = t.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  t.remove_prefix(q + 1);
  while (!t.empty()) {
    const std::size_t amp = t.find('&');
    const std::string_view pair = t.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (decode_query(pair.substr(0, eq)) == std::string(name)) {
      return eq == std::string_view::npos ? std::string() : decode_query(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    t.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

file_body::~file_body() {
  if (_fd >= 0) ::close(_fd);
}

void deferred_response::complete(http_response r) {
  std::function<void(http_response)> sink;
  {
    std::lock_guard lock(_mutex);
    if (_done) return;
    _done = true;
    if (!_sink) {
      _result = std::make_unique<http_response>(std::move(r));
      return;
    }
    sink = std::move(_sink);
  }
  sink(std::move(r));
}

void deferred_response::on_complete(std::function<void(http_response)> sink) {
  std::unique_ptr<http_response> ready;
  {
    std::lock_guard lock(_mutex);
    if (!_result) {
      _sink = std::move(sink);
      return;
    }
    ready = std::move(_result);
  }
  sink(std::move(*ready));
}

}  // namespace switchboard::admin
