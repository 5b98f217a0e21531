// switchboard: the broker executable. Parses options (flags override the config file; abbreviated
// flags are refused), starts one server, prints the ready line, and waits for SIGTERM/SIGINT, then
// drains and exits 0. SIGHUP re-reads the config file's tokens and log level. `--version` prints
// the version and build; `--check-config FILE` validates a file and exits 0 or 2 (nats-server -t).
// Exit codes: 0 clean stop, 1 start-up failure (e.g. port in use), 2 bad option or config key.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <fmt/format.h>
#include <switchboard/build_info.h>
#include <switchboard/protocol.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <expected>
#include <fstream>
#include <iostream>

#include "broker/server/logging.h"
#include "broker/server/server.h"

namespace po = boost::program_options;
using switchboard::server::options;

namespace {

po::options_description describe(options& o) {
  po::options_description d("switchboard options (also keys of the --config file)");
  d.add_options()
      ("bind", po::value(&o.bind)->default_value(o.bind), "client protocol endpoint (ZeroMQ)")
      ("admin-bind", po::value(&o.admin_bind)->default_value(o.admin_bind), "admin HTTP API address")
      ("admin-port", po::value(&o.admin_port)->default_value(o.admin_port), "admin HTTP API port (0 = any free)")
      ("admin-token", po::value(&o.admin_token)->default_value(o.admin_token), "bearer token; empty = no auth")
      ("token", po::value(&o.tokens)->composing(), "extra token NAME:SECRET:TENANT:SCOPES (repeatable)")
      ("data-dir", po::value(&o.data_dir)->default_value(o.data_dir), "RocksDB data directory")
      ("memory", po::bool_switch(&o.memory), "run with no disk (in-memory store)")
      ("recover", po::bool_switch(&o.recover),
       "start on a damaged write-ahead log: keep what reads back, report losses, new epochs")
      ("shards", po::value(&o.shards)->default_value(o.shards), "router shard threads (0 = cores - 1, min 1)")
      ("max-payload-bytes", po::value(&o.max_payload_bytes)->default_value(o.max_payload_bytes),
       "largest accepted event payload")
      ("subscriber-queue", po::value(&o.subscriber_queue)->default_value(o.subscriber_queue),
       "events queued per subscriber connection before its slow-consumer policy applies")
      ("socket-hwm", po::value(&o.socket_hwm)->default_value(o.socket_hwm),
       "batches ZeroMQ buffers per client before the subscriber queue fills")
      ("slow-consumer", po::value(&o.slow_consumer)->default_value(o.slow_consumer),
       "default slow-consumer policy: disconnect | drop_oldest")
      ("heartbeat-ms", po::value(&o.heartbeat_ms)->default_value(o.heartbeat_ms),
       "heartbeat assumed for clients that do not set one; 3 missed = dropped")
      ("retention-interval-ms", po::value(&o.retention_interval_ms)->default_value(o.retention_interval_ms),
       "how often retention limits are enforced (0 = never)")
      ("channel-idle-s", po::value(&o.channel_idle_s)->default_value(o.channel_idle_s),
       "drop a channel from memory after this long without traffic, subscribers or own config (0 = never)")
      ("webhook-max-attempts", po::value(&o.webhook_max_attempts)->default_value(o.webhook_max_attempts),
       "attempts per webhook delivery (the first included) before it is dead-lettered")
      ("webhook-initial-backoff-ms", po::value(&o.webhook_initial_backoff_ms)->default_value(o.webhook_initial_backoff_ms),
       "wait before a webhook's first retry; doubled per retry, full jitter")
      ("webhook-retry-budget-s", po::value(&o.webhook_retry_budget_s)->default_value(o.webhook_retry_budget_s),
       "how long a webhook delivery may keep retrying before it is dead-lettered")
      ("webhook-breaker-failures", po::value(&o.webhook_breaker_failures)->default_value(o.webhook_breaker_failures),
       "consecutive failures that open a webhook sink's circuit breaker (0 = no breaker)")
      ("webhook-breaker-open-ms", po::value(&o.webhook_breaker_open_ms)->default_value(o.webhook_breaker_open_ms),
       "how long an open breaker waits before one probe request")
      ("log-level", po::value(&o.log_level)->default_value(o.log_level),
       "trace | debug | info | warn | error | off")
      ("log-format", po::value(&o.log_format)->default_value(o.log_format),
       "text | json (one JSON object per line)")
      ("media", po::value(&o.media)->default_value(o.media),
       "serve the media layer (POST /v1/media, GET /media/<id>; cache in <data-dir>/media)")
      ("media-max-bytes", po::value(&o.media_max_bytes)->default_value(o.media_max_bytes),
       "largest origin response fetched for media")
      ("media-max-seconds", po::value(&o.media_max_seconds)->default_value(o.media_max_seconds),
       "longest media audio, fetched or spoken (seconds)")
      ("media-cache-bytes", po::value(&o.media_cache_bytes)->default_value(o.media_cache_bytes),
       "bytes of converted media kept on disk (least recently used evicted beyond)")
      ("media-volatile-params", po::value(&o.media_volatile_params)->default_value(o.media_volatile_params),
       "query parameters left out of media ids (comma list, case-insensitive): signatures, expiries")
      ("media-fetch-timeout-ms", po::value(&o.media_fetch_timeout_ms)->default_value(o.media_fetch_timeout_ms),
       "whole origin fetch timeout for media (ms)")
      ("cors-origins", po::value(&o.cors_origins)->default_value(o.cors_origins),
       "origins allowed to read GET /v1/stream across origins (comma list, or *)")
      ("sse-heartbeat-ms", po::value(&o.sse_heartbeat_ms)->default_value(o.sse_heartbeat_ms),
       "heartbeat comment on every Server-Sent Events stream this often (ms)")
      ("sse-retry-ms", po::value(&o.sse_retry_ms)->default_value(o.sse_retry_ms),
       "retry: hint sent to Server-Sent Events clients (ms)")
      ("sse-ticket-ttl-s", po::value(&o.sse_ticket_ttl_s)->default_value(o.sse_ticket_ttl_s),
       "lifetime of stream tickets (s)")
      ("sse-max-streams", po::value(&o.sse_max_streams)->default_value(o.sse_max_streams),
       "Server-Sent Events streams open at most")
      ("sse-queue-bytes", po::value(&o.sse_queue_bytes)->default_value(o.sse_queue_bytes),
       "bytes a stream may have waiting for its client before it is closed as slow");
  return d;
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "switchboard: %s\n", message.c_str());
  return 2;
}

