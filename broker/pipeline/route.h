// Publishing an event on other channels: `route` loop detection and `publish_to_parent`'s parents.
//
// Route. An event carries the path of channels it went through (the channel it was published on
// first, then each route target) and its hop count (routes taken; normally path.size() - 1). Before
// the router routes an event to `target`, check_route answers:
//   ok              route it; the copy carries path + target and hops + 1
//   loop            target is already on the path (checked first)
//   too_many_hops   hops >= max_hops (default 8): the copy would take hop number max_hops + 1
// For loop and too_many_hops the router publishes the error event (below) on the channel that tried
// to route, instead of the routed copy; the event itself is still delivered where it is.
//
// Messages (paths quoted by router::quote_name, joined by " -> "):
//   route to "<target>" would loop: path "<a>" -> "<b>" -> … already holds it
//   route to "<target>" exceeds 8 hops: path "<a>" -> "<b>" -> …
// Error event (JSON, written with RapidJSON; the router adds id, time, channel and seq):
//   {"specversion":"1.0","type":"route.loop.v1" | "route.too_many_hops.v1","source":"switchboard",
//    "subject":"<channel that routed, the path's last>","data":{"code":"route_loop" | "too_many_hops",
//    "message":"<message>","target":"<target>","path":["a","b"],"hops":1,"max_hops":8}}
//
// Parents. publish_to_parent also delivers an event on its channel's parents, nearest first:
// "a.b.c" -> "a.b", "a"; a single-token channel has none. Parents do not route again (the router
// treats them as delivery targets, not as new publishes), so they need no loop check.
//
// Thread-safety: pure functions.
#pragma once

#include "broker/pipeline/error.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::pipeline {

inline constexpr std::size_t default_max_hops = 8;

enum class route_verdict : std::uint8_t { ok, loop, too_many_hops };

struct route_decision {
  route_verdict verdict = route_verdict::ok;
  std::string message;      // empty when ok
  std::string error_event;  // the JSON error event to publish; empty when ok

  // The same facts as an error (code route_loop or too_many_hops); precondition: verdict != ok.
  [[nodiscard]] error as_error() const {
    return error{verdict == route_verdict::loop ? errc::route_loop : errc::too_many_hops, message};
  }
};

// Decides whether an event that went through `path` in `hops` route hops may be routed to `target`.
// Allocates only for a refusal.
[[nodiscard]] route_decision check_route(std::span<const std::string> path, std::size_t hops,
                                         std::string_view target, std::size_t max_hops = default_max_hops);

// The parents of `channel`, nearest first (views into `channel`). Channel names are validated
// elsewhere (router/topic.h); an empty token yields an empty parent, never a crash.
[[nodiscard]] std::vector<std::string_view> parent_channels(std::string_view channel);

}  // namespace switchboard::pipeline
