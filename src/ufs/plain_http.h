// PlainHttp: GETs over plain http:// on pooled keep-alive sockets, without libcurl, so a
// body can be received straight into the caller's buffer (ReceiveTarget) instead of through
// curl's buffer and a copy. HttpClient sends GETs of plain-http URLs here when no proxy is
// configured; everything else (TLS, proxies, other methods) stays on libcurl. Understands
// HTTP/1.0 and 1.1 responses delimited by Content-Length, chunked encoding or the end of the
// connection. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "ufs/http_client.h"

namespace sluice::ufs {

class PlainHttp {
 public:
  explicit PlainHttp(HttpClientOptions options) : options_(std::move(options)) {}
  ~PlainHttp();
  PlainHttp(const PlainHttp&) = delete;
  PlainHttp& operator=(const PlainHttp&) = delete;

  // Whether Get can send `request`: a bodiless GET of an http:// URL, with no proxy set in
  // the environment.
  static bool Handles(const HttpRequest& request);

  // HttpClient::Send for a request that Handles() accepts.
  Status Get(const HttpRequest& request, HttpResponse* response, const ByteSink* sink);

 private:
  // A connected socket to `host:port`: an idle one (`*reused` true) or a new one.
  Result<int> Connect(const std::string& host, const std::string& port, bool* reused);
  void Keep(const std::string& endpoint, int fd);
  Status Exchange(int fd, const std::string& request_text, const HttpRequest& request, HttpResponse* response,
                  const ByteSink* sink, bool* reusable, bool* nothing_received);

  const HttpClientOptions options_;
  std::mutex mu_;
  std::map<std::string, std::vector<int>> idle_;  // GUARDED_BY(mu_): "host:port" -> sockets
};

}  // namespace sluice::ufs
