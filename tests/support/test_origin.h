// A real Beast HTTP(S) server on 127.0.0.1:0 that plays a delivery target for client tests.
// One thread per connection; it counts accepted connections and records requests.
//
// Routes (by path):
//   /ok, /jobs/*   200 "hello"
//   /ok-then-drop  200 "hello" with keep-alive, then closes the connection
//   /chunked       200, chunked body "part1part2part3"
//   /redirect      302 Location: /ok
//   /big?n=N       200 with an N-byte body
//   /sleep/MS      200 "slept" after MS milliseconds
//   /hang          never answers
//   /close-mid     promises 100 bytes, sends 10, closes
//   /close         200 "bye" with Connection: close
//   /status/NNN    status NNN
//   /echo          200, the request as JSON: method, target, headers {name: value}, body
//   /fail/N/KEY    500 for the first N requests with this KEY, then 200
//   /switch        the status set with set_switch() (503 until then)
//   /queue/KEY     500 for the first request with this KEY, then 200; each held 50 ms, the most
//                  in progress at once is max_concurrent()
// Every request is recorded (received()).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tests/support/test_certs.h"

namespace fetchrelay::test {

struct received_request {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::chrono::system_clock::time_point at;
};

class test_origin {
 public:
  /// Plain HTTP, or HTTPS with `tls` (certificate chain and key in PEM).
  explicit test_origin(const pem_pair* tls = nullptr);
  ~test_origin();  // closes everything and joins

  std::uint16_t port() const;
  std::size_t accepts() const;
  std::size_t requests() const;
  std::vector<received_request> received() const;
  void set_switch(int status);
  int max_concurrent() const;
  /// /queue/ requests being held right now.
  int queue_in_progress() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fetchrelay::test
