// GET /v1/stream end to end (issue 15 item 9), against the real broker binary: a curl-style client
// on a raw socket (HTTP/1.1, chunked, SSE parsed by hand) receives events published over ZeroMQ as
// CloudEvents with exact framing; filters; tickets (valid, tampered, other pattern), ?token=, 401 and
// 403 answers; CORS for listed origins only; Last-Event-ID resumes a durable channel with no gap and
// no duplicate while a publisher keeps going; a wiped channel's stale epoch is told; a non-durable
// channel says resume is unavailable; a slow reader is closed without disturbing another stream;
// 200 concurrent streams each receive every event. Readiness by probing, never by sleeping.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <simdjson.h>
#include <switchboard/client.h>

#include <atomic>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "admin/tcp_peer.h"
#include "support/broker_process.h"

namespace switchboard {
namespace {

using namespace std::chrono_literals;

constexpr const char* admin_token = "sse-admin";

struct sse_event {
  std::string id;
  std::string data;
  std::string retry;
  std::vector<std::string> comments;
  bool has_id = false;
};

// A browser-like SSE reader on a raw socket: sends one GET, then decodes the chunked body and the
// SSE blocks as they arrive.
class sse_reader {
 public:
  sse_reader(std::uint16_t port, const std::string& target, const std::vector<std::string>& headers = {},
             const std::string& method = "GET")
      : _peer(port) {
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
    for (const auto& h : headers) req += h + "\r\n";
    req += "\r\n";
    _peer.send(req);
  }

  // The status line and headers (lower-case names); false when none arrived in time.
  bool read_head(std::chrono::milliseconds timeout = 10s) {
    const std::string& in = _peer.read_until("\r\n\r\n", timeout);
    const auto end = in.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    const std::string head = in.substr(0, end);
    _pos = end + 4;
    status = std::stoi(head.substr(9, 3));
    std::size_t p = head.find("\r\n");
    while (p != std::string::npos) {
      p += 2;
      const std::size_t next = head.find("\r\n", p);
      const std::string line = head.substr(p, next == std::string::npos ? std::string::npos : next - p);
      const std::size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      headers[name] = line.substr(colon + 2);
      p = next;
    }
    return true;
  }
  // The body of a plain (Content-Length) response.
  std::string body(std::chrono::milliseconds timeout = 10s) {
    const std::size_t len = headers.contains("content-length") ? std::stoul(headers["content-length"]) : 0;
    const std::string& in =
        _peer.read_until([&](const std::string& s) { return s.size() >= _pos + len; }, timeout);
    return in.substr(_pos, len);
  }

  // Waits until `n` events with data (comments and retry-only blocks aside) were received.
  const std::vector<sse_event>& wait_events(std::size_t n, std::chrono::milliseconds timeout = 10s) {
    _peer.read_until([&](const std::string&) { return decode(), data_events() >= n; }, timeout);
    decode();
    return events;
  }
  // Decodes whatever already arrived (no waiting).
  const std::vector<sse_event>& poll_events() {
    _peer.read_available();
    decode();
    return events;
  }
  [[nodiscard]] std::size_t data_events() const {
    std::size_t n = 0;
    for (const auto& e : events) n += e.data.empty() ? 0 : 1;
    return n;
  }
  [[nodiscard]] std::vector<sse_event> data_only() const {
    std::vector<sse_event> out;
    for (const auto& e : events) {
      if (!e.data.empty()) out.push_back(e);
    }
    return out;
  }
  bool closed_within(std::chrono::milliseconds timeout) { return _peer.closed_within(timeout); }
  test::tcp_peer& peer() { return _peer; }

  int status = 0;
  std::map<std::string, std::string> headers;
  std::vector<sse_event> events;
  std::string text;    // the decoded body so far
  bool ended = false;  // the terminating chunk arrived

