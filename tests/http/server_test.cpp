// The HTTP server on loopback (port 0) with a real client socket.
#include "http/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "core/reply_batch.h"
#include "tests/support/raw_http.h"

namespace fetchrelay::http::server_test {
namespace {

using namespace std::chrono_literals;
using test::connection;

/// Polls `done` for up to two seconds: for server-side effects that follow what the client saw.
template <class F>
bool eventually(F done) {
  for (int i = 0; i < 400; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

/// Echoes method, target and body size as JSON; /slow answers from another thread later;
/// /drop never answers.
class server_fixture : public ::testing::Test {
 protected:
  void start(server_options o = {}) {
    o.host = "127.0.0.1";
    o.port = 0;
    server_ = std::make_unique<server>(o, [this](request&& req, responder r) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_target_ = req.target;
        ++requests_;
      }
      if (req.path() == "/drop") return;
      if (req.path() == "/held") {
        std::lock_guard<std::mutex> lock(mu_);
        held_.push_back(std::move(r));
        return;
      }
      if (req.path() == "/slow") {
        std::thread([r, n = req.body.size()] {
          std::this_thread::sleep_for(20ms);
          r.send(response::json(200, "{\"later\":" + std::to_string(n) + "}"));
        }).detach();
        return;
      }
      r.send(response::json(200, "{\"method\":\"" + req.method + "\",\"bytes\":" +
                                     std::to_string(req.body.size()) + "}"));
    });
    ASSERT_TRUE(server_->start().is_ok());
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  void TearDown() override { server_.reset(); }

  std::unique_ptr<server> server_;
  std::uint16_t port_ = 0;
  std::mutex mu_;
  std::string last_target_;
  int requests_ = 0;
  std::vector<responder> held_;  // /held: answered by the test
};

TEST_F(server_fixture, AnswersAndKeepsTheConnectionAlive) {
  start();
  auto c = connection::open(port_);
  ASSERT_TRUE(c);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c->send("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"));
    auto r = c->read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->headers["content-type"], "application/json");
    EXPECT_EQ(r->body, "{\"method\":\"POST\",\"bytes\":5}");
  }
  EXPECT_EQ(server_->connection_count(), 1u);
}

TEST_F(server_fixture, KeepsTheRawTarget) {
  start();
  auto r = test::http_request(port_, "GET", "/v2/publish/https://example.com//a%2Fb?x=1");
  ASSERT_TRUE(r);
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(last_target_, "/v2/publish/https://example.com//a%2Fb?x=1");
}

TEST_F(server_fixture, AnswerFromAnotherThreadArrives) {
  start();
  auto r = test::http_request(port_, "POST", "/slow", "abc");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"later\":3}");
}

// The job manager answers a group commit's submissions inside a reply_batch: they are held until
// it closes, then leave together, each to its own connection.
TEST_F(server_fixture, AnswersGivenInAReplyBatchLeaveWhenItClosesEachToItsConnection) {
  start();
  std::vector<connection> conns;
  for (int i = 0; i < 3; ++i) {
    auto c = connection::open(port_);
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send("GET /held HTTP/1.1\r\nHost: a\r\n\r\n"));
    conns.push_back(std::move(*c));
  }
  ASSERT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> lock(mu_);
    return held_.size() == 3;
  }));
  std::vector<responder> answers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    answers = held_;
  }
  std::thread([&] {
    reply_batch batch;
    for (std::size_t i = 0; i < answers.size(); ++i) answers[i].send(response::json(200, "{\"n\":" + std::to_string(i) + "}"));
    EXPECT_FALSE(conns[0].read_response(150ms)) << "an answer left before the batch closed";
  }).join();
  for (std::size_t i = 0; i < conns.size(); ++i) {
    auto r = conns[i].read_response();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body, "{\"n\":" + std::to_string(i) + "}");
  }
}

TEST_F(server_fixture, DroppedResponderAnswers500) {
  start();
  auto r = test::http_request(port_, "GET", "/drop");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_NE(r->body.find("\"code\":\"internal\""), std::string::npos) << r->body;
}

