#include "broker/auth/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>

namespace switchboard::auth {
namespace {

constexpr std::string_view entry_format = "must be NAME:SECRET:TENANT:SCOPES";

std::array<unsigned char, 32> sha256(std::string_view text) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  // EVP_Digest only fails on allocation failure; the digest is then all zeros and matches nothing
  // a real secret hashes to (with overwhelming probability).
  (void)EVP_Digest(text.data(), text.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

// A tenant is "*" or one channel token: non-empty, no '.', no whitespace/NUL, not a wildcard.
bool valid_tenant(std::string_view t) {
  if (t == "*") return true;
  if (t.empty() || t == ">") return false;
  return std::none_of(t.begin(), t.end(), [](char c) {
    return c == '.' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0' || c == '*' || c == '>';
  });
}

}  // namespace

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (b >= 0x20 && b <= 0x7e) {
      out += c;
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", b);
      out += buf;
    }
  }
  out += '"';
  return out;
}

principal anonymous_principal() { return principal{"anonymous", "*", true, true, true}; }

std::expected<token_entry, std::string> parse_token_entry(std::string_view text) {
  const std::size_t first = text.find(':');
  const std::string_view name = text.substr(0, first);
  const auto bad_format = [&] { return std::unexpected("token entry " + quote(name) + " " + std::string(entry_format)); };
  const std::size_t last = text.rfind(':');
  if (first == std::string_view::npos || last == first) return bad_format();
  const std::size_t second_last = text.rfind(':', last - 1);
  if (second_last == first || name.empty()) return bad_format();

  token_entry entry;
  entry.who.name = std::string(name);
  entry.secret = std::string(text.substr(first + 1, second_last - first - 1));
  const std::string_view tenant = text.substr(second_last + 1, last - second_last - 1);
  std::string_view scopes = text.substr(last + 1);
  if (entry.secret.empty()) return std::unexpected("token " + quote(name) + " has an empty secret");
  if (!valid_tenant(tenant)) {
    return std::unexpected("token " + quote(name) + " has an invalid tenant " + quote(tenant) +
                           "; a tenant is \"*\" or one channel token");
  }
  entry.who.tenant = std::string(tenant);
  if (scopes.empty()) return std::unexpected("token " + quote(name) + " has no scopes");
  while (true) {
    const std::size_t comma = scopes.find(',');
    const std::string_view scope = scopes.substr(0, comma);
    if (scope == "admin") {
      entry.who.admin = true;
    } else if (scope == "publish") {
      entry.who.publish = true;
    } else if (scope == "subscribe") {
      entry.who.subscribe = true;
    } else {
      return std::unexpected("token " + quote(name) + " has an unknown scope " + quote(scope) +
                             "; scopes are admin, publish, subscribe");
    }
    if (comma == std::string_view::npos) break;
    scopes.remove_prefix(comma + 1);
  }
  return entry;
}

std::expected<token_table, std::string> token_table::make(std::string_view admin_token,
                                                          std::span<const std::string> entries) {
  std::vector<token_entry> all;
  if (!admin_token.empty()) all.push_back(token_entry{principal{"admin", "*", true, true, true}, std::string(admin_token)});
  for (const std::string& text : entries) {
    auto entry = parse_token_entry(text);
    if (!entry) return std::unexpected(std::move(entry.error()));
    all.push_back(std::move(*entry));
  }
  token_table table;
  auto tokens = std::make_shared<token_set>();
  for (std::size_t i = 0; i < all.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (all[j].who.name == all[i].who.name) {
        return std::unexpected("token " + quote(all[i].who.name) + " is listed twice");
      }
      if (all[j].secret == all[i].secret) {
        return std::unexpected("tokens " + quote(all[j].who.name) + " and " + quote(all[i].who.name) +
                               " have the same secret");
      }
    }
    tokens->push_back(stored_token{all[i].who, sha256(all[i].secret)});  // copy: all[i] is compared again
  }
  table._live->store(std::move(tokens));
  return table;
}

std::vector<std::string> token_table::replace(const token_table& next) {
  const auto incoming = next._live->load();
  const auto before = _live->exchange(incoming);
  std::vector<std::string> gone;
  if (before->empty()) {
    if (!incoming->empty()) gone.push_back(anonymous_principal().name);
    return gone;
  }
  for (const stored_token& old : *before) {
    const bool kept = std::ranges::any_of(*incoming, [&](const stored_token& t) {
      return t.who == old.who && t.secret_sha256 == old.secret_sha256;
    });
    if (!kept) gone.push_back(old.who.name);
  }
  return gone;
}

std::optional<principal> token_table::authenticate(std::string_view secret) const {
  const auto tokens = _live->load();
  if (tokens->empty()) return anonymous_principal();
  const digest presented = sha256(secret);
  const stored_token* match = nullptr;
  for (const stored_token& t : *tokens) {
    // No early exit: every digest is compared, whatever matched before.
    const bool equal = CRYPTO_memcmp(presented.data(), t.secret_sha256.data(), presented.size()) == 0;
    if (equal) match = &t;
  }
  if (match == nullptr) return std::nullopt;
  return match->who;
}

std::expected<void, std::string> may_use(const principal& who, std::string_view name) {
  if (who.tenant == "*") return {};
  const std::string_view first = name.substr(0, name.find('.'));
  if (first != "*" && first != ">" && first == who.tenant) return {};
  return std::unexpected("tenant " + quote(who.tenant) + " may not use " + quote(name));
}

}  // namespace switchboard::auth
