#include "broker/server/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

#include "broker/router/router.h"
#include "broker/transport/transport.h"

namespace switchboard::server {

struct server::impl {
  options opts;
  std::unique_ptr<router::router> rt;
  std::unique_ptr<transport::transport> tp;
  std::atomic<bool> running{false};
};

namespace {

unsigned default_shards() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 1 ? hw - 1 : 1;
}

std::uint64_t random_epoch() {
  std::random_device rd;
  std::uint64_t e = 0;
  while (e == 0) e = (std::uint64_t{rd()} << 32) | rd();
  return e;
}

}  // namespace

std::expected<std::unique_ptr<server>, start_error> server::start(const options& opts) {
  if (opts.slow_consumer != "disconnect" && opts.slow_consumer != "drop_oldest") {
    return std::unexpected(start_error{"slow-consumer must be \"disconnect\" or \"drop_oldest\", not \"" +
                                       opts.slow_consumer + "\"", true});
  }
  if (opts.shards > 64) return std::unexpected(start_error{"shards must be between 0 and 64", true});
  auto p = std::make_unique<impl>();
  p->opts = opts;
  const std::uint64_t epoch = random_epoch();
  router::router_options ro;
  ro.shards = opts.shards == 0 ? default_shards() : opts.shards;
  ro.max_payload_bytes = opts.max_payload_bytes;
  ro.epoch = epoch;
  p->rt = std::make_unique<router::router>(ro);

  transport::transport_options to;
  to.bind = opts.bind;
  to.token = opts.admin_token;
  to.max_payload_bytes = opts.max_payload_bytes;
  to.subscriber_queue = opts.subscriber_queue;
  to.socket_hwm = opts.socket_hwm;
  to.default_policy =
      opts.slow_consumer == "drop_oldest" ? router::slow_policy::drop_oldest : router::slow_policy::disconnect;
  to.heartbeat_ms = opts.heartbeat_ms;
  to.epoch = epoch;
  auto tp = transport::transport::create(to, *p->rt);
  if (!tp) return std::unexpected(start_error{tp.error().message});
  p->tp = std::move(*tp);

  auto* t = p->tp.get();
  p->rt->start([t] { t->wake(); });
  p->tp->start();
  p->running = true;
  spdlog::info("router: {} shard(s), epoch {:016x}", ro.shards, epoch);
  return std::unique_ptr<server>(new server(std::move(p)));
}

server::server(std::unique_ptr<impl> p) : _impl(std::move(p)) {}

server::~server() { stop(); }

std::string server::endpoint() const { return _impl->tp->endpoint(); }

std::string server::admin_url() const { return {}; }

stats server::snapshot() const {
  const auto r = _impl->rt->snapshot();
  const auto t = _impl->tp->snapshot();
  return stats{.published = r.published,
               .delivered = t.delivered,
               .slow_consumer_drops = t.slow_consumer_drops,
               .slow_consumer_disconnects = t.slow_consumer_disconnects,
               .bad_frames = t.bad_frames,
               .reaped = t.reaped,
               .connections = t.connections,
               .subscriptions = r.subscriptions};
}

void server::stop() {
  if (!_impl->running.exchange(false)) return;
  _impl->tp->stop_accepting();  // no new work reaches the router
  _impl->rt->stop();            // shards finish what they were given
  _impl->tp->stop();            // their output is sent, the socket closed
}

}  // namespace switchboard::server
