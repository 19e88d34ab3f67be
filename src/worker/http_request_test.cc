// Tests for the HTTP endpoint's request-head parser: what curl, Prometheus and a browser send
// is accepted; malformed, ambiguous or non-GET requests are refused with the right code.
#include "worker/http_request.h"

#include <gtest/gtest.h>

namespace sluice::worker {
namespace {

TEST(HttpRequestTest, AcceptsGetWithCrlfOrLf) {
  auto curl = ParseHttpRequest(
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:29991\r\nUser-Agent: curl/7.88.1\r\n"
      "Accept: */*\r\n\r\n");
  ASSERT_TRUE(curl.ok()) << curl.status().ToString();
  EXPECT_EQ(curl->method, "GET");
  EXPECT_EQ(curl->target, "/metrics");
  EXPECT_EQ(curl->minor_version, 1);

  auto lf = ParseHttpRequest("GET /api/v1/report?pretty=1 HTTP/1.0\n\n");
  ASSERT_TRUE(lf.ok()) << lf.status().ToString();
  EXPECT_EQ(lf->target, "/api/v1/report?pretty=1");
  EXPECT_EQ(lf->minor_version, 0);

  // Mixed line ends, a leading empty line (RFC 9112 2.2), and bytes after the head.
  auto mixed = ParseHttpRequest("\r\nGET / HTTP/1.1\nHost: x\r\n\nleftover");
  ASSERT_TRUE(mixed.ok()) << mixed.status().ToString();
  EXPECT_EQ(mixed->target, "/");

  // Header values may be empty and hold obs-text; names any token.
  EXPECT_TRUE(ParseHttpRequest("GET /x HTTP/1.1\r\nX-Empty:\r\nX-Utf8: caf\xC3\xA9\t!\r\n\r\n").ok());
}

TEST(HttpRequestTest, OtherMethodsAreNotSupported) {
  for (const char* head : {"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HEAD / HTTP/1.1\r\n\r\n",
                           "get / HTTP/1.1\r\n\r\n", "DELETE /api/v1/jobs HTTP/1.1\n\n"}) {
    auto r = ParseHttpRequest(head);
    ASSERT_FALSE(r.ok()) << head;
    EXPECT_EQ(r.status().code(), StatusCode::kNotSupported) << head;
    EXPECT_NE(r.status().message().find("only GET"), std::string::npos) << r.status().message();
  }
}

TEST(HttpRequestTest, ALongMethodIsQuotedShortInTheError) {  // found by the fuzzer
  auto r = ParseHttpRequest(std::string(400, 'E') + " / HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.status().code(), StatusCode::kNotSupported);
  EXPECT_LT(r.status().message().size(), 150u) << r.status().message();
}

TEST(HttpRequestTest, RefusesMalformedHeads) {
  const std::string bad[] = {
      "",                                                        // nothing
      "GET /metrics HTTP/1.1\r\n",                               // no empty line yet
      "GET /metrics HTTP/1.1\r\nHost: x\r\n",                    // headers not ended
      "\r\n\r\n",                                                // no request line
      "GET /metrics\r\n\r\n",                                    // HTTP/0.9 form
      "GET  /metrics HTTP/1.1\r\n\r\n",                          // two spaces
      "GET /metrics HTTP/1.1 \r\n\r\n",                          // trailing space
      "GET /a b HTTP/1.1\r\n\r\n",                               // space in the target
      "GET metrics HTTP/1.1\r\n\r\n",                            // not origin form
      "GET http://host/metrics HTTP/1.1\r\n\r\n",                // absolute form
      "GET * HTTP/1.1\r\n\r\n",                                  // asterisk form
      "GET /metrics HTTP/2.0\r\n\r\n",                           // not HTTP/1.x
      "GET /metrics HTTP/1.10\r\n\r\n",                          // not HTTP/1.x
      "GET /metrics http/1.1\r\n\r\n",                           // version is case-sensitive
      "G(T /metrics HTTP/1.1\r\n\r\n",                           // not a token
      "GET /met\rrics HTTP/1.1\r\n\r\n",                         // bare CR in the target
      std::string("GET /met") + '\0' + "rics HTTP/1.1\r\n\r\n",  // NUL in the target
      "GET /metrics HTTP/1.1\r\nHost x\r\n\r\n",                 // no colon
      "GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n",               // space before the colon (smuggling)
      "GET /metrics HTTP/1.1\r\n: x\r\n\r\n",                    // empty name
      "GET /metrics HTTP/1.1\r\nA: b\r\n c\r\n\r\n",             // obsolete line folding
      "GET /metrics HTTP/1.1\r\nA: b\rc\r\n\r\n",                // bare CR in a value
      "GET /metrics HTTP/1.1\r\nHost: x\r\r\n\r\n",              // CR CR LF
  };
  for (const std::string& head : bad) {
    auto r = ParseHttpRequest(head);
    EXPECT_FALSE(r.ok()) << testing::PrintToString(head);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << testing::PrintToString(head);
    }
  }
}

TEST(HttpRequestTest, BoundsTheHead) {
  std::string many = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i <= kMaxHttpHeaderLines; ++i) many += "X-A: b\r\n";
  auto r = ParseHttpRequest(many + "\r\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("headers"), std::string::npos) << r.status().message();

  std::string huge = "GET / HTTP/1.1\r\nX-Big: " + std::string(kMaxHttpRequestHead, 'a') + "\r\n\r\n";
  r = ParseHttpRequest(huge);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("over"), std::string::npos) << r.status().message();

  // A complete head within the bound parses even when more bytes follow it.
  std::string head_then_body = "GET /ok HTTP/1.1\r\n\r\n" + std::string(2 * kMaxHttpRequestHead, 'z');
  EXPECT_TRUE(ParseHttpRequest(head_then_body).ok());
}

TEST(HttpRequestTest, ErrorsQuoteAShortPrefixWithoutControlBytes) {
  auto r = ParseHttpRequest("GET /" + std::string(200, 'x') + "\x01 HTTP/1.1\r\n\r\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("GET /xxx"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("...'"), std::string::npos) << r.status().message();
  EXPECT_LT(r.status().message().size(), 200u) << r.status().message();
}

}  // namespace
}  // namespace sluice::worker
