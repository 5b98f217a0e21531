// switchboard: the broker executable. Parses options (flags override the config file), starts one
// server, prints the ready line, and waits for SIGTERM/SIGINT, then drains and exits 0.
// Exit codes: 0 clean stop, 1 start-up failure (e.g. port in use), 2 bad option or config key.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>

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
      ("log-level", po::value(&o.log_level)->default_value(o.log_level),
       "trace | debug | info | warn | error | off");
  return d;
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "switchboard: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  options opts;
  std::string config;
  auto broker_opts = describe(opts);
  po::options_description cli("command line");
  cli.add_options()("help,h", "show this help")("config", po::value(&config), "config file (INI: key = value)");
  cli.add(broker_opts);

  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, cli), vm);
    if (vm.count("help")) {
      std::cout << "usage: switchboard [--config FILE] [options]\n" << cli << "\n";
      return 0;
    }
    if (vm.count("config")) {
      const auto path = vm["config"].as<std::string>();
      std::ifstream in(path);
      if (!in) return usage_error("cannot read config file " + path);
      // Flags were stored first, so they win over the file.
      po::store(po::parse_config_file(in, broker_opts, /*allow_unregistered=*/false), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }

  const auto level = spdlog::level::from_str(opts.log_level);
  if (level == spdlog::level::off && opts.log_level != "off") {
    return usage_error("the argument ('" + opts.log_level + "') for option '--log-level' is invalid");
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("switchboard"));
  spdlog::set_level(level);

  // Signals are taken synchronously by this thread; every thread started below inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
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
  sigwait(&stop_signals, &sig);
  spdlog::info("signal {} received: draining", sig);
  (*srv)->stop();
  spdlog::info("stopped");
  return 0;
}
