// A transport `wire` for in-process tests and fuzzers: records what the broker sends to each
// routing identity, and can play a full pipe or a vanished peer per identity.
// Thread-safety: one thread (the one driving the transport_core).
#pragma once

#include <switchboard/protocol.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "broker/transport/outbox.h"

namespace switchboard::testing {

class recording_wire final : public transport::wire {
 public:
  transport::send_result try_send(const std::string& identity, std::string& bytes) override {
    if (gone.contains(identity)) return transport::send_result::gone;
    if (full.contains(identity)) return transport::send_result::full;
    sent[identity].push_back(std::move(bytes));
    bytes.clear();
    return transport::send_result::sent;
  }

  // Every record sent to `identity`, decoded (views into the recorded messages).
  std::vector<protocol::frame> frames(const std::string& identity) const {
    std::vector<protocol::frame> out;
    auto it = sent.find(identity);
    if (it == sent.end()) return out;
    for (const auto& msg : it->second) {
      protocol::frame_reader reader(msg);
      for (;;) {
        auto f = reader.next();
        if (!f || !*f) break;
        out.push_back(**f);
      }
    }
    return out;
  }
  template <typename T>
  std::vector<T> all(const std::string& identity) const {
    std::vector<T> out;
    for (const auto& f : frames(identity)) {
      if (const auto* t = std::get_if<T>(&f)) out.push_back(*t);
    }
    return out;
  }

  std::map<std::string, std::vector<std::string>> sent;
  std::set<std::string, std::less<>> gone;
  std::set<std::string, std::less<>> full;
};

}  // namespace switchboard::testing
