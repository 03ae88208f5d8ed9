#include "core/reply_batch.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace fetchrelay::reply_batch_test {
namespace {

TEST(ReplyBatch, FlushesRunOnceInOrderWhenTheOutermostScopeCloses) {
  EXPECT_EQ(reply_batch::current(), nullptr);
  std::string ran;
  {
    reply_batch outer;
    ASSERT_EQ(reply_batch::current(), &outer);
    outer.at_close([&] { ran += "a"; });
    {
      reply_batch inner;  // joins the outer one
      EXPECT_EQ(reply_batch::current(), &outer);
      reply_batch::current()->at_close([&] { ran += "b"; });
    }
    EXPECT_EQ(ran, "") << "an inner scope flushed";
  }
  EXPECT_EQ(ran, "ab");
  EXPECT_EQ(reply_batch::current(), nullptr);
}

TEST(ReplyBatch, AScopeBelongsToItsThread) {
  reply_batch here;
  reply_batch* seen = &here;
  std::thread([&] { seen = reply_batch::current(); }).join();
  EXPECT_EQ(seen, nullptr);
}

}  // namespace
}  // namespace fetchrelay::reply_batch_test