 private:
  void decode() {
    const std::string& in = _peer.received();
    while (!ended) {  // chunks: HEX\r\nDATA\r\n
      const std::size_t eol = in.find("\r\n", _pos);
      if (eol == std::string::npos) break;
      const std::size_t size = std::stoul(in.substr(_pos, eol - _pos), nullptr, 16);
      if (in.size() < eol + 2 + size + 2) break;
      if (size == 0) ended = true;
      text.append(in, eol + 2, size);
      _pos = eol + 2 + size + 2;
    }
    for (std::size_t end; (end = text.find("\n\n", _used)) != std::string::npos; _used = end + 2) {
      sse_event e;
      std::string_view block(text.data() + _used, end - _used);
      while (!block.empty()) {
        const std::size_t nl = block.find('\n');
        const std::string_view line = block.substr(0, nl);
        if (line.starts_with(":")) {
          e.comments.emplace_back(line.substr(1));
        } else if (line.starts_with("id: ")) {
          e.id = line.substr(4);
          e.has_id = true;
        } else if (line.starts_with("data: ")) {
          e.data = line.substr(6);
        } else if (line.starts_with("retry: ")) {
          e.retry = line.substr(7);
        } else {
          ADD_FAILURE() << "unexpected SSE line: " << line;
        }
        if (nl == std::string_view::npos) break;
        block.remove_prefix(nl + 1);
      }
      events.push_back(std::move(e));
    }
  }

  test::tcp_peer _peer;
  std::size_t _pos = 0;   // next undecoded byte of the raw input
  std::size_t _used = 0;  // next unparsed byte of `text`
};

std::string field(simdjson::dom::element doc, const char* key) {
  std::string_view v;
  if (doc[key].get(v) != simdjson::SUCCESS) return "<missing " + std::string(key) + ">";
  return std::string(v);
}

class sse_test : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }

  void start(std::vector<std::string> extra) {
    _publisher.reset();
    _broker.reset();
    std::vector<std::string> flags{"--token",
                                   "acme-app:acme-secret:acme:subscribe,publish",
                                   "--token",
                                   "pub-only:pub-secret:acme:publish",
                                   "--cors-origins",
                                   "https://app.example.com, https://other.example.com",
                                   "--sse-heartbeat-ms",
                                   "200"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    _broker = std::make_unique<test::broker_process>(_dir.path(), admin_token, flags);
    ASSERT_TRUE(_broker->ok()) << _broker->stderr_text();
    _http = _broker->http(admin_token);
    _port =
        static_cast<std::uint16_t>(std::stoi(_broker->admin_url.substr(_broker->admin_url.rfind(':') + 1)));
    client_options co;
    co.url = _broker->endpoint;
    co.token = admin_token;
    auto c = client::connect(co);
    ASSERT_TRUE(c) << c.error().message;
    _publisher = *c;
  }

  publish_ack publish(const std::string& channel, const std::string& payload) {
    auto ack = _publisher->publish_sync(channel, payload, 10s);
    EXPECT_TRUE(ack) << (ack ? "" : ack.error().message);
    return ack ? *ack : publish_ack{};
  }

  std::unique_ptr<sse_reader> open(const std::string& target, std::vector<std::string> headers = {}) {
    headers.push_back(std::string("Authorization: Bearer ") + admin_token);
    return open_as(target, headers);
  }
  std::unique_ptr<sse_reader> open_as(const std::string& target, const std::vector<std::string>& headers) {
    auto r = std::make_unique<sse_reader>(_port, target, headers);
    EXPECT_TRUE(r->read_head()) << "no response head for " << target;
    return r;
  }
  // Opens a stream and waits for its retry block, so that what is published next is seen by it.
  std::unique_ptr<sse_reader> stream(const std::string& target, std::vector<std::string> headers = {}) {
    auto r = open(target, std::move(headers));
    EXPECT_EQ(r->status, 200);
    r->peer().read_until("retry: ", 10s);
    return r;
  }

  std::string error_of(sse_reader& r) { return std::to_string(r.status) + " " + r.body(); }

  std::uint64_t metric(const std::string& name) {
    auto res = _http->Get("/metrics");
    if (!res) return 0;
    const std::regex re("\n" + name + " ([0-9]+)\n");
    std::smatch m;
    if (!std::regex_search(res->body, m, re)) return 0;
    return std::stoull(m[1]);
  }
  // Probes /metrics until `name` reaches `value` (or 10 s pass).
  bool metric_reaches(const std::string& name, std::uint64_t value) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (metric(name) >= value) return true;
      std::this_thread::yield();
    }
    return false;
  }

  static std::uint64_t seq_of(const sse_event& e) { return std::stoull(e.id.substr(e.id.rfind(':') + 1)); }

  test::temp_dir _dir;
  std::unique_ptr<test::broker_process> _broker;
  std::unique_ptr<httplib::Client> _http;
  std::shared_ptr<client> _publisher;
  std::uint16_t _port = 0;
  simdjson::dom::parser _parser;
};

