// The hand-written message heads (http/wire.h): exact bytes, framing as Beast framed them, and
// fields that could split the message left out.
#include "http/wire.h"

#include <gtest/gtest.h>

namespace fetchrelay::http::wire {
namespace {

TEST(Wire, AResponseHeadHasStatusServerTypeFieldsAndLength) {
  std::string h;
  start_response(h, 202, "application/json");
  append_field(h, "Retry-After", "1");
  EXPECT_TRUE(finish_response(h, 202, 27, true));
  EXPECT_EQ(h,
            "HTTP/1.1 202 Accepted\r\nServer: fetchrelay\r\nContent-Type: application/json\r\n"
            "Retry-After: 1\r\nContent-Length: 27\r\n\r\n");
}

TEST(Wire, AClosingResponseSaysSoAndBodilessStatusesHaveNoLength) {
  std::string h;
  start_response(h, 503, "application/json");
  finish_response(h, 503, 0, false);
  EXPECT_EQ(h,
            "HTTP/1.1 503 Service Unavailable\r\nServer: fetchrelay\r\nContent-Type: application/json\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n");
  for (int status : {204, 304}) {
    std::string b;
    start_response(b, status, "text/html");
    EXPECT_FALSE(finish_response(b, status, 10, true)) << status;
    EXPECT_EQ(b.find("Content-Length"), std::string::npos) << status;
    EXPECT_TRUE(b.ends_with("text/html\r\n\r\n")) << b;
  }
}

TEST(Wire, ARequestHeadIsFramedAsBeastFramedIt) {
  std::string h;
  start_request(h, "POST", "/hook?a=1", "example.com:8080", "fetchrelay/1");
  append_field(h, "X-Fetch-Job-Id", "job_1");
  finish_request(h, "POST", 5, true);
  EXPECT_EQ(h,
            "POST /hook?a=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: fetchrelay/1\r\n"
            "X-Fetch-Job-Id: job_1\r\nContent-Length: 5\r\n\r\n");
  // An empty POST, PUT or OPTIONS says Content-Length: 0; an empty GET, DELETE or PATCH says nothing.
  for (const char* m : {"POST", "PUT", "OPTIONS"}) {
    std::string b;
    finish_request(b, m, 0, true);
    EXPECT_EQ(b, "Content-Length: 0\r\n\r\n") << m;
  }
  for (const char* m : {"GET", "DELETE", "PATCH", "HEAD"}) {
    std::string b;
    finish_request(b, m, 0, false);
    EXPECT_EQ(b, "Connection: close\r\n\r\n") << m;
  }
}

TEST(Wire, FieldsThatWouldSplitTheMessageAreLeftOut) {
  std::string h;
  append_field(h, "X-Ok", "a value with spaces; and = signs");
  append_field(h, "X-Bad", "v\r\nInjected: yes");
  append_field(h, "X-Bad2", std::string_view("a\0b", 3));
  append_field(h, "Bad Name", "v");
  append_field(h, "", "v");
  append_field(h, "X-Lf", "v\nw");
  EXPECT_EQ(h, "X-Ok: a value with spaces; and = signs\r\n");
  EXPECT_TRUE(writable("X-Empty", ""));
}

}  // namespace
}  // namespace fetchrelay::http::wire
