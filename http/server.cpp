// Beast implementation of http::server. See server.h for the contract.
//
// Ownership: the server's registry holds every session by shared_ptr, so a session lives
// until it unregisters itself (connection closed and no answer pending) or the server closes
// it. A responder holds a session only weakly, behind the server's gate: once the server is
// gone, late answers are dropped instead of touching a destroyed io_context.
#include "http/server.h"

#include "core/ascii.h"
#include "core/reply_batch.h"
#include "core/text.h"
#include "http/wire.h"

#include <spdlog/spdlog.h>

#include <pthread.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>

namespace fetchrelay::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

/// Why a request's framing is refused, or nullopt: Transfer-Encoding other than exactly one
/// "chunked"; Transfer-Encoding together with Content-Length; Content-Length values that differ.
template <class Fields>
std::optional<std::string> framing_error(const Fields& req) {
  int te = 0;
  std::optional<std::string_view> length;
  for (const auto& f : req) {
    std::string_view name(f.name_string().data(), f.name_string().size());
    std::string_view value(f.value().data(), f.value().size());
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    if (iequals(name, "Transfer-Encoding")) {
      if (++te > 1 || !iequals(value, "chunked")) {
        return std::string("Transfer-Encoding must be exactly \"chunked\" (or absent)");
      }
    } else if (iequals(name, "Content-Length")) {
      if (length && *length != value) return std::string("Content-Length is given twice with different values");
      length = value;
    }
  }
  if (te > 0 && length) return std::string("Transfer-Encoding and Content-Length must not both be given");
  return std::nullopt;
}

/// The answer to a request that could not be read, as a connection gives it; nullopt when the
/// connection is simply closed (the peer went away, or a timeout: a slow client gets no answer).
std::optional<response> read_error_response(beast::error_code ec) {
  if (ec == bhttp::error::header_limit) {
    return response::error(431, "headers_too_large", "the request headers exceed limits.max_header_size");
  }
  if (ec == bhttp::error::body_limit) {
    return response::error(413, "body_too_large", "the request body exceeds limits.max_body");
  }
  if (ec == beast::error::timeout || ec == bhttp::error::end_of_stream || ec == net::error::eof ||
      ec == net::error::connection_reset || ec == net::error::operation_aborted || ec == bhttp::error::partial_message) {
    return std::nullopt;
  }
  return response::error(400, "bad_request", "malformed HTTP request: " + ec.message());
}

/// The parsed message as the handler sees it.
request to_request(bhttp::request<bhttp::string_body>&& msg) {
  request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  req.headers.reserve(std::distance(msg.begin(), msg.end()));
  for (const auto& f : msg) req.headers.push_back({std::string(f.name_string()), std::string(f.value())});
  req.body = std::move(msg.body());
  return req;
}

}  // namespace

std::optional<std::string_view> request::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) return std::string_view(h.value);
  }
  return std::nullopt;
}

std::string_view request::path() const {
  std::string_view t(target);
  auto q = t.find('?');
  return q == std::string_view::npos ? t : t.substr(0, q);
}