// Everything the command line and the --config file say (flags override the file).
struct command_line {
  options opts;
  std::string config;        // --config or --check-config FILE
  bool check_only = false;   // --check-config: validate and exit
  bool help = false;
  bool version = false;
};

// Abbreviated long options are refused (Boost's default would take `--shard 2` for `--shards 2`),
// so that a flag means exactly what the same key in the config file means.
constexpr int flag_style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;

// Parses argv and then the config file it names into `out`. Throws po::error; returns an error
// message for an unreadable file.
std::expected<void, std::string> parse(int argc, char** argv, command_line& out, po::options_description& all) {
  auto broker_opts = describe(out.opts);
  std::string check;
  po::options_description cli("command line");
  cli.add_options()("help,h", "show this help")("version", "print the version and build, then exit")(
      "config", po::value(&out.config), "config file (INI: key = value)")(
      "check-config", po::value(&check), "check this config file (and the flags) and exit: 0 valid, 2 not");
  cli.add(broker_opts);
  all.add(cli);
  po::variables_map vm;
  po::store(po::command_line_parser(argc, argv).options(cli).style(flag_style).run(), vm);
  out.help = vm.count("help") > 0;
  out.version = vm.count("version") > 0;
  if (out.help || out.version) return {};
  if (vm.count("check-config")) {
    if (vm.count("config")) throw po::error("--config and --check-config cannot be used together");
    out.check_only = true;
    out.config = vm["check-config"].as<std::string>();
  } else if (vm.count("config")) {
    out.config = vm["config"].as<std::string>();
  }
  if (!out.config.empty()) {
    std::ifstream in(out.config);
    if (!in) return std::unexpected("cannot read config file " + out.config);
    // Flags were stored first, so they win over the file.
    po::store(po::parse_config_file(in, broker_opts, /*allow_unregistered=*/false), vm);
  }
  po::notify(vm);
  return {};
}

