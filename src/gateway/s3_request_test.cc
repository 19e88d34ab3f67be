// S3 request targets, Range and conditional headers, and HTTP dates.
#include "gateway/s3_request.h"

#include <gtest/gtest.h>

namespace sluice::gateway {
namespace {

S3Request Parsed(std::string_view target) {
  S3Request r;
  auto e = ParseS3Target(target, &r);
  EXPECT_FALSE(e) << target << ": " << (e ? e->message : "");
  return r;
}

TEST(S3RequestTest, TargetsSplitIntoBucketKeyAndQuery) {
  S3Request r = Parsed("/b/dir/my%20key%2Bplus~.txt?list-type=2&prefix=a+b%2Fc&location");
  EXPECT_EQ(r.bucket, "b");
  EXPECT_EQ(r.key, "dir/my key+plus~.txt");
  ASSERT_NE(r.Query("prefix"), nullptr);
  EXPECT_EQ(*r.Query("prefix"), "a b/c");  // '+' in a query is a space
  ASSERT_NE(r.Query("location"), nullptr);
  EXPECT_EQ(*r.Query("location"), "");
  EXPECT_EQ(r.Query("missing"), nullptr);
  EXPECT_EQ(Parsed("/").bucket, "");
  EXPECT_EQ(Parsed("/b").key, "");
  EXPECT_EQ(Parsed("/b/").key, "");
  EXPECT_EQ(Parsed("/b/a%2Fb").key, "a/b");  // an encoded slash is a slash
  EXPECT_EQ(Parsed("/b/dir/").key, "dir/");
}

TEST(S3RequestTest, HostileTargetsAreRefusedNamingTheProblem) {
  for (std::string_view bad : {"", "b/k", "/b/../etc", "/b/%2e%2e/etc", "/b/a/./c", "/b/a%00b", "/b/%zz", "/b/%4",
                               "/b/a//b", "/%2e%2e/x", "//k", "/b/k?x=%00"}) {
    S3Request r;
    auto e = ParseS3Target(bad, &r);
    ASSERT_TRUE(e) << bad;
    EXPECT_EQ(e->http_status, 400) << bad;
    EXPECT_EQ(e->code, "InvalidArgument") << bad;
    EXPECT_FALSE(e->message.empty());
  }
  S3Request r;
  auto e = ParseS3Target("/b/" + std::string(1025, 'k'), &r);
  ASSERT_TRUE(e);
  EXPECT_NE(e->message.find("1,024"), std::string::npos) << e->message;
  e = ParseS3Target("/b/" + std::string(9000, 'k'), &r);
  ASSERT_TRUE(e);
  EXPECT_NE(e->message.find("target"), std::string::npos) << e->message;
}

TEST(S3RequestTest, RangesResolveAgainstTheSizeAsS3Does) {
  auto range = [](const char* header, uint64_t size) {
    std::string h = header;
    return ResolveRange(&h, size);
  };
  auto r = range("bytes=0-9", 100);
  ASSERT_TRUE(r.range);
  EXPECT_EQ(r.range->first, 0u);
  EXPECT_EQ(r.range->last, 9u);
  r = range("bytes=0-0", 100);
  EXPECT_EQ(r.range->last, 0u);
  r = range("bytes=90-", 100);
  EXPECT_EQ(r.range->first, 90u);
  EXPECT_EQ(r.range->last, 99u);
  r = range("bytes=-10", 100);
  EXPECT_EQ(r.range->first, 90u);
  r = range("bytes=-1000", 100);  // a suffix longer than the object: all of it
  EXPECT_EQ(r.range->first, 0u);
  r = range("bytes=50-5000", 100);  // clipped
  EXPECT_EQ(r.range->last, 99u);
  for (const char* unsatisfiable : {"bytes=100-", "bytes=100-200", "bytes=-0"}) {
    r = range(unsatisfiable, 100);
    ASSERT_TRUE(r.error) << unsatisfiable;
    EXPECT_EQ(r.error->http_status, 416);
    EXPECT_EQ(r.error->code, "InvalidRange");
  }
  EXPECT_TRUE(range("bytes=0-", 0).error);  // nothing of an empty object
  for (const char* ignored : {"bytes=0-1,5-6", "items=0-1", "bytes=x-1", "bytes=5-1", "bytes", "bytes=--1"}) {
    r = range(ignored, 100);
    EXPECT_FALSE(r.range) << ignored;
    EXPECT_FALSE(r.error) << ignored;
  }
  EXPECT_FALSE(ResolveRange(nullptr, 100).range);
}

HttpHead With(std::vector<std::pair<std::string, std::string>> headers) {
  HttpHead h;
  h.method = "GET";
  h.target = "/b/k";
  h.headers = std::move(headers);
  return h;
}

TEST(S3RequestTest, ConditionsFollowS3) {
  const int64_t mtime = 1000000000;  // Sun, 09 Sep 2001 01:46:40 GMT
  const std::string before = "Sat, 08 Sep 2001 00:00:00 GMT", after = "Mon, 10 Sep 2001 00:00:00 GMT";
  EXPECT_EQ(EvaluateConditions(With({}), "abc", mtime), 200);
  EXPECT_EQ(EvaluateConditions(With({{"If-Match", "\"abc\""}}), "abc", mtime), 200);
  EXPECT_EQ(EvaluateConditions(With({{"if-match", "abc"}}), "abc", mtime), 200);
  EXPECT_EQ(EvaluateConditions(With({{"If-Match", "\"x\", W/\"abc\""}}), "abc", mtime), 200);
  EXPECT_EQ(EvaluateConditions(With({{"If-Match", "*"}}), "abc", mtime), 200);
  EXPECT_EQ(EvaluateConditions(With({{"If-Match", "\"x\""}}), "abc", mtime), 412);
  EXPECT_EQ(EvaluateConditions(With({{"If-None-Match", "\"abc\""}}), "abc", mtime), 304);
  EXPECT_EQ(EvaluateConditions(With({{"If-None-Match", "\"x\""}}), "abc", mtime), 200);
  EXPECT_EQ(EvaluateConditions(With({{"If-Modified-Since", after}}), "abc", mtime), 304);
  EXPECT_EQ(EvaluateConditions(With({{"If-Modified-Since", before}}), "abc", mtime), 200);
  EXPECT_EQ(EvaluateConditions(With({{"If-Unmodified-Since", before}}), "abc", mtime), 412);
  EXPECT_EQ(EvaluateConditions(With({{"If-Unmodified-Since", after}}), "abc", mtime), 200);
  // S3: If-Match true wins over If-Unmodified-Since false; If-None-Match false with
  // If-Modified-Since true still answers 304... as RFC 7232 orders them.
  EXPECT_EQ(EvaluateConditions(With({{"If-Match", "abc"}, {"If-Unmodified-Since", before}}), "abc", mtime), 200);
  EXPECT_EQ(EvaluateConditions(With({{"If-None-Match", "\"x\""}, {"If-Modified-Since", after}}), "abc", mtime), 200);
  EXPECT_EQ(EvaluateConditions(With({{"If-Modified-Since", "not a date"}}), "abc", mtime), 200);
}

TEST(S3RequestTest, HttpDatesInTheirThreeForms) {
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
  EXPECT_EQ(ParseHttpDate("Sun Nov  6 08:49:37 1994"), 784111777);
  for (const char* bad : {"", "Sun, 06 Nov 1994 08:49:37", "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 25:49:37 GMT", "yesterday"}) {
    EXPECT_FALSE(ParseHttpDate(bad)) << bad;
  }
  EXPECT_EQ(FormatHttpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(FormatIso8601(1255369830123000000), "2009-10-12T17:50:30.123Z");
  EXPECT_EQ(FormatIso8601(0), "1970-01-01T00:00:00.000Z");
}

}  // namespace
}  // namespace sluice::gateway