response response::json(int status, std::string body) {
  response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

response response::error(int status, std::string_view code, std::string_view message) {
  nlohmann::json j = {{"error", {{"code", code}, {"message", message}}}};
  return json(status, safe_dump(j));
}

class session;

/// Late answers check this before touching the io_context.
struct gate {
  std::mutex mu;
  bool open = true;
};

namespace detail {
struct pending_response {
  std::weak_ptr<session> target;
  std::shared_ptr<gate> g;
  net::io_context* ioc = nullptr;
  std::atomic<bool> sent{false};

  void deliver(response r);
  ~pending_response() {
    if (!sent.load()) deliver(response::error(500, "internal", "the request was dropped unanswered"));
  }
};
}  // namespace detail

void responder::send(response r) const {
  if (p_) p_->deliver(std::move(r));
}

struct server::impl {
  impl(server_options o, handler h)
      : options(std::move(o)), on_request(std::move(h)), ioc(options.io_threads),
        acceptor(net::make_strand(ioc)), grace_timer(ioc) {}

  server_options options;
  handler on_request;
  net::io_context ioc;
  tcp::acceptor acceptor;
  net::steady_timer grace_timer;
  std::shared_ptr<gate> answer_gate = std::make_shared<gate>();
  std::vector<std::thread> threads;
  std::uint16_t bound_port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<std::int64_t> receiving{0};  // connections whose request has begun to arrive

  mutable std::mutex mu;  // guards sessions and done
  std::unordered_map<session*, std::shared_ptr<session>> sessions;
  std::condition_variable done_cv;
  bool done = false;

  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void unregister(session* s);
  void begin_shutdown(millis grace);
  void force_close_all();
  void finish_if_idle();  // called with mu held
};

/// One client connection. All members are touched only on the connection's strand.
class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket&& socket, server::impl& srv) : stream_(std::move(socket)), srv_(srv) {}

  void start() { net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->wait_for_request(); }); }

  /// Sends a canned 503 and closes: the connection limit is reached.
  void reject_overload() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->close_after_ = true;
      self->write(response::error(503, "too_many_connections",
                                  "the server is at server.max_connections; retry later"));
    });
  }

  /// Shutdown began: idle connections close now; busy ones close after their answer.
  void on_shutdown() {
    close_after_ = true;
    if (state_ == state::idle) close();
  }

  void close() {
    if (state_ == state::closed) return;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
    if (state_ != state::handling) finish();
    else state_ = state::closed_awaiting_answer;
  }

  auto executor() { return stream_.get_executor(); }

  /// An answer arrived from the handler (on this strand).
  void on_answer(response r) {
    if (state_ == state::closed_awaiting_answer) {
      finish();
      return;
    }
    if (state_ != state::handling) return;
    write(std::move(r));
  }

 private:
  enum class state { idle, reading, handling, writing, closed_awaiting_answer, closed };

  // Waits for the first byte of the next request, so an idle keep-alive connection can be
  // told apart from one that is sending a request (shutdown closes only the former).
  void wait_for_request() {
    if (srv_.stopping.load() && requests_ > 0) {
      close();
      return;
    }
    state_ = state::idle;
    if (buffer_.size() > 0) {
      read_header();
      return;
    }
    stream_.expires_after(requests_ == 0 ? srv_.options.header_timeout : srv_.options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->buffer_.commit(n);
                              if (ec) {
                                self->close();
                                return;
                              }
                              self->read_header();
                            });
  }

  void read_header() {
    state_ = state::reading;
    set_receiving(true);
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(srv_.options.max_header_size));
    parser_->body_limit(srv_.options.max_body);
    stream_.expires_after(srv_.options.header_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, std::size_t) {
                               self->on_header(ec);
                             });
  }

  void on_header(beast::error_code ec) {
    if (ec) {
      fail_read(ec);
      return;
    }
    auto& req = parser_->get();
    if (auto framing = framing_error(req)) {
      // RFC 9112 §6.1, §6.3: a body whose length is in doubt is never read, and the bytes after
      // the headers are never taken for another request: answer 400 and close.
      close_after_ = true;
      keep_alive_ = false;
      write(response::error(400, "bad_framing", *framing));
      return;
    }
    auto expect = req[bhttp::field::expect];
    if (iequals(std::string_view(expect.data(), expect.size()), "100-continue") &&
        !parser_->is_done()) {
      // curl and others wait for this before sending a body.
      static const std::string continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(continue_line),
                       [self = shared_from_this()](beast::error_code ec2, std::size_t) {
                         if (ec2) {
                           self->close();
                           return;
                         }
                         self->read_body();
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    if (parser_->is_done()) {
      dispatch();
      return;
    }
    stream_.expires_after(srv_.options.body_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec) {
                          self->fail_read(ec);
                          return;
                        }
                        self->dispatch();
                      });
  }

  void fail_read(beast::error_code ec) {
    set_receiving(false);
    close_after_ = true;
    if (auto r = read_error_response(ec)) {
      write(std::move(*r));
    } else {
      close();  // after a timeout Beast has already closed the socket
    }
  }

  void dispatch() {
    set_receiving(false);
    state_ = state::handling;
    ++requests_;
    auto msg = parser_->release();
    keep_alive_ = msg.keep_alive();
    request req = to_request(std::move(msg));
    parser_.reset();
    stream_.expires_never();
    auto pending = std::make_shared<detail::pending_response>();
    pending->target = weak_from_this();
    pending->g = srv_.answer_gate;
    pending->ioc = &srv_.ioc;
    try {
      srv_.on_request(std::move(req), responder(std::move(pending)));
    } catch (const std::exception& e) {
      spdlog::error("request handler threw: {}", e.what());
    }
  }

  void write(response r) {
    state_ = state::writing;
    bool keep = keep_alive_ && !close_after_ && !srv_.stopping.load();
    auto out = std::make_shared<std::pair<std::string, std::string>>();
    auto& head = out->first;
    wire::start_response(head, r.status, r.content_type);
    for (const auto& h : r.headers) wire::append_field(head, h.name, h.value);
    if (wire::finish_response(head, r.status, r.body.size(), keep)) out->second = std::move(r.body);
    stream_.expires_after(srv_.options.idle_timeout);
    std::array<net::const_buffer, 2> bufs{net::buffer(out->first), net::buffer(out->second)};
    net::async_write(stream_, bufs, [self = shared_from_this(), out, keep](beast::error_code ec, std::size_t) {
      if (ec || !keep) {
        self->linger_close(ec);
        return;
      }
      self->wait_for_request();
    });
  }

  // After an error answer the client may still be sending; closing with unread data would
  // reset the connection and could destroy the answer in flight. Half-close, drain briefly.
  void linger_close(beast::error_code ec) {
    if (ec) {
      close();
      return;
    }
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    state_ = state::reading;
    stream_.expires_after(std::chrono::seconds(2));
    drain();
  }

  void drain() {
    buffer_.consume(buffer_.size());
    stream_.async_read_some(buffer_.prepare(16384),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > (4u << 20)) {
                                self->close();
                                return;
                              }
                              self->drain();
                            });
  }

  void finish() {
    set_receiving(false);
    state_ = state::closed;
    srv_.unregister(this);
  }

  /// Counted in server::receiving_count() while a request is arriving (its first bytes are in).
  void set_receiving(bool on) {
    if (on == receiving_) return;
    receiving_ = on;
    srv_.receiving.fetch_add(on ? 1 : -1, std::memory_order_relaxed);
    if (srv_.options.metrics) srv_.options.metrics->http_receiving.fetch_add(on ? 1 : -1, std::memory_order_relaxed);
  }

  beast::tcp_stream stream_;
  server::impl& srv_;
  bool receiving_ = false;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  state state_ = state::idle;
  bool keep_alive_ = true;
  bool close_after_ = false;
  std::size_t requests_ = 0;
  std::size_t drained_ = 0;
};

