// SigV4 verification: AWS's documented examples, requests signed the way clients sign them,
// and each way a signature can be wrong.
#include "gateway/sigv4_verify.h"

#include <gtest/gtest.h>

#include "ufs/sigv4.h"

namespace sluice::gateway {
namespace {

using std::chrono::system_clock;
constexpr const char* kExampleKey = "AKIAIOSFODNN7EXAMPLE";
constexpr const char* kExampleSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

system_clock::time_point At(int64_t epoch_s) { return system_clock::time_point(std::chrono::seconds(epoch_s)); }
constexpr int64_t k20130524 = 1369353600;  // 2013-05-24T00:00:00Z

SigV4Verifier Verifier(bool anonymous = false) {
  SigV4VerifierOptions o;
  o.credentials = {{kExampleKey, kExampleSecret, {}}, {"LIMITED", "limited-secret", {"allowed"}}};
  o.allow_anonymous = anonymous;
  return SigV4Verifier(o);
}

// The "GET Object" example of AWS's SigV4 documentation (header form).
HttpHead AwsExampleGet() {
  HttpHead h;
  h.method = "GET";
  h.target = "/test.txt";
  h.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Range", "bytes=0-9"},
               {"x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
               {"x-amz-date", "20130524T000000Z"},
               {"Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"}};
  return h;
}

std::string Code(const std::optional<S3Error>& e) { return e ? e->code : "ok"; }

TEST(SigV4VerifyTest, AwsDocumentedExamplesVerify) {
  Caller caller;
  EXPECT_EQ(Code(Verifier().Verify(AwsExampleGet(), At(k20130524 + 60), &caller)), "ok");
  EXPECT_EQ(caller.access_key, kExampleKey);
  // The presigned-URL example (X-Amz-Expires=86400).
  HttpHead p;
  p.method = "GET";
  p.target =
      "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2F"
      "aws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature="
      "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
  p.headers = {{"Host", "examplebucket.s3.amazonaws.com"}};
  EXPECT_EQ(Code(Verifier().Verify(p, At(k20130524 + 3600), &caller)), "ok");
  // Expired a day after signing, whatever the clock skew allows.
  EXPECT_EQ(Code(Verifier().Verify(p, At(k20130524 + 86401), &caller)), "AccessDenied");
  p.target.back() = '5';
  EXPECT_EQ(Code(Verifier().Verify(p, At(k20130524 + 3600), &caller)), "SignatureDoesNotMatch");
}

TEST(SigV4VerifyTest, WrongSecretsKeysClocksAndHeadersAreRefused) {
  Caller caller;
  HttpHead h = AwsExampleGet();
  h.headers[1].second = "bytes=0-10";  // a signed header changed on the way
  EXPECT_EQ(Code(Verifier().Verify(h, At(k20130524), &caller)), "SignatureDoesNotMatch");
  EXPECT_EQ(Code(Verifier().Verify(AwsExampleGet(), At(k20130524 + 16 * 60), &caller)), "RequestTimeTooSkewed");
  EXPECT_EQ(Code(Verifier().Verify(AwsExampleGet(), At(k20130524 - 16 * 60), &caller)), "RequestTimeTooSkewed");
  h = AwsExampleGet();
  h.headers[4].second.replace(h.headers[4].second.find("AKIAIOSFODNN7EXAMPLE"), 20, "AKIAUNKNOWNKEY000000");
  EXPECT_EQ(Code(Verifier().Verify(h, At(k20130524), &caller)), "InvalidAccessKeyId");
  h = AwsExampleGet();
  h.headers.erase(h.headers.begin() + 1);  // the signed Range header is gone
  EXPECT_EQ(Code(Verifier().Verify(h, At(k20130524), &caller)), "SignatureDoesNotMatch");
  h = AwsExampleGet();
  h.headers[2].second = std::string(64, 'a');  // a body hash for a body a GET does not have
  EXPECT_EQ(Code(Verifier().Verify(h, At(k20130524), &caller)), "XAmzContentSHA256Mismatch");
  for (const char* auth : {"AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 Credential=x", "Bearer token",
                           "AWS4-HMAC-SHA256 Credential=AK/2013/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=0",
                           "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/ec2/aws4_request,SignedHeaders=host,"
                           "Signature=00"}) {
    h = AwsExampleGet();
    h.headers[4].second = auth;
    auto e = Verifier().Verify(h, At(k20130524), &caller);
    ASSERT_TRUE(e) << auth;
    EXPECT_EQ(e->http_status, 400) << auth << ": " << e->code;
  }
  h = AwsExampleGet();
  h.headers[4].second = "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=";
  EXPECT_NE(Verifier().Verify(h, At(k20130524), &caller)->message.find("version 2"), std::string::npos);
}

// Signs a request as a client does: the key URI-encoded on the wire, SignV4 over the decoded path.
HttpHead ClientRequest(const std::string& bucket, const std::string& key, const std::string& access,
                       const std::string& secret, system_clock::time_point now) {
  const std::string date = ufs::AmzDate(now);
  HttpHead h;
  h.method = "GET";
  h.target = "/" + bucket + "/" + ufs::UriEncode(key, true) + "?prefix=" + ufs::UriEncode("a b+c", false);
  h.headers = {{"host", "127.0.0.1:9000"}, {"x-amz-date", date}, {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"}};
  ufs::SigV4Request req{"GET", "/" + bucket + "/" + key, {{"prefix", "a b+c"}}, h.headers, "UNSIGNED-PAYLOAD", false};
  h.headers.emplace_back("Authorization", ufs::SignV4(req, {access, secret, ""}, "eu-west-1", "s3", date).authorization);
  return h;
}

TEST(SigV4VerifyTest, AwkwardKeysRoundTripAndBucketsLimitKeys) {
  const auto now = system_clock::now();
  Caller caller;
  for (const std::string key : {"plain.txt", "with space.txt", "plus+equals=amp&.txt", "tilde~(paren)",
                                "\xc3\xbcn\xc3\xaf" "c\xc3\xb8" "d\xc3\xa9/\xe6\x96\x87" ".txt", "dir/sub/"}) {
    EXPECT_EQ(Code(Verifier().Verify(ClientRequest("bucket", key, kExampleKey, kExampleSecret, now), now, &caller)),
              "ok")
        << key;
  }
  // A client that leaves '(' and ')' unencoded on the wire and signs what it sent.
  HttpHead h = ClientRequest("bucket", "tilde~(paren)", kExampleKey, kExampleSecret, now);
  const std::string date = ufs::AmzDate(now);
  h.target = "/bucket/a(b)";
  ufs::SigV4Request raw{"GET", "/bucket/a(b)", {}, {h.headers[0], h.headers[1], h.headers[2]}, "UNSIGNED-PAYLOAD", true};
  h.headers[3].second = ufs::SignV4(raw, {kExampleKey, kExampleSecret, ""}, "us-east-1", "s3", date).authorization;
  EXPECT_EQ(Code(Verifier().Verify(h, now, &caller)), "ok");

  const SigV4Verifier verifier = Verifier();  // the caller points into it
  EXPECT_EQ(Code(verifier.Verify(ClientRequest("allowed", "k", "LIMITED", "limited-secret", now), now, &caller)), "ok");
  EXPECT_TRUE(caller.MayRead("allowed"));
  EXPECT_FALSE(caller.MayRead("other"));
  EXPECT_EQ(Code(Verifier().Verify(ClientRequest("b", "k", "LIMITED", "wrong", now), now, &caller)),
            "SignatureDoesNotMatch");
}

TEST(SigV4VerifyTest, WithoutAContentHashTheEmptyBodyIsSigned) {
  // As curl --aws-sigv4 signs: no x-amz-content-sha256 header.
  const auto now = system_clock::now();
  const std::string date = ufs::AmzDate(now);
  HttpHead h;
  h.method = "GET";
  h.target = "/b/k";
  h.headers = {{"Host", "127.0.0.1:9000"}, {"X-Amz-Date", date}};
  ufs::SigV4Request req{"GET", "/b/k", {}, h.headers,
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false};
  h.headers.emplace_back("Authorization",
                         ufs::SignV4(req, {kExampleKey, kExampleSecret, ""}, "us-east-1", "s3", date).authorization);
  Caller caller;
  EXPECT_EQ(Code(Verifier().Verify(h, now, &caller)), "ok");
}

TEST(SigV4VerifyTest, UnsignedRequestsOnlyWhenAnonymousAccessIsOn) {
  HttpHead h;
  h.method = "GET";
  h.target = "/b/k";
  Caller caller;
  EXPECT_EQ(Code(Verifier(false).Verify(h, system_clock::now(), &caller)), "AccessDenied");
  EXPECT_EQ(Code(Verifier(true).Verify(h, system_clock::now(), &caller)), "ok");
  EXPECT_TRUE(caller.access_key.empty());
  EXPECT_TRUE(caller.MayRead("anything"));
}

}  // namespace
}  // namespace sluice::gateway
