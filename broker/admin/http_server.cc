#include "broker/admin/http_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <exception>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

namespace switchboard::admin {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using error_code = beast::error_code;

// How long stop() lets responses of requests already in progress be written.
constexpr std::chrono::seconds stop_grace{2};

thread_local const void* worker_owner = nullptr;  // the http_server::core whose worker this thread is
thread_local unsigned worker_slot = 0;

std::string describe(const tcp::endpoint& ep) {
  const std::string host = ep.address().to_string();
  return ep.address().is_v6() ? fmt::format("[{}]:{}", host, ep.port()) : fmt::format("{}:{}", host, ep.port());
}

class connection;

}  // namespace

struct http_server::core {
  core(const admin_options& o, unsigned n, worker_handler w, io_handler i)
      : opts(o), workers(n), on_worker(std::move(w)), on_io(std::move(i)) {}

  const admin_options opts;
  const unsigned workers;
  const worker_handler on_worker;
  const io_handler on_io;

  std::array<std::atomic<std::uint64_t>, 5> by_class{};
  std::atomic<std::uint64_t> open{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> streams{0};
  std::atomic<std::uint64_t> header_timeouts{0};
  std::atomic<std::uint64_t> body_timeouts{0};
  std::atomic<std::uint64_t> idle_timeouts{0};
  std::atomic<std::uint64_t> write_timeouts{0};
  std::atomic<bool> stopping{false};

  // Live connections, for stop(). Declared before the io_context: destroying it destroys pending
  // handlers and so connections, which unregister here.
  std::mutex conn_mutex;
  std::list<connection*> conns;  // guarded by conn_mutex
  std::condition_variable conns_empty;

  net::io_context io{1};
  tcp::acceptor acceptor{io};
  net::steady_timer accept_retry{io};  // io thread only
  std::uint16_t port = 0;
  std::thread io_thread;

  // The worker pool: a second io_context run by `workers` threads. Destroyed first (declared last):
  // it is empty by then (stop() joined the workers after they drained it).
  net::io_context work{static_cast<int>(n_or_one(workers))};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_guard;
  std::vector<std::thread> worker_threads;

  std::mutex stop_mutex;  // serialises stop()
  bool stopped = false;   // guarded by stop_mutex

  static unsigned n_or_one(unsigned n) { return n == 0 ? 1 : n; }
  void count(int status) {
    if (status >= 100 && status <= 599) by_class[static_cast<std::size_t>(status / 100 - 1)]++;
  }
  void accept();
  void reject(tcp::socket s);
};

namespace {

// One TCP connection: reads requests, writes responses and streams, on its own strand.
// Phases: a connection waits for a request (idle), reads its header then body, waits for the worker
// (or answers at once), writes the response, and starts over (keep-alive) or closes. A streamed
// response keeps the connection in `streaming` until the stream ends.
// Lifetime: shared_ptr held by its pending operation handlers and, while a worker has its request,
// by the worker task; registered in core::conns from construction to destruction.
class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(http_server::core& c, tcp::socket s)
      : _core(c), _strand(s.get_executor()), _stream(std::move(s)), _file_timer(_strand) {
    _core.open++;
    const std::lock_guard lock(_core.conn_mutex);
    _registered = _core.conns.insert(_core.conns.end(), this);
  }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection() {
    if (_body_stream) end_stream();
    {
      const std::lock_guard lock(_core.conn_mutex);
      _core.conns.erase(_registered);
      if (_core.conns.empty()) _core.conns_empty.notify_all();
    }
    _core.open--;
  }

  void start() {
    // A file response is the head, then sendfile(2) of the body: two writes. With Nagle's algorithm
    // a small body would wait for the ACK of the head (delayed ACK: ~40 ms per request).
    error_code ignored;
    _stream.socket().set_option(tcp::no_delay(true), ignored);
    if (const auto ep = _stream.socket().remote_endpoint(ignored); !ignored) _peer = describe(ep);
    net::dispatch(_strand, [self = shared_from_this()] {
      self->_stream.expires_after(self->_core.opts.header_timeout);  // first request: from accept
      self->read_header();
    });
  }

