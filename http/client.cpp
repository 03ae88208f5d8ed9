// Beast implementation of http::client. See client.h for the contract.
//
// Everything below runs on the client's single io thread, so pools and attempts need no locks.
// Ownership: an origin's pool owns its idle connections; an attempt owns the connection it is
// using. `origin::open` counts live connections (connecting, busy or idle) and is the only
// thing checked against max_connections_per_origin. close_connection() is idempotent and is
// the one place a connection slot is given back.
#include "http/client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <pthread.h>

#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <limits>
#include <thread>
#include <unordered_map>

#include "core/address_policy.h"
#include "core/ascii.h"
#include "core/text.h"
#include "core/url.h"
#include "http/wire.h"

namespace fetchrelay::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;


namespace {

/// The client sets these itself: never taken from the caller.
bool is_hop_by_hop_or_reserved(std::string_view name) { return is_hop_by_hop(name) || iequals(name, "user-agent"); }

tcp::endpoint to_endpoint(const ip_address& a, std::uint16_t port) {
  if (a.v4) {
    net::ip::address_v4::bytes_type b{a.bytes[12], a.bytes[13], a.bytes[14], a.bytes[15]};
    return {net::ip::address_v4(b), port};
  }
  net::ip::address_v6::bytes_type b;
  std::copy(a.bytes.begin(), a.bytes.end(), b.begin());
  return {net::ip::address_v6(b), port};
}

std::string address_text(const ip_address& a) { return to_endpoint(a, 0).address().to_string(); }

}  // namespace


struct origin;
struct attempt;

struct connection {
  explicit connection(origin* o) : org(o) {}
  origin* org;
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  steady::time_point idle_since;
  int served = 0;
  bool closed = false;

  beast::tcp_stream& tcp() { return secure ? secure->next_layer() : *plain; }

  template <class F>
  void with_stream(F&& f) {
    if (secure) f(*secure);
    else f(*plain);
  }
};

struct origin {
  std::string key;
  std::vector<std::shared_ptr<connection>> idle;
  int open = 0;
  std::deque<std::shared_ptr<attempt>> waiting;
};

enum class phase { queued, resolving, connecting, exchanging, done };

struct attempt {
  attempt(net::io_context& ioc) : timer(ioc) {}
  outbound_request req;
  parsed_url url;
  steady::time_point deadline;
  send_completion done;
  phase ph = phase::queued;
  origin* org = nullptr;
  std::shared_ptr<connection> conn;
  net::steady_timer timer;  // armed only while queued or resolving
  bool retried_stale = false;
  std::string head;  // the request's line and fields (wire.h); the body is req.body
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser;
  std::array<char, 16384> chunk;
  outbound_response res;
};

struct client::impl {
  impl(client_options o) : options(std::move(o)), tls_ctx(ssl::context::tls_client),
                           policy(options.allow_private_networks, options.allow_networks),
                           sweep_timer(ioc), dns(options.dns) {}

  client_options options;
  net::io_context ioc{1};
  ssl::context tls_ctx;
  bool system_cas_loaded = false;

