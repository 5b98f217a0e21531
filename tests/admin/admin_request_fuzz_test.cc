// Replays the admin request fuzz entry (admin_request_fuzz.cc) on every build: hand-written seed
// requests, then 20 000 deterministic mutations of them (byte flips, truncations, splices). Nothing
// may crash, and every parsed request gets a status in 100..599 (checked inside the entry).
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

int run(const std::string& s) { return LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()); }

const std::vector<std::string>& seeds() {
  static const std::vector<std::string> s = {
      "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n",
      "GET /v1/channels HTTP/1.1\r\nAuthorization: Bearer t0k\r\n\r\n",
      "PUT /v1/channels/acme.calls HTTP/1.1\r\nAuthorization: Bearer t0k\r\nContent-Length: 16\r\n\r\n{\"durable\":true}",
      "PATCH /v1/channels/acme.%3E HTTP/1.1\r\nAuthorization: Bearer acmesecret\r\nContent-Length: 2\r\n\r\n{}",
      "POST /v1/channels/acme.ev/events HTTP/1.1\r\nAuthorization: Bearer t0k\r\nIdempotency-Key: k\r\n"
      "Transfer-Encoding: chunked\r\n\r\n7\r\n{\"n\":1}\r\n0\r\n\r\n",
      "GET /v1/channels/acme.log/events?from_seq=1&limit=10 HTTP/1.1\r\nAuthorization: Bearer t0k\r\n\r\n",
      "POST /v1/subscriptions HTTP/1.1\r\nAuthorization: Bearer t0k\r\nContent-Length: 6\r\n\r\n[[[[[[",
      "DELETE /v1/subscriptions/s1 HTTP/1.1\r\nAuthorization: Bearer t0k\r\n\r\n",
      "POST /v1/dead-letters/x/redrive HTTP/1.1\r\nAuthorization: bearer  t0k \r\nContent-Length: 0\r\n\r\n",
      "GET /v1/_fuzz/stream HTTP/1.1\r\nAuthorization: Bearer t0k\r\n\r\n",
      "HEAD /v1/channels/a..b HTTP/1.0\r\n\r\n",
      "OPTIONS /v1/channels/%zz HTTP/1.1\r\n\r\n",
  };
  return s;
}

TEST(admin_request_fuzz_test, seeds) {
  for (const auto& s : seeds()) EXPECT_EQ(run(s), 0) << s;
  EXPECT_EQ(run("POST /v1/channels/x.y/events HTTP/1.1\r\nAuthorization: Bearer t0k\r\nContent-Length: 60000\r\n\r\n" +
                std::string(60000, '[')),
            0);
}

TEST(admin_request_fuzz_test, deterministic_mutations) {
  std::mt19937 rng(14);
  const auto& s = seeds();
  for (int i = 0; i < 20'000; ++i) {
    std::string in = s[rng() % s.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !in.empty(); ++e) {
      const std::size_t at = rng() % in.size();
      switch (rng() % 4) {
        case 0: in[at] = static_cast<char>(rng()); break;
        case 1: in.resize(at); break;
        case 2: in.insert(at, s[rng() % s.size()].substr(0, rng() % 40)); break;
        default: in.insert(at, std::string(rng() % 8, "[{\"%/\r\n"[rng() % 7])); break;
      }
    }
    ASSERT_EQ(run(in), 0) << in;
  }
}

}  // namespace
