// S3Error: an error as S3 answers it — the HTTP status, S3's error code (NoSuchKey,
// SignatureDoesNotMatch, ...) and a message for people. The gateway's parsers and checks
// return it, and the server turns it into S3's XML error body.
#pragma once

#include <string>

namespace sluice::gateway {

struct S3Error {
  int http_status = 500;
  std::string code;     // "NoSuchKey", "InvalidRange", ...
  std::string message;  // what was wrong, for a person
};

}  // namespace sluice::gateway
