#include "broker/media/media_id.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace switchboard::media {
namespace {

constexpr std::size_t id_hex_digits = 32;

char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  return std::ranges::equal(a, b, [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

void add_field(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
}

std::string hashed_id(std::string_view prefix, const std::string& input) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest(SHA-256) failed");  // only when OpenSSL is broken
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string id(prefix);
  for (std::size_t i = 0; i < id_hex_digits / 2; ++i) {
    id += hex[digest[i] >> 4];
    id += hex[digest[i] & 0xf];
  }
  return id;
}

}  // namespace

std::vector<std::string> default_volatile_query_params() {
  return {"X-Amz-Signature", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-Security-Token",
          "X-Amz-SignedHeaders", "Signature", "Expires", "Key-Pair-Id", "Policy", "sig", "token"};
}

std::string canonical_url(std::string_view url, std::span<const std::string> volatile_params) {
  url = url.substr(0, url.find('#'));
  const std::size_t q = url.find('?');
  std::string_view base = url.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : url.substr(q + 1);

  std::string out;
  out.reserve(url.size());
  // scheme://host[:port] lower-cased; userinfo (before '@') dropped: credentials do not name the
  // resource, and the canonical URL is stored, logged and published; the path keeps its case.
  const std::size_t scheme_end = base.find("://");
  if (scheme_end != std::string_view::npos) {
    const std::size_t authority_start = scheme_end + 3;
    const std::size_t authority_end = std::min(base.find('/', authority_start), base.size());
    const std::size_t at = base.substr(0, authority_end).rfind('@');
    const std::size_t host_start = at == std::string_view::npos || at < authority_start ? authority_start : at + 1;
    for (std::size_t i = 0; i < base.size(); ++i) {
      if (i >= authority_start && i < host_start) continue;  // userinfo
      const bool lower = i < scheme_end || (i >= host_start && i < authority_end);
      out += lower ? ascii_lower(base[i]) : base[i];
    }
  } else {
    out += base;
  }

  bool first = true;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (param.empty()) continue;
    const std::string_view name = param.substr(0, param.find('='));
    const bool drop = std::ranges::any_of(volatile_params, [name](const std::string& v) { return iequals(name, v); });
    if (drop) continue;
    out += first ? '?' : '&';
    out += param;
    first = false;
  }
  return out;
}

std::string url_media_id(std::string_view url, format fmt, std::span<const std::string> volatile_params) {
  std::string input;
  add_field(input, "url");
  add_field(input, canonical_url(url, volatile_params));
  add_field(input, format_name(fmt));
  return hashed_id("u-", input);
}

std::string speech_media_id(std::string_view text, std::string_view voice, int rate, format fmt) {
  std::string input;
  add_field(input, "say");
  add_field(input, voice);
  add_field(input, std::to_string(rate));
  add_field(input, format_name(fmt));
  add_field(input, text);
  return hashed_id("t-", input);
}

bool is_media_id(std::string_view id) noexcept {
  if (id.size() != 2 + id_hex_digits || (id[0] != 'u' && id[0] != 't') || id[1] != '-') return false;
  return std::ranges::all_of(id.substr(2), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace switchboard::media
