// The ranged-GET loop shared by the S3 and HTTP under-stores: asks for [offset, end) with a
// Range header, streams the body to a sink, and after a retryable failure resumes where the
// bytes stopped, pinned with If-Match to the ETag first seen so two versions never mix.
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
// A non-empty `etag` pins the read to that ETag from the first request on.
Result<uint64_t> RangedRead(const RetryPolicy& retry, const RangedReadHooks& hooks, const std::string& what,
                            uint64_t offset, uint64_t length, const ByteSink& sink, std::string etag = "");

}  // namespace sluice::ufs
