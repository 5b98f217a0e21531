// libFuzzer entry for the admin API's request handling: the input is the raw bytes of one HTTP
// request, parsed with Boost.Beast's request_parser under the server's limits (as http_server does),
// then routed, authenticated and validated by admin_api against the in-memory control.
//
//   scripts/fuzz.sh admin_request SECONDS      libFuzzer (clang-16, ASan+UBSan)
//   admin_request_fuzz_test, fuzz_replay_admin_request   replay seeds and mutations on every build
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "admin/memory_control.h"
#include "broker/admin/admin_api.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;

// The admin token "t0k" and a tenant token "acmesecret" (tenant acme), as in admin_server_test.
struct auth_tokens {
  switchboard::auth::token_table table = [] {
    const std::string entries[] = {"acme-ops:acmesecret:acme:admin,publish,subscribe"};
    auto t = switchboard::auth::token_table::make("t0k", entries);
    if (!t) __builtin_trap();
    return std::move(*t);
  }();
};

switchboard::admin::admin_api& api() {
  static switchboard::test::memory_control ctl;
  static const auth_tokens tokens;
  static switchboard::admin::admin_api a(
      tokens.table, ctl,
      {{"/v1/_fuzz/stream",
        [](const switchboard::admin::stream_request&)
            -> std::expected<switchboard::admin::http_response, switchboard::admin::api_error> {
          switchboard::admin::http_response r;
          r.stream = std::make_shared<switchboard::admin::response_stream>();
          return r;
        }}},
      [] { return std::string("switchboard_admin_connections 0\n"); });
  return a;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  http::request_parser<http::string_body> parser;
  parser.eager(true);
  parser.header_limit(16 * 1024);
  parser.body_limit(64 * 1024);
  beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_done()) return 0;
  const auto& msg = parser.get();
  switchboard::admin::http_request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  for (const auto& f : msg) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  req.body = msg.body();
  const auto r = switchboard::admin::admin_api::is_health_probe(req) ? switchboard::admin::admin_api::health()
                                                                    : api().handle(req);
  if (r.status < 100 || r.status > 599) __builtin_trap();
  if (r.stream) r.stream->close();
  return 0;
}
