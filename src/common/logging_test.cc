// LogLimiter: one line per interval, and a count of what it held back.
#include "common/logging.h"

#include <gtest/gtest.h>

#include <thread>

namespace sluice {
namespace {

TEST(LogLimiterTest, OneLinePerIntervalAndACountOfTheRest) {
  LogLimiter limiter(std::chrono::milliseconds(50));
  uint64_t held_back = 99;
  EXPECT_TRUE(limiter.Allow(&held_back));
  EXPECT_EQ(held_back, 0u);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limiter.Allow(&held_back));
  std::this_thread::sleep_for(std::chrono::milliseconds(60));  // the interval itself is the condition
  EXPECT_TRUE(limiter.Allow(&held_back));
  EXPECT_EQ(held_back, 5u);
}

}  // namespace
}  // namespace sluice
