#include "broker/event_proxy/stream_params.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>

#include "broker/router/topic.h"

namespace switchboard::event_proxy {
namespace {

// The decoded value of query parameter `name`: nullopt when absent; an error when malformed.
std::expected<std::optional<std::string>, admin::api_error> param(const admin::http_request& req,
                                                                  std::string_view name) {
  if (auto v = req.query(name)) return v;
  // query() says nullopt both for "absent" and "malformed escape": tell them apart.
  const std::string_view target = req.target;
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return std::optional<std::string>{};
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const std::size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const std::string_view key = pair.substr(0, pair.find('='));
    if (key == name) {
      return std::unexpected(admin::api_error{400, "invalid_parameter",
                                              fmt::format("malformed percent-escape in parameter {}", name)});
    }
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return std::optional<std::string>{};
}

}  // namespace

std::expected<stream_params, admin::api_error> parse_stream_params(const admin::http_request& req) {
  stream_params p;
  auto pattern = param(req, "pattern");
  if (!pattern) return std::unexpected(pattern.error());
  if (!*pattern || (*pattern)->empty()) {
    return std::unexpected(admin::api_error{400, "missing_parameter", "pattern is required"});
  }
  if (auto ok = router::validate_pattern(**pattern); !ok) {
    return std::unexpected(admin::api_error{400, ok.error().code, ok.error().message});
  }
  p.pattern = std::move(**pattern);

  auto filter = param(req, "filter");
  if (!filter) return std::unexpected(filter.error());
  if (*filter && !(*filter)->empty()) {
    thread_local simdjson::dom::parser parser;
    simdjson::dom::element el;
    if (const auto err = parser.parse(**filter).get(el); err != simdjson::SUCCESS) {
      return std::unexpected(admin::api_error{
          400, "invalid_filter", fmt::format("filter is not valid JSON: {}", simdjson::error_message(err))});
    }
    p.filter_json = simdjson::minify(el);
  }

  std::optional<std::string> last(req.header("Last-Event-ID"));
  if (last->empty()) {
    auto q = param(req, "lastEventId");
    if (!q) return std::unexpected(q.error());
    last = std::move(*q);
  }
  if (last && !last->empty()) {
    auto pos = cloudevent::parse_position(*last);
    if (!pos || !router::validate_channel(pos->channel)) {
      return std::unexpected(
          admin::api_error{400, "invalid_last_event_id",
                           "Last-Event-ID must be <channel>@<16 hex digits>:<seq>, as sent in id:"});
    }
    if (!router::pattern_matches(p.pattern, pos->channel)) {
      return std::unexpected(
          admin::api_error{400, "invalid_last_event_id",
                           fmt::format("Last-Event-ID names channel {}, which pattern {} does not match",
                                       router::quote_name(pos->channel), router::quote_name(p.pattern))});
    }
    p.resume_from = std::move(*pos);
  }

  auto ticket = param(req, "ticket");
  if (!ticket) return std::unexpected(ticket.error());
  if (*ticket) p.ticket = std::move(**ticket);
  return p;
}

std::optional<std::string> allowed_origin(std::string_view origin, const std::vector<std::string>& allowed) {
  if (origin.empty()) return std::nullopt;
  if (std::ranges::find(allowed, origin) != allowed.end() ||
      std::ranges::find(allowed, "*") != allowed.end()) {
    return std::string(origin);
  }
  return std::nullopt;
}

}  // namespace switchboard::event_proxy
