#include "broker/http_client/signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <cstdlib>
#include <optional>
#include <vector>

namespace switchboard::http_client {

std::string signature_hmac(std::string_view secret, std::int64_t unix_time, std::string_view body) {
  const std::string t = std::to_string(unix_time);
  std::string message;
  message.reserve(t.size() + 1 + body.size());
  message.append(t).append(".").append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &mac_len) == nullptr) {
    return {};
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * mac_len);
  for (unsigned i = 0; i < mac_len; ++i) {
    hex.push_back(digits[mac[i] >> 4]);
    hex.push_back(digits[mac[i] & 0xf]);
  }
  return hex;
}

std::string sign(std::string_view secret, std::int64_t unix_time, std::string_view body) {
  return "t=" + std::to_string(unix_time) + ",v1=" + signature_hmac(secret, unix_time, body);
}

verify_result verify(std::string_view header_value, std::string_view secret, std::string_view body,
                     std::int64_t now_unix, std::int64_t tolerance_s) {
  std::optional<std::int64_t> t;
  std::vector<std::string_view> candidates;
  while (!header_value.empty()) {
    const auto comma = header_value.find(',');
    std::string_view part = header_value.substr(0, comma);
    header_value = comma == std::string_view::npos ? std::string_view{} : header_value.substr(comma + 1);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.starts_with("t=")) {
      std::int64_t v = 0;
      const auto digits = part.substr(2);
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
      if (ec != std::errc{} || end != digits.data() + digits.size()) return verify_result::malformed;
      t = v;
    } else if (part.starts_with("v1=")) {
      candidates.push_back(part.substr(3));
    }
  }
  if (!t || candidates.empty()) return verify_result::malformed;
  if (*t > now_unix + tolerance_s || *t < now_unix - tolerance_s) return verify_result::stale;
  const std::string expected = signature_hmac(secret, *t, body);
  for (auto c : candidates) {
    if (c.size() == expected.size() && CRYPTO_memcmp(c.data(), expected.data(), c.size()) == 0) {
      return verify_result::ok;
    }
  }
  return verify_result::bad_signature;
}

}  // namespace switchboard::http_client
