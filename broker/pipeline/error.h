// Errors of the event pipeline (broker/pipeline/): one small errc for every stage and a one-line
// message meant for the user. Messages are printable ASCII (names are quoted by router::quote_name),
// so they can go into a JSON error body, an ERR record or an error event as they are.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace switchboard::pipeline {

enum class errc : std::uint8_t {
  invalid_spec,   // a stage's JSON spec was rejected at compile time (admin API: 422)
  invalid_event,  // an event failed validate, or translate could not read it (publisher: ERR)
  route_loop,     // routing would send an event to a channel already on its path
  too_many_hops,  // routing would exceed the hop limit
};

struct error {
  errc code = errc::invalid_event;
  std::string message;  // e.g. `missing required field "call_sid"`

  friend bool operator==(const error&, const error&) = default;
};

// A stable name for `code` ("invalid_event", …): the error code of ERR records and JSON bodies.
[[nodiscard]] constexpr std::string_view errc_name(errc code) noexcept {
  switch (code) {
    case errc::invalid_spec: return "invalid_spec";
    case errc::invalid_event: return "invalid_event";
    case errc::route_loop: return "route_loop";
    case errc::too_many_hops: return "too_many_hops";
  }
  return "invalid_event";
}

}  // namespace switchboard::pipeline