std::string version_line(const char* program) {
  namespace bi = switchboard::build_info;
  return fmt::format("{} {} (commit {}, {} build, protocol version {})", program, bi::version, bi::commit,
                     bi::build_type, switchboard::protocol::version);
}

// SIGHUP: re-reads the config file (and the same flags) and applies what can change at run time:
// tokens and the log level. Everything else needs a restart, which the log says.
void reload(int argc, char** argv, const command_line& running, switchboard::server::server& srv) {
  if (running.config.empty()) {
    spdlog::warn("SIGHUP: no --config file to re-read; nothing changed");
    return;
  }
  command_line fresh;
  po::options_description all;
  try {
    if (auto ok = parse(argc, argv, fresh, all); !ok) {
      spdlog::error("SIGHUP: {}; nothing changed", ok.error());
      return;
    }
  } catch (const po::error& e) {
    spdlog::error("SIGHUP: {} in {}; nothing changed", e.what(), running.config);
    return;
  }
  if (auto ok = switchboard::server::set_log_level(fresh.opts.log_level); !ok) {
    spdlog::error("SIGHUP: {}; nothing changed", ok.error());
    return;
  }
  auto applied = srv.reload_tokens(fresh.opts.admin_token, fresh.opts.tokens);
  if (!applied) {
    spdlog::error("SIGHUP: {} in {}; tokens unchanged", applied.error().message, running.config);
    return;
  }
  spdlog::info("SIGHUP: reloaded {} by signal: {} token(s), log level {}", running.config, applied->tokens,
               fresh.opts.log_level);
}

}  // namespace

int main(int argc, char** argv) {
  command_line cmd;
  po::options_description all;
  try {
    if (auto ok = parse(argc, argv, cmd, all); !ok) return usage_error(ok.error());
  } catch (const po::error& e) {
    return usage_error(e.what());
  }
  if (cmd.help) {
    std::cout << "usage: switchboard [--config FILE] [options]\n"
                 "       switchboard --check-config FILE [options]\n"
                 "       switchboard --version\n"
              << all << "\n";
    return 0;
  }
  if (cmd.version) {
    std::cout << version_line("switchboard") << "\n";
    return 0;
  }
  options& opts = cmd.opts;
  if (auto ok = switchboard::server::check_logging(opts.log_level, opts.log_format); !ok) return usage_error(ok.error());
  if (auto ok = switchboard::server::check_options(opts); !ok) {
    return usage_error(cmd.check_only ? cmd.config + ": " + ok.error().message : ok.error().message);
  }
  if (cmd.check_only) {
    std::cout << "switchboard: configuration file " << cmd.config << " is valid\n";
    return 0;
  }
  (void)switchboard::server::configure_logging(opts.log_level, opts.log_format);
  spdlog::info("{} starting", version_line("switchboard"));

  // Signals are taken synchronously by this thread; every thread started below inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto srv = switchboard::server::server::start(opts);
  if (!srv) {
    std::fprintf(stderr, "switchboard: %s\n", srv.error().message.c_str());
    return srv.error().invalid_option ? 2 : 1;
  }
  const auto admin = (*srv)->admin_url();
  std::printf("switchboard listening on %s%s\n", (*srv)->endpoint().c_str(),
              admin.empty() ? "" : (" (admin " + admin + ")").c_str());
  std::fflush(stdout);

  int sig = 0;
  for (;;) {
    sigwait(&stop_signals, &sig);
    if (sig != SIGHUP) break;
    reload(argc, argv, cmd, **srv);
  }
  spdlog::info("signal {} received: draining", sig);
  (*srv)->stop();
  spdlog::info("stopped");
  return 0;
}
