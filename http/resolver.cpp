#include "http/resolver.h"

#include <netdb.h>
#include <sys/socket.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace fetchrelay::http {

result<std::vector<ip_address>> system_lookup(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    std::string why = rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc);
    if (rc == EAI_NONAME || rc == EAI_NODATA || rc == EAI_FAIL) {
      return invalid_argument("\"" + host + "\" does not resolve: " + why);
    }
    return unavailable("cannot resolve \"" + host + "\": " + why);
  }
  std::vector<ip_address> out;
  for (addrinfo* p = res; p != nullptr; p = p->ai_next) {
    ip_address a;
    if (p->ai_family == AF_INET) {
      auto* sin = reinterpret_cast<sockaddr_in*>(p->ai_addr);
      a.v4 = true;
      a.bytes[10] = a.bytes[11] = 0xff;
      std::memcpy(&a.bytes[12], &sin->sin_addr, 4);
    } else if (p->ai_family == AF_INET6) {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(p->ai_addr);
      std::memcpy(a.bytes.data(), &sin6->sin6_addr, 16);
    } else {
      continue;
    }
    bool seen = false;
    for (const auto& b : out) seen = seen || (b.bytes == a.bytes);
    if (!seen) out.push_back(a);
  }
  ::freeaddrinfo(res);
  if (out.empty()) return invalid_argument("\"" + host + "\" has no IPv4 or IPv6 address");
  return out;
}

struct resolver::impl {
  using clock = std::chrono::steady_clock;
  struct entry {
    result<std::vector<ip_address>> answer = invalid_argument("pending");
    clock::time_point expires;
    bool pending = true;
    std::vector<callback> waiters;
  };

  resolver_options options;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> queue;
  std::unordered_map<std::string, entry> cache;
  std::vector<std::thread> threads;
  std::size_t lookups = 0;
  bool stopping = false;

  void run() {
    for (;;) {
      std::string host;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) return;
        host = std::move(queue.front());
        queue.pop_front();
        ++lookups;
      }
      auto answer = options.lookup(host);
      std::vector<callback> waiters;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) return;
        entry& e = cache[host];
        e.pending = false;
        e.answer = answer;
        e.expires = clock::now() + (answer.is_ok() ? options.positive_ttl : options.negative_ttl);
        waiters.swap(e.waiters);
      }
      for (auto& w : waiters) w(answer);
    }
  }
};

resolver::resolver(resolver_options options) : impl_(std::make_unique<impl>()) {
  impl_->options = std::move(options);
  for (int i = 0; i < impl_->options.threads; ++i) {
    impl_->threads.emplace_back([this] { impl_->run(); });
  }
}

resolver::~resolver() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->threads) t.join();
}

void resolver::resolve(const std::string& host, callback cb) {
  // IP literals, with or without brackets, need no lookup.
  std::string literal = host;
  if (literal.size() > 2 && literal.front() == '[' && literal.back() == ']') {
    literal = literal.substr(1, literal.size() - 2);
  }
  if (auto ip = parse_ip(literal); ip.is_ok()) {
    cb(std::vector<ip_address>{*ip});
    return;
  }
  std::unique_lock<std::mutex> lock(impl_->mu);
  auto it = impl_->cache.find(host);
  if (it != impl_->cache.end()) {
    impl::entry& e = it->second;
    if (e.pending) {
      e.waiters.push_back(std::move(cb));
      return;
    }
    if (impl::clock::now() < e.expires) {
      auto answer = e.answer;
      lock.unlock();
      cb(std::move(answer));
      return;
    }
  }
  impl::entry& e = impl_->cache[host];
  e.pending = true;
  e.waiters.push_back(std::move(cb));
  impl_->queue.push_back(host);
  lock.unlock();
  impl_->cv.notify_one();
}

std::size_t resolver::lookups() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->lookups;
}

}  // namespace fetchrelay::http
