#include "broker/webhook/admin_module.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <string>
#include <utility>

#include "broker/auth/auth.h"

namespace switchboard::webhook {
namespace {

using admin::api_error;
using admin::http_response;
using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void put(json_writer& w, std::string_view key, std::string_view value) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

void put(json_writer& w, std::string_view key, std::uint64_t value) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  w.Uint64(value);
}

api_error to_api(const error& e) {
  int status = 500;
  switch (e.code) {
    case errc::not_found: status = 404; break;
    case errc::conflict: status = 409; break;
    case errc::unavailable: status = 503; break;
    case errc::store_failed: status = 500; break;
  }
  return {status, std::string(errc_name(e.code)), e.message};
}

api_error not_allowed(std::string_view method, std::string_view allowed) {
  return {405, "method_not_allowed", fmt::format("{} is not allowed here; allowed: {}", method, allowed)};
}

http_response json(int status, std::string body) {
  http_response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

std::expected<http_response, api_error> handle(dispatcher& d, const admin::module_request& r) {
  if (!r.who.admin) {
    return std::unexpected(
        api_error{403, "forbidden", fmt::format("token {} lacks the admin scope", auth::quote(r.who.name))});
  }
  const std::string& method = r.request.method;
  const bool read = method == "GET" || method == "HEAD";
  std::string_view rest = r.rest;
  if (rest == "/sinks") {
    if (!read) return std::unexpected(not_allowed(method, "GET"));
    return json(200, sinks_json(d.sinks()));
  }
  constexpr std::string_view letters = "/dead-letters";
  if (rest == letters) {
    if (!read) return std::unexpected(not_allowed(method, "GET"));
    const auto channel = r.request.query("channel");
    auto list = d.list_dead_letters(channel.value_or(""));
    if (!list) return std::unexpected(to_api(list.error()));
    return json(200, std::move(*list));
  }
  if (rest.starts_with(letters) && rest.size() > letters.size() + 1 && rest[letters.size()] == '/') {
    std::string_view id = rest.substr(letters.size() + 1);
    constexpr std::string_view redrive = "/redrive";
    if (id.ends_with(redrive)) {
      id.remove_suffix(redrive.size());
      if (method != "POST") return std::unexpected(not_allowed(method, "POST"));
      if (auto ok = d.redrive(id); !ok) return std::unexpected(to_api(ok.error()));
      spdlog::info("webhook: dead letter {} redriven by {}", id, auth::quote(r.who.name));
      rapidjson::StringBuffer buffer;
      json_writer w(buffer);
      w.StartObject();
      put(w, "id", id);
      put(w, "status", "queued");
      w.EndObject();
      return json(202, std::string(buffer.GetString(), buffer.GetSize()));
    }
    if (id.find('/') == std::string_view::npos) {
      if (method != "DELETE") return std::unexpected(not_allowed(method, "DELETE"));
      if (auto ok = d.delete_dead_letter(id); !ok) return std::unexpected(to_api(ok.error()));
      spdlog::info("webhook: dead letter {} deleted by {}", id, auth::quote(r.who.name));
      http_response gone;
      gone.status = 204;
      return gone;
    }
  }
  return std::unexpected(
      api_error{404, "not_found", fmt::format("no webhook resource {}", auth::quote(r.request.path()))});
}

}  // namespace

std::string sinks_json(const std::vector<sink_status>& sinks) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartArray();
  for (const sink_status& s : sinks) {
    w.StartObject();
    put(w, "channel", s.channel);
    put(w, "name", s.name);
    put(w, "url", s.url);
    put(w, "breaker", breaker_name(s.breaker));
    put(w, "deliveries", s.deliveries);
    put(w, "retries", s.retries);
    put(w, "failures", s.failures);
    put(w, "dead_letters", s.dead_letters);
    put(w, "in_flight", s.in_flight);
    put(w, "queued", s.queued);
    w.Key("last_status");
    w.Int(s.last_status);
    put(w, "last_error", s.last_error);
    w.EndObject();
  }
  w.EndArray();
  return {buffer.GetString(), buffer.GetSize()};
}

admin::route_module make_admin_module(dispatcher& d) {
  admin::route_module m;
  m.prefix = "/v1/webhooks";
  m.methods = {"GET", "POST", "DELETE"};
  m.handle = [&d](const admin::module_request& r) { return handle(d, r); };
  m.metrics = [&d] { return d.metrics(); };
  return m;
}

}  // namespace switchboard::webhook