  // From stop(): close now unless a worker holds the request (then close after its response).
  void shutdown() {
    net::dispatch(_strand, [self = shared_from_this()] {
      self->_stopping = true;
      if (self->_phase != phase::worker && self->_phase != phase::writing) self->close();
    });
  }

 private:
  enum class phase { idle, header, body, worker, writing, streaming, lingering, closed };

  void wait_for_request() {
    if (_stopping) return close();
    if (_buffer.size() > 0) {  // pipelined: the next request has begun
      _stream.expires_after(_core.opts.header_timeout);
      return read_header();
    }
    _phase = phase::idle;
    _stream.expires_after(_core.opts.idle_timeout);
    _stream.async_read_some(_buffer.prepare(1024), [self = shared_from_this()](error_code ec, std::size_t n) {
      self->_buffer.commit(n);
      if (ec) return self->fail(ec);
      self->_stream.expires_after(self->_core.opts.header_timeout);
      self->read_header();
    });
  }

  void read_header() {
    _phase = phase::header;
    _parser.emplace();
    _parser->header_limit(static_cast<std::uint32_t>(_core.opts.max_header_bytes));
    _parser->body_limit(_core.opts.max_body_bytes);
    http::async_read_header(_stream, _buffer, *_parser, [self = shared_from_this()](error_code ec, std::size_t) {
      self->on_header(ec);
    });
  }

