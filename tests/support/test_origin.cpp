#include "tests/support/test_origin.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

namespace fetchrelay::test {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

struct test_origin::impl {
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::unique_ptr<ssl::context> tls;
  std::thread accept_thread;
  std::mutex mu;
  std::vector<std::thread> workers;
  std::vector<std::shared_ptr<tcp::socket>> sockets;
  std::atomic<std::size_t> accepts{0};
  std::atomic<std::size_t> requests{0};
  std::atomic<bool> stopping{false};
  mutable std::mutex log_mu;
  std::vector<received_request> log;
  std::map<std::string, int> fail_counts;
  std::atomic<int> switch_status{503};
  std::atomic<int> queue_in_flight{0};
  std::atomic<int> queue_max{0};

  template <class Stream>
  void serve(Stream& stream, tcp::socket& raw) {
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request<bhttp::string_body> req;
      beast::error_code ec;
      bhttp::read(stream, buffer, req, ec);
      if (ec) return;
      ++requests;
      std::string target(req.target());
      {
        received_request r{std::string(req.method_string()), target, {}, req.body(), std::chrono::system_clock::now()};
        for (const auto& f : req) {
          std::string name(f.name_string());
          for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          r.headers[name] = std::string(f.value());
        }
        std::lock_guard<std::mutex> lock(log_mu);
        log.push_back(std::move(r));
      }
      std::string path = target.substr(0, target.find('?'));
      bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
      res.set(bhttp::field::content_type, "text/plain");
      res.keep_alive(req.keep_alive());
      if (path == "/switch") {
        res.result(static_cast<unsigned>(switch_status.load()));
        res.body() = "switch";
      } else if (path == "/ok" || path == "/ok-then-drop" || path.rfind("/jobs/", 0) == 0) {
        res.body() = "hello";
      } else if (path == "/chunked") {
        res.body() = "part1part2part3";
      } else if (path == "/redirect") {
        res.result(bhttp::status::found);
        res.set(bhttp::field::location, "/ok");
      } else if (path == "/big") {
        res.body() = std::string(std::stoul(target.substr(target.find("n=") + 2)), 'x');
      } else if (path.rfind("/sleep/", 0) == 0) {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::stoi(path.substr(7)));
        while (!stopping.load() && std::chrono::steady_clock::now() < until) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        res.body() = "slept";
      } else if (path == "/hang") {
        while (!stopping.load() && raw.is_open()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return;
      } else if (path == "/close-mid") {
        std::string partial = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
        net::write(stream, net::buffer(partial), ec);
        return;
      } else if (path == "/close") {
        res.body() = "bye";
        res.keep_alive(false);
      } else if (path.rfind("/fail/", 0) == 0) {
        auto slash = path.find('/', 6);
        int n = std::stoi(path.substr(6, slash - 6));
        std::string key = path.substr(slash + 1);
        std::lock_guard<std::mutex> lock(log_mu);
        if (fail_counts[key]++ < n) {
          res.result(bhttp::status::internal_server_error);
          res.body() = "failing " + key;
        } else {
          res.body() = "ok";
        }
      } else if (path.rfind("/queue/", 0) == 0) {
        // 500 for a key's first request, 200 after; each held 50 ms, with the requests in
        // progress at once counted (their most: max_concurrent()).
        int now_in = ++queue_in_flight;
        for (int seen = queue_max.load(); now_in > seen && !queue_max.compare_exchange_weak(seen, now_in);) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        {
          std::lock_guard<std::mutex> lock(log_mu);
          if (fail_counts[path]++ < 1) res.result(bhttp::status::internal_server_error);
          else res.body() = "ok";
        }
        --queue_in_flight;
      } else if (path.rfind("/status/", 0) == 0) {
        res.result(static_cast<unsigned>(std::stoi(path.substr(8))));
      } else if (path == "/echo") {
        nlohmann::json j;
        j["method"] = std::string(req.method_string());
        j["target"] = target;
        j["headers"] = nlohmann::json::object();
        for (const auto& f : req) {
          std::string name(f.name_string());
          for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          j["headers"][name] = std::string(f.value());
        }
        j["body"] = req.body();
        res.body() = j.dump();
        res.set(bhttp::field::content_type, "application/json");
      } else {
        res.result(bhttp::status::not_found);
      }
      res.prepare_payload();
      if (path == "/chunked") res.chunked(true);  // after prepare_payload, which would undo it
      bhttp::write(stream, res, ec);
      if (ec || !res.keep_alive()) return;
      if (path == "/ok-then-drop") return;  // promised keep-alive, closes anyway (an idle close)
    }
  }

  void handle(std::shared_ptr<tcp::socket> sock) {
    if (tls) {
      beast::ssl_stream<tcp::socket&> stream(*sock, *tls);
      beast::error_code ec;
      stream.handshake(ssl::stream_base::server, ec);
      if (!ec) serve(stream, *sock);
    } else {
      serve(*sock, *sock);
    }
    beast::error_code ignored;
    sock->shutdown(tcp::socket::shutdown_both, ignored);
  }

  void accept_loop() {
    for (;;) {
      auto sock = std::make_shared<tcp::socket>(ioc);
      beast::error_code ec;
      acceptor.accept(*sock, ec);
      if (ec || stopping.load()) return;
      ++accepts;
      std::lock_guard<std::mutex> lock(mu);
      sockets.push_back(sock);
      workers.emplace_back([this, sock] { handle(sock); });
    }
  }
};

test_origin::test_origin(const pem_pair* tls) : impl_(std::make_unique<impl>()) {
  if (tls) {
    impl_->tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    impl_->tls->use_certificate_chain(net::buffer(tls->cert));
    impl_->tls->use_private_key(net::buffer(tls->key), ssl::context::pem);
  }
  tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(net::socket_base::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen(1024);
  impl_->accept_thread = std::thread([this] { impl_->accept_loop(); });
}

test_origin::~test_origin() {
  impl_->stopping = true;
  beast::error_code ec;
  impl_->acceptor.cancel(ec);
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  impl_->accept_thread.join();
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (auto& s : impl_->sockets) s->shutdown(tcp::socket::shutdown_both, ec);
    workers.swap(impl_->workers);
  }
  for (auto& w : workers) w.join();
}

std::uint16_t test_origin::port() const { return impl_->acceptor.local_endpoint().port(); }
std::size_t test_origin::accepts() const { return impl_->accepts.load(); }
std::size_t test_origin::requests() const { return impl_->requests.load(); }

void test_origin::set_switch(int status) { impl_->switch_status.store(status); }
int test_origin::max_concurrent() const { return impl_->queue_max.load(); }
int test_origin::queue_in_progress() const { return impl_->queue_in_flight.load(); }

std::vector<received_request> test_origin::received() const {
  std::lock_guard<std::mutex> lock(impl_->log_mu);
  return impl_->log;
}

}  // namespace fetchrelay::test
