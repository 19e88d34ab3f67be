// LogLimiter: one line per interval, and a count of what it held back.
#include "common/logging.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
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

// A log file that cannot be opened is refused with its path and the system's reason, and no
// directory is made for it.
TEST(InitLoggingTest, AnUnopenableLogFileIsRefusedWithTheReason) {
  const std::string base = ::testing::TempDir() + "sluice-logging-test-" + std::to_string(::getpid());
  std::filesystem::create_directories(base);
  const std::string missing = base + "/no/such/dir/x.log";
  Status st = InitLogging("info", missing);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("cannot open log file '" + missing + "': No such file or directory"), std::string::npos)
      << st.message();
  EXPECT_FALSE(std::filesystem::exists(base + "/no"));
  st = InitLogging("info", base);  // a directory
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cannot open log file '" + base + "': Is a directory"), std::string::npos)
      << st.message();
  st = InitLogging("info", "/proc/sluice-test.log");  // a read-only place, even for root
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cannot open log file '/proc/sluice-test.log': "), std::string::npos) << st.message();
  ASSERT_TRUE(InitLogging("info", base + "/ok.log").ok());
  SLUICE_LOG_INFO("written");
  spdlog::default_logger()->flush();
  EXPECT_TRUE(std::filesystem::exists(base + "/ok.log"));
  ASSERT_TRUE(InitLogging("info").ok());
  std::filesystem::remove_all(base);
}

}  // namespace
}  // namespace sluice