  void on_header(error_code ec) {
    if (ec) return fail(ec);
    const auto& h = _parser->get();
    _keep_alive = h.keep_alive();
    _version = h.version();
    _head = h.method() == http::verb::head;
    if (_parser->is_done()) return dispatch();
    _phase = phase::body;
    _stream.expires_after(_core.opts.body_timeout);
    if (beast::iequals(h[http::field::expect], "100-continue")) {
      static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(_stream, net::buffer(go_on.data(), go_on.size()),
                       [self = shared_from_this()](error_code e, std::size_t) {
                         if (e) return self->fail(e);
                         self->read_body();
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(_stream, _buffer, *_parser, [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->fail(ec);
      self->dispatch();
    });
  }

  // A read or write failed: the peer left, a timeout fired (counted by phase), or bad HTTP (400/431).
  void fail(error_code ec) {
    if (_phase == phase::closed) return;
    if (ec == beast::error::timeout) {
      switch (_phase) {
        case phase::idle: _core.idle_timeouts++; break;
        case phase::header: _core.header_timeouts++; break;
        case phase::body: _core.body_timeouts++; break;
        default: _core.write_timeouts++; break;
      }
      return close();
    }
    if (_phase == phase::lingering) return close();
    static const auto& http_errors = http::make_error_code(http::error::bad_method).category();
    if (ec.category() == http_errors && ec != http::error::end_of_stream && ec != http::error::partial_message &&
        (_phase == phase::header || _phase == phase::body)) {
      if (ec == http::error::body_limit) return too_large();  // Content-Length over the limit
      if (ec == http::error::header_limit) {
        return respond_and_close(error_response(
            431, "header_too_large", fmt::format("request header exceeds {} bytes", _core.opts.max_header_bytes)));
      }
      return respond_and_close(error_response(400, "bad_request", "malformed HTTP request: " + ec.message()));
    }
    close();
  }

  void too_large() {
    respond_and_close(error_response(413, "payload_too_large",
                                     fmt::format("request body exceeds {} bytes", _core.opts.max_body_bytes)));
  }

  // An error answered before the request was read to its end: after the response, shut down our
  // side and read (and drop) what the client still sends for a while, so that closing does not
  // reset the connection before the client has read the response (it may still be sending a body).
  void respond_and_close(http_response r) {
    _keep_alive = false;
    _linger = true;
    respond(std::move(r));
  }

  void linger() {
    _phase = phase::lingering;
    error_code ignored;
    _stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    _stream.expires_after(std::min<std::chrono::milliseconds>(_core.opts.body_timeout, std::chrono::seconds(5)));
    drain();
  }

  void drain() {
    _buffer.clear();
    _stream.async_read_some(_buffer.prepare(16 * 1024), [self = shared_from_this()](error_code ec, std::size_t n) {
      self->_drained += n;
      if (ec || self->_drained > 2 * self->_core.opts.max_body_bytes) return self->close();
      self->drain();
    });
  }

  void dispatch() {
    _stream.expires_never();
    http::request<http::string_body> msg = _parser->release();
    _parser.reset();
    http_request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    for (const auto& f : msg) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    req.body = std::move(msg.body());
    req.peer = _peer;
    if (auto r = _core.on_io(req)) return respond(std::move(*r));
    if (_core.stopping) return respond_and_close(error_response(503, "shutting_down", "the broker is stopping"));
    _phase = phase::worker;
    net::post(_core.work, [self = shared_from_this(), req = std::move(req)] {
      http_response r;
      try {
        r = self->_core.on_worker(req);
      } catch (const std::exception& e) {
        spdlog::error("admin request handler threw: {}", e.what());
        r = error_response(500, "internal_error", "internal error");
      }
      net::post(self->_strand, [self, r = std::move(r)]() mutable { self->respond(std::move(r)); });
    });
  }

  void respond(http_response r) {
    if (_phase == phase::closed) {
      if (r.stream) detail::stream_attachment::end(*r.stream);
      return;
    }
    if (r.deferred) {
      // The response comes later, from another thread; like a worker, the completion keeps the
      // connection alive until then (whoever completes must do so before the server is destroyed).
      _phase = phase::worker;
      r.deferred->on_complete([self = shared_from_this()](http_response later) {
        net::post(self->_strand, [self, later = std::move(later)]() mutable { self->respond(std::move(later)); });
      });
      return;
    }
    _core.count(r.status);
    if (r.stream && !_head) return start_stream(std::move(r));
    if (r.stream) detail::stream_attachment::end(*r.stream);  // HEAD: the head only
    if (r.file) return start_file(std::move(r));
    _phase = phase::writing;
    _res.emplace();
    _res->version(_version);
    _res->result(static_cast<unsigned>(r.status));
    if (!r.content_type.empty()) _res->set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) _res->insert(k, v);
    _res->body() = std::move(r.body);
    _res->keep_alive(_keep_alive && !_stopping);
    _res->prepare_payload();
    if (_head) _res->body().clear();  // Content-Length stays that of the GET body
    _stream.expires_after(_core.opts.write_timeout);
    http::async_write(_stream, *_res, [self = shared_from_this()](error_code ec, std::size_t) {
      const bool again = self->_res->keep_alive();
      self->_res.reset();
      if (ec) return self->fail(ec);
      if (!again) return self->_linger ? self->linger() : self->close();
      self->wait_for_request();
    });
  }

  // File response: the head (with Content-Length), then the file range with sendfile(2) straight
  // from the page cache to the socket, whenever the socket can take more. No thread waits on it.
  void start_file(http_response r) {
    _phase = phase::writing;
    _file = std::move(r.file);
    _file_offset = _file->offset();
    _file_left = _head ? 0 : _file->length();
    _file_head.emplace();
    _file_head->version(_version);
    _file_head->result(static_cast<unsigned>(r.status));
    if (!r.content_type.empty()) _file_head->set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) _file_head->insert(k, v);
    _file_head->content_length(_file->length());
    _file_head->keep_alive(_keep_alive && !_stopping);
    _file_serializer.emplace(*_file_head);
    _stream.expires_after(_core.opts.write_timeout);
    http::async_write_header(_stream, *_file_serializer, [self = shared_from_this()](error_code ec, std::size_t) {
      self->_file_serializer.reset();
      if (ec) return self->fail(ec);
      self->_stream.expires_never();
      error_code ignored;
      self->_stream.socket().native_non_blocking(true, ignored);
      self->send_file();
    });
  }

  void send_file() {
    if (_phase != phase::writing || !_file) return;
    constexpr std::uint64_t max_per_call = std::uint64_t{1} << 20;
    constexpr std::uint64_t max_per_turn = std::uint64_t{4} << 20;  // then let other connections run
    std::uint64_t sent = 0;
    while (_file_left > 0) {
      if (sent >= max_per_turn) {
        net::post(_strand, [self = shared_from_this()] { self->send_file(); });
        return;
      }
      off_t offset = static_cast<off_t>(_file_offset);
      const ssize_t n = ::sendfile(_stream.socket().native_handle(), _file->fd(), &offset,
                                   static_cast<std::size_t>(std::min(_file_left, max_per_call)));
      if (n > 0) {
        _file_offset += static_cast<std::uint64_t>(n);
        _file_left -= static_cast<std::uint64_t>(n);
        sent += static_cast<std::uint64_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        _file_timer.expires_after(_core.opts.write_timeout);
        _file_timer.async_wait([self = shared_from_this()](error_code ec) {
          if (ec || self->_phase != phase::writing) return;  // cancelled: the socket took more
          self->_core.write_timeouts++;
          self->close();
        });
        _stream.socket().async_wait(tcp::socket::wait_write, [self = shared_from_this()](error_code ec) {
          self->_file_timer.cancel();
          if (self->_phase != phase::writing) return;
          if (ec) return self->close();
          self->send_file();
        });
        return;
      }
      // The file is shorter than announced (n == 0) or the socket failed: the Content-Length sent
      // cannot be honoured, so the connection ends here.
      if (n == 0) spdlog::warn("admin API: a file ended {} bytes early; closing the connection", _file_left);
      return close();
    }
    _file.reset();
    if (!_file_head->keep_alive()) {
      _file_head.reset();
      return _linger ? linger() : close();
    }
    _file_head.reset();
    wait_for_request();
  }

  // Streamed response: the head now, chunks as the stream's producer pushes them.
  void start_stream(http_response r) {
    _phase = phase::streaming;
    _body_stream = std::move(r.stream);
    _core.streams++;
    _chunked = _version >= 11;
    _stream_head.emplace();
    _stream_head->version(_version);
    _stream_head->result(static_cast<unsigned>(r.status));
    if (!r.content_type.empty()) _stream_head->set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) _stream_head->insert(k, v);
    if (_chunked) {
      _stream_head->chunked(true);
    } else {
      _stream_head->keep_alive(false);  // HTTP/1.0: the body ends with the connection
    }
    _head_serializer.emplace(*_stream_head);
    _buffer.clear();  // a stream reads only into _discard: give the request buffer back
    _buffer.shrink_to_fit();
    // Read while streaming only to notice the client leaving (anything it sends is discarded).
    _stream.expires_never();
    read_discard();
    _writing = true;
    _stream.expires_after(_core.opts.write_timeout);  // the read is pending: this times the write only
    http::async_write_header(_stream, *_head_serializer, [self = shared_from_this()](error_code ec, std::size_t) {
      self->_head_serializer.reset();
      self->_stream_head.reset();
      self->on_stream_written(ec);
    });
    std::weak_ptr<connection> weak = weak_from_this();
    detail::stream_attachment::attach(*_body_stream, [weak, strand = _strand] {
      net::post(strand, [weak] {
        if (auto self = weak.lock()) self->flush_stream();
      });
    });
  }

