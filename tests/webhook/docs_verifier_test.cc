// The Python verifier printed in docs/WEBHOOKS.md, run by python3 against headers the broker's
// signer makes: the documented receiver code accepts what the broker sends and rejects a changed
// body, a wrong secret and a stale timestamp. Skipped when python3 is not installed.
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "broker/http_client/signature.h"

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The first ```python block of the document.
std::string python_block(const std::string& doc) {
  const auto start = doc.find("```python\n");
  if (start == std::string::npos) return {};
  const auto body = start + 10;
  const auto end = doc.find("```", body);
  return end == std::string::npos ? std::string() : doc.substr(body, end - body);
}

TEST(DocsVerifier, TheDocumentedPythonAcceptsWhatTheBrokerSigns) {
  if (std::system("python3 -c 'import hmac, hashlib' >/dev/null 2>&1") != 0) GTEST_SKIP() << "no python3";
  const std::string code = python_block(read_file(std::string(SWITCHBOARD_SOURCE_DIR) + "/docs/WEBHOOKS.md"));
  ASSERT_FALSE(code.empty());
  std::size_t lines = 0;
  for (const char c : code) lines += c == '\n' ? 1 : 0;
  EXPECT_LE(lines, 15u) << "the docs promise a verifier of at most 15 lines";

  const std::string body = R"({"order":42,"name":"Zoë"})";
  const std::int64_t now = std::time(nullptr);
  const std::string good = switchboard::http_client::sign("s3cret", now, body);
  const std::string stale = switchboard::http_client::sign("s3cret", now - 3600, body);
  const auto dir = std::filesystem::temp_directory_path() / ("docs_verifier_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "verifier.py") << code;
  std::ofstream(dir / "body.bin", std::ios::binary) << body;
  std::ofstream(dir / "check.py") << "import sys\nfrom verifier import verify\n"
                                  << "body = open(sys.argv[1], 'rb').read()\n"
                                  << "print(verify('" << good << "', b's3cret', body),"
                                  << " verify('" << good << "', b's3cret', body + b' '),"
                                  << " verify('" << good << "', b'other', body),"
                                  << " verify('" << stale << "', b's3cret', body),"
                                  << " verify('v1=abc', b's3cret', body))\n";
  const std::string command = "cd " + dir.string() + " && python3 check.py body.bin";
  FILE* out = ::popen(command.c_str(), "r");
  ASSERT_NE(out, nullptr);
  char buffer[256] = {};
  const std::size_t n = std::fread(buffer, 1, sizeof buffer - 1, out);
  ::pclose(out);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(std::string(buffer, n), "True False False False False\n");
}

}  // namespace
