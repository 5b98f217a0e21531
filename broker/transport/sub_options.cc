#include "broker/transport/sub_options.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>

namespace switchboard::transport {

namespace {

// The raw JSON text of one value (object, array or scalar), whitespace trimmed.
std::expected<std::string, std::string> raw_value(simdjson::ondemand::value v) {
  simdjson::ondemand::json_type type;
  if (v.type().get(type) != simdjson::SUCCESS) return std::unexpected("options are not valid JSON");
  std::string_view raw;
  simdjson::error_code err = simdjson::SUCCESS;
  if (type == simdjson::ondemand::json_type::object) {
    simdjson::ondemand::object o;
    err = v.get_object().get(o);
    if (!err) err = o.raw_json().get(raw);
  } else if (type == simdjson::ondemand::json_type::array) {
    simdjson::ondemand::array a;
    err = v.get_array().get(a);
    if (!err) err = a.raw_json().get(raw);
  } else {
    raw = v.raw_json_token();
  }
  if (err) return std::unexpected("options are not valid JSON");
  while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.back()))) raw.remove_suffix(1);
  return std::string(raw);
}

}  // namespace

std::expected<sub_options, std::string> parse_sub_options(simdjson::ondemand::parser& parser,
                                                                 std::string_view text,
                                                                 overflow_policy default_policy) {
  sub_options out{default_policy, false, {}, {}, nullptr};
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return out;
  simdjson::padded_string padded(text);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS) return std::unexpected("options are not valid JSON");
  simdjson::ondemand::object obj;
  if (const auto err = doc.get_object().get(obj); err != simdjson::SUCCESS) {
    return std::unexpected(err == simdjson::INCORRECT_TYPE ? "options must be a JSON object"
                                                           : "options are not valid JSON");
  }
  std::vector<std::string_view> seen;  // views into `padded`, alive for the loop
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) return std::unexpected("options are not valid JSON");
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      return std::unexpected(fmt::format("option \"{}\" is given twice", key));
    }
    seen.push_back(key);
    if (key == "slow_consumer") {
      std::string_view v;
      if (field.value().get_string().get(v) != simdjson::SUCCESS)
        return std::unexpected("option slow_consumer must be a string");
      out.policy_explicit = true;
      if (v == "disconnect") {
        out.policy = overflow_policy::disconnect;
      } else if (v == "drop_oldest") {
        out.policy = overflow_policy::drop_oldest;
      } else {
        return std::unexpected(
            fmt::format("option slow_consumer must be \"disconnect\" or \"drop_oldest\", not \"{}\"", v));
      }
    } else if (key == "durable") {
      std::string_view v;
      if (field.value().get_string().get(v) != simdjson::SUCCESS || v.empty()) {
        return std::unexpected("option durable must be a non-empty string");
      }
      out.durable = std::string(v);
    } else if (key == "ack" || key == "start" || key == "filter") {
      auto raw = raw_value(field.value());
      if (!raw) return std::unexpected(raw.error());
      out.spec_members.emplace_back(key == "ack" ? "ack" : key == "start" ? "start" : "filter", std::move(*raw));
    } else {
      return std::unexpected(fmt::format("unknown option \"{}\"", key));
    }
  }
  if (out.durable.empty()) {
    // A live subscription's filter runs in the router (pipeline/filter.h); ack and start need a
    // durable subscription.
    for (auto it = out.spec_members.begin(); it != out.spec_members.end();) {
      if (it->first != "filter") return std::unexpected(fmt::format("option \"{}\" needs option durable", it->first));
      auto compiled = pipeline::filter_spec::compile(it->second, "filter");
      if (!compiled) return std::unexpected(compiled.error().message);
      if (!compiled->empty()) out.filter = std::make_shared<const pipeline::compiled_filter>(std::move(*compiled));
      it = out.spec_members.erase(it);
    }
  }
  return out;
}

std::string spill_spec_json(std::string_view name, std::string_view channel, std::uint64_t first_seq) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  const auto start = fmt::format("seq:{}", first_seq);
  w.StartObject();
  w.Key("name");
  w.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
  w.Key("pattern");
  w.String(channel.data(), static_cast<rapidjson::SizeType>(channel.size()));
  w.Key("start");
  w.String(start.data(), static_cast<rapidjson::SizeType>(start.size()));
  // Acknowledged by the transport when the socket takes each batch (see spill_acks): a long
  // ack_wait so nothing is redelivered behind the socket's back.
  w.Key("ack");
  w.StartObject();
  w.Key("policy");
  w.String("at_least_once");
  w.Key("ack_wait_ms");
  w.Uint(3'600'000);
  w.Key("max_deliveries");
  w.Uint(1'000'000);
  w.EndObject();
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string durable_spec_json(const sub_options& o, std::string_view pattern) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("name");
  w.String(o.durable.data(), static_cast<rapidjson::SizeType>(o.durable.size()));
  w.Key("pattern");
  w.String(pattern.data(), static_cast<rapidjson::SizeType>(pattern.size()));
  for (const auto& [key, raw] : o.spec_members) {
    w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
    w.RawValue(raw.data(), raw.size(), rapidjson::kObjectType);
  }
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace switchboard::transport
