// The S3 side of an HTTP request, as pure functions over its head: which bucket and key a
// path-style target names, its query parameters, a Range header against an object's size,
// the conditional headers (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since)
// against an object's ETag and mtime, and HTTP and ISO 8601 dates. Nothing here touches the
// network or the cache, so each piece is unit-tested and fuzzed on its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/s3_error.h"

namespace sluice::gateway {

// An HTTP request head as received: method, the raw request target ("/b/k%20x?list-type=2")
// and the header fields in order.
struct HttpHead {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;

  // The value of the first header named `name` (any case), or nullptr.
  const std::string* Header(std::string_view name) const;
};

// A path-style S3 request: "/" (the service), "/bucket", "/bucket/key".
struct S3Request {
  std::string bucket;  // decoded; "" for the service (ListBuckets)
  std::string key;     // decoded; "" for the bucket itself
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order

  // The value of query parameter `name` (exact case), or nullptr; "" for "?name" alone.
  const std::string* Query(std::string_view name) const;
};

// Splits a request target into bucket, key and query, decoding %XX escapes ('+' in the query
// is a space, as S3 treats it). Refuses, as InvalidArgument (400) naming what was wrong: a
// target that does not start with '/', a bad %XX escape, NUL in any part, a key with a "." or
// ".." segment or an empty one ("a//b"), and a target or key longer than S3 allows (key
// 1,024 bytes, target 8 KiB).
std::optional<S3Error> ParseS3Target(std::string_view target, S3Request* out);

// A byte range resolved against an object of `size` bytes: [first, last], inclusive.
struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;
};

// Resolves a Range header ("bytes=0-9", "bytes=100-", "bytes=-500") for an object of
// `size` bytes. nullopt with no error: serve the whole object (no header, or one S3 ignores:
// malformed syntax, another unit, several ranges). InvalidRange (416) when the range is
// syntactically fine but starts at or past the end (and for any range of an empty object).
// A last byte past the end is clipped to the end.
struct RangeOutcome {
  std::optional<ByteRange> range;
  std::optional<S3Error> error;
};
RangeOutcome ResolveRange(const std::string* header, uint64_t size);

// The conditional headers against an object's ETag (without quotes) and last-modified time
// (seconds since the epoch), in RFC 7232's order, as S3 applies them: 200 (serve), 304 (Not
// Modified) or 412 (PreconditionFailed). A date that does not parse is ignored.
int EvaluateConditions(const HttpHead& head, std::string_view etag, int64_t mtime_s);

// Parses an HTTP date (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 and asctime
// forms) into seconds since the epoch.
std::optional<int64_t> ParseHttpDate(std::string_view text);
// "Sun, 06 Nov 1994 08:49:37 GMT".
std::string FormatHttpDate(int64_t epoch_s);
// "2009-10-12T17:50:30.000Z", as S3's XML gives LastModified.
std::string FormatIso8601(int64_t epoch_ns);

}  // namespace sluice::gateway
