// HttpEndpoint: the worker's small HTTP/1.1 server (GET only, one request per connection)
// for /metrics and the /api/v1 JSON pages, on Boost.Asio coroutines. The page function runs
// on the endpoint's thread and must be quick. Thread-safe; the destructor stops it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"

namespace sluice::worker {

class HttpEndpoint {
 public:
  // Returns the body for a GET of `target`, setting *content_type; kNotFound becomes 404.
  using PageFn = std::function<Result<std::string>(const std::string& target, std::string* content_type)>;

  static Result<std::unique_ptr<HttpEndpoint>> Start(const std::string& host, int port, PageFn page);
  virtual ~HttpEndpoint() = default;
  virtual int port() const = 0;
};

}  // namespace sluice::worker
