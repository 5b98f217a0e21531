// publish_subscribe: connect, subscribe with a callback, publish 10 events, wait for them, close.
//
//   publish_subscribe [url]          (default tcp://127.0.0.1:7400; start `switchboard --memory` first)
#include <switchboard/client.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  switchboard::client_options options;
  if (argc > 1) options.url = argv[1];
  options.connect_timeout = std::chrono::seconds(2);
  options.on_error = [](const switchboard::error& e) {
    std::fprintf(stderr, "broker error %s: %s\n", e.broker_code.c_str(), e.message.c_str());
  };

  auto c = switchboard::client::connect(options);
  if (!c) {
    std::fprintf(stderr, "cannot connect to %s: %s\n", options.url.c_str(), c.error().message.c_str());
    return 1;
  }
  std::shared_ptr<switchboard::client> client = *c;

  // Every event on any `demo.orders.*` channel; the callback runs on the client's I/O thread.
  std::atomic<int> received{0};
  auto sub = client->subscribe("demo.orders.*", [&](const switchboard::event_view& ev) {
    std::printf("%.*s #%llu: %.*s\n", static_cast<int>(ev.channel.size()), ev.channel.data(),
                static_cast<unsigned long long>(ev.seq), static_cast<int>(ev.payload.size()), ev.payload.data());
    received.fetch_add(1);
  });
  if (!sub) {
    std::fprintf(stderr, "subscribe failed: %s\n", sub.error().message.c_str());
    return 1;
  }

  for (int i = 0; i < 10; ++i) {
    const std::string payload = R"({"order":)" + std::to_string(i) + R"(,"status":"created"})";
    if (auto ok = client->publish("demo.orders.created", payload); !ok) {
      std::fprintf(stderr, "publish failed: %s\n", ok.error().message.c_str());
      return 1;
    }
  }
  // flush() returns once the broker has processed everything published so far.
  if (auto ok = client->flush(std::chrono::seconds(5)); !ok) {
    std::fprintf(stderr, "flush failed: %s\n", ok.error().message.c_str());
    return 1;
  }

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (received.load() < 10 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::printf("received %d of 10 events\n", received.load());

  (*sub)->unsubscribe();
  client->close();
  return received.load() == 10 ? 0 : 1;
}
