#include "core/status.h"

#include <gtest/gtest.h>

namespace fetchrelay::status_test {
namespace {

TEST(Status, OkAndErrorsPrint) {
  EXPECT_TRUE(status::ok().is_ok());
  EXPECT_EQ(status::ok().to_string(), "ok");
  status s = unavailable("disk gone");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), status_code::unavailable);
  EXPECT_EQ(s.to_string(), "unavailable: disk gone");
}

TEST(Result, HoldsValueOrError) {
  result<int> ok = 7;
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(*ok, 7);
  result<int> bad = invalid_argument("no");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.error().message(), "no");
}

}  // namespace
}  // namespace fetchrelay::status_test
