// Tests for Status and Result<T>.
#include "common/status.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

Result<int> Half(int v) {
  if (v % 2) return InvalidArgument(std::to_string(v) + " is odd");
  return v / 2;
}

Result<int> Quarter(int v) {
  SLUICE_ASSIGN_OR_RETURN(int h, Half(v));
  return Half(h);
}

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  Status st(StatusCode::kUnavailable, "server down", /*retryable=*/true);
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(st.retryable());
  EXPECT_EQ(st.ToString(), "unavailable: server down");
  Status ctx = st.WithContext("GET s3://b/k");
  EXPECT_EQ(ctx.message(), "GET s3://b/k: server down");
  EXPECT_TRUE(ctx.retryable());
  EXPECT_EQ(ctx.code(), StatusCode::kUnavailable);
}

TEST(StatusTest, ResultPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "3 is odd");
  EXPECT_TRUE(Result<int>(5).status().ok());
}

}  // namespace
}  // namespace sluice