TEST_F(sse_test, events_arrive_as_cloudevents_with_exact_sse_framing) {
  auto s = stream("/v1/stream?pattern=t1.%3E");
  EXPECT_EQ(s->headers["content-type"], "text/event-stream");
  EXPECT_EQ(s->headers["cache-control"], "no-cache");
  EXPECT_EQ(s->headers["transfer-encoding"], "chunked");
  EXPECT_FALSE(s->headers.contains("access-control-allow-origin"));  // no Origin sent

  const publish_ack a = publish("t1.a", R"({"n": 1,  "who": "ann"})");
  const publish_ack b = publish("t1.b.c", "not json\n");
  publish("other.x", R"({"n":3})");  // not matched
  const auto& ev = s->wait_events(2);
  // The first block is the retry hint alone.
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.front().retry, "3000");
  EXPECT_TRUE(ev.front().data.empty());
  EXPECT_TRUE(s->text.starts_with("retry: 3000\n\n")) << s->text;

  const auto data = s->data_only();
  ASSERT_EQ(data.size(), 2u);
  const std::string epoch_a = fmt::format("{:016x}", a.epoch);
  EXPECT_EQ(data[0].id, fmt::format("t1.a@{}:{}", epoch_a, a.seq));
  EXPECT_EQ(data[1].id, fmt::format("t1.b.c@{:016x}:{}", b.epoch, b.seq));
  // Exact framing of one event: id line, data line, blank line.
  EXPECT_NE(
      s->text.find("id: " + data[0].id + "\ndata: {\"specversion\":\"1.0\",\"id\":\"" + data[0].id + "\""),
      std::string::npos)
      << s->text;

  simdjson::dom::element doc;
  ASSERT_EQ(_parser.parse(data[0].data).get(doc), simdjson::SUCCESS) << data[0].data;
  EXPECT_EQ(field(doc, "specversion"), "1.0");
  EXPECT_EQ(field(doc, "id"), data[0].id);
  EXPECT_EQ(field(doc, "source"), "/switchboard/t1.a");
  EXPECT_EQ(field(doc, "type"), "switchboard.event");
  EXPECT_EQ(field(doc, "subject"), "t1.a");
  EXPECT_TRUE(std::regex_match(field(doc, "time"), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")))
      << field(doc, "time");
  EXPECT_EQ(field(doc, "datacontenttype"), "application/json");
  EXPECT_EQ(simdjson::minify(doc["data"]), R"({"n":1,"who":"ann"})");
  EXPECT_EQ(field(doc, "channel"), "t1.a");
  EXPECT_EQ(field(doc, "epoch"), epoch_a);
  EXPECT_EQ(doc["seq"].get_uint64().value(), a.seq);

  ASSERT_EQ(_parser.parse(data[1].data).get(doc), simdjson::SUCCESS) << data[1].data;
  EXPECT_EQ(field(doc, "data_base64"), "bm90IGpzb24K");
  EXPECT_EQ(doc["datacontenttype"].error(), simdjson::NO_SUCH_FIELD);

  // Heartbeats (every 200 ms here) are comment lines.
  s->peer().read_until("\n: hb\n\n", 10s);
  s->poll_events();
  EXPECT_NE(s->text.find(": hb\n\n"), std::string::npos);

  EXPECT_TRUE(metric_reaches("switchboard_sse_streams", 1));
  EXPECT_GE(metric("switchboard_sse_events_total"), 2u);
}

TEST_F(sse_test, filter_selects_events_and_a_bad_filter_is_400_with_the_brokers_message) {
  // {"kind":"a"} URL-encoded.
  auto s = stream("/v1/stream?pattern=t2.x&filter=%7B%22kind%22%3A%22a%22%7D");
  publish("t2.x", R"({"kind":"b","n":1})");
  publish("t2.x", R"({"kind":"a","n":2})");
  publish("t2.x", R"({"kind":"a","n":3})");
  s->wait_events(2);
  const auto data = s->data_only();
  ASSERT_EQ(data.size(), 2u);
  EXPECT_NE(data[0].data.find(R"("data":{"kind":"a","n":2})"), std::string::npos) << data[0].data;
  EXPECT_NE(data[1].data.find(R"("data":{"kind":"a","n":3})"), std::string::npos) << data[1].data;

  auto bad = open("/v1/stream?pattern=t2.x&filter=%5B1%5D");  // [1]
  EXPECT_EQ(error_of(*bad),
            R"(400 {"error":{"code":"invalid_filter","message":"attribute \"filter\" must be an object"}})");
  auto not_json = open("/v1/stream?pattern=t2.x&filter=%7B");
  EXPECT_EQ(not_json->status, 400);
  EXPECT_NE(not_json->body().find(R"("code":"invalid_filter","message":"filter is not valid JSON: )"),
            std::string::npos);
  auto missing = open("/v1/stream");
  EXPECT_EQ(error_of(*missing),
            R"(400 {"error":{"code":"missing_parameter","message":"pattern is required"}})");
  auto bad_pattern = open("/v1/stream?pattern=a..b");
  EXPECT_EQ(
      error_of(*bad_pattern),
      R"(400 {"error":{"code":"invalid_pattern","message":"pattern \"a..b\" has an empty token at position 2"}})");
}

