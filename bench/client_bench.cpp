// Micro-benchmark of the outbound client: requests/s to a local sink with keep-alive pooling
// versus a new connection per request. Not a test: run it with `make bench-client`.
//
// The sink is fetchrelay's own Beast server on 127.0.0.1:0 in this process (its own io
// thread), answering 200 at once. Modes alternate, three runs each; medians are reported with
// the ratio, since the machine is shared and noisy.
//
//   client_bench [--requests N] [--concurrency C] [--runs R]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <vector>

#include "http/client.h"
#include "http/server.h"

using namespace fetchrelay;
using namespace std::chrono_literals;

namespace {

struct run_result {
  double per_second = 0;
  int failures = 0;
  std::uint64_t connections = 0;
};

run_result run(std::uint16_t port, bool reuse, int requests, int concurrency) {
  http::client_options o;
  o.allow_networks = {*parse_cidr("127.0.0.0/8")};
  o.reuse_connections = reuse;
  o.max_connections_per_origin = concurrency;
  auto created = http::client::create(o);
  if (!created) {
    std::fprintf(stderr, "%s\n", created.error().message().c_str());
    std::exit(1);
  }
  auto c = std::move(created.value());
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/sink";
  std::atomic<int> issued{0};
  std::atomic<int> completed{0};
  std::atomic<int> failures{0};
  std::promise<void> done;
  std::function<void()> issue;
  issue = [&] {
    if (issued.fetch_add(1) >= requests) return;
    c->send({"POST", url, {{"Content-Type", "application/json"}}, std::string(256, 'b')}, 10s,
            [&](http::outbound_result r) {
              if (!r.response || r.response->status != 200) ++failures;
              if (completed.fetch_add(1) + 1 == requests) {
                done.set_value();
                return;
              }
              issue();
            });
  };
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < concurrency; ++i) issue();
  if (done.get_future().wait_for(300s) != std::future_status::ready) {
    std::fprintf(stderr, "run did not finish in 300 s\n");
    std::exit(1);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {requests / secs, failures.load(), c->stats().connections_opened};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int requests = 20000;
  int concurrency = 64;
  int runs = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (a == "--requests") requests = v;
    else if (a == "--concurrency") concurrency = v;
    else if (a == "--runs") runs = v;
  }
  http::server_options so;
  so.port = 0;
  so.max_connections = 100000;
  http::server sink(so, [](http::request&&, http::responder r) { r.send(http::response::json(200, "{}")); });
  if (!sink.start()) return 1;

  std::vector<double> pooled;
  std::vector<double> fresh;
  std::printf("client_bench: %d requests of 256 B, %d in flight, %d alternating runs per mode\n",
              requests, concurrency, runs);
  for (int r = 0; r < runs; ++r) {
    auto p = run(sink.port(), true, requests, concurrency);
    auto f = run(sink.port(), false, requests, concurrency);
    std::printf("run %d: pooled %8.0f req/s (%llu connections, %d failed) | new connection each %8.0f req/s (%llu connections, %d failed)\n",
                r + 1, p.per_second, static_cast<unsigned long long>(p.connections), p.failures,
                f.per_second, static_cast<unsigned long long>(f.connections), f.failures);
    pooled.push_back(p.per_second);
    fresh.push_back(f.per_second);
  }
  double mp = median(pooled);
  double mf = median(fresh);
  std::printf("median: pooled %.0f req/s, new connection each %.0f req/s, ratio %.2fx\n", mp, mf, mp / mf);
  sink.shutdown(std::chrono::milliseconds(0));
  sink.wait();
  return 0;
}