  void read_discard() {
    _stream.async_read_some(net::buffer(_discard), [self = shared_from_this()](error_code ec, std::size_t) {
      if (self->_phase != phase::streaming) return;
      if (ec) return self->close();  // the client left
      self->read_discard();
    });
  }

  void flush_stream() {
    if (_phase != phase::streaming || _writing) return;
    auto batch = detail::stream_attachment::take(*_body_stream);
    if (batch.chunks.empty() && !batch.closing) return;
    _in_flight = std::move(batch.chunks);
    _finishing = batch.closing;
    std::size_t total = 0;
    for (const auto& c : _in_flight) total += c.size();
    _buffers.clear();
    if (_chunked && total > 0) {
      _frame_head = fmt::format("{:x}\r\n", total);
      _buffers.emplace_back(net::buffer(_frame_head));
    }
    for (const auto& c : _in_flight) _buffers.emplace_back(net::buffer(c));
    if (_chunked && total > 0) _buffers.emplace_back(net::buffer("\r\n", 2));
    if (_chunked && _finishing) _buffers.emplace_back(net::buffer("0\r\n\r\n", 5));
    _writing = true;
    _stream.expires_after(_core.opts.write_timeout);
    net::async_write(_stream, _buffers, [self = shared_from_this()](error_code ec, std::size_t) {
      self->_in_flight.clear();
      self->on_stream_written(ec);
    });
  }