TEST_F(sse_test, tickets_tokens_and_rights) {
  // A backend with its bearer token asks for a ticket; the page opens the stream with it alone.
  auto res = _http->Post("/v1/stream/tickets", httplib::Headers{{"Authorization", "Bearer acme-secret"}},
                         R"({"pattern":"acme.>"})", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;
  simdjson::dom::element doc;
  ASSERT_EQ(_parser.parse(res->body).get(doc), simdjson::SUCCESS);
  const std::string ticket = field(doc, "ticket");
  EXPECT_EQ(field(doc, "pattern"), "acme.>");
  EXPECT_GT(doc["expires_at"].get_int64().value(), 0);

  auto s = open_as("/v1/stream?pattern=acme.%3E&ticket=" + ticket, {});
  ASSERT_EQ(s->status, 200);
  s->peer().read_until("retry: ", 10s);
  publish("acme.calls", R"({"ok":true})");
  EXPECT_EQ(s->wait_events(1).size() >= 1 && s->data_only().size() == 1, true);

  // The same ticket does not open another pattern; a tampered one is refused.
  auto other = open_as("/v1/stream?pattern=acme.calls&ticket=" + ticket, {});
  EXPECT_EQ(
      error_of(*other),
      R"(401 {"error":{"code":"invalid_ticket","message":"ticket signature does not match this pattern or broker"}})");
  std::string tampered = ticket;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  auto bad = open_as("/v1/stream?pattern=acme.%3E&ticket=" + tampered, {});
  EXPECT_EQ(
      error_of(*bad),
      R"(401 {"error":{"code":"invalid_ticket","message":"ticket signature does not match this pattern or broker"}})");
  auto garbage = open_as("/v1/stream?pattern=acme.%3E&ticket=v1.x", {});
  EXPECT_EQ(error_of(*garbage), R"(401 {"error":{"code":"invalid_ticket","message":"malformed ticket"}})");
  auto none = open_as("/v1/stream?pattern=acme.%3E", {});
  EXPECT_EQ(
      error_of(*none),
      R"(401 {"error":{"code":"unauthorized","message":"missing credentials: an Authorization header, a ticket or a token parameter"}})");

  // ?token= works (and is documented as the weaker choice); a wrong one is 401.
  auto by_token = open_as("/v1/stream?pattern=acme.%3E&token=acme-secret", {});
  EXPECT_EQ(by_token->status, 200);
  auto wrong = open_as("/v1/stream?pattern=acme.%3E&token=nope", {});
  EXPECT_EQ(error_of(*wrong), R"(401 {"error":{"code":"unauthorized","message":"invalid token"}})");

  // Rights: the tenant rule and the subscribe scope, for tickets and for tokens.
  auto foreign = open_as("/v1/stream?pattern=globex.%3E&token=acme-secret", {});
  EXPECT_EQ(error_of(*foreign),
            R"(403 {"error":{"code":"forbidden","message":"tenant \"acme\" may not use \"globex.>\""}})");
  auto no_scope = open_as("/v1/stream?pattern=acme.%3E&token=pub-secret", {});
  EXPECT_EQ(error_of(*no_scope),
            R"(403 {"error":{"code":"forbidden","message":"token \"pub-only\" has no subscribe scope"}})");
  auto ticket_foreign =
      _http->Post("/v1/stream/tickets", httplib::Headers{{"Authorization", "Bearer acme-secret"}},
                  R"({"pattern":"globex.>"})", "application/json");
  ASSERT_TRUE(ticket_foreign);
  EXPECT_EQ(ticket_foreign->status, 403) << ticket_foreign->body;
  auto ticket_unauth = httplib::Client(_broker->admin_url)
                           .Post("/v1/stream/tickets", R"({"pattern":"acme.>"})", "application/json");
  ASSERT_TRUE(ticket_unauth);
  EXPECT_EQ(ticket_unauth->status, 401);
  // A channel's `permissions` apply to plain-channel streams, as to SUB.
  ASSERT_EQ(
      _http->Put("/v1/channels/acme.secret", R"({"permissions":{"subscribe":["ops"]}})", "application/json")
          ->status,
      200);
  auto denied = open_as("/v1/stream?pattern=acme.secret&token=acme-secret", {});
  EXPECT_EQ(
      error_of(*denied),
      R"(403 {"error":{"code":"forbidden","message":"\"acme-app\" may not subscribe to channel \"acme.secret\""}})");
}

