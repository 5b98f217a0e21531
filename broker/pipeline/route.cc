#include "broker/pipeline/route.h"

#include "broker/pipeline/json_dom.h"
#include "broker/router/topic.h"

#include <algorithm>

namespace switchboard::pipeline {
namespace {

std::string quoted_path(std::span<const std::string> path) {
  std::string out;
  for (const std::string& c : path) {
    if (!out.empty()) out += " -> ";
    out += router::quote_name(c);
  }
  return out.empty() ? "(empty)" : out;
}

std::string error_event(route_verdict verdict, const std::string& message, std::span<const std::string> path,
                        std::size_t hops, std::string_view target, std::size_t max_hops) {
  const bool loop = verdict == route_verdict::loop;
  rapidjson::StringBuffer buf;
  detail::json_writer w(buf);
  w.StartObject();
  detail::write_key(w, "specversion");
  detail::write_string(w, "1.0");
  detail::write_key(w, "type");
  detail::write_string(w, loop ? "route.loop.v1" : "route.too_many_hops.v1");
  detail::write_key(w, "source");
  detail::write_string(w, "switchboard");
  detail::write_key(w, "subject");
  detail::write_string(w, path.empty() ? std::string_view() : std::string_view(path.back()));
  detail::write_key(w, "data");
  w.StartObject();
  detail::write_key(w, "code");
  detail::write_string(w, loop ? "route_loop" : "too_many_hops");
  detail::write_key(w, "message");
  detail::write_string(w, message);
  detail::write_key(w, "target");
  detail::write_string(w, target);
  detail::write_key(w, "path");
  w.StartArray();
  for (const std::string& c : path) detail::write_string(w, c);
  w.EndArray();
  detail::write_key(w, "hops");
  w.Uint64(hops);
  detail::write_key(w, "max_hops");
  w.Uint64(max_hops);
  w.EndObject();
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace

route_decision check_route(std::span<const std::string> path, std::size_t hops, std::string_view target,
                           std::size_t max_hops) {
  route_decision d;
  if (std::find(path.begin(), path.end(), target) != path.end()) {
    d.verdict = route_verdict::loop;
    d.message = "route to " + router::quote_name(target) + " would loop: path " + quoted_path(path) +
                " already holds it";
  } else if (hops >= max_hops) {
    d.verdict = route_verdict::too_many_hops;
    d.message = "route to " + router::quote_name(target) + " exceeds " + std::to_string(max_hops) +
                " hops: path " + quoted_path(path);
  } else {
    return d;
  }
  d.error_event = error_event(d.verdict, d.message, path, hops, target, max_hops);
  return d;
}

std::vector<std::string_view> parent_channels(std::string_view channel) {
  std::vector<std::string_view> out;
  for (std::size_t dot = channel.rfind('.'); dot != std::string_view::npos && dot > 0;
       dot = channel.rfind('.', dot - 1)) {
    out.push_back(channel.substr(0, dot));
  }
  return out;
}

}  // namespace switchboard::pipeline
