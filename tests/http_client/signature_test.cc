// The request signature against a value computed independently with
//   printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec
#include "broker/http_client/signature.h"

#include <gtest/gtest.h>

namespace switchboard::http_client {
namespace {

constexpr std::string_view known = "8ad37ba156048ae0e0a5533c75cdf26fee88b07f93cb57ee4c80adb053012032";

TEST(Signature, MatchesOpensslCommandLine) {
  EXPECT_EQ(signature_hmac("whsec", 1700000000, R"({"a":1})"), known);
  EXPECT_EQ(sign("whsec", 1700000000, R"({"a":1})"), std::string("t=1700000000,v1=") + std::string(known));
}

TEST(Signature, VerifyAcceptsOwnSignatureAndAnyMatchingV1) {
  const auto header = sign("whsec", 1700000000, "body");
  EXPECT_EQ(verify(header, "whsec", "body", 1700000010), verify_result::ok);
  EXPECT_EQ(verify("t=1700000000,v1=00," + header.substr(header.find("v1=")), "whsec", "body", 1700000000),
            verify_result::ok);
}

TEST(Signature, VerifyRefusesTamperingStaleAndMalformed) {
  const auto header = sign("whsec", 1700000000, "body");
  EXPECT_EQ(verify(header, "whsec", "body!", 1700000000), verify_result::bad_signature);
  EXPECT_EQ(verify(header, "other", "body", 1700000000), verify_result::bad_signature);
  EXPECT_EQ(verify(header, "whsec", "body", 1700000000 + 301), verify_result::stale);
  EXPECT_EQ(verify(header, "whsec", "body", 1700000000 - 301), verify_result::stale);
  EXPECT_EQ(verify("v1=abc", "whsec", "body", 1700000000), verify_result::malformed);
  EXPECT_EQ(verify("t=1700000000", "whsec", "body", 1700000000), verify_result::malformed);
  EXPECT_EQ(verify("t=17x,v1=ab", "whsec", "body", 1700000000), verify_result::malformed);
  EXPECT_EQ(verify("", "whsec", "body", 1700000000), verify_result::malformed);
}

}  // namespace
}  // namespace switchboard::http_client
