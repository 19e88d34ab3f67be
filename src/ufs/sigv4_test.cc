// SigV4 against published vectors: the AWS S3 documentation's worked examples and cases of
// the AWS SigV4 test suite (aws-sig-v4-test-suite) that need no path normalization.
#include "ufs/sigv4.h"

#include <gtest/gtest.h>

namespace sluice::ufs {
namespace {

const AwsCredentials kS3DocCreds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
const AwsCredentials kSuiteCreds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const char* const kEmptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(SigV4Test, S3GetObjectWithRange) {
  SigV4Request req{"GET", "/test.txt", {}, {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"},
                                            {"x-amz-content-sha256", kEmptyHash}, {"x-amz-date", "20130524T000000Z"}},
                   kEmptyHash};
  SigV4Signature sig = SignV4(req, kS3DocCreds, "us-east-1", "s3", "20130524T000000Z");
  EXPECT_EQ(sig.canonical_request,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sig.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(sig.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4Test, S3PutObject) {
  std::string body = "Welcome to Amazon S3.";
  std::string hash = Sha256Hex(body);
  EXPECT_EQ(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  SigV4Request req{"PUT", "/test$file.text", {},
                   {{"Host", "examplebucket.s3.amazonaws.com"}, {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                    {"x-amz-date", "20130524T000000Z"}, {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                    {"x-amz-content-sha256", hash}},
                   hash};
  SigV4Signature sig = SignV4(req, kS3DocCreds, "us-east-1", "s3", "20130524T000000Z");
  EXPECT_NE(sig.canonical_request.find("\n/test%24file.text\n"), std::string::npos);
  EXPECT_EQ(sig.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4Test, S3GetBucketLifecycle) {
  SigV4Request req{"GET", "/", {{"lifecycle", ""}},
                   {{"Host", "examplebucket.s3.amazonaws.com"}, {"x-amz-date", "20130524T000000Z"},
                    {"x-amz-content-sha256", kEmptyHash}},
                   kEmptyHash};
  SigV4Signature sig = SignV4(req, kS3DocCreds, "us-east-1", "s3", "20130524T000000Z");
  EXPECT_EQ(sig.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4Test, S3ListObjectsSortsQuery) {
  SigV4Request req{"GET", "/", {{"prefix", "J"}, {"max-keys", "2"}},
                   {{"Host", "examplebucket.s3.amazonaws.com"}, {"x-amz-date", "20130524T000000Z"},
                    {"x-amz-content-sha256", kEmptyHash}},
                   kEmptyHash};
  SigV4Signature sig = SignV4(req, kS3DocCreds, "us-east-1", "s3", "20130524T000000Z");
  EXPECT_NE(sig.canonical_request.find("\nmax-keys=2&prefix=J\n"), std::string::npos);
  EXPECT_EQ(sig.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4Test, SuiteGetVanilla) {
  SigV4Request req{"GET", "/", {}, {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
                   kEmptyHash};
  SigV4Signature sig = SignV4(req, kSuiteCreds, "us-east-1", "service", "20150830T123600Z");
  EXPECT_EQ(sig.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(sig.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4Test, SuiteQueryOrderKeyCase) {
  SigV4Request req{"GET", "/", {{"Param2", "value2"}, {"Param1", "value1"}},
                   {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, kEmptyHash};
  SigV4Signature sig = SignV4(req, kSuiteCreds, "us-east-1", "service", "20150830T123600Z");
  EXPECT_EQ(sig.signature, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

TEST(SigV4Test, SuitePostVanilla) {
  SigV4Request req{"POST", "/", {}, {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
                   kEmptyHash};
  SigV4Signature sig = SignV4(req, kSuiteCreds, "us-east-1", "service", "20150830T123600Z");
  EXPECT_EQ(sig.signature, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST(SigV4Test, HeaderValuesAreTrimmedAndCollapsed) {
  SigV4Request a{"GET", "/", {}, {{"Host", "h"}, {"My-Header", "  a   b  "}}, kEmptyHash};
  SigV4Request b{"GET", "/", {}, {{"host", "h"}, {"my-header", "a b"}}, kEmptyHash};
  EXPECT_EQ(SignV4(a, kSuiteCreds, "r", "s", "20150830T123600Z").signature,
            SignV4(b, kSuiteCreds, "r", "s", "20150830T123600Z").signature);
}

TEST(SigV4Test, UriEncoding) {
  EXPECT_EQ(UriEncode("a b+c%d/é~_.-", true), "a%20b%2Bc%25d/%C3%A9~_.-");
  EXPECT_EQ(UriEncode("a/b", false), "a%2Fb");
  EXPECT_EQ(UriDecode("a%20b%2Bc+%zz%"), "a b+c+%zz%");
  EXPECT_EQ(UriDecode(UriEncode("ключ с пробелом/+%", true)), "ключ с пробелом/+%");
}

TEST(SigV4Test, AmzDateFormat) {
  EXPECT_EQ(AmzDate(std::chrono::system_clock::from_time_t(1369353600)), "20130524T000000Z");
}

}  // namespace
}  // namespace sluice::ufs
