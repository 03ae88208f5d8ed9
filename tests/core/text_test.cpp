#include <gtest/gtest.h>

#include "core/ascii.h"
#include "core/base64.h"
#include "core/log.h"

namespace fetchrelay::text_test {
namespace {

TEST(Ascii, CaseInsensitiveHeaderNames) {
  EXPECT_TRUE(iequals("Content-Type", "content-type"));
  EXPECT_FALSE(iequals("Content-Type", "content-typ"));
  EXPECT_TRUE(istarts_with("X-FETCH-Forward-Auth", "x-fetch-forward-"));
  EXPECT_FALSE(istarts_with("X-Fetch", "x-fetch-forward-"));
}

TEST(Ascii, HopByHopHeadersAreNeverForwarded) {
  for (const char* h : {"Connection", "keep-alive", "Transfer-Encoding", "TE", "Trailer", "Upgrade",
                        "Proxy-Authorization", "Host", "Content-Length"}) {
    EXPECT_TRUE(is_hop_by_hop(h)) << h;
  }
  for (const char* h : {"Authorization", "Content-Type", "X-Fetch-Job-Id", "User-Agent"}) {
    EXPECT_FALSE(is_hop_by_hop(h)) << h;
  }
}

TEST(Ascii, HeaderNamesAreTokens) {
  EXPECT_TRUE(is_header_name("X-Fetch-Forward-Trace"));
  EXPECT_TRUE(is_header_name("a!#$%&'*+-.^_`|~9"));
  for (const char* bad : {"", "X Trace", "X:Trace", "X\"", "(x)", "x/y", "x\x7f", "caf\xc3\xa9", "x\r"}) {
    EXPECT_FALSE(is_header_name(bad)) << bad;
  }
}

TEST(Ascii, FindAnyFindsTheFirstByteOfTheSet) {
  EXPECT_EQ(find_any("127.0.0.1:80/ok?x#y", "/?#"), 12u);
  EXPECT_EQ(find_any("host?q/x", "/?#"), 4u);
  EXPECT_EQ(find_any("host", "/?#"), std::string_view::npos);
  EXPECT_EQ(find_any("", "/?#"), std::string_view::npos);
  EXPECT_TRUE(contains_any("a\nb", "\r\n"));
  EXPECT_FALSE(contains_any("ab", "\r\n"));
  EXPECT_TRUE(contains_any(std::string_view("a\0b", 3), std::string_view("\0", 1)));
}

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\xfe", 3)), "/wD+");
  std::string long_one = base64_encode(std::string(100, 'a'));  // no line breaks, whatever the length
  EXPECT_EQ(long_one.size(), 136u);
  EXPECT_EQ(long_one.find('\n'), std::string::npos);
  EXPECT_EQ(long_one.substr(128), "YWFhYQ==");
}

TEST(LogFields, TextQuotesWhatNeedsItAndWritesNumbersPlain) {
  log::fields f = {{"a", "plain"}, {"b", ""},      {"c", "x y"}, {"d", "q\"u"}, {"e", "t\tab"},
                   {"f", "k=v"},   {"g", "caf\xc3\xa9"}, {"n", -42},   {"m", 1234567890123LL}};
  log::detail::scope s(f);
  std::string out;
  log::append_fields_text(out);
  EXPECT_EQ(out, " a=plain b=\"\" c=\"x y\" d=\"q\\\"u\" e=\"t\\tab\" f=\"k=v\" g=\"caf\xc3\xa9\" n=-42 m=1234567890123");
  std::string json;
  log::append_fields_json(json);
  EXPECT_TRUE(json.ends_with(",\"n\":-42,\"m\":1234567890123")) << json;
}

}  // namespace
}  // namespace fetchrelay::text_test
