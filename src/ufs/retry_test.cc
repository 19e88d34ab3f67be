// Tests for the retry loop: which errors are retried, how often, and the back-off bounds.
#include "ufs/retry.h"

#include <gtest/gtest.h>

namespace sluice::ufs {
namespace {

using std::chrono::milliseconds;

TEST(RetryTest, RetriesRetryableUntilSuccess) {
  RetryPolicy policy{5, milliseconds(1), milliseconds(2)};
  int calls = 0;
  Status st = RunWithRetries(policy, [&] {
    return ++calls < 3 ? Status(StatusCode::kUnavailable, "503", true) : Status::Ok();
  });
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(calls, 3);
}

TEST(RetryTest, NeverRetriesNonRetryable) {
  RetryPolicy policy{5, milliseconds(1), milliseconds(2)};
  int calls = 0;
  Status st = RunWithRetries(policy, [&] {
    ++calls;
    return Status(StatusCode::kPermissionDenied, "403");
  });
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(calls, 1);
}

TEST(RetryTest, GivesUpAfterMaxAttempts) {
  RetryPolicy policy{4, milliseconds(1), milliseconds(2)};
  int calls = 0;
  Status st = RunWithRetries(policy, [&] {
    ++calls;
    return Status(StatusCode::kUnavailable, "connection refused", true);
  });
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("gave up after 4 attempts"), std::string::npos) << st.message();
}

TEST(RetryTest, BackoffIsBoundedAndJittered) {
  RetryPolicy policy{10, milliseconds(100), milliseconds(1000)};
  std::chrono::nanoseconds max_seen{0};
  bool varied = false;
  for (int i = 0; i < 200; ++i) {
    auto a = policy.Backoff(1), b = policy.Backoff(1);
    EXPECT_LE(a, milliseconds(100));
    varied |= a != b;
    auto late = policy.Backoff(9);
    EXPECT_LE(late, milliseconds(1000));
    max_seen = std::max(max_seen, late);
  }
  EXPECT_TRUE(varied);
  EXPECT_GT(max_seen, milliseconds(200));  // grew past the base delay
}

}  // namespace
}  // namespace sluice::ufs
