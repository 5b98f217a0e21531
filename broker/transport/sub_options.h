// SUB options (PROTOCOL.md §4, SUB): the JSON object a client may send with a subscription, and
// the durable subscription specs the transport derives from it.
//
// Concurrency: plain functions; the caller owns the parser (one per thread).
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/pipeline/filter.h"
#include "broker/transport/backlog.h"

namespace switchboard::transport {

struct sub_options {
  overflow_policy policy = overflow_policy::disconnect;
  bool policy_explicit = false;
  std::string durable;  // durable subscription name, empty for a live subscription
  // Raw JSON of the durable subscription's "ack", "start" and "filter" members, when given.
  std::vector<std::pair<std::string_view, std::string>> spec_members;
  // A live subscription's "filter" (pipeline/filter.h), compiled; null = every event. A durable
  // subscription's filter stays in spec_members (its spec, broker/durable/subscription_spec.h).
  std::shared_ptr<const pipeline::compiled_filter> filter;
};

// Parses `text` (empty or whitespace = no options). Errors are the messages the client sees in ERR
// invalid_options: not JSON, not an object, an unknown or repeated member, a wrongly typed value,
// "ack"/"start" without "durable", a live "filter" that does not compile (pipeline/filter.h's
// messages, e.g. `attribute "filter.data.from" must be a string, …`).
[[nodiscard]] std::expected<sub_options, std::string> parse_sub_options(simdjson::ondemand::parser& parser,
                                                                        std::string_view text,
                                                                        overflow_policy default_policy);

// The durable subscription spec (JSON, see broker/durable/subscription_spec.h) a SUB creates when
// the name does not exist yet.
[[nodiscard]] std::string durable_spec_json(const sub_options& o, std::string_view pattern);

// The log-serving subscription that replaces a lagging live one (slow_consumer "spill"): starts at
// `first_seq` of `channel`, acknowledged by the transport as the socket takes each batch.
[[nodiscard]] std::string spill_spec_json(std::string_view name, std::string_view channel, std::uint64_t first_seq);

}  // namespace switchboard::transport
