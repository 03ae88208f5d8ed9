// A small blocking HTTP/1.1 client over POSIX sockets for tests: loopback only, every call
// bounded by a timeout. Deliberately independent of the code under test (no Beast).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace fetchrelay::test {

using namespace std::chrono_literals;

struct raw_response {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

/// A connected TCP socket to 127.0.0.1:port; closes on destruction.
class connection {
 public:
  connection() = default;
  explicit connection(int fd) : fd_(fd) {}
  connection(connection&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  connection& operator=(connection&& o) noexcept;
  ~connection();

  /// Connects; nullopt if refused or not connected within the timeout. errno_out gets errno.
  static std::optional<connection> open(std::uint16_t port, int* errno_out = nullptr,
                                        std::chrono::milliseconds timeout = 5s);

  bool send(const std::string& data);
  /// Reads one response (Content-Length or chunked body); nullopt on EOF/timeout/garbage.
  std::optional<raw_response> read_response(std::chrono::milliseconds timeout = 10s);
  /// True if the peer closed (read returns 0 or reset) within the timeout.
  bool wait_closed(std::chrono::milliseconds timeout = 5s);
  int fd() const { return fd_; }

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::string in_;
};

/// One request on a new connection: "GET /healthz" style.
std::optional<raw_response> http_request(std::uint16_t port, const std::string& method,
                                         const std::string& target, const std::string& body = "",
                                         const std::string& extra_headers = "");

}  // namespace fetchrelay::test
