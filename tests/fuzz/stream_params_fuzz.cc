// libFuzzer target: what the event proxy (broker/event_proxy) parses from the network before it
// subscribes: GET /v1/stream's query string and Last-Event-ID header (stream_params.h), a position
// (client/cloudevent), a stream ticket (stream_ticket.h). The first input byte picks the parser.
// A position that parses must survive format_position -> parse_position unchanged; a ticket this
// signer issued must verify for its own pattern only; nothing may crash or read out of bounds.
#include <array>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "broker/event_proxy/stream_params.h"
#include "broker/event_proxy/stream_ticket.h"
#include "client/cloudevent/cloudevent.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace switchboard;
  if (size < 1) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {  // "<query>\n<Last-Event-ID>"
      const std::size_t nl = text.find('\n');
      admin::http_request req;
      req.method = "GET";
      req.target = "/v1/stream?" + std::string(text.substr(0, nl));
      if (nl != std::string_view::npos)
        req.headers.emplace_back("Last-Event-ID", std::string(text.substr(nl + 1)));
      (void)event_proxy::parse_stream_params(req);
      return 0;
    }
    case 1: {
      const auto p = cloudevent::parse_position(text);
      if (!p) return 0;
      const auto again =
          cloudevent::parse_position(cloudevent::format_position(p->channel, p->epoch, p->seq));
      if (!again || !(*again == *p)) std::abort();
      return 0;
    }
    default: {
      static const event_proxy::ticket_signer signer{std::array<unsigned char, 32>{7}};
      (void)event_proxy::parse_ticket(text);
      (void)signer.verify(text, "acme.>", 1000);
      const auth::principal who{.name = std::string(text), .tenant = "acme", .subscribe = true};
      if (who.name.empty()) return 0;
      const std::string t = signer.issue(who, "acme.>", 1000);
      const auto ok = signer.verify(t, "acme.>", 1000);
      if (!ok || ok->name != who.name || signer.verify(t, "acme.calls", 1000)) std::abort();
      return 0;
    }
  }
}