  /// The system CA store, loaded when the first https connection opens (~200M instructions, tens
  /// of ms): a relay that only delivers over http never pays it, and none waits for it to start.
  void load_system_cas() {
    if (system_cas_loaded) return;
    system_cas_loaded = true;
    beast::error_code ec;
    tls_ctx.set_default_verify_paths(ec);
    if (ec) spdlog::error("cannot load the system CA store ({}): https deliveries will fail to verify", ec.message());
  }
  address_policy policy;
  net::steady_timer sweep_timer;
  std::unordered_map<std::string, std::unique_ptr<origin>> origins;
  std::atomic<std::uint64_t> connections_opened{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> reused{0};
  std::thread thread;
  resolver dns;  // declared last: joined first, before anything its callbacks touch

  // -- attempt lifecycle --------------------------------------------------------------------

  void start(std::shared_ptr<attempt> a) {
    auto u = parse_url(a->req.url);
    if (!u) {
      fail(a, error_class::unusable, u.error().message());
      return;
    }
    a->url = std::move(*u);
    for (const auto& h : a->req.headers) {
      if (!wire::writable(h.name, h.value)) {  // the one rule the request head is written by
        fail(a, error_class::unusable,
             "header \"" + utf8_escaped(h.name.substr(0, 64)) + "\" cannot be sent: its name is not a token, or its value holds CR, LF or NUL");
        return;
      }
    }
    auto& slot = origins[a->url.origin];
    if (!slot) {
      slot = std::make_unique<origin>();
      slot->key = a->url.origin;
    }
    a->org = slot.get();
    acquire(a);
  }

  void acquire(const std::shared_ptr<attempt>& a) {
    origin& o = *a->org;
    while (!o.idle.empty()) {
      auto c = std::move(o.idle.back());
      o.idle.pop_back();
      if (steady::now() - c->idle_since > options.pool_idle_timeout || !c->tcp().socket().is_open()) {
        close_connection(c);
        continue;
      }
      a->conn = std::move(c);
      reused.fetch_add(1, std::memory_order_relaxed);
      exchange(a);
      return;
    }
    if (o.open < options.max_connections_per_origin) {
      open_connection(a);
      return;
    }
    if (o.waiting.size() >= options.max_queued_per_origin) {
      fail(a, error_class::connect, "the connection pool for " + o.key + " is full and its queue too");
      return;
    }
    a->ph = phase::queued;
    o.waiting.push_back(a);
    arm_deadline(a);
  }

  void arm_deadline(const std::shared_ptr<attempt>& a) {
    a->timer.expires_at(a->deadline);
    a->timer.async_wait([this, a](beast::error_code ec) {
      if (ec || a->ph == phase::done) return;
      if (a->ph == phase::queued || a->ph == phase::resolving) {
        fail(a, error_class::timeout,
             a->ph == phase::queued ? "the deadline passed while waiting for a connection to " + a->org->key
                                    : "the deadline passed while resolving " + a->url.host);
      }
    });
  }

  void open_connection(const std::shared_ptr<attempt>& a) {
    origin& o = *a->org;
    ++o.open;
    a->conn = std::make_shared<connection>(&o);
    a->ph = phase::resolving;
    arm_deadline(a);
    dns.resolve(a->url.host, [this, a](result<std::vector<ip_address>> r) {
      net::post(ioc, [this, a, r = std::move(r)]() mutable { on_resolved(a, std::move(r)); });
    });
  }

  void on_resolved(const std::shared_ptr<attempt>& a, result<std::vector<ip_address>> r) {
    if (a->ph != phase::resolving) return;  // timed out meanwhile; its slot is already back
    a->timer.cancel();
    if (!r) {
      fail(a, error_class::dns, r.error().message());
      return;
    }
    std::vector<tcp::endpoint> endpoints;
    std::string refused;
    for (const auto& ip : *r) {
      if (policy.permits(ip)) {
        endpoints.push_back(to_endpoint(ip, a->url.port));
      } else if (refused.empty()) {
        refused = address_text(ip) + " (" + address_policy::restricted_range(ip) + ")";
      }
    }
    if (endpoints.empty()) {
      fail(a, error_class::blocked,
           a->url.host + " resolves to " + refused +
               ", which delivery may not reach (delivery.allow_networks / allow_private_networks)");
      return;
    }
    a->ph = phase::connecting;
    auto& c = *a->conn;
    if (a->url.tls) {
      load_system_cas();
      c.secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc, tls_ctx);
      if (!a->url.ip) SSL_set_tlsext_host_name(c.secure->native_handle(), a->url.host.c_str());
      c.secure->set_verify_mode(ssl::verify_peer);
      c.secure->set_verify_callback(ssl::host_name_verification(a->url.host));
    } else {
      c.plain = std::make_unique<beast::tcp_stream>(ioc);
    }
    auto connect_deadline = std::min(a->deadline, steady::now() + options.connect_timeout);
    connect_next(a, std::make_shared<std::vector<tcp::endpoint>>(std::move(endpoints)), 0, connect_deadline, "");
  }

