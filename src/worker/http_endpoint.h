// HttpEndpoint: the worker's small HTTP/1.1 server (GET only, one request per connection)
// for /metrics and the /api/v1 JSON pages, on Boost.Asio coroutines. The page function runs
// on the endpoint's thread and must be quick. A request must arrive and its answer be taken
// within the I/O timeout; connections beyond the limit get a 503. Thread-safe; the
// destructor stops it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"

namespace sluice::worker {

struct HttpEndpointOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: the kernel picks one
  std::chrono::milliseconds io_timeout{30000};
  size_t max_connections = 256;
};

class HttpEndpoint {
 public:
  // Returns the body for a GET of `target`, setting *content_type; kNotFound becomes 404.
  using PageFn = std::function<Result<std::string>(const std::string& target, std::string* content_type)>;

  static Result<std::unique_ptr<HttpEndpoint>> Start(HttpEndpointOptions options, PageFn page);
  virtual ~HttpEndpoint() = default;
  virtual int port() const = 0;
};

}  // namespace sluice::worker
