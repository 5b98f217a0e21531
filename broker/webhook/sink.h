// A channel's webhook sinks (the `webhook` attribute, docs/WEBHOOKS.md) and one delivery of an event
// to one of them: the values the router hands to the dispatcher.
//
// The attribute is a JSON array of objects {name, url, secret, headers?, max_in_flight?, timeout_ms?};
// parse_sinks() validates it and answers the exact message the admin API shows on a bad config.
//
// Thread-safety: plain values. A `sink` is shared immutable (shared_ptr<const sink>) by every
// delivery made under that config.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::webhook {

struct sink {                                                // one element of a channel's `webhook` attribute
  std::string name;                                          // unique within its channel
  std::string url;                                           // http:// or https://
  std::string secret;                                        // empty: no Switchboard-Signature header
  std::vector<std::pair<std::string, std::string>> headers;  // extra request headers
  std::size_t max_in_flight = 16;                            // concurrent requests to this sink (1..1024)
  std::chrono::milliseconds timeout{5000};                   // whole request, connect included (1..300000 ms)
};

struct delivery {
  std::string channel;
  std::string
      event_id;  // stable id of the event ("<channel>@<epoch hex>:<seq>"), sent as Switchboard-Event-Id
  std::uint64_t epoch = 0, seq = 0;
  std::shared_ptr<const sink> target;  // shared: many deliveries point at one config
  std::string
      body;  // the event payload as delivered to subscribers (sent as is, Content-Type application/json)
};

// "<channel>@<16 hex epoch>:<seq>", the event id the router should put in delivery::event_id.
[[nodiscard]] std::string event_id(std::string_view channel, std::uint64_t epoch, std::uint64_t seq);

// Parses the `webhook` attribute. On failure: one line naming the element and field, e.g.
//   webhook[1].url must be an http:// or https:// URL
//   webhook[0].name "a" is used twice
// Header names are checked as HTTP tokens and values for CR/LF (no header injection); the
// Switchboard-* and Content-Type headers the dispatcher sets cannot be overridden.
[[nodiscard]] std::expected<std::vector<std::shared_ptr<const sink>>, std::string> parse_sinks(
    std::string_view json);

}  // namespace switchboard::webhook
