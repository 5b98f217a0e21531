// Interpreting and merging delegate answers (simdjson DOM in, RapidJSON Writer out). Contracts and
// exact reasons: answer.h.
#include "broker/delegate/answer.h"

#include <unordered_map>
#include <utility>

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>

#include "broker/common/json_error.h"
#include "broker/router/topic.h"

namespace switchboard::delegate {
namespace {

namespace dom = simdjson::dom;
using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr std::string_view metadata_key = "_switchboard";
constexpr std::size_t max_depth = 1024;  // simdjson's default, which every later stage applies too

answer failed(std::string reason) {
  answer a;
  a.what = answer::kind::failure;
  a.reason = std::move(reason);
  return a;
}

std::string_view type_phrase(dom::element v) noexcept {
  switch (v.type()) {
    case dom::element_type::ARRAY: return "an array";
    case dom::element_type::OBJECT: return "an object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE: return "a number";
    case dom::element_type::STRING: return "a string";
    case dom::element_type::BOOL: return "a boolean";
    case dom::element_type::NULL_VALUE: return "null";
  }
  return "null";
}

rapidjson::Type writer_type(dom::element v) noexcept {
  switch (v.type()) {
    case dom::element_type::ARRAY: return rapidjson::kArrayType;
    case dom::element_type::OBJECT: return rapidjson::kObjectType;
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE: return rapidjson::kNumberType;
    case dom::element_type::STRING: return rapidjson::kStringType;
    case dom::element_type::BOOL:
      return v.get_bool().value_unsafe() ? rapidjson::kTrueType : rapidjson::kFalseType;
    case dom::element_type::NULL_VALUE: return rapidjson::kNullType;
  }
  return rapidjson::kNullType;
}

void write_key(json_writer& w, std::string_view key) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}

void write_raw(json_writer& w, std::string_view json, rapidjson::Type type) {
  w.RawValue(json.data(), json.size(), type);
}

// Why `body` (which simdjson rejected with `err`) is not JSON: RapidJSON's located error, else simdjson's.
std::string not_json_reason(std::string_view body, simdjson::error_code err) {
  if (const auto at = common::locate_json_error(body, max_depth)) {
    if (at->too_deep) return fmt::format("nested deeper than {} levels at byte {}", max_depth, at->offset);
    return fmt::format("{} at byte {}", at->reason, at->offset);
  }
  return simdjson::error_message(err);
}

std::string metadata_path(std::string_view key) {
  return router::quote_name(fmt::format("{}.{}", metadata_key, key));
}

std::expected<metadata, std::string> read_metadata(dom::element v) {
  dom::object obj;
  if (v.get(obj) != simdjson::SUCCESS)
    return std::unexpected(fmt::format("\"{}\" must be an object", metadata_key));
  metadata m;
  bool seen_route = false;
  bool seen_parent = false;
  bool seen_webhook = false;
  for (const dom::key_value_pair member : obj) {
    bool* seen = nullptr;
    if (member.key == "route")
      seen = &seen_route;
    else if (member.key == "publish_to_parent")
      seen = &seen_parent;
    else if (member.key == "webhook")
      seen = &seen_webhook;
    else
      return std::unexpected(fmt::format("unknown member {}", metadata_path(member.key)));
    if (*seen) return std::unexpected(fmt::format("{} appears more than once", metadata_path(member.key)));
    *seen = true;

    if (member.key == "webhook") {
      bool flag = true;
      if (member.value.get(flag) == simdjson::SUCCESS && !flag) {
        m.webhook.emplace();
        continue;
      }
      dom::array names;
      const auto bad = [&] {
        return std::unexpected(
            fmt::format("{} must be false or an array of non-empty strings", metadata_path(member.key)));
      };
      if (member.value.get(names) != simdjson::SUCCESS) return bad();
      std::vector<std::string> out;
      for (const dom::element item : names) {
        std::string_view name;
        if (item.get(name) != simdjson::SUCCESS || name.empty()) return bad();
        out.emplace_back(name);
      }
      m.webhook = std::move(out);
      continue;
    }
    bool flag = false;
    if (member.value.get(flag) != simdjson::SUCCESS) {
      return std::unexpected(fmt::format("{} must be a boolean", metadata_path(member.key)));
    }
    (member.key == "route" ? m.route : m.publish_to_parent) = flag;
  }
  return m;
}

}  // namespace