TEST_F(sse_test, cors_headers_only_for_listed_origins_and_preflight) {
  auto yes = stream("/v1/stream?pattern=c.x", {"Origin: https://app.example.com"});
  EXPECT_EQ(yes->headers["access-control-allow-origin"], "https://app.example.com");
  EXPECT_EQ(yes->headers["vary"], "Origin");
  auto no = stream("/v1/stream?pattern=c.x", {"Origin: https://evil.example.com"});
  EXPECT_FALSE(no->headers.contains("access-control-allow-origin"));
  // Errors carry it too, so a page can read why.
  auto err = open("/v1/stream", {"Origin: https://other.example.com"});
  EXPECT_EQ(err->status, 400);
  EXPECT_EQ(err->headers["access-control-allow-origin"], "https://other.example.com");

  auto pre = std::make_unique<sse_reader>(
      _port, "/v1/stream?pattern=c.x",
      std::vector<std::string>{"Origin: https://app.example.com", "Access-Control-Request-Method: GET",
                               "Access-Control-Request-Headers: last-event-id"},
      "OPTIONS");
  ASSERT_TRUE(pre->read_head());
  EXPECT_EQ(pre->status, 204);
  EXPECT_EQ(pre->headers["access-control-allow-origin"], "https://app.example.com");
  EXPECT_EQ(pre->headers["access-control-allow-headers"], "Authorization, Last-Event-ID, Cache-Control");
}