namespace {

/// Answers given inside a reply_batch on this thread, waiting for it to close.
struct held_answer {
  std::weak_ptr<session> target;
  std::shared_ptr<gate> g;
  net::io_context* ioc;
  response r;
};
thread_local std::vector<held_answer> held;

/// One post per server for all the answers held: the io thread wakes once, then hands each to
/// its connection (inline when the connection has no strand, i.e. with one io thread).
void flush_held() {
  auto items = std::move(held);
  held.clear();
  while (!items.empty()) {
    auto g = items.front().g;
    auto* ioc = items.front().ioc;
    std::vector<std::pair<std::shared_ptr<session>, response>> mine;
    std::vector<held_answer> rest;
    for (auto& it : items) {
      if (it.g != g) {
        rest.push_back(std::move(it));
      } else if (auto s = it.target.lock()) {
        mine.emplace_back(std::move(s), std::move(it.r));
      }
    }
    items = std::move(rest);
    std::lock_guard<std::mutex> lock(g->mu);
    if (!g->open || mine.empty()) continue;
    net::post(*ioc, [mine = std::move(mine)]() mutable {
      for (auto& [s, r] : mine) {
        net::dispatch(s->executor(), [s = s, r = std::move(r)]() mutable { s->on_answer(std::move(r)); });
      }
    });
  }
}

}  // namespace

