// One broker event as a CloudEvents 1.0 JSON document (structured mode), and the event's position
// as text: what the broker's Server-Sent Events proxy (GET /v1/stream, docs/STREAMING.md) puts in
// each `data:` and `id:` line, and what `switchboard-cli tail` prints, one document per line. Both
// link this one library so that the two views can never drift apart.
//
//   {"specversion":"1.0","id":"acme.calls@00000000000000ff:42","source":"/switchboard/acme.calls",
//    "type":"switchboard.event","subject":"acme.calls","time":"2026-12-03T09:13:34.123456Z",
//    "datacontenttype":"application/json","data":{…},"channel":"acme.calls",
//    "epoch":"00000000000000ff","seq":42}
//
// A payload that is valid JSON is embedded (minified) as `data`; any other payload is sent as
// `data_base64` (standard base64, no datacontenttype). `channel`, `epoch` (16 hex digits, a string)
// and `seq` are extension attributes (CloudEvents allows lower-case alphanumeric names).
//
// Position text: `<channel>@<epoch, 16 lower-case hex digits>:<seq, decimal>`. Channel names may
// themselves contain '@' and ':', so the text is split at its last '@'.
//
// Not part of the installed client API (it uses simdjson, RapidJSON and OpenSSL inside its .cc).
// Thread-safety: pure functions; each call uses its thread's own simdjson parser.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace switchboard::cloudevent {

struct position {
  std::string channel;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;

  friend bool operator==(const position&, const position&) = default;
};

// "acme.calls@00000000000000ff:42".
[[nodiscard]] std::string format_position(std::string_view channel, std::uint64_t epoch, std::uint64_t seq);

// The position `text` names, or nullopt when it is not `<channel>@<16 hex>:<decimal>` (channel
// non-empty; the epoch exactly 16 hex digits of either case; seq a decimal u64 with no sign). Does
// not validate the channel name beyond non-emptiness (the caller checks it against its pattern).
[[nodiscard]] std::optional<position> parse_position(std::string_view text);

// The event as one line of CloudEvents JSON (no newline inside or at the end). Channel bytes that
// are not UTF-8 are replaced by U+FFFD in the text attributes (a JSON document must be UTF-8).
[[nodiscard]] std::string format_event(std::string_view channel, std::uint64_t epoch, std::uint64_t seq,
                                       std::uint64_t time_ns, std::string_view payload);

// A notice of the broker's own about a stream (not a channel event), as one line of CloudEvents
// JSON with `type` (e.g. "switchboard.epoch_changed"), `source` "/switchboard/<channel>", `id`
// `notice-<unique>`, and `data` = `data_json` (a JSON object written by the caller's JSON writer).
[[nodiscard]] std::string format_notice(std::string_view type, std::string_view channel, std::string_view id,
                                        std::uint64_t time_ns, std::string_view data_json);

// RFC 3339 UTC with microseconds: "2026-12-03T09:13:34.123456Z".
[[nodiscard]] std::string rfc3339(std::uint64_t time_ns);

}  // namespace switchboard::cloudevent