  void connect_next(const std::shared_ptr<attempt>& a, std::shared_ptr<std::vector<tcp::endpoint>> eps,
                    size_t i, steady::time_point connect_deadline, std::string last_error) {
    if (i >= eps->size()) {
      fail_connect(a, connect_deadline, "cannot connect to " + a->org->key + ": " + last_error);
      return;
    }
    auto& tcp_stream = a->conn->tcp();
    if (i > 0) {
      beast::error_code ignored;
      tcp_stream.socket().close(ignored);
    }
    tcp_stream.expires_at(connect_deadline);
    tcp_stream.async_connect((*eps)[i], [this, a, eps, i, connect_deadline](beast::error_code ec) {
      if (a->ph != phase::connecting) return;
      if (ec) {
        std::string why = ec == beast::error::timeout ? std::string("timed out") : ec.message();
        connect_next(a, eps, i + 1, connect_deadline, (*eps)[i].address().to_string() + " " + why);
        return;
      }
      beast::error_code ignored;
      a->conn->tcp().socket().set_option(tcp::no_delay(true), ignored);
      if (!a->conn->secure) {
        connected(a);
        return;
      }
      a->conn->tcp().expires_at(connect_deadline);
      a->conn->secure->async_handshake(ssl::stream_base::client, [this, a, connect_deadline](beast::error_code hec) {
        if (a->ph != phase::connecting) return;
        if (hec) {
          if (hec == beast::error::timeout) {
            fail_connect(a, connect_deadline, "TLS handshake with " + a->org->key + " timed out");
            return;
          }
          std::string why = hec.message();
          long verify = SSL_get_verify_result(a->conn->secure->native_handle());
          if (verify != X509_V_OK) why += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
          fail(a, error_class::tls, "TLS handshake with " + a->org->key + " failed: " + why);
          return;
        }
        connected(a);
      });
    });
  }

  void fail_connect(const std::shared_ptr<attempt>& a, steady::time_point connect_deadline, std::string message) {
    bool deadline_passed = steady::now() >= a->deadline;
    if (deadline_passed && connect_deadline >= a->deadline) {
      fail(a, error_class::timeout, "the deadline passed while connecting to " + a->org->key);
    } else {
      fail(a, error_class::connect, std::move(message));
    }
  }

  void connected(const std::shared_ptr<attempt>& a) {
    connections_opened.fetch_add(1, std::memory_order_relaxed);
    exchange(a);
  }

  void exchange(const std::shared_ptr<attempt>& a) {
    a->ph = phase::exchanging;
    a->res = outbound_response{};
    a->res.reused_connection = a->conn->served > 0;
    auto& h = a->head;
    h.clear();
    wire::start_request(h, a->req.method, a->url.target, a->url.host_header,
                        a->req.user_agent.empty() ? options.user_agent : a->req.user_agent);
    for (const auto& f : a->req.headers) {
      if (!is_hop_by_hop_or_reserved(f.name)) wire::append_writable_field(h, f.name, f.value);  // checked in start()
    }
    wire::finish_request(h, a->req.method, a->req.body.size(), options.reuse_connections);
    a->conn->tcp().expires_at(a->deadline);
    a->conn->with_stream([&](auto& stream) {
      std::array<net::const_buffer, 2> out{net::buffer(a->head), net::buffer(a->req.body)};
      net::async_write(stream, out, [this, a](beast::error_code ec, std::size_t) {
        if (ec) {
          io_failed(a, ec, true);
          return;
        }
        read_header(a);
      });
    });
  }