void merge(metadata& into, const metadata& later) {
  if (later.route) into.route = later.route;
  if (later.publish_to_parent) into.publish_to_parent = later.publish_to_parent;
  if (later.webhook) into.webhook = later.webhook;
}

answer interpret_answer(int status, std::string_view body, std::size_t max_body_bytes) {
  if (status == 204) {
    answer a;
    a.what = answer::kind::drop;
    return a;
  }
  if (status != 200 && status != 201) return failed(fmt::format("answered {}", status));
  if (max_body_bytes != 0 && body.size() > max_body_bytes) {
    return failed(fmt::format("answered a body larger than {} bytes", max_body_bytes));
  }
  if (body.data() == nullptr) body = std::string_view("", 0);  // simdjson memcpy()s from it

  dom::parser parser;
  dom::element root;
  if (const auto err = parser.parse(body.data(), body.size(), true).get(root); err != simdjson::SUCCESS) {
    return failed(fmt::format("answered a body that is not a JSON object: {}", not_json_reason(body, err)));
  }
  dom::object obj;
  if (root.get(obj) != simdjson::SUCCESS) {
    return failed(fmt::format("answered a body that is not a JSON object: {}", type_phrase(root)));
  }

  std::optional<dom::element> meta_value;
  for (const dom::key_value_pair member : obj) {
    if (member.key != metadata_key) continue;
    if (meta_value)
      return failed(fmt::format("answered invalid metadata: \"{}\" appears more than once", metadata_key));
    meta_value = member.value;
  }

  answer a;
  a.what = answer::kind::pass;
  if (!meta_value) {
    a.payload = std::string(body);
    return a;
  }
  auto meta = read_metadata(*meta_value);
  if (!meta) return failed(fmt::format("answered invalid metadata: {}", meta.error()));
  a.meta = std::move(*meta);

  rapidjson::StringBuffer out;
  json_writer w(out);
  w.StartObject();
  for (const dom::key_value_pair member : obj) {
    if (member.key == metadata_key) continue;
    write_key(w, member.key);
    write_raw(w, simdjson::minify(member.value), writer_type(member.value));
  }
  w.EndObject();
  a.payload.assign(out.GetString(), out.GetSize());
  return a;
}

std::expected<std::string, std::size_t> merge_objects(std::span<const std::string_view> objects) {
  struct member {
    std::string key;
    std::string value;  // minified JSON
    rapidjson::Type type = rapidjson::kNullType;
  };
  std::vector<member> members;
  std::unordered_map<std::string, std::size_t> position;  // key -> index in members
  dom::parser parser;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    std::string_view text = objects[i];
    if (text.data() == nullptr) text = std::string_view("", 0);
    dom::element root;
    dom::object obj;
    if (parser.parse(text.data(), text.size(), true).get(root) != simdjson::SUCCESS ||
        root.get(obj) != simdjson::SUCCESS) {
      return std::unexpected(i);
    }
    for (const dom::key_value_pair m : obj) {
      std::string value = simdjson::minify(m.value);
      const rapidjson::Type type = writer_type(m.value);
      std::string key(m.key);
      if (const auto it = position.find(key); it != position.end()) {
        members[it->second].value = std::move(value);
        members[it->second].type = type;
      } else {
        position.emplace(key, members.size());
        members.push_back(member{std::move(key), std::move(value), type});
      }
    }
  }
  rapidjson::StringBuffer out;
  json_writer w(out);
  w.StartObject();
  for (const member& m : members) {
    write_key(w, m.key);
    write_raw(w, m.value, m.type);
  }
  w.EndObject();
  return std::string(out.GetString(), out.GetSize());
}

}  // namespace switchboard::delegate
