// The parse step of the worker's HTTP endpoint (http_endpoint.h): a request head as read from
// the socket -> the method and target, or why it is refused. Only what the endpoint serves is
// accepted: a GET in origin form ("/metrics?x=1") over HTTP/1.x. Lines end in CRLF or a bare LF;
// the head ends at the first empty line. Pure function; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::worker {

inline constexpr size_t kMaxHttpRequestHead = 16 << 10;  // the endpoint reads no more
inline constexpr size_t kMaxHttpHeaderLines = 100;

struct HttpRequestLine {
  std::string method;     // always "GET" when parsing succeeded
  std::string target;     // as sent: starts with '/', may hold "?query"; no spaces or control bytes
  int minor_version = 1;  // HTTP/1.<minor_version>
};

// Parses the head at the start of `raw` (bytes after its empty line are ignored). Errors:
// kInvalidArgument for a malformed or incomplete head (answer 400), kNotSupported for a
// well-formed request with another method (answer 405). Messages quote at most a short prefix
// of the offending line.
Result<HttpRequestLine> ParseHttpRequest(std::string_view raw);

}  // namespace sluice::worker
