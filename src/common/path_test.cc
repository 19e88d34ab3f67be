// Tests for namespace path normalization: every bad path is refused with a clear message.
#include "common/path.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(PathTest, Normalizes) {
  EXPECT_EQ(*NormalizePath("/"), "/");
  EXPECT_EQ(*NormalizePath(""), "/");
  EXPECT_EQ(*NormalizePath("a/b"), "/a/b");
  EXPECT_EQ(*NormalizePath("/a/b/"), "/a/b");
  EXPECT_EQ(*NormalizePath("/a/./b"), "/a/b");
  EXPECT_EQ(*NormalizePath("/a/x/../b"), "/a/b");
  EXPECT_EQ(*NormalizePath("/a/.."), "/");
  EXPECT_EQ(*NormalizePath("/data set/ünïcødé/文件"), "/data set/ünïcødé/文件");
  EXPECT_EQ(*NormalizePath("/a+b/c%20d"), "/a+b/c%20d");
}

void ExpectRejected(std::string_view path, std::string_view why) {
  auto r = NormalizePath(path);
  ASSERT_FALSE(r.ok()) << "accepted: " << path;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(why), std::string::npos) << r.status().message();
}

TEST(PathTest, RejectsEscapes) {
  ExpectRejected("/..", "climbs above the root");
  ExpectRejected("/a/../../etc/passwd", "climbs above the root");
  ExpectRejected("../x", "climbs above the root");
}

TEST(PathTest, RejectsNulEmptyAndLong) {
  ExpectRejected(std::string_view("/a\0b", 4), "NUL");
  ExpectRejected("/a//b", "empty component");
  ExpectRejected("//a", "empty component");
  ExpectRejected("/a//", "empty component");
  ExpectRejected("/" + std::string(256, 'x'), "limit is 255");
  EXPECT_TRUE(NormalizePath("/" + std::string(255, 'x')).ok());
  std::string deep;
  for (int i = 0; i < 500; ++i) deep += "/abcdefghi";
  ExpectRejected(deep, "limit is 4096");
}

TEST(PathTest, RejectsBadUtf8) {
  ExpectRejected("/a/\xff", "UTF-8");
  ExpectRejected("/a/\xc3", "UTF-8");          // truncated
  ExpectRejected("/a/\xc0\xaf", "UTF-8");      // overlong '/'
  ExpectRejected("/a/\xed\xa0\x80", "UTF-8");  // surrogate
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));
}

TEST(PathTest, Helpers) {
  EXPECT_EQ(SplitPath("/a/b"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(SplitPath("/").empty());
  EXPECT_EQ(JoinPath("/a", "b/c"), "/a/b/c");
  EXPECT_EQ(JoinPath("/", "b"), "/b");
  EXPECT_EQ(ParentPath("/a/b"), "/a");
  EXPECT_EQ(ParentPath("/a"), "/");
  EXPECT_EQ(BaseName("/a/b"), "b");
  EXPECT_TRUE(PathIsUnder("/a/b", "/a"));
  EXPECT_TRUE(PathIsUnder("/a", "/a"));
  EXPECT_FALSE(PathIsUnder("/ab", "/a"));
  EXPECT_TRUE(PathIsUnder("/x", "/"));
}

}  // namespace
}  // namespace sluice
