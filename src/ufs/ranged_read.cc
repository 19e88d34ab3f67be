// Resumable ranged reads over HTTP.
#include "ufs/ranged_read.h"

#include <algorithm>
#include <cstdlib>

namespace sluice::ufs {
namespace {

// "bytes 0-9/1234" -> 1234; 0 when absent or "*".
uint64_t TotalFromContentRange(const std::string& value) {
  size_t slash = value.rfind('/');
  if (slash == std::string::npos || value.compare(slash + 1, 1, "*") == 0) return 0;
  return std::strtoull(value.c_str() + slash + 1, nullptr, 10);
}

}  // namespace

Result<uint64_t> RangedRead(const RetryPolicy& retry, const RangedReadHooks& hooks, const std::string& what,
                            uint64_t offset, uint64_t length, const ByteSink& sink, std::string etag) {
  if (length == 0) return uint64_t{0};
  const uint64_t end = offset + length;  // exclusive; the server clips it at the object's end
  uint64_t pos = offset;
  Status st = RunWithRetries(retry, [&]() -> Status {
    HeaderList headers{{"Range", "bytes=" + std::to_string(pos) + "-" + std::to_string(end - 1)}};
    if (!etag.empty()) headers.emplace_back("If-Match", "\"" + etag + "\"");
    HttpResponse response;
    bool first_chunk = true;
    uint64_t skip = 0;  // bytes to drop when the server ignored the Range header (200)
    ByteSink forward = [&](std::string_view chunk) -> Status {
      if (first_chunk) {
        first_chunk = false;
        if (response.status == 200) skip = pos;
      }
      size_t drop = static_cast<size_t>(std::min<uint64_t>(skip, chunk.size()));
      chunk.remove_prefix(drop);
      skip -= drop;
      if (chunk.size() > end - pos) chunk = chunk.substr(0, static_cast<size_t>(end - pos));
      if (chunk.empty()) return Status::Ok();
      SLUICE_RETURN_IF_ERROR(sink(chunk));
      pos += chunk.size();
      return Status::Ok();
    };
    SLUICE_RETURN_IF_ERROR(hooks.send(headers, &response, &forward));
    if (response.status == 416) return Status::Ok();  // offset at or past the end
    if (response.status == 412) {
      return Status(StatusCode::kStale, what + " changed in the under-store (ETag " + etag + " no longer matches)");
    }
    if (response.status != 200 && response.status != 206) return hooks.error(response);
    if (etag.empty()) etag = UnquoteEtag(response.Header("etag"));
    uint64_t total = response.status == 206 ? TotalFromContentRange(response.Header("content-range"))
                                            : std::strtoull(response.Header("content-length").c_str(), nullptr, 10);
    if (pos < std::min(end, total)) {
      return Status(StatusCode::kUnavailable, "GET " + what + ": the response body ended early", /*retryable=*/true);
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return pos - offset;
}

}  // namespace sluice::ufs
