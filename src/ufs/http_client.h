// A blocking HTTP/1.1 client, shared by the S3 and HTTP under-stores: GETs of plain http://
// URLs on its own keep-alive sockets (plain_http.h), everything else on libcurl with a pool
// of handles, so connections are reused across requests and threads. It streams response
// bodies to a sink and turns transport failures into retryable Statuses that name the URL.
// It never retries by itself (see retry.h). Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "ufs/under_store.h"

namespace sluice::ufs {

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
  std::string url;             // absolute and already percent-encoded
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;       // sent with Content-Length; must outlive the call
};

struct HttpResponse {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names in lowercase
  std::string body;  // the body when no sink took it (error bodies are capped at 1 MiB)

  // The value of header `name` (lowercase), or "".
  std::string Header(std::string_view name) const;
};

struct HttpClientOptions {
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(5);
  std::chrono::nanoseconds stall_timeout = std::chrono::seconds(60);  // no bytes moving for this long
  std::string ca_bundle;  // extra CA file (AWS_CA_BUNDLE); "" for the system trust store
};

// Parses an HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT") to ns since the epoch; 0 if malformed.
int64_t ParseHttpDate(std::string_view text);

// Parses an ISO 8601 UTC time ("2009-10-12T17:50:30.000Z") to ns since the epoch; 0 if malformed.
int64_t ParseIso8601(std::string_view text);

// Strips the double quotes around an ETag value.
std::string UnquoteEtag(std::string_view etag);

// The URL without its query string, for messages: the query is long and says nothing useful.
std::string UrlForMessage(const std::string& url);

// An error body that comes while a sink waits for the data is kept up to this size.
inline constexpr size_t kMaxErrorBody = 1 << 20;

// Where the body of a GET sent on this thread may land, for a caller that would copy it into
// a buffer of its own anyway (the cache's page buffers): `next(body_left)` returns the free
// space at that buffer's end ({nullptr, 0}: none); body_left is how many bytes of the body
// are still to come, so a caller may size its buffer on the first call. The plain-http path receives into it and hands the
// sink a view of those bytes where they lie; the sink sees an ordinary chunk, and
// PageBuffer::Append notices it is already in place. Installed on this thread for the
// object's lifetime; the space it names is only ever written past the buffer's data.
class ReceiveTarget {
 public:
  using Next = std::function<std::pair<char*, size_t>(uint64_t body_left)>;
  explicit ReceiveTarget(Next next);
  ~ReceiveTarget();
  ReceiveTarget(const ReceiveTarget&) = delete;
  ReceiveTarget& operator=(const ReceiveTarget&) = delete;
  // The innermost target installed on this thread, or nullptr.
  static const Next* Current();

 private:
  const Next next_;
  const Next* const previous_;
};

class PlainHttp;

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request, filling `response` (its status and headers are set before the sink
  // sees the first byte). With `sink`, the body of a 2xx response goes to it as it arrives;
  // any other body is collected in response->body. A transport failure (refused, reset,
  // timeout) is kUnavailable or kTimeout, retryable; a sink error is returned as is.
  Status Send(const HttpRequest& request, HttpResponse* response, const ByteSink* sink = nullptr);

 private:
  struct Handle;
  std::unique_ptr<Handle> Acquire();
  void Release(std::unique_ptr<Handle> handle);

  const HttpClientOptions options_;
  const std::unique_ptr<PlainHttp> plain_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Handle>> idle_;  // GUARDED_BY(mu_)
};

}  // namespace sluice::ufs
