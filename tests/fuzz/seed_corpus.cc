// Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) from the same records the
// protocol and transport tests send. Run once when the protocol changes:
//   build/tests/fuzz/fuzz_seed_corpus tests/fuzz/corpus
#include <switchboard/protocol.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace proto = switchboard::protocol;

namespace {

void write(const std::filesystem::path& dir, const std::string& name, const std::string& bytes) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

// One message of the transport script: [selector][u16 length][bytes].
std::string step(std::uint8_t selector, const std::string& bytes) {
  std::string out;
  out.push_back(static_cast<char>(selector));
  out.push_back(static_cast<char>(bytes.size() & 0xff));
  out.push_back(static_cast<char>((bytes.size() >> 8) & 0xff));
  return out + bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path root(argv[1]);
  const std::vector<std::pair<std::string, std::string>> records{
      {"hello", proto::encode(proto::hello{.version = proto::version, .heartbeat_ms = 2000, .token = "tok"})},
      {"hello_acme", proto::encode(proto::hello{.version = proto::version, .heartbeat_ms = 0, .token = "acmesecret"})},
      {"hello_v7", proto::encode(proto::hello{.version = 7, .heartbeat_ms = 0, .token = {}})},
      {"pub", proto::encode(proto::publish{.request_id = 1, .ack_requested = true, .channel = "acme.calls.CA1.status",
                                           .key = {}, .payload = R"({"s":"ringing"})"})},
      {"pub_key", proto::encode(proto::publish{.request_id = 2, .ack_requested = true, .channel = "acme.x", .key = "k1",
                                               .payload = "p"})},
      {"pub_bad_channel", proto::encode(proto::publish{.request_id = 3, .ack_requested = true, .channel = "a..b",
                                                       .key = {}, .payload = "p"})},
      {"sub", proto::encode(proto::subscribe{.sub_id = 1, .pattern = "acme.calls.*.status", .options = {}})},
      {"sub_opts", proto::encode(proto::subscribe{.sub_id = 2, .pattern = "acme.>",
                                                  .options = R"({"slow_consumer":"drop_oldest"})"})},
      {"sub_durable", proto::encode(proto::subscribe{.sub_id = 3, .pattern = "acme.>",
                                                     .options = R"({"durable":"d","ack":{"policy":"at_least_once"}})"})},
      {"unsub", proto::encode(proto::unsubscribe{1})},
      {"ack", proto::encode(proto::ack{.sub_id = 3, .epoch = 1, .seq = 1})},
      {"ping", proto::encode(proto::ping{77})},
      {"welcome", proto::encode(proto::welcome{.version = 1, .heartbeat_ms = 5000, .max_payload_bytes = 1 << 20,
                                               .epoch = 1, .server = "switchboard"})},
      {"event", proto::encode(proto::event{.sub_id = 1, .epoch = 1, .seq = 1, .time_ns = 1, .channel = "a.b",
                                           .payload = "x"})},
      {"puback", proto::encode(proto::puback{.request_id = 1, .epoch = 1, .seq = 1})},
      {"err", proto::encode(proto::error{.ref = 0, .code = "malformed_frame", .message = "m"})},
      {"pong", proto::encode(proto::pong{1})},
      {"suback", proto::encode(proto::suback{1})},
      {"bye", proto::encode(proto::bye{})},
      {"bye_trailing", proto::encode(proto::bye{}).replace(4, 1, 1, '\x02') + "xy"},
  };
  std::string all;
  for (const auto& [name, bytes] : records) {
    write(root / "protocol", name, bytes);
    all += bytes;
  }
  write(root / "protocol", "batch_all", all);
  write(root / "protocol", "truncated", all.substr(0, all.size() - 3));
  write(root / "protocol", "garbage", "hello world!!");

  auto rec = [&](const std::string& name) {
    for (const auto& [n, b] : records) {
      if (n == name) return b;
    }
    return std::string();
  };
  const auto t = root / "transport_message";
  write(t, "empty_unknown", step(0, ""));
  write(t, "pub_unknown", step(0, rec("pub")));
  write(t, "hello_pub_sub", step(0, rec("hello")) + step(1, rec("hello_acme") + rec("sub") + rec("sub_opts")) +
                                step(0, rec("pub") + rec("pub_key") + rec("ping")));
  write(t, "pub_sub_gone", step(1, rec("hello_acme") + rec("sub")) + step(0, rec("hello_acme")) +
                               step(0x80, rec("pub") + rec("pub") + rec("ping") + rec("pub")) + step(1, rec("ping")));
  write(t, "slow_full", step(1, rec("hello_acme") + rec("sub")) + step(0x41, "") + step(0, rec("hello_acme")) +
                            step(0, rec("pub") + rec("pub") + rec("pub") + rec("pub") + rec("pub") + rec("pub")) +
                            step(0, rec("pub") + rec("pub") + rec("pub") + rec("pub") + rec("pub") + rec("pub")));
  write(t, "bad_records", step(0, rec("hello")) + step(0, rec("event")) + step(0, "garbage!") +
                              step(0, rec("pub_bad_channel") + rec("unsub") + rec("ack")) + step(2, rec("hello_v7")));
  write(t, "durable_refused", step(2, rec("hello_acme") + rec("sub_durable") + rec("unsub")));
  write(t, "rehello", step(3, rec("hello_acme") + rec("sub") + rec("hello_acme") + rec("sub") + rec("unsub")));
  // BYE: ends a session mid-message (the PUB after it must not run), from an unknown session, twice.
  write(t, "bye", step(1, rec("hello_acme") + rec("sub") + rec("pub") + rec("bye") + rec("pub")) + step(1, rec("bye")) +
                      step(0, rec("bye") + rec("ping")) + step(1, rec("hello_acme") + rec("bye") + rec("bye")));
  std::printf("seed corpus written under %s\n", root.c_str());
  return 0;
}