TEST_F(sse_test, last_event_id_resumes_a_durable_channel_without_gap_or_duplicate) {
  ASSERT_EQ(_http->Put("/v1/channels/res.ch", R"({"durable":true})", "application/json")->status, 200);
  constexpr int total = 300;
  std::atomic<int> published{0};
  // The publisher keeps going while the reader disconnects and resumes.
  std::jthread pub([&] {
    for (int i = 1; i <= total; ++i) {
      publish("res.ch", fmt::format(R"({{"i":{}}})", i));
      published = i;
    }
  });
  std::vector<std::uint64_t> seqs;
  std::string last_id;
  {
    auto s = stream("/v1/stream?pattern=res.ch");
    s->wait_events(20);
    for (const auto& e : s->data_only()) {
      seqs.push_back(seq_of(e));
      last_id = e.id;
    }
  }  // disconnect mid-flow
  while (published < total && published < static_cast<int>(seqs.back()) + 30) std::this_thread::yield();
  auto r = stream("/v1/stream?pattern=res.ch", {"Last-Event-ID: " + last_id});
  pub.join();
  const std::uint64_t first = seqs.front();
  const std::size_t want = total - static_cast<std::size_t>(first) + 1 - seqs.size();
  r->wait_events(want, 20s);
  for (const auto& e : r->data_only()) seqs.push_back(seq_of(e));
  std::string all_seqs;
  for (const auto q : seqs) all_seqs += std::to_string(q) + " ";
  ASSERT_EQ(seqs.size(), total - first + 1) << "resumed after " << last_id << ": " << all_seqs;
  for (std::size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], first + i) << "at " << i;
  EXPECT_TRUE(metric_reaches("switchboard_sse_resumes_total", 1));

  // Nothing more than the new event follows.
  publish("res.ch", R"({"i":"after"})");
  r->wait_events(want + 1);
  const auto all = r->data_only();
  ASSERT_EQ(all.size(), want + 1);
  EXPECT_EQ(seq_of(all.back()), total + 1);
}

