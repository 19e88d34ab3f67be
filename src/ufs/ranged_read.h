// The ranged-GET loop shared by the S3 and HTTP under-stores: asks for [offset, end) with a
// Range header, streams the body to a sink, and after a retryable failure resumes where the
// bytes stopped, pinned to the version first seen so two versions never mix. A version is
// pinned with the response's own validators, never a separate HEAD: If-Match on the ETag, or
// for a server without ETags If-Unmodified-Since on the mtime, and in both cases the response's
// ETag, Last-Modified and total size are checked before its first byte goes to the sink.
// Stateless; thread-safe as long as the hooks are.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "ufs/http_client.h"
#include "ufs/retry.h"

namespace sluice::ufs {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct RangedReadHooks {
  // Sends one GET with `extra` headers (Range, If-Match) added; a 2xx body goes to `sink`.
  std::function<Status(const HeaderList& extra, HttpResponse* response, const ByteSink* sink)> send;
  // Maps any response other than 200/206/412/416 to a Status.
  std::function<Status(const HttpResponse& response)> error;
};

// Reads up to `length` bytes from `offset`; `what` names the object in errors. Returns the
// number of bytes delivered: fewer than `length` at the end of the object, 0 past it.
// A non-empty `version` (ObjectInfo::Version()) pins the read to it from the first request
// on: another version is kStale before any of its bytes. With `seen`, its size, etag and
// mtime are set from the first response that carried the object (size 0 and nothing else
// when the object is empty or `offset` lies past its end).
Result<uint64_t> RangedRead(const RetryPolicy& retry, const RangedReadHooks& hooks, const std::string& what,
                            uint64_t offset, uint64_t length, const ByteSink& sink, std::string version = "",
                            ObjectInfo* seen = nullptr);

// What a GET or HEAD response says of its object: size (the total of a 206's Content-Range,
// else Content-Length), strong ETag and Last-Modified.
ObjectInfo InfoFromResponse(const HttpResponse& response);

}  // namespace sluice::ufs