  void read_header(const std::shared_ptr<attempt>& a) {
    a->parser.emplace();
    // Our own limit applies (max_body_bytes); Beast 1.74 mishandles body_limit(boost::none).
    a->parser->body_limit(std::numeric_limits<std::uint64_t>::max());
    if (a->req.method == "HEAD") a->parser->skip(true);
    a->conn->with_stream([&](auto& stream) {
      bhttp::async_read_header(stream, a->conn->buffer, *a->parser, [this, a](beast::error_code ec, std::size_t) {
        if (ec) {
          io_failed(a, ec, !a->parser->got_some());
          return;
        }
        auto& msg = a->parser->get();
        a->res.status = static_cast<int>(msg.result_int());
        a->res.headers.reserve(std::distance(msg.begin(), msg.end()));
        for (const auto& f : msg) a->res.headers.push_back({std::string(f.name_string()), std::string(f.value())});
        read_body(a);
      });
    });
  }

  void read_body(const std::shared_ptr<attempt>& a) {
    if (a->parser->is_done()) {
      succeed(a, false);
      return;
    }
    auto& body = a->parser->get().body();
    body.data = a->chunk.data();
    body.size = a->chunk.size();
    a->conn->with_stream([&](auto& stream) {
      bhttp::async_read(stream, a->conn->buffer, *a->parser, [this, a](beast::error_code ec, std::size_t) {
        if (ec == bhttp::error::need_buffer) ec = {};
        if (ec) {
          io_failed(a, ec, false);
          return;
        }
        std::size_t n = a->chunk.size() - a->parser->get().body().size;
        a->res.body_bytes += n;
        std::size_t room = options.kept_body_bytes > a->res.body.size() ? options.kept_body_bytes - a->res.body.size() : 0;
        a->res.body.append(a->chunk.data(), std::min(room, n));
        if (n > room) a->res.body_truncated = true;
        if (a->res.body_bytes > options.max_body_bytes) {
          a->res.body_over_limit = true;
          succeed(a, true);
          return;
        }
        read_body(a);
      });
    });
  }

  /// A read or write failed. `nothing_received`: no byte of the response arrived, so a reused
  /// connection that the peer had closed while idle can be retried once on a fresh one.
  void io_failed(const std::shared_ptr<attempt>& a, beast::error_code ec, bool nothing_received) {
    if (a->ph != phase::exchanging) return;
    if (ec == beast::error::timeout) {
      fail(a, error_class::timeout, "no complete response from " + a->org->key + " before the deadline");
      return;
    }
    bool broken = ec == bhttp::error::end_of_stream || ec == net::error::eof ||
                  ec == net::error::connection_reset || ec == net::error::broken_pipe ||
                  ec == bhttp::error::partial_message || ec == ssl::error::stream_truncated ||
                  ec == net::error::connection_aborted;
    if (broken && nothing_received && a->res.reused_connection && !a->retried_stale) {
      a->retried_stale = true;
      close_connection(a->conn);
      a->conn.reset();
      acquire(a);
      return;
    }
    if (broken) {
      fail(a, error_class::reset, "the connection to " + a->org->key + " broke: " + ec.message());
    } else if (ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category()) {
      fail(a, error_class::protocol, "invalid HTTP from " + a->org->key + ": " + ec.message());
    } else {
      fail(a, error_class::reset, "I/O error with " + a->org->key + ": " + ec.message());
    }
  }

  void succeed(const std::shared_ptr<attempt>& a, bool over_limit) {
    auto c = std::move(a->conn);
    bool reusable = options.reuse_connections && !over_limit && a->parser->is_done() && a->parser->get().keep_alive();
    ++c->served;
    a->ph = phase::done;
    requests.fetch_add(1, std::memory_order_relaxed);
    outbound_result r;
    r.response = std::move(a->res);
    a->parser.reset();
    a->head = std::string();
    auto done = std::move(a->done);
    if (reusable) release(std::move(c));
    else close_connection(c);
    done(std::move(r));
  }

