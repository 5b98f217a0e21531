#include "broker/event_proxy/stream_ticket.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <charconv>
#include <stdexcept>

#include "broker/http_client/signature.h"

namespace switchboard::event_proxy {
namespace {

constexpr std::size_t max_ticket_bytes = 2048;
constexpr std::size_t mac_hex_digits = 64;

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
  return out;
}

std::optional<std::string> unhex(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 2);
  for (std::size_t i = 0; i < text.size(); i += 2) {
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(text.data() + i, text.data() + i + 2, v, 16);
    if (ec != std::errc{} || end != text.data() + i + 2) return std::nullopt;
    out += static_cast<char>(v);
  }
  return out;
}

bool is_lower_hex(std::string_view s) {
  return s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

}  // namespace

std::optional<ticket_fields> parse_ticket(std::string_view text) {
  if (text.size() > max_ticket_bytes || !text.starts_with("v1.")) return std::nullopt;
  text.remove_prefix(3);
  std::string_view part[4];
  for (int i = 0; i < 4; ++i) {
    const std::size_t dot = text.find('.');
    if (i < 3 && dot == std::string_view::npos) return std::nullopt;
    if (i == 3 && dot != std::string_view::npos) return std::nullopt;
    part[i] = text.substr(0, dot);
    if (i < 3) text.remove_prefix(dot + 1);
  }
  ticket_fields f;
  const std::string_view t = part[0];
  if (t.empty() || t.front() < '0' || t.front() > '9') return std::nullopt;
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), f.expires_at);
  if (ec != std::errc{} || end != t.data() + t.size()) return std::nullopt;
  auto name = unhex(part[1]);
  auto tenant = unhex(part[2]);
  if (!name || !tenant || name->empty()) return std::nullopt;
  if (part[3].size() != mac_hex_digits || !is_lower_hex(part[3])) return std::nullopt;
  f.name = std::move(*name);
  f.tenant = std::move(*tenant);
  f.mac = std::string(part[3]);
  return f;
}

ticket_signer::ticket_signer() {
  if (RAND_bytes(_key.data(), static_cast<int>(_key.size())) != 1) {
    throw std::runtime_error("stream tickets: no random bytes for the signing key");
  }
}

std::string ticket_signer::mac(std::int64_t expires_at, std::string_view name, std::string_view tenant,
                               std::string_view pattern) const {
  // Length-prefixed fields: no two (name, tenant, pattern) triples share a signed text.
  const std::string body = fmt::format("stream-ticket|{}:{}|{}:{}|{}:{}", name.size(), name, tenant.size(),
                                       tenant, pattern.size(), pattern);
  const std::string_view key(reinterpret_cast<const char*>(_key.data()), _key.size());
  return http_client::signature_hmac(key, expires_at, body);
}

std::string ticket_signer::issue(const auth::principal& who, std::string_view pattern,
                                 std::int64_t expires_at) const {
  return fmt::format("v1.{}.{}.{}.{}", expires_at, hex(who.name), hex(who.tenant),
                     mac(expires_at, who.name, who.tenant, pattern));
}

std::expected<auth::principal, std::string> ticket_signer::verify(std::string_view text,
                                                                  std::string_view pattern,
                                                                  std::int64_t now) const {
  const auto f = parse_ticket(text);
  if (!f) return std::unexpected("malformed ticket");
  const std::string want = mac(f->expires_at, f->name, f->tenant, pattern);
  if (CRYPTO_memcmp(want.data(), f->mac.data(), mac_hex_digits) != 0) {
    return std::unexpected("ticket signature does not match this pattern or broker");
  }
  if (now > f->expires_at) return std::unexpected("ticket expired");
  return auth::principal{
      .name = f->name, .tenant = f->tenant, .admin = false, .publish = false, .subscribe = true};
}

}  // namespace switchboard::event_proxy
