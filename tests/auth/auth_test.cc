// Tests for broker/auth: token entry parsing (exact messages), authentication, the open table and the
// tenant rule.
#include "broker/auth/auth.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace switchboard::auth {
namespace {

std::string parse_error(std::string_view text) {
  auto r = parse_token_entry(text);
  EXPECT_FALSE(r.has_value()) << text;
  return r ? std::string() : r.error();
}

TEST(token_entry, parses_name_secret_tenant_scopes) {
  auto e = parse_token_entry("acme-ops:s3cret:acme:admin,publish");
  ASSERT_TRUE(e.has_value()) << e.error();
  EXPECT_EQ(e->who, (principal{"acme-ops", "acme", true, true, false}));
  EXPECT_EQ(e->secret, "s3cret");
}

TEST(token_entry, secret_may_contain_colons) {
  auto e = parse_token_entry("svc:a:b:c:*:subscribe");
  ASSERT_TRUE(e.has_value()) << e.error();
  EXPECT_EQ(e->secret, "a:b:c");
  EXPECT_EQ(e->who, (principal{"svc", "*", false, false, true}));
}

TEST(token_entry, malformed_entries_name_the_entry_not_the_secret) {
  EXPECT_EQ(parse_error("x"), R"(token entry "x" must be NAME:SECRET:TENANT:SCOPES)");
  EXPECT_EQ(parse_error("x:secret"), R"(token entry "x" must be NAME:SECRET:TENANT:SCOPES)");
  EXPECT_EQ(parse_error("x:secret:acme"), R"(token entry "x" must be NAME:SECRET:TENANT:SCOPES)");
  EXPECT_EQ(parse_error(":s:acme:admin"), R"(token entry "" must be NAME:SECRET:TENANT:SCOPES)");
  EXPECT_EQ(parse_error(""), R"(token entry "" must be NAME:SECRET:TENANT:SCOPES)");
}

TEST(token_entry, field_errors_are_exact) {
  EXPECT_EQ(parse_error("x::acme:admin"), R"(token "x" has an empty secret)");
  EXPECT_EQ(parse_error("x:s:a.b:admin"), R"(token "x" has an invalid tenant "a.b"; a tenant is "*" or one channel token)");
  EXPECT_EQ(parse_error("x:s::admin"), R"(token "x" has an invalid tenant ""; a tenant is "*" or one channel token)");
  EXPECT_EQ(parse_error("x:s:>:admin"), R"(token "x" has an invalid tenant ">"; a tenant is "*" or one channel token)");
  EXPECT_EQ(parse_error("x:s:acme:"), R"(token "x" has no scopes)");
  EXPECT_EQ(parse_error("x:s:acme:admin,root"), R"(token "x" has an unknown scope "root"; scopes are admin, publish, subscribe)");
  EXPECT_EQ(parse_error("x:s:acme:admin,"), R"(token "x" has an unknown scope ""; scopes are admin, publish, subscribe)");
}

TEST(token_entry, quoting_is_printable_ascii) {
  EXPECT_EQ(quote("a\"b\\c\n\x01\xff"), R"("a\"b\\c\x0a\x01\xff")");
}

TEST(token_table, empty_table_is_open_and_everyone_is_anonymous_admin) {
  auto t = token_table::make("", {});
  ASSERT_TRUE(t.has_value());
  EXPECT_TRUE(t->open());
  EXPECT_EQ(t->authenticate("anything"), anonymous_principal());
  EXPECT_EQ(anonymous_principal(), (principal{"anonymous", "*", true, true, true}));
}

TEST(token_table, authenticates_admin_token_and_config_entries) {
  const std::vector<std::string> entries{"acme-pub:p4ss:acme:publish", "globex:g:globex:admin,subscribe"};
  auto t = token_table::make("t0k", entries);
  ASSERT_TRUE(t.has_value()) << t.error();
  EXPECT_FALSE(t->open());
  EXPECT_EQ(t->size(), 3u);
  EXPECT_EQ(t->authenticate("t0k"), (principal{"admin", "*", true, true, true}));
  EXPECT_EQ(t->authenticate("p4ss"), (principal{"acme-pub", "acme", false, true, false}));
  EXPECT_EQ(t->authenticate("g"), (principal{"globex", "globex", true, false, true}));
  EXPECT_EQ(t->authenticate(""), std::nullopt);
  EXPECT_EQ(t->authenticate("t0"), std::nullopt);
  EXPECT_EQ(t->authenticate("t0kk"), std::nullopt);
  EXPECT_EQ(t->authenticate("T0K"), std::nullopt);
}

TEST(token_table, config_entries_alone_close_the_table) {
  const std::vector<std::string> entries{"a:s:acme:publish"};
  auto t = token_table::make("", entries);
  ASSERT_TRUE(t.has_value());
  EXPECT_FALSE(t->open());
  EXPECT_EQ(t->authenticate("t0k"), std::nullopt);
}

TEST(token_table, rejects_bad_entries_duplicates_and_shared_secrets) {
  const std::vector<std::string> bad{"a:s:acme:publish", "b"};
  EXPECT_EQ(token_table::make("t", bad).error(), R"(token entry "b" must be NAME:SECRET:TENANT:SCOPES)");
  const std::vector<std::string> twice{"a:s1:acme:publish", "a:s2:acme:publish"};
  EXPECT_EQ(token_table::make("", twice).error(), R"(token "a" is listed twice)");
  const std::vector<std::string> admin_name{"admin:s1:*:admin"};
  EXPECT_EQ(token_table::make("t", admin_name).error(), R"(token "admin" is listed twice)");
  const std::vector<std::string> shared{"a:same:acme:publish", "b:same:globex:publish"};
  EXPECT_EQ(token_table::make("", shared).error(), R"(tokens "a" and "b" have the same secret)");
  const std::vector<std::string> as_admin{"a:t0k:acme:publish"};
  EXPECT_EQ(token_table::make("t0k", as_admin).error(), R"(tokens "admin" and "a" have the same secret)");
}

TEST(tenant_rule, star_tenant_uses_everything) {
  const principal op{"admin", "*", true, true, true};
  EXPECT_TRUE(may_use(op, "globex.calls").has_value());
  EXPECT_TRUE(may_use(op, ">").has_value());
  EXPECT_TRUE(may_use(op, "*.calls.>").has_value());
}

TEST(tenant_rule, tenant_uses_only_its_first_token) {
  const principal acme{"acme-ops", "acme", true, true, true};
  EXPECT_TRUE(may_use(acme, "acme").has_value());
  EXPECT_TRUE(may_use(acme, "acme.calls.CA1").has_value());
  EXPECT_TRUE(may_use(acme, "acme.calls.>").has_value());
  EXPECT_TRUE(may_use(acme, "acme.*").has_value());
  EXPECT_EQ(may_use(acme, "globex.calls").error(), R"(tenant "acme" may not use "globex.calls")");
  EXPECT_EQ(may_use(acme, "acmex.calls").error(), R"(tenant "acme" may not use "acmex.calls")");
  EXPECT_EQ(may_use(acme, "*.calls").error(), R"(tenant "acme" may not use "*.calls")");
  EXPECT_EQ(may_use(acme, ">").error(), R"(tenant "acme" may not use ">")");
  EXPECT_EQ(may_use(acme, "").error(), R"(tenant "acme" may not use "")");
}

// SIGHUP reload (issue 19): replace() swaps the tokens for every copy of the table and names the
// tokens that stopped being valid as they were.
TEST(token_table, replace_reaches_every_copy_and_names_removed_or_changed_tokens) {
  const std::vector<std::string> before{"keep:k33p:*:publish", "gone:g0ne:*:publish", "rekey:old:*:publish",
                                        "rescope:r3s:acme:publish"};
  auto table = token_table::make("adm1n", before);
  ASSERT_TRUE(table) << table.error();
  const token_table copy = *table;  // e.g. the admin API's
  const std::vector<std::string> after{"keep:k33p:*:publish", "rekey:new:*:publish", "rescope:r3s:acme:subscribe",
                                       "fresh:fr3sh:*:publish"};
  auto next = token_table::make("adm1n", after);
  ASSERT_TRUE(next) << next.error();
  EXPECT_EQ(table->replace(*next), (std::vector<std::string>{"gone", "rekey", "rescope"}));
  EXPECT_EQ(copy.size(), 5u);
  EXPECT_FALSE(copy.authenticate("g0ne").has_value());
  EXPECT_FALSE(copy.authenticate("old").has_value());
  EXPECT_EQ(copy.authenticate("new")->name, "rekey");
  EXPECT_EQ(copy.authenticate("fr3sh")->name, "fresh");
  EXPECT_EQ(copy.authenticate("k33p")->name, "keep");
  EXPECT_EQ(copy.authenticate("adm1n")->name, "admin");
  // From open to tokens: anonymous sessions are the ones to close.
  token_table open;
  EXPECT_EQ(open.replace(*next), std::vector<std::string>{"anonymous"});
  EXPECT_FALSE(open.open());
}

}  // namespace
}  // namespace switchboard::auth
