#include "broker/transport/session.h"

#include <fmt/format.h>

namespace switchboard::transport {

session& session_table::open(std::string identity, int peer, auth::principal who,
                             std::chrono::milliseconds heartbeat, clock::time_point now) {
  const auto id = _next_id++;
  session& s = _sessions[id];
  s.id = id;
  s.identity = std::move(identity);
  s.peer = peer;
  _by_peer.emplace(peer, id);
  s.who = std::move(who);
  s.heartbeat = heartbeat;
  s.last_seen = now;
  _by_identity[s.identity] = id;
  return s;
}

session* session_table::find(router::conn_id id) noexcept {
  auto it = _sessions.find(id);
  return it == _sessions.end() || it->second.ended ? nullptr : &it->second;
}

session* session_table::find(std::string_view identity) noexcept {
  auto it = _by_identity.find(identity);
  return it == _by_identity.end() ? nullptr : find(it->second);
}

void session_table::end(session& s, std::string_view why) {
  if (s.ended) return;
  s.ended = true;
  if (auto it = _by_identity.find(s.identity); it != _by_identity.end() && it->second == s.id) {
    _by_identity.erase(it);
  }
  _ended.emplace_back(s.id, std::string(why));
}

std::size_t session_table::end_peer(int peer, std::string_view why) {
  std::vector<router::conn_id> ids;
  for (auto [p, end] = _by_peer.equal_range(peer); p != end; ++p) ids.push_back(p->second);
  std::size_t n = 0;
  for (auto id : ids) {
    if (session* s = find(id)) {
      end(*s, why);
      ++n;
    }
  }
  return n;
}

std::string describe(const session& s) {
  return fmt::format("session {} (token {}, peer {})", s.id, auth::quote(s.who.name),
                     s.peer_address.empty() ? std::string_view("unknown") : std::string_view(s.peer_address));
}

std::vector<router::conn_id> session_table::of_token(std::string_view name) const {
  std::vector<router::conn_id> out;
  for (const auto& [id, s] : _sessions) {
    if (!s.ended && s.who.name == name) out.push_back(id);
  }
  return out;
}

std::vector<router::conn_id> session_table::expired(clock::time_point now) const {
  std::vector<router::conn_id> out;
  for (const auto& [id, s] : _sessions) {
    if (!s.ended && now - s.last_seen > 3 * s.heartbeat) out.push_back(id);
  }
  return out;
}

}  // namespace switchboard::transport