void detail::pending_response::deliver(response r) {
  if (sent.exchange(true)) return;
  if (auto* batch = reply_batch::current()) {
    if (held.empty()) batch->at_close(flush_held);
    held.push_back({target, g, ioc, std::move(r)});
    return;
  }
  std::lock_guard<std::mutex> lock(g->mu);
  if (!g->open) return;
  auto s = target.lock();
  if (!s) return;
  net::post(s->executor(), [s, r = std::move(r)]() mutable { s->on_answer(std::move(r)); });
}

void server::impl::do_accept() {
  // With one io thread a connection needs no strand: everything runs on that thread, and a
  // batch of answers reaches each connection inline (flush_held).
  net::any_io_executor ex = options.io_threads > 1 ? net::any_io_executor(net::make_strand(ioc))
                                                   : net::any_io_executor(ioc.get_executor());
  acceptor.async_accept(ex, [this](beast::error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void server::impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (stopping.load() || ec == net::error::operation_aborted) return;
  if (ec) {
    // EMFILE and friends: log, back off a little, keep accepting.
    spdlog::warn("accept failed: {}", ec.message());
    auto t = std::make_shared<net::steady_timer>(ioc, std::chrono::milliseconds(50));
    t->async_wait([this, t](beast::error_code) {
      if (!stopping.load()) do_accept();
    });
    return;
  }
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  auto s = std::make_shared<session>(std::move(socket), *this);
  bool over;
  {
    std::lock_guard<std::mutex> lock(mu);
    over = sessions.size() >= static_cast<std::size_t>(options.max_connections);
    sessions.emplace(s.get(), s);
  }
  if (options.metrics) options.metrics->http_connections.fetch_add(1, std::memory_order_relaxed);
  if (over) {
    s->reject_overload();
  } else {
    s->start();
  }
  do_accept();
}

void server::impl::unregister(session* s) {
  std::lock_guard<std::mutex> lock(mu);
  if (sessions.erase(s) && options.metrics) options.metrics->http_connections.fetch_sub(1, std::memory_order_relaxed);
  finish_if_idle();
}

void server::impl::finish_if_idle() {
  if (!stopping.load() || !sessions.empty() || done) return;
  done = true;
  grace_timer.cancel();
  done_cv.notify_all();
}

void server::impl::begin_shutdown(millis grace) {
  bool first = !stopping.exchange(true);
  if (first) {
    beast::error_code ec;
    acceptor.close(ec);
  }
  std::vector<std::shared_ptr<session>> all;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [_, s] : sessions) all.push_back(s);
    finish_if_idle();
  }
  for (auto& s : all) net::dispatch(s->executor(), [s] { s->on_shutdown(); });
  grace_timer.expires_after(grace);
  grace_timer.async_wait([this](beast::error_code ec) {
    if (!ec) force_close_all();
  });
}

void server::impl::force_close_all() {
  std::vector<std::shared_ptr<session>> all;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [_, s] : sessions) all.push_back(s);
    if (!all.empty()) spdlog::warn("shutdown grace over: closing {} connection(s)", all.size());
    // Sessions waiting for an answer cannot unregister themselves; let them go now.
    sessions.clear();
    finish_if_idle();
  }
  for (auto& s : all) net::dispatch(s->executor(), [s] { s->close(); });
}