// The server's parse path on raw bytes (what the raw-HTTP fuzz target drives).
TEST(ParseRequestBytes, ReadsARequestOrGivesTheServersAnswer) {
  server_options o;
  o.max_body = 10;
  o.max_header_size = 200;
  auto ok = parse_request_bytes("POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcEXTRA", o);
  ASSERT_TRUE(ok.req);
  EXPECT_FALSE(ok.error);
  EXPECT_EQ(ok.req->method, "POST");
  EXPECT_EQ(ok.req->target, "/a?b=1");
  EXPECT_EQ(ok.req->body, "abc");
  EXPECT_EQ(ok.consumed, std::string_view("POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc").size());
  auto chunked = parse_request_bytes("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", o);
  ASSERT_TRUE(chunked.req);
  EXPECT_EQ(chunked.req->body, "abc");
  auto big = parse_request_bytes("POST /a HTTP/1.1\r\nContent-Length: 1073741824\r\n\r\n", o);
  ASSERT_TRUE(big.error);
  EXPECT_EQ(big.error->status, 413);
  auto headers = parse_request_bytes("GET /a HTTP/1.1\r\nX: " + std::string(300, 'x') + "\r\n\r\n", o);
  ASSERT_TRUE(headers.error);
  EXPECT_EQ(headers.error->status, 431);
  auto framing = parse_request_bytes("POST /a HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", o);
  ASSERT_TRUE(framing.error);
  EXPECT_EQ(framing.error->status, 400);
  auto garbage = parse_request_bytes("GET\x01 / HTTP/1.1\r\n\r\n", o);
  ASSERT_TRUE(garbage.error);
  EXPECT_EQ(garbage.error->status, 400);
  auto partial = parse_request_bytes("POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", o);
  EXPECT_FALSE(partial.req);
  EXPECT_FALSE(partial.error) << "a connection that ends mid-body is closed, not answered";
}

TEST_F(server_fixture, BodyOverTheLimitIs413) {
  server_options o;
  o.max_body = 100;
  start(o);
  auto c = connection::open(port_);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n"));
  auto r = c->read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->body, R"({"error":{"code":"body_too_large","message":"the request body exceeds limits.max_body"}})");
  EXPECT_EQ(r->headers["connection"], "close");
  // The server keeps serving.
  auto ok = test::http_request(port_, "GET", "/x");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(server_fixture, ChunkedBodyOverTheLimitIs413) {
  server_options o;
  o.max_body = 10;
  start(o);
  auto c = connection::open(port_);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"));
  auto r = c->read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
}

TEST_F(server_fixture, HeadersOverTheLimitAre431) {
  server_options o;
  o.max_header_size = 1024;
  start(o);
  auto r = test::http_request(port_, "GET", "/x", "", "X-Big: " + std::string(2000, 'a') + "\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_NE(r->body.find("headers_too_large"), std::string::npos);
}

TEST_F(server_fixture, MalformedRequestIs400) {
  start();
  auto c = connection::open(port_);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send("GARBAGE\r\n\r\n"));
  auto r = c->read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("\"code\":\"bad_request\""), std::string::npos);
}

// RFC 9112 §6.1/§6.3: before the fix, "Transfer-Encoding: gzip" answered 202 with an empty body
// and the bytes after the headers were parsed as a second request (request smuggling).
TEST_F(server_fixture, AmbiguousFramingIs400AndClosesWithoutParsingTheRest) {
  start();
  const std::string smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string hidden = "5\r\nhello\r\n0\r\n\r\n";
  const std::vector<std::string> framings = {
      "Transfer-Encoding: gzip\r\n",
      "Transfer-Encoding: xchunked\r\n",
      "Transfer-Encoding: chunked, gzip\r\n",
      "Transfer-Encoding: gzip, chunked\r\n",
      "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
      "Transfer-Encoding: chunked\r\nContent-Length: " + std::to_string(hidden.size()) + "\r\n",
      "Content-Length: 3\r\nContent-Length: 4\r\n",
  };
  for (const auto& framing : framings) {
    SCOPED_TRACE(framing);
    auto c = connection::open(port_);
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send("POST /v1/fetch HTTP/1.1\r\nHost: x\r\n" + framing + "\r\n" + hidden + smuggled));
    auto r = c->read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;
    EXPECT_NE(r->body.find("\"error\""), std::string::npos);
    EXPECT_TRUE(c->wait_closed()) << "the connection must close after a framing error";
  }
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(requests_, 0) << "no request may reach the handler, the smuggled one least of all; last: "
                          << last_target_;
}

