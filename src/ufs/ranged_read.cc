// Resumable ranged reads over HTTP, pinned to one version by the responses' validators.
#include "ufs/ranged_read.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>

namespace sluice::ufs {
namespace {

// The object's total size as a 200 or 206 response states it; nullopt when it does not.
std::optional<uint64_t> TotalOf(const HttpResponse& r) {
  if (r.status == 206) {
    const std::string value = r.Header("content-range");  // "bytes 0-9/1234"
    size_t slash = value.rfind('/');
    if (slash == std::string::npos || value.compare(slash + 1, 1, "*") == 0) return std::nullopt;
    return std::strtoull(value.c_str() + slash + 1, nullptr, 10);
  }
  const std::string length = r.Header("content-length");
  if (r.status != 200 || length.empty()) return std::nullopt;
  return std::strtoull(length.c_str(), nullptr, 10);
}

// What a version string pins: an ETag, or (stores without ETags) an mtime and a size.
struct Pin {
  std::string etag;
  bool by_mtime = false;
  int64_t mtime_ns = 0;
  uint64_t size = 0;

  static Pin Of(const std::string& version) {
    Pin p;
    long long mtime = 0;
    unsigned long long size = 0;
    if (version.rfind("etag:", 0) == 0) {
      p.etag = version.substr(5);
    } else if (std::sscanf(version.c_str(), "mtime:%lld:size:%llu", &mtime, &size) == 2) {
      p.by_mtime = true;
      p.mtime_ns = mtime;
      p.size = size;
    }
    return p;
  }
  // The same pin for what a response showed, for the rest of an unpinned read.
  static Pin Seen(const ObjectInfo& info) {
    Pin p;
    p.etag = info.etag;
    p.by_mtime = info.etag.empty();
    p.mtime_ns = info.mtime_ns;
    p.size = info.size;
    return p;
  }
  bool empty() const { return etag.empty() && !by_mtime; }

  // Request headers that make a server answer 412 rather than another version.
  void AddConditions(HeaderList* headers) const {
    if (!etag.empty()) {
      headers->emplace_back("If-Match", "\"" + etag + "\"");
    } else if (by_mtime && mtime_ns > 0) {
      time_t secs = static_cast<time_t>(mtime_ns / 1000000000);
      tm t{};
      gmtime_r(&secs, &t);
      char date[64];
      std::strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &t);
      headers->emplace_back("If-Unmodified-Since", date);
    }
  }

  // kStale when the response carries another version than the pinned one (a server may
  // ignore the conditions above: python's http.server does).
  Status Check(const HttpResponse& r, const std::string& what) const {
    ObjectInfo got = InfoFromResponse(r);
    std::string seen;
    if (!etag.empty() && !got.etag.empty() && got.etag != etag) {
      seen = "ETag " + got.etag + ", expected " + etag;
    } else if (by_mtime) {
      auto total = TotalOf(r);
      if (got.mtime_ns != 0 && mtime_ns != 0 && got.mtime_ns != mtime_ns) {
        seen = "modified at " + std::to_string(got.mtime_ns / 1000000000) + ", expected " +
               std::to_string(mtime_ns / 1000000000) + " (s since the epoch)";
      } else if (total && *total != size) {
        seen = std::to_string(*total) + " bytes, expected " + std::to_string(size);
      }
    }
    if (seen.empty()) return Status::Ok();
    return Status(StatusCode::kStale, what + " changed in the under-store (" + seen + ")");
  }
};

}  // namespace

ObjectInfo InfoFromResponse(const HttpResponse& response) {
  ObjectInfo info;
  info.size = TotalOf(response).value_or(0);
  info.etag = UnquoteEtag(response.Header("etag"));
  if (info.etag.rfind("W/", 0) == 0) info.etag.clear();  // weak ETags do not identify bytes
  info.mtime_ns = ParseHttpDate(response.Header("last-modified"));
  return info;
}

Result<uint64_t> RangedRead(const RetryPolicy& retry, const RangedReadHooks& hooks, const std::string& what,
                            uint64_t offset, uint64_t length, const ByteSink& sink, std::string version,
                            ObjectInfo* seen) {
  if (length == 0) return uint64_t{0};
  const uint64_t end = offset + length;  // exclusive; the server clips it at the object's end
  uint64_t pos = offset;
  Pin pin = Pin::Of(version);
  bool seen_set = false;
  Status st = RunWithRetries(retry, [&]() -> Status {
    HeaderList headers{{"Range", "bytes=" + std::to_string(pos) + "-" + std::to_string(end - 1)}};
    pin.AddConditions(&headers);
    HttpResponse response;
    bool validated = false;
    uint64_t skip = 0;  // bytes to drop when the server ignored the Range header (200)
    // Before the first byte of a response goes anywhere: is it the version being read?
    auto validate = [&]() -> Status {
      if (validated) return Status::Ok();
      validated = true;
      if (response.status != 200 && response.status != 206) return Status::Ok();
      if (response.status == 200) skip = pos;
      if (!pin.empty()) return pin.Check(response, what);
      ObjectInfo info = InfoFromResponse(response);
      pin = Pin::Seen(info);
      if (seen && !seen_set) {
        seen_set = true;
        seen->size = info.size;
        seen->etag = info.etag;
        seen->mtime_ns = info.mtime_ns;
      }
      return Status::Ok();
    };
    ByteSink forward = [&](std::string_view chunk) -> Status {
      SLUICE_RETURN_IF_ERROR(validate());
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
      return Status(StatusCode::kStale, what + " changed in the under-store (its " +
                                            (pin.etag.empty() ? "modification time" : "ETag " + pin.etag) +
                                            " no longer matches)");
    }
    if (response.status != 200 && response.status != 206) return hooks.error(response);
    SLUICE_RETURN_IF_ERROR(validate());  // an empty body reaches no sink
    auto total = TotalOf(response);
    if (total && pos < std::min(end, *total)) {
      return Status(StatusCode::kUnavailable, "GET " + what + ": the response body ended early", /*retryable=*/true);
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return pos - offset;
}

}  // namespace sluice::ufs
