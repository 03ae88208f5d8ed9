// The benchmark's load generator: HTTP/1.1 keep-alive POSTs from C connections on one epoll
// thread, bounded by a count and a time limit. It posts either jobs to fetchrelay
// (POST /v1/fetch) or plain requests straight to the sink (the direct ceiling), with the same
// code path, so the two figures compare.
//
//   fetchrelay_loadgen --port P [--path /v1/fetch] [--count N] [--connections C] [--seconds S]
//                      [--header "Name: value"]... [--body TEXT] [--ids FILE] [--due-spread LO:HI]
//                      [--rate R]
//
// --rate R (requests/s): the k-th request leaves no earlier than start + k/R (paced load, W2); a
// connection whose answer came early waits for its slot. "max_send_lag_ms" in the result says how far
// the sends fell behind that schedule (all connections busy): near 0 means the rate was offered.
// --due-spread LO:HI (ms): each job is due at its send time plus a uniform random LO..HI ms (fixed
// seed), sent as X-Not-Before (RFC 3339 with milliseconds) and forwarded to the target as X-Due-Ms
// (X-Fetch-Forward-X-Due-Ms), so the sink's log gives each delivery's lateness exactly.
// If the server goes away (W4 kills it), connections that cannot reconnect are dropped and the
// run ends when none is left.
//
// Prints one JSON line: requests sent and answered, answers by status, errors, the rate over
// the run, and the first and last 2xx time (ms since the epoch). With --ids, writes one line per
// 202 answer: "<ms> <id>" (the "id" of the JSON body), for matching deliveries later.
// Only responses with Content-Length are understood (fetchrelay's and nginx's small answers).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct options {
  int port = 0;
  std::string path = "/v1/fetch";
  long count = 10'000;
  int connections = 64;
  double seconds = 60;
  std::vector<std::string> headers;
  std::string body = "{}";
  std::string ids_file;
  std::int64_t due_lo_ms = -1, due_hi_ms = -1;  // --due-spread
  double rate = 0;                               // --rate; 0: as fast as answers come
};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i]))) return false;
  }
  return true;
}

