// SigV4Verifier: checks that an S3 request is signed with AWS Signature Version 4 by a key
// the gateway knows, in either form clients use: the Authorization header
// ("AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=...,
// Signature=...") with x-amz-date and x-amz-content-sha256, or a presigned URL (X-Amz-Algorithm,
// X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature in the
// query). The canonical request is rebuilt with ufs::SignV4 from what was received, so signing
// and verifying share one canonicalization. Thread-safe (const after construction).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "gateway/s3_error.h"
#include "gateway/s3_request.h"

namespace sluice::gateway {

struct GatewayCredential {
  std::string access_key;
  std::string secret_key;
  std::vector<std::string> buckets;  // the buckets this key may read; empty: all
};

// Who sent a request that verified.
struct Caller {
  std::string access_key;  // "" when anonymous
  const GatewayCredential* credential = nullptr;  // nullptr when anonymous; owned by the verifier
  // Whether this caller may read `bucket`.
  bool MayRead(const std::string& bucket) const;
};

struct SigV4VerifierOptions {
  std::vector<GatewayCredential> credentials;
  bool allow_anonymous = false;  // an unsigned request is let in (read-only) instead of refused
  std::chrono::seconds max_clock_skew{15 * 60};
};

class SigV4Verifier {
 public:
  explicit SigV4Verifier(SigV4VerifierOptions options);

  // Verifies `head` (its body, for the GET/HEAD the gateway serves, is empty) at time `now`.
  // Errors, with S3's codes and statuses: AccessDenied (403: unsigned and anonymous access off,
  // a presigned URL past its expiry), InvalidAccessKeyId (403), SignatureDoesNotMatch (403),
  // RequestTimeTooSkewed (403), AuthorizationHeaderMalformed / AuthorizationQueryParametersError
  // (400: a form that does not parse, another algorithm, a scope not ending in
  // "/s3/aws4_request", a signed-headers list without host), XAmzContentSHA256Mismatch (400:
  // a payload hash that is neither UNSIGNED-PAYLOAD nor the empty body's).
  std::optional<S3Error> Verify(const HttpHead& head, std::chrono::system_clock::time_point now,
                                Caller* caller) const;

 private:
  const SigV4VerifierOptions options_;
};

}  // namespace sluice::gateway
