// W8's client: the latency of normal submissions, first alone, then while SLOW connections each
// send one byte of a request's headers a second (slowloris). Plain POSIX sockets, no project
// library, like the load generator.
//
//   fetchrelay_slowloris --port P --key KEY [--slow 1000] [--submissions 100] [--url URL]
//
// Prints one JSON line: answered and p50/p99/max ms of the submissions without and with the
// slow connections, and how many slow connections the relay still held after the submissions.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

/// One submission on a new connection; its latency in ms, or -1 if it got no 202 within 5 s.
double submit(int port, const std::string& request) {
  auto start = clock_type::now();
  int fd = connect_to(port);
  if (fd < 0) return -1;
  std::string in;
  bool ok = ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size());
  auto deadline = start + std::chrono::seconds(5);
  while (ok && in.find("\r\n\r\n") == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (in.rfind("HTTP/1.1 202", 0) != 0) return -1;
  return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

struct figures {
  int answered = 0;
  double p50 = 0, p99 = 0, max = 0;
};

figures run_submissions(int port, const std::string& request, int count) {
  std::vector<double> ms;
  for (int i = 0; i < count; ++i) {
    double t = submit(port, request);
    if (t >= 0) ms.push_back(t);
  }
  figures f;
  f.answered = static_cast<int>(ms.size());
  if (ms.empty()) return f;
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(q * ms.size()))]; };
  f.p50 = at(0.5);
  f.p99 = at(0.99);
  f.max = ms.back();
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0, slow = 1000, count = 100;
  std::string key, url = "http://127.0.0.1:9/never";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--port") port = std::atoi(v.c_str());
    else if (a == "--key") key = v;
    else if (a == "--slow") slow = std::atoi(v.c_str());
    else if (a == "--submissions") count = std::atoi(v.c_str());
    else if (a == "--url") url = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (port <= 0 || key.empty() || slow < 0 || count <= 0) {
    std::fprintf(stderr, "usage: fetchrelay_slowloris --port P --key KEY [--slow N] [--submissions N] [--url URL]\n");
    return 2;
  }
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < static_cast<rlim_t>(slow + 64)) {
    lim.rlim_cur = std::min<rlim_t>(lim.rlim_max, static_cast<rlim_t>(slow + 64));
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  // Due in an hour: the relay stores and acknowledges, nothing is delivered during the run.
  std::string body = "{\"bench\":\"w8\"}";
  std::string request = "POST /v1/fetch HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " + key +
                        "\r\nX-Fetch-Url: " + url + "\r\nX-Delay: 1h\r\nContent-Type: application/json\r\n"
                        "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;

  figures alone = run_submissions(port, request, count);

  std::vector<int> fds;
  for (int i = 0; i < slow; ++i) {
    int fd = connect_to(port);
    if (fd < 0) {
      std::fprintf(stderr, "slow connection %d refused\n", i);
      return 1;
    }
    fds.push_back(fd);
  }
  const std::string dribble = "POST /v1/fetch HTTP/1.1\r\nHost: relay\r\nX-Padding: " + std::string(64, 'a');
  std::atomic<bool> stop{false};
  std::thread t([&] {  // one byte a second on each, bounded by the header's length
    for (std::size_t at = 0; !stop && at < dribble.size(); ++at) {
      for (int fd : fds) (void)::send(fd, &dribble[at], 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      for (int i = 0; i < 20 && !stop; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // all open, a byte or two in
  figures loaded = run_submissions(port, request, count);
  int held = 0;  // slow connections the relay has not closed yet
  for (int fd : fds) {
    pollfd p{fd, POLLIN, 0};
    char c;
    held += ::poll(&p, 1, 0) == 0 || ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 ? 1 : 0;
  }
  stop = true;
  t.join();
  for (int fd : fds) ::close(fd);
  std::printf(
      "{\"slow\":%d,\"submissions\":%d,\"alone\":{\"answered\":%d,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f},"
      "\"with_slow\":{\"answered\":%d,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f},\"slow_still_open\":%d}\n",
      slow, count, alone.answered, alone.p50, alone.p99, alone.max, loaded.answered, loaded.p50, loaded.p99, loaded.max,
      held);
  return 0;
}