  void fail(const std::shared_ptr<attempt>& a, error_class kind, std::string message) {
    if (a->ph == phase::done) return;
    bool was_queued = a->ph == phase::queued;
    a->ph = phase::done;
    beast::error_code ignored;
    a->timer.cancel();
    if (was_queued && a->org) {
      auto& w = a->org->waiting;
      for (auto it = w.begin(); it != w.end(); ++it) {
        if (*it == a) {
          w.erase(it);
          break;
        }
      }
    }
    if (a->conn) close_connection(a->conn);
    a->conn.reset();
    requests.fetch_add(1, std::memory_order_relaxed);
    auto done = std::move(a->done);
    if (done) done(outbound_result{std::nullopt, outbound_error{kind, std::move(message)}});
  }

  // -- pool ---------------------------------------------------------------------------------

  void release(std::shared_ptr<connection> c) {
    origin& o = *c->org;
    c->idle_since = steady::now();
    while (!o.waiting.empty()) {
      auto next = std::move(o.waiting.front());
      o.waiting.pop_front();
      if (next->ph != phase::queued) continue;
      next->timer.cancel();
      next->conn = std::move(c);
      reused.fetch_add(1, std::memory_order_relaxed);
      exchange(next);
      return;
    }
    o.idle.push_back(std::move(c));
  }

  void close_connection(const std::shared_ptr<connection>& c) {
    if (!c || c->closed) return;
    c->closed = true;
    beast::error_code ignored;
    if (c->plain || c->secure) {
      c->tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
      c->tcp().close();
    }
    origin& o = *c->org;
    --o.open;
    // A slot is free: start the next waiter on a new connection.
    while (!o.waiting.empty() && o.open < options.max_connections_per_origin) {
      auto next = std::move(o.waiting.front());
      o.waiting.pop_front();
      if (next->ph != phase::queued) continue;
      next->timer.cancel();
      open_connection(next);
    }
  }

  void sweep() {
    sweep_timer.expires_after(std::max(options.pool_idle_timeout / 2, std::chrono::milliseconds(100)));
    sweep_timer.async_wait([this](beast::error_code ec) {
      if (ec) return;
      auto now = steady::now();
      for (auto it = origins.begin(); it != origins.end();) {
        origin& o = *it->second;
        std::vector<std::shared_ptr<connection>> keep;
        for (auto& c : o.idle) {
          if (now - c->idle_since > options.pool_idle_timeout) close_connection(c);
          else keep.push_back(c);
        }
        o.idle.swap(keep);
        if (o.open == 0 && o.waiting.empty()) it = origins.erase(it);
        else ++it;
      }
      sweep();
    });
  }
};

result<std::unique_ptr<client>> client::create(client_options options) {
  auto i = std::make_unique<impl>(std::move(options));
  beast::error_code ec;
  if (i->options.ca_file) {
    i->tls_ctx.load_verify_file(*i->options.ca_file, ec);
    if (ec) return invalid_argument("cannot load delivery.ca_file " + *i->options.ca_file + ": " + ec.message());
  }
  SSL_CTX_set_min_proto_version(i->tls_ctx.native_handle(), TLS1_2_VERSION);
  i->tls_ctx.set_verify_mode(ssl::verify_peer);
  i->sweep();
  impl* raw = i.get();
  i->thread = std::thread([raw] {
    pthread_setname_np(pthread_self(), "fr-http-out");
    raw->ioc.run();
  });
  return std::unique_ptr<client>(new client(std::move(i)));
}

client::client(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

client::~client() {
  impl_->ioc.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void client::send(outbound_request request, std::chrono::milliseconds timeout, send_completion done) {
  auto a = std::make_shared<attempt>(impl_->ioc);
  a->req = std::move(request);
  a->deadline = steady::now() + timeout;
  a->done = std::move(done);
  net::post(impl_->ioc, [i = impl_.get(), a = std::move(a)]() mutable { i->start(std::move(a)); });
}

client_stats client::stats() const {
  return {impl_->connections_opened.load(), impl_->requests.load(), impl_->reused.load()};
}

}  // namespace fetchrelay::http