  void on_stream_written(error_code ec) {
    _writing = false;
    if (_phase != phase::streaming) return;
    if (ec) return fail(ec);
    if (_finishing || _stopping) return close();
    flush_stream();
  }

  void end_stream() {
    _core.streams--;
    auto s = std::move(_body_stream);
    detail::stream_attachment::end(*s);
  }

  void close() {
    if (_phase == phase::closed) return;
    _phase = phase::closed;
    _file_timer.cancel();
    _file.reset();
    error_code ignored;
    _stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    _stream.close();
    if (_body_stream) end_stream();
  }

  http_server::core& _core;
  const net::any_io_executor _strand;  // the connection's strand
  beast::tcp_stream _stream;
  beast::flat_buffer _buffer;
  phase _phase = phase::header;
  bool _keep_alive = false;
  bool _head = false;
  bool _stopping = false;
  bool _linger = false;
  std::size_t _drained = 0;
  unsigned _version = 11;
  std::optional<http::request_parser<http::string_body>> _parser;
  std::optional<http::response<http::string_body>> _res;
  // Streaming.
  std::shared_ptr<response_stream> _body_stream;
  std::string _peer;  // "IP:PORT" of the client, set at start()
  std::optional<http::response<http::empty_body>> _stream_head;
  std::optional<http::response_serializer<http::empty_body>> _head_serializer;
  bool _chunked = true;
  bool _writing = false;
  bool _finishing = false;
  std::vector<std::string> _in_flight;
  std::vector<net::const_buffer> _buffers;
  std::string _frame_head;
  std::array<char, 64> _discard{};
  // File responses (http_response::file).
  std::shared_ptr<const file_body> _file;
  std::uint64_t _file_offset = 0;  // next byte of the file to send
  std::uint64_t _file_left = 0;    // bytes still to send
  std::optional<http::response<http::empty_body>> _file_head;
  std::optional<http::response_serializer<http::empty_body>> _file_serializer;
  net::steady_timer _file_timer;  // write_timeout while waiting for the socket to take more
  std::list<connection*>::iterator _registered;
};

}  // namespace

void http_server::core::accept() {
  acceptor.async_accept(net::make_strand(io), [this](error_code ec, tcp::socket s) {
    if (ec == net::error::operation_aborted || stopping) return;
    if (ec) {
      // Out of descriptors (EMFILE) or similar: retry shortly instead of spinning.
      spdlog::warn("admin API: accept failed: {}", ec.message());
      accept_retry.expires_after(std::chrono::milliseconds(100));
      accept_retry.async_wait([this](error_code e) {
        if (!e && !stopping) accept();
      });
      return;
    }
    if (open.load() >= opts.max_connections) {
      reject(std::move(s));
    } else {
      std::make_shared<connection>(*this, std::move(s))->start();
    }
    accept();
  });
}

