// AWS Signature Version 4 (SigV4) request signing, as S3 and every S3-compatible store verify
// it. Pure functions over a description of the request; thread-safe. The canonical request
// follows the S3 rules: the path is URI-encoded once (not normalized), query parameters are
// sorted by encoded name, header values trimmed and inner spaces collapsed.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::ufs {

struct AwsCredentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // optional; sent as x-amz-security-token
  bool empty() const { return access_key.empty() && secret_key.empty(); }
};

// What is signed. `path` is the raw (decoded) path, e.g. "/bucket/my key.txt"; `query` holds
// raw (decoded) name/value pairs; `headers` are the headers to sign, any case.
struct SigV4Request {
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_hash;  // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
  // `path` is already URI-encoded and goes into the canonical request as it is (a verifier
  // checking what a client signed over the path it sent).
  bool path_encoded = false;
};

struct SigV4Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  // "host;range;x-amz-date"
  std::string signature;       // hex
  std::string authorization;   // the full Authorization header value
};

// Signs `req` at `amz_date` ("20130524T000000Z") for region/service (e.g. "us-east-1", "s3").
SigV4Signature SignV4(const SigV4Request& req, const AwsCredentials& creds, std::string_view region,
                      std::string_view service, std::string_view amz_date);

// "20130524T000000Z" for the given time (UTC).
std::string AmzDate(std::chrono::system_clock::time_point t);

// Percent-encodes everything but A-Z a-z 0-9 - _ . ~ (and '/' when keep_slash).
std::string UriEncode(std::string_view s, bool keep_slash);

// Decodes %XX escapes; '+' stays '+'. Invalid escapes are kept as they are.
std::string UriDecode(std::string_view s);

// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// A hash of bytes that come in pieces (a request body as it streams in): SHA-256 (payload
// hashes) or MD5 (the ETags of uploaded parts).
class DigestStream {
 public:
  enum class Kind { kSha256, kMd5 };
  explicit DigestStream(Kind kind = Kind::kSha256);
  ~DigestStream();
  DigestStream(const DigestStream&) = delete;
  DigestStream& operator=(const DigestStream&) = delete;
  void Update(std::string_view data);
  // Lowercase hex of the hash of everything given so far; ends the stream.
  std::string Hex();

 private:
  void* ctx_;  // EVP_MD_CTX
};

}  // namespace sluice::ufs
