// Bearer tokens: who is calling the admin API (and, later, the protocol HELLO), with which tenant and
// scopes, and which channel names a caller may use.
//
// Tokens come from two places:
//   - the admin token (`--admin-token`): name "admin", tenant "*", every scope;
//   - config-file entries `token = NAME:SECRET:TENANT:SCOPES`, SCOPES a comma list of admin, publish,
//     subscribe (e.g. `token = acme-ops:s3cret:acme:admin,publish`). NAME is the text before the
//     first ':', TENANT and SCOPES the last two fields; SECRET is everything in between (so it may
//     itself contain ':').
// With no token at all the table is `open()`: every caller is principal{"anonymous", "*", all scopes}.
//
// Tenant rule: tenant "*" may use any channel or pattern. Any other tenant may use only names whose
// first dot-separated token equals the tenant (`acme` may use `acme`, `acme.calls.CA1`,
// `acme.calls.>`, but not `globex.calls` nor `acmex.calls`); a pattern whose first token is `*` or
// `>` spans every tenant, so it is refused for tenant tokens. A tenant is "*" or one channel token
// (no dot, no wildcard, no whitespace), so the rule can be checked on the first token alone.
//
// Error messages (exact, asserted by tests/auth/auth_test.cc). <name> is the entry's NAME field (the
// text before its first ':'), never the secret; quoted text is printable ASCII (`"` and `\` escaped,
// other bytes outside 0x20..0x7E as \xHH):
//   token entry "<name>" must be NAME:SECRET:TENANT:SCOPES
//   token "<name>" has an empty secret
//   token "<name>" has an invalid tenant "<tenant>"; a tenant is "*" or one channel token
//   token "<name>" has an unknown scope "<scope>"; scopes are admin, publish, subscribe
//   token "<name>" has no scopes
//   token "<name>" is listed twice
//   tokens "<a>" and "<b>" have the same secret
//   tenant "<tenant>" may not use "<name>"
//
// Thread-safety: const members of token_table may be called from any thread concurrently, also while
// another thread replace()s its tokens (SIGHUP reload): each call sees either the old or the new set,
// never a mix. The free functions are pure.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::auth {

// Who is calling, after authentication.
struct principal {
  std::string name;    // token name, for logs ("admin", "anonymous", or the config entry's NAME)
  std::string tenant;  // "*" = all tenants
  bool admin = false;
  bool publish = false;
  bool subscribe = false;

  friend bool operator==(const principal&, const principal&) = default;
};

// One configured token: who it stands for and its secret.
struct token_entry {
  principal who;
  std::string secret;
};

// Parses one `NAME:SECRET:TENANT:SCOPES` entry (the value of a `token =` config line, or one element of
// server::options::tokens). Returns the entry, or one of the one-line messages listed above.
[[nodiscard]] std::expected<token_entry, std::string> parse_token_entry(std::string_view text);

// The set of tokens the broker accepts. Secrets are kept only as SHA-256 digests, and authenticate()
// compares against every digest without early exit (CRYPTO_memcmp), so its timing does not depend on
// which token, if any, matched, nor on how many leading bytes of a secret are right.
class token_table {
 public:
  // An open table (no tokens): everyone is anonymous with every scope.
  token_table() = default;
  // Copies are handles to one live table: a replace() through any of them is seen by all (the admin
  // API keeps a copy, the transport a pointer; a SIGHUP reload reaches both).
  token_table(const token_table&) = default;
  token_table& operator=(const token_table&) = default;

  // Builds the table from the admin token (empty = none) and config entries. Returns the first
  // error: a malformed entry, a name listed twice (the admin token's name is "admin"), or two
  // tokens with the same secret.
  [[nodiscard]] static std::expected<token_table, std::string> make(std::string_view admin_token,
                                                                    std::span<const std::string> entries);

  // The principal whose secret equals `secret`, or nullopt. In an open table: the anonymous
  // principal for any input. Does not allocate beyond the returned principal; never blocks.
  [[nodiscard]] std::optional<principal> authenticate(std::string_view secret) const;

  // True when no token is configured at all (authentication is off).
  [[nodiscard]] bool open() const noexcept { return _live->load()->empty(); }
  // Number of configured tokens.
  [[nodiscard]] std::size_t size() const noexcept { return _live->load()->size(); }

  // Makes `next`'s tokens the ones in force (a reload). Returns the names of the tokens that stopped
  // being valid as they were: removed, or given another secret, tenant or scopes ("anonymous" when
  // authentication was off and is now on). Sessions opened with them should be closed.
  std::vector<std::string> replace(const token_table& next);

 private:
  using digest = std::array<unsigned char, 32>;
  struct stored_token {
    principal who;
    digest secret_sha256;
  };
  using token_set = std::vector<stored_token>;
  using live_set = std::atomic<std::shared_ptr<const token_set>>;
  // Never null; shared by every copy of this table.
  std::shared_ptr<live_set> _live = std::make_shared<live_set>(std::make_shared<const token_set>());
};

// The principal an open table hands out.
[[nodiscard]] principal anonymous_principal();

// Whether `who` may use the channel or pattern `name` (tenant rule above). Returns nothing, or
// `tenant "<tenant>" may not use "<name>"`. Does not validate `name` as a channel or pattern.
[[nodiscard]] std::expected<void, std::string> may_use(const principal& who, std::string_view name);

// `text` in double quotes for a message: printable ASCII kept (`"`, `\` escaped), other bytes as \xHH.
[[nodiscard]] std::string quote(std::string_view text);

}  // namespace switchboard::auth