/// RFC 3339 UTC with milliseconds, e.g. 2026-11-28T07:44:16.123Z.
std::string rfc3339_ms(std::int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

struct connection {
  int fd = -1;
  bool dead = false;  // could not reconnect
  std::string out;    // the request being written
  std::string in;
  std::size_t out_off = 0;
  bool busy = false;  // a request is out, its answer not yet read
};

class loadgen {
 public:
  explicit loadgen(options o) : o_(std::move(o)) {
    head_ = "POST " + o_.path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(o_.body.size()) +
            "\r\n";
    for (const auto& h : o_.headers) head_ += h + "\r\n";
    tail_ = "\r\n" + o_.body;
  }

  /// The next request: the fixed one, or with its own due time (--due-spread).
  void build_request(std::string& out) {
    out = head_;
    if (o_.due_lo_ms >= 0) {
      std::int64_t due = now_ms() + std::uniform_int_distribution<std::int64_t>(o_.due_lo_ms, o_.due_hi_ms)(rng_);
      out += "X-Not-Before: " + rfc3339_ms(due) + "\r\nX-Fetch-Forward-X-Due-Ms: " + std::to_string(due) + "\r\n";
    }
    out += tail_;
  }

  int run() {
    if (!o_.ids_file.empty()) ids_ = std::fopen(o_.ids_file.c_str(), "w");
    ep_ = epoll_create1(0);
    conns_.resize(static_cast<std::size_t>(o_.connections));
    auto start = std::chrono::steady_clock::now();
    start_ = start;
    auto deadline = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(o_.seconds));
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      if (!open(i)) return 1;
      send_next(i);
    }
    std::vector<epoll_event> events(conns_.size());
    while ((answered_ + errors_ < sent_ || sent_ < o_.count) && live_ > 0) {
      if (std::chrono::steady_clock::now() > deadline) break;
      int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), send_paced());
      for (int k = 0; k < n; ++k) on_event(events[static_cast<std::size_t>(k)].data.u32, events[static_cast<std::size_t>(k)].events);
      if (sent_ >= o_.count && answered_ + errors_ >= sent_) break;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string by_status;
    for (const auto& [s, n] : statuses_) by_status += (by_status.empty() ? "" : ",") + std::string("\"") + std::to_string(s) + "\":" + std::to_string(n);
    std::printf("{\"sent\":%ld,\"answered\":%ld,\"errors\":%ld,\"dropped_connections\":%d,\"status\":{%s},\"seconds\":%.3f,\"rate\":%.0f,"
                "\"first_ok_ms\":%lld,\"last_ok_ms\":%lld,\"max_send_lag_ms\":%.1f}\n",
                sent_, answered_, errors_, o_.connections - live_, by_status.c_str(), secs, static_cast<double>(answered_) / secs,
                static_cast<long long>(first_ok_), static_cast<long long>(last_ok_), max_lag_ms_);
    if (ids_) std::fclose(ids_);
    return 0;
  }

 private:
  bool open(std::size_t i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(o_.port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      if (!conns_[i].dead) std::fprintf(stderr, "connect to 127.0.0.1:%d: %s\n", o_.port, std::strerror(errno));
      close(fd);
      if (!conns_[i].dead && conns_[i].fd >= 0) --live_;
      conns_[i].dead = true;
      return false;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<std::uint32_t>(i);
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    if (conns_[i].fd < 0) ++live_;
    conns_[i].fd = fd;
    conns_[i].in.clear();
    conns_[i].out_off = 0;
    conns_[i].busy = false;
    return true;
  }

  /// With --rate: the time the next request may leave.
  std::chrono::steady_clock::time_point next_slot() const {
    return start_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(sent_) / o_.rate));
  }

  /// Sends on waiting connections every request whose slot has come; returns how long epoll may
  /// wait (ms) before the next slot.
  int send_paced() {
    if (o_.rate <= 0) return 100;
    while (!waiting_.empty() && sent_ < o_.count) {
      auto now = std::chrono::steady_clock::now();
      auto slot = next_slot();
      if (slot > now) return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(slot - now).count());
      max_lag_ms_ = std::max(max_lag_ms_, std::chrono::duration<double, std::milli>(now - slot).count());
      std::size_t i = waiting_.back();
      waiting_.pop_back();
      send_now(i);
    }
    return 100;
  }

  void send_next(std::size_t i) {
    if (sent_ >= o_.count) return;
    if (o_.rate > 0) {
      waiting_.push_back(i);  // its slot is taken in send_paced
      return;
    }
    send_now(i);
  }

  void send_now(std::size_t i) {
    auto& c = conns_[i];
    ++sent_;
    c.busy = true;
    c.out_off = 0;
    build_request(c.out);
    write_some(i);
  }

  void write_some(std::size_t i) {
    auto& c = conns_[i];
    while (c.out_off < c.out.size()) {
      ssize_t w = write(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off);
      if (w > 0) {
        c.out_off += static_cast<std::size_t>(w);
        continue;
      }
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.u32 = static_cast<std::uint32_t>(i);
        epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
        return;
      }
      fail(i);
      return;
    }
  }

  void fail(std::size_t i) {
    ++errors_;
    close(conns_[i].fd);
    if (open(i)) send_next(i);
  }

  void on_event(std::uint32_t idx, std::uint32_t what) {
    std::size_t i = idx;
    auto& c = conns_[i];
    if (what & EPOLLOUT) {
      write_some(i);
      if (c.out_off >= c.out.size()) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = idx;
        epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
      }
    }
    if (!(what & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
    char buf[16384];
    for (;;) {
      ssize_t r = read(c.fd, buf, sizeof buf);
      if (r > 0) {
        c.in.append(buf, static_cast<std::size_t>(r));
        continue;
      }
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (c.busy) fail(i);  // closed or reset mid-answer
      else {
        close(c.fd);
        if (open(i)) send_next(i);
      }
      return;
    }
    while (c.busy) {
      auto end = c.in.find("\r\n\r\n");
      if (end == std::string::npos) return;
      std::string_view head(c.in.data(), end);
      int status = head.size() > 12 ? std::atoi(std::string(head.substr(9, 3)).c_str()) : 0;
      std::size_t length = 0;
      bool has_length = false;
      for (std::size_t p = head.find("\r\n"); p != std::string_view::npos; p = head.find("\r\n", p + 2)) {
        std::string_view line = head.substr(p + 2, head.find("\r\n", p + 2) - (p + 2));
        if (iequals_prefix(line, "content-length:")) {
          length = static_cast<std::size_t>(std::atol(std::string(line.substr(15)).c_str()));
          has_length = true;
        }
      }
      if (!has_length && status != 204) {
        fail(i);
        return;
      }
      if (c.in.size() < end + 4 + length) return;
      std::string_view body(c.in.data() + end + 4, length);
      on_answer(status, body);
      c.in.erase(0, end + 4 + length);
      c.busy = false;
      send_next(i);
    }
  }

  void on_answer(int status, std::string_view body) {
    ++answered_;
    ++statuses_[status];
    if (status < 200 || status >= 300) return;
    std::int64_t t = now_ms();
    if (first_ok_ == 0) first_ok_ = t;
    last_ok_ = t;
    if (ids_ && status == 202) {
      auto p = body.find("\"id\":\"");
      if (p != std::string_view::npos) {
        auto q = body.find('"', p + 6);
        std::fprintf(ids_, "%lld %.*s\n", static_cast<long long>(t), static_cast<int>(q - p - 6), body.data() + p + 6);
      }
    }
  }

  options o_;
  std::chrono::steady_clock::time_point start_;
  std::vector<std::size_t> waiting_;  // --rate: connections idle until their slot
  double max_lag_ms_ = 0;
  std::string head_, tail_;
  std::mt19937_64 rng_{42};
  int live_ = 0;  // connections open (or reconnecting)
  int ep_ = -1;
  std::vector<connection> conns_;
  long sent_ = 0, answered_ = 0, errors_ = 0;
  std::map<int, long> statuses_;
  std::int64_t first_ok_ = 0, last_ok_ = 0;
  std::FILE* ids_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a killed server (W4) resets connections mid-write
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--port") o.port = std::atoi(next().c_str());
    else if (a == "--path") o.path = next();
    else if (a == "--count") o.count = std::atol(next().c_str());
    else if (a == "--connections") o.connections = std::atoi(next().c_str());
    else if (a == "--seconds") o.seconds = std::atof(next().c_str());
    else if (a == "--header") o.headers.push_back(next());
    else if (a == "--body") o.body = next();
    else if (a == "--ids") o.ids_file = next();
    else if (a == "--rate") {
      char* end = nullptr;
      std::string v = next();
      o.rate = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !(o.rate > 0)) {
        std::fprintf(stderr, "--rate wants requests per second > 0, e.g. 5000\n");
        return 2;
      }
    }
    else if (a == "--due-spread") {
      std::string v = next();
      if (std::sscanf(v.c_str(), "%ld:%ld", &o.due_lo_ms, &o.due_hi_ms) != 2 || o.due_lo_ms < 0 || o.due_hi_ms < o.due_lo_ms) {
        std::fprintf(stderr, "--due-spread wants LO:HI in ms, e.g. 10000:20000\n");
        return 2;
      }
    }
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (o.port <= 0 || o.count <= 0 || o.connections <= 0) {
    std::fprintf(stderr, "usage: fetchrelay_loadgen --port P [--path /v1/fetch] [--count N] [--connections C] "
                         "[--seconds S] [--header 'Name: value']... [--body TEXT] [--ids FILE] [--due-spread LO:HI] [--rate R]\n");
    return 2;
  }
  return loadgen(std::move(o)).run();
}
