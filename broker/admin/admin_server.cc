#include "broker/admin/admin_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>

#include "broker/admin/admin_api.h"
#include "broker/admin/http_server.h"

namespace switchboard::admin {

struct admin_server::impl {
  impl(admin_options o, const auth::token_table& t, control& c, std::vector<stream_route> s,
       std::vector<route_module> m)
      : opts(std::move(o)), api(t, c, std::move(s), [this] { return metrics(); }, std::move(m)) {}

  std::string metrics() const;

  const admin_options opts;
  const admin_api api;
  std::unique_ptr<http_server> http;  // set by start() right after it listens
  // `http` for the /metrics handler, which may run on a worker before start() has assigned `http`
  // (a client can connect as soon as the port listens): null until then.
  std::atomic<const http_server*> serving{nullptr};
};

std::string admin_server::impl::metrics() const {
  const http_server* server = serving.load(std::memory_order_acquire);
  if (server == nullptr) return {};
  const http_server::stats s = server->snapshot();
  std::string text =
      "# HELP switchboard_admin_requests_total Admin API responses by status class.\n"
      "# TYPE switchboard_admin_requests_total counter\n";
  for (std::size_t i = 0; i < s.responses_by_class.size(); ++i) {
    text += fmt::format("switchboard_admin_requests_total{{status=\"{}xx\"}} {}\n", i + 1, s.responses_by_class[i]);
  }
  text += fmt::format(
      "# HELP switchboard_admin_connections Admin API connections open (requests, idle keep-alive, streams).\n"
      "# TYPE switchboard_admin_connections gauge\n"
      "switchboard_admin_connections {}\n"
      "# HELP switchboard_admin_streams Admin API streamed responses open.\n"
      "# TYPE switchboard_admin_streams gauge\n"
      "switchboard_admin_streams {}\n"
      "# HELP switchboard_admin_connections_rejected_total Admin API connections refused over max_connections.\n"
      "# TYPE switchboard_admin_connections_rejected_total counter\n"
      "switchboard_admin_connections_rejected_total {}\n"
      "# HELP switchboard_admin_timeouts_total Admin API connections closed by a timeout, by phase.\n"
      "# TYPE switchboard_admin_timeouts_total counter\n"
      "switchboard_admin_timeouts_total{{phase=\"header\"}} {}\n"
      "switchboard_admin_timeouts_total{{phase=\"body\"}} {}\n"
      "switchboard_admin_timeouts_total{{phase=\"idle\"}} {}\n"
      "switchboard_admin_timeouts_total{{phase=\"write\"}} {}\n",
      s.connections_open, s.streams_open, s.connections_rejected, s.header_timeouts, s.body_timeouts, s.idle_timeouts,
      s.write_timeouts);
  return text;
}

std::optional<unsigned> admin_server::current_worker() noexcept { return http_server::current_worker(); }

std::expected<std::unique_ptr<admin_server>, std::string> admin_server::start(admin_options opts,
                                                                              const auth::token_table& tokens,
                                                                              control& ctl,
                                                                              std::vector<stream_route> streams,
                                                                              std::vector<route_module> modules) {
  auto p = std::make_unique<impl>(std::move(opts), tokens, ctl, std::move(streams), std::move(modules));
  const admin_api& api = p->api;
  auto http = http_server::start(
      p->opts, worker_threads, [&api](const http_request& req) { return api.handle(req); },
      [&api](const http_request& req) { return api.handle_on_io(req); });
  if (!http) return std::unexpected(http.error());
  p->http = std::move(*http);
  p->serving.store(p->http.get(), std::memory_order_release);
  spdlog::info("admin API listening on {}:{} ({} workers, auth {})", p->opts.bind, p->http->port(), worker_threads,
               tokens.open() ? "off" : "on");
  return std::unique_ptr<admin_server>(new admin_server(std::move(p)));
}

admin_server::admin_server(std::unique_ptr<impl> p) : _impl(std::move(p)) {}

admin_server::~admin_server() { stop(); }

std::uint16_t admin_server::port() const noexcept { return _impl->http->port(); }

std::string admin_server::url() const {
  std::string host = _impl->opts.bind;
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return fmt::format("http://{}:{}", host, _impl->http->port());
}

std::string admin_server::metrics_text() const { return _impl->metrics(); }

void admin_server::stop() { _impl->http->stop(); }

}  // namespace switchboard::admin