TEST_F(sse_test, a_stale_epoch_is_told_and_a_channel_without_history_too) {
  ASSERT_EQ(_http->Put("/v1/channels/ep.ch", R"({"durable":true})", "application/json")->status, 200);
  const publish_ack a = publish("ep.ch", R"({"i":1})");
  const std::string stale = fmt::format("ep.ch@{:016x}:{}", a.epoch, a.seq);
  auto wiped = _http->Delete("/v1/channels/ep.ch/events");
  ASSERT_TRUE(wiped);
  ASSERT_EQ(wiped->status, 200) << wiped->body;
  simdjson::dom::element doc;
  ASSERT_EQ(_parser.parse(wiped->body).get(doc), simdjson::SUCCESS);
  const std::string new_epoch = field(doc, "epoch");
  ASSERT_NE(new_epoch, fmt::format("{:016x}", a.epoch));

  auto s = stream("/v1/stream?pattern=ep.ch", {"Last-Event-ID: " + stale});
  s->wait_events(1);
  auto data = s->data_only();
  ASSERT_EQ(data.size(), 1u);
  EXPECT_FALSE(data[0].has_id);  // a notice does not move the browser's Last-Event-ID
  ASSERT_EQ(_parser.parse(data[0].data).get(doc), simdjson::SUCCESS) << data[0].data;
  EXPECT_EQ(field(doc, "type"), "switchboard.epoch_changed");
  EXPECT_EQ(field(doc, "subject"), "ep.ch");
  EXPECT_EQ(field(doc["data"], "epoch"), new_epoch);
  EXPECT_EQ(field(doc["data"], "stale_epoch"), fmt::format("{:016x}", a.epoch));
  // Live events follow, in the new epoch.
  const publish_ack b = publish("ep.ch", R"({"i":2})");
  s->wait_events(2);
  data = s->data_only();
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data[1].id, fmt::format("ep.ch@{}:{}", new_epoch, b.seq));

  // A channel that keeps no history: told, then live.
  auto live = stream("/v1/stream?pattern=nd.ch", {"Last-Event-ID: nd.ch@00000000000000aa:3"});
  live->wait_events(1);
  ASSERT_EQ(_parser.parse(live->data_only()[0].data).get(doc), simdjson::SUCCESS);
  EXPECT_EQ(field(doc, "type"), "switchboard.resume_unavailable");
  EXPECT_EQ(field(doc["data"], "last_event_id"), "nd.ch@00000000000000aa:3");
  publish("nd.ch", R"({"x":1})");
  live->wait_events(2);
  EXPECT_EQ(live->data_only().size(), 2u);
}

TEST_F(sse_test, a_slow_reader_is_closed_without_affecting_another_stream) {
  start({"--sse-queue-bytes", "262144"});
  auto slow = stream("/v1/stream?pattern=slow.ch");  // never reads again
  auto fast = stream("/v1/stream?pattern=slow.ch");
  const std::string payload = R"({"pad":")" + std::string(16 * 1024, 'x') + R"("})";
  constexpr std::size_t events = 800;  // ~13 MB: more than the loopback socket buffers hold
  // The fast reader reads each event before the next is published (on a shared CI machine a
  // reader descheduled for a few ms would otherwise be as slow as the slow one).
  for (std::size_t i = 0; i < events; ++i) {
    ASSERT_TRUE(_publisher->publish_sync("slow.ch", payload, 10s));
    fast->wait_events(i + 1);
    ASSERT_EQ(fast->data_events(), i + 1) << "fast reader missed event " << i;
  }
  EXPECT_EQ(fast->data_only().size(), events);
  EXPECT_TRUE(metric_reaches("switchboard_sse_closed_slow_total", 1));
  // The slow one ends (after what was already queued for it).
  EXPECT_TRUE(slow->closed_within(30s));
  EXPECT_LT(slow->poll_events().size(), events);
  EXPECT_EQ(metric("switchboard_sse_closed_slow_total"), 1u);
}

TEST_F(sse_test, two_hundred_concurrent_streams_each_receive_every_event) {
  constexpr std::size_t streams = 200;
  constexpr std::size_t events = 20;
  std::vector<std::unique_ptr<sse_reader>> readers;
  for (std::size_t i = 0; i < streams; ++i) readers.push_back(stream("/v1/stream?pattern=many.%3E"));
  EXPECT_TRUE(metric_reaches("switchboard_sse_streams", streams));
  for (std::size_t i = 0; i < events; ++i)
    publish(fmt::format("many.c{}", i % 3), fmt::format(R"({{"i":{}}})", i));
  for (auto& r : readers) {
    r->wait_events(events, 20s);
    const auto data = r->data_only();
    ASSERT_EQ(data.size(), events);
    for (std::size_t i = 0; i < events; ++i) {
      ASSERT_NE(data[i].data.find(fmt::format(R"("data":{{"i":{}}})", i)), std::string::npos) << data[i].data;
    }
  }
  readers.clear();  // disconnects: the gauge goes back to 0
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (metric("switchboard_sse_streams") != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(metric("switchboard_sse_streams"), 0u);
}

}  // namespace
}  // namespace switchboard