// Over the limit: a best-effort 503 written without blocking, then close; nothing is kept.
void http_server::core::reject(tcp::socket s) {
  rejected++;
  count(503);
  static const std::string text = [] {
    const http_response r = error_response(503, "too_many_connections", "too many admin API connections; retry later");
    return fmt::format("HTTP/1.1 503 Service Unavailable\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
                       "Connection: close\r\nRetry-After: 1\r\n\r\n{}",
                       r.content_type, r.body.size(), r.body);
  }();
  [[maybe_unused]] const auto n = ::send(s.native_handle(), text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  error_code ignored;
  s.shutdown(tcp::socket::shutdown_both, ignored);
  s.close(ignored);
}

std::expected<std::unique_ptr<http_server>, std::string> http_server::start(const admin_options& opts,
                                                                            unsigned workers,
                                                                            worker_handler on_worker,
                                                                            io_handler on_io) {
  auto c = std::make_unique<core>(opts, workers, std::move(on_worker), std::move(on_io));
  error_code ec;
  tcp::endpoint ep;
  if (const auto address = net::ip::make_address(opts.bind, ec); !ec) {
    ep = tcp::endpoint(address, opts.port);
  } else {  // a host name, e.g. "localhost": its first address
    tcp::resolver resolver(c->io);
    const auto found = resolver.resolve(opts.bind, std::to_string(opts.port), ec);
    if (ec || found.empty()) {
      return std::unexpected(fmt::format("admin API cannot listen on {}:{}: cannot resolve {}", opts.bind, opts.port,
                                         opts.bind));
    }
    ep = found.begin()->endpoint();
  }
  const auto cannot = [&](std::string_view what) {
    return std::unexpected(fmt::format("admin API cannot listen on {}: {} ({})", describe(ep), ec.message(), what));
  };
  c->acceptor.open(ep.protocol(), ec);
  if (ec) return cannot("socket");
  // SO_REUSEADDR only lets a restarted broker bind over connections in TIME_WAIT; on Linux it does
  // not let a second listener share the port (that would be SO_REUSEPORT, which is never set).
  c->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (ec) return cannot("SO_REUSEADDR");
  c->acceptor.bind(ep, ec);
  if (ec) return cannot("bind");
  c->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return cannot("listen");
  c->port = c->acceptor.local_endpoint().port();

  core* raw = c.get();
  raw->accept();
  raw->io_thread = std::thread([raw] { raw->io.run(); });
  raw->work_guard.emplace(raw->work.get_executor());
  for (unsigned i = 0; i < core::n_or_one(workers); ++i) {
    raw->worker_threads.emplace_back([raw, i] {
      worker_owner = raw;
      worker_slot = i;
      raw->work.run();
    });
  }
  return std::unique_ptr<http_server>(new http_server(std::move(c)));
}

std::optional<unsigned> http_server::current_worker() noexcept {
  if (worker_owner == nullptr) return std::nullopt;
  return worker_slot;
}

http_server::http_server(std::unique_ptr<core> c) : _core(std::move(c)) {}

http_server::~http_server() { stop(); }

std::uint16_t http_server::port() const noexcept { return _core->port; }

http_server::stats http_server::snapshot() const noexcept {
  stats s;
  for (std::size_t i = 0; i < s.responses_by_class.size(); ++i) s.responses_by_class[i] = _core->by_class[i].load();
  s.connections_open = _core->open.load();
  s.connections_rejected = _core->rejected.load();
  s.streams_open = _core->streams.load();
  s.header_timeouts = _core->header_timeouts.load();
  s.body_timeouts = _core->body_timeouts.load();
  s.idle_timeouts = _core->idle_timeouts.load();
  s.write_timeouts = _core->write_timeouts.load();
  return s;
}

void http_server::stop() {
  core& c = *_core;
  const std::lock_guard lock(c.stop_mutex);
  if (c.stopped) return;
  c.stopped = true;
  c.stopping = true;
  // 1. No new connections; idle, reading and streaming connections close now, busy ones after
  //    their response.
  net::post(c.io, [&c] {
    error_code ignored;
    c.acceptor.close(ignored);
    c.accept_retry.cancel();
    std::vector<std::shared_ptr<connection>> live;
    {
      const std::lock_guard l(c.conn_mutex);
      for (connection* conn : c.conns) {
        if (auto sp = conn->weak_from_this().lock()) live.push_back(std::move(sp));
      }
    }
    for (auto& conn : live) conn->shutdown();
  });
  // 2. The workers finish every request they were given, then exit.
  c.work_guard.reset();
  for (auto& t : c.worker_threads) t.join();
  c.worker_threads.clear();
  // 3. Their responses are written (bounded by stop_grace), then the io thread stops.
  {
    std::unique_lock l(c.conn_mutex);
    c.conns_empty.wait_for(l, stop_grace, [&c] { return c.conns.empty(); });
  }
  c.io.stop();
  if (c.io_thread.joinable()) c.io_thread.join();
  // The io thread may have stopped before it ran the close posted in step 1 (nothing was
  // connected, so step 3 did not wait): close the listener here, now that no thread uses it, so
  // the port refuses connections as soon as stop() returns.
  error_code ignored;
  c.acceptor.close(ignored);
}

}  // namespace switchboard::admin