TEST_F(server_fixture, PlainChunkedAndEqualContentLengthsStillWork) {
  start();
  auto c = connection::open(port_);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  Chunked \r\n\r\n5\r\nhello\r\n0\r\n\r\n"));
  auto r = c->read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"method":"POST","bytes":5})");
  ASSERT_TRUE(c->send("POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi"));
  r = c->read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"method":"POST","bytes":2})");
}

TEST_F(server_fixture, SlowHeadersAreCutOff) {
  server_options o;
  o.header_timeout = 200ms;
  start(o);
  auto c = connection::open(port_);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send("GET /x HTTP/1.1\r\nHost: a\r\n"));  // never finished
  EXPECT_TRUE(c->wait_closed(5s));
  EXPECT_TRUE(eventually([&] { return server_->connection_count() == 0; }));
  // The server keeps serving.
  auto ok = test::http_request(port_, "GET", "/x");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(server_fixture, SlowBodyIsCutOff) {
  server_options o;
  o.body_timeout = 200ms;
  start(o);
  auto c = connection::open(port_);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n123"));
  EXPECT_TRUE(c->wait_closed(5s));
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(requests_, 0) << "an incomplete request reached the handler";
}

TEST_F(server_fixture, IdleKeepAliveConnectionIsClosed) {
  server_options o;
  o.idle_timeout = 200ms;
  start(o);
  auto c = connection::open(port_);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n"));
  ASSERT_TRUE(c->read_response());
  EXPECT_TRUE(c->wait_closed(5s));
}

TEST_F(server_fixture, ExpectContinueGetsA100First) {
  start();
  auto c = connection::open(port_);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  // read_response skips the 100; it must arrive before we send the body, or this would hang.
  ASSERT_TRUE(c->send("body"));
  auto r = c->read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"method\":\"POST\",\"bytes\":4}");
}

TEST_F(server_fixture, ConnectionsOverTheLimitGet503) {
  server_options o;
  o.max_connections = 2;
  start(o);
  auto a = connection::open(port_);
  auto b = connection::open(port_);
  ASSERT_TRUE(a && b);
  // Make sure both are accepted before the third arrives.
  for (auto* c : {&*a, &*b}) {
    ASSERT_TRUE(c->send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n"));
    ASSERT_TRUE(c->read_response());
  }
  auto third = connection::open(port_);
  ASSERT_TRUE(third);
  auto r = third->read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_NE(r->body.find("too_many_connections"), std::string::npos);
  EXPECT_TRUE(third->wait_closed());
}

TEST_F(server_fixture, ShutdownFinishesInFlightClosesIdleAndRefusesNew) {
  start();
  auto idle = connection::open(port_);
  auto busy = connection::open(port_);
  ASSERT_TRUE(idle && busy);
  ASSERT_TRUE(idle->send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n"));
  ASSERT_TRUE(idle->read_response());
  ASSERT_TRUE(busy->send("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345"));
  // Let the server see the partial request before shutdown starts.
  ASSERT_TRUE(eventually([&] { return server_->receiving_count() == 1; })) << "the partial request never arrived";

  server_->shutdown(10s);
  EXPECT_TRUE(idle->wait_closed(5s)) << "the idle keep-alive connection stays open";
  int err = 0;
  bool refused = false;
  for (int i = 0; i < 400 && !refused; ++i) {  // a racing connect may be reset, not refused
    refused = !connection::open(port_, &err, 1s) && err == ECONNREFUSED;
    if (!refused) std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(refused);
  EXPECT_EQ(err, ECONNREFUSED);

  ASSERT_TRUE(busy->send("67890"));
  auto r = busy->read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"method\":\"POST\",\"bytes\":10}");
  EXPECT_EQ(r->headers["connection"], "close");
  server_->wait();
  EXPECT_EQ(server_->connection_count(), 0u);
}

TEST_F(server_fixture, ShutdownGraceClosesWhatIsStillInFlight) {
  start();
  auto busy = connection::open(port_);
  ASSERT_TRUE(busy);
  ASSERT_TRUE(busy->send("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345"));
  ASSERT_TRUE(eventually([&] { return server_->receiving_count() == 1; })) << "the partial request never arrived";
  auto t0 = std::chrono::steady_clock::now();
  server_->shutdown(200ms);
  server_->wait();
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 150ms) << "closed before the grace ran out";
  EXPECT_TRUE(busy->wait_closed(5s));
}

}  // namespace
}  // namespace fetchrelay::http::server_test
