#include "broker/transport/backlog.h"

#include <simdjson.h>
#include <switchboard/protocol.h>

#include <map>
#include <set>
#include <tuple>

namespace switchboard::transport {

namespace proto = switchboard::protocol;

namespace {

struct record {
  std::size_t batch = 0;
  std::string_view bytes;  // the whole encoded record
  bool is_event = false;
  std::uint32_t sub_id = 0;
  std::string_view channel;
  std::uint64_t seq = 0;
  std::string_view payload;
  event_policy policy;
  bool removed = false;
};

// The conflate key's value in a JSON payload (its raw JSON text), or empty when absent.
std::string key_value(simdjson::ondemand::parser& parser, std::string_view payload, std::string_view key) {
  simdjson::padded_string padded(payload);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS) return {};
  simdjson::ondemand::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) return {};
  simdjson::ondemand::value v;
  if (obj.find_field_unordered(key).get(v) != simdjson::SUCCESS) return {};
  std::string_view s;
  if (v.get_string().get(s) == simdjson::SUCCESS) return "s:" + std::string(s);
  return "r:" + std::string(v.raw_json_token());
}

}  // namespace

shed_result shed(std::deque<queued_batch>& backlog, std::size_t& events, std::size_t bound,
                 std::size_t keep_limit, const policy_lookup& lookup) {
  shed_result result;
  // 1. Whole batches of drop_oldest events, oldest first: no decoding needed.
  while (events > bound && !backlog.empty() && backlog.front().droppable && backlog.front().events > 0) {
    auto& b = backlog.front();
    events -= b.events;
    result.dropped += b.events;
    if (!b.tally.empty()) result.reports.emplace_back(b.shard, std::move(b.tally));
    backlog.pop_front();
  }
  if (events <= bound) return result;

  // 2. Record by record.
  std::vector<record> records;
  for (std::size_t i = 0; i < backlog.size(); ++i) {
    proto::frame_reader reader(backlog[i].bytes);
    for (;;) {
      const std::size_t at = reader.offset();
      auto f = reader.next();
      if (!f || !*f) break;  // our own encoding: cannot fail
      record r;
      r.batch = i;
      r.bytes = std::string_view(backlog[i].bytes).substr(at, reader.offset() - at);
      if (const auto* ev = std::get_if<proto::event>(&**f)) {
        r.is_event = true;
        r.sub_id = ev->sub_id;
        r.channel = ev->channel;
        r.seq = ev->seq;
        r.payload = ev->payload;
        r.policy = lookup(ev->sub_id, ev->channel);
      }
      records.push_back(r);
    }
  }
  auto remove = [&](record& r, std::uint64_t& counter) {
    r.removed = true;
    --events;
    ++counter;
  };

  // conflate: keep the newest per (subscription, channel, key value).
  simdjson::ondemand::parser parser;
  std::set<std::tuple<std::uint32_t, std::string_view, std::string>> seen;
  for (auto it = records.rbegin(); it != records.rend(); ++it) {
    if (!it->is_event || it->policy.policy != overflow_policy::conflate) continue;
    auto value = key_value(parser, it->payload, it->policy.conflate_key);
    if (value.empty()) {
      it->policy.policy = overflow_policy::drop_oldest;  // no key to conflate on
      continue;
    }
    if (!seen.emplace(it->sub_id, it->channel, std::move(value)).second) remove(*it, result.conflated);
  }

  // spill: everything queued for (subscription, channel) goes; the log serves it instead.
  std::map<std::pair<std::uint32_t, std::string_view>, std::uint64_t> first_spilled;
  for (auto& r : records) {
    if (!r.is_event || r.removed || r.policy.policy != overflow_policy::spill) continue;
    first_spilled.try_emplace({r.sub_id, r.channel}, r.seq);
    remove(r, result.spilled);
  }
  for (const auto& [key, seq] : first_spilled) {
    result.spills.push_back(spill_request{key.first, std::string(key.second), seq});
  }

  // drop_oldest: oldest first until the backlog (not counting kept events) fits.
  std::size_t kept = 0;
  for (const auto& r : records) kept += r.is_event && !r.removed && r.policy.policy == overflow_policy::keep;
  for (auto& r : records) {
    if (events - kept <= bound) break;
    if (r.is_event && !r.removed && r.policy.policy == overflow_policy::drop_oldest) remove(r, result.dropped);
  }
  result.disconnect = events - kept > bound || kept > keep_limit;

  // Rebuild the backlog as one batch of what is left, in the original order.
  queued_batch rebuilt;
  for (const auto& r : records) {
    if (r.removed) continue;
    rebuilt.bytes.append(r.bytes);
    if (r.is_event) ++rebuilt.events;
  }
  backlog.clear();
  if (!rebuilt.bytes.empty()) backlog.push_back(std::move(rebuilt));
  return result;
}

}  // namespace switchboard::transport