server::server(server_options options, handler h)
    : impl_(std::make_unique<impl>(std::move(options), std::move(h))) {}

server::~server() {
  {
    std::lock_guard<std::mutex> lock(impl_->answer_gate->mu);
    impl_->answer_gate->open = false;
  }
  if (!impl_->threads.empty()) {
    shutdown(millis(0));
    wait();
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->sessions.clear();
}

status server::start() {
  auto& i = *impl_;
  beast::error_code ec;
  std::string host = i.options.host == "localhost" ? "127.0.0.1" : i.options.host;
  auto address = net::ip::make_address(host, ec);
  if (ec) return invalid_argument("cannot listen on \"" + i.options.host + "\": not an IP address");
  tcp::endpoint endpoint(address, i.options.port);
  i.acceptor.open(endpoint.protocol(), ec);
  if (!ec) i.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) i.acceptor.bind(endpoint, ec);
  if (!ec) i.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return unavailable("cannot listen on " + i.options.host + ":" +
                       std::to_string(i.options.port) + ": " + ec.message());
  }
  i.bound_port = i.acceptor.local_endpoint().port();
  i.do_accept();
  for (int t = 0; t < i.options.io_threads; ++t) {
    i.threads.emplace_back([&i] {
      pthread_setname_np(pthread_self(), "fr-http-in");  // top -H, perf: which thread is busy
      for (;;) {
        try {
          i.ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("io thread: unexpected exception: {}", e.what());
        }
      }
    });
  }
  return status::ok();
}

std::uint16_t server::port() const noexcept { return impl_->bound_port; }

std::string server::bound_address() const {
  std::string host = impl_->options.host;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return host + ":" + std::to_string(impl_->bound_port);
}

void server::shutdown(millis grace) {
  net::post(impl_->ioc, [i = impl_.get(), grace] { i->begin_shutdown(grace); });
}

void server::wait() {
  if (impl_->threads.empty()) return;  // not started, or already waited for
  {
    std::unique_lock<std::mutex> lock(impl_->mu);
    impl_->done_cv.wait(lock, [&] { return impl_->done; });
  }
  // Connections are gone; let the io threads drain what is left (closing handlers) and end.
  impl_->ioc.stop();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  impl_->threads.clear();
}

std::size_t server::receiving_count() const {
  return static_cast<std::size_t>(std::max<std::int64_t>(0, impl_->receiving.load()));
}

std::size_t server::connection_count() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->sessions.size();
}

parsed_request parse_request_bytes(std::string_view bytes, const server_options& options) {
  parsed_request out;
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(options.max_header_size));
  parser.body_limit(options.max_body);
  // As a connection reads: the header alone first, its framing checked, only then the body.
  parser.eager(false);
  beast::error_code ec;
  bool checked_framing = false;
  while (!parser.is_done()) {
    if (!checked_framing && parser.is_header_done()) {
      checked_framing = true;
      if (auto framing = framing_error(parser.get())) {
        out.error = response::error(400, "bad_framing", *framing);
        return out;
      }
      parser.eager(true);
    }
    if (bytes.empty()) break;
    std::size_t used = parser.put(net::buffer(bytes.data(), bytes.size()), ec);
    if (ec == bhttp::error::need_more) {
      ec = {};
      if (used == 0) break;  // the parser wants more than is left
    }
    if (ec) {
      out.error = read_error_response(ec);
      return out;
    }
    bytes.remove_prefix(used);
    out.consumed += used;
  }
  if (!parser.is_done()) {
    parser.put_eof(ec);  // the peer closed here
    if (ec || !parser.is_done()) {
      out.error = read_error_response(ec ? ec : beast::error_code(bhttp::error::partial_message));
      return out;
    }
  }
  if (!checked_framing) {
    if (auto framing = framing_error(parser.get())) {
      out.error = response::error(400, "bad_framing", *framing);
      return out;
    }
  }
  out.req = to_request(parser.release());
  return out;
}

}  // namespace fetchrelay::http
