// http(s):// under-store: a read-only dataset on a plain web server. HEAD gives size, mtime
// and ETag; reads are ranged GETs; a directory is listed from its index page (the links an
// autoindex or `python3 -m http.server` page holds), as rclone's http backend does.
#include <algorithm>
#include <cstdlib>

#include "ufs/http_client.h"
#include "ufs/index_page.h"
#include "ufs/ranged_read.h"
#include "ufs/retry.h"
#include "ufs/sigv4.h"
#include "ufs/stores.h"

namespace sluice::ufs {
namespace {

constexpr size_t kMaxIndexPage = 64 << 20;

class HttpStore final : public VersionPinnedStore {
 public:
  HttpStore(std::string base_url, const UnderStoreOptions& options, HttpClientOptions http_options)
      : base_(std::move(base_url)),
        retry_{options.max_attempts, options.retry_base_delay, options.retry_max_delay},
        http_(std::move(http_options)) {}

  std::string Uri() const override { return base_; }

  Result<ObjectInfo> Stat(std::string_view path) override {
    SLUICE_ASSIGN_OR_RETURN(std::string key, NormalizeKey(path));
    ObjectInfo info;
    info.path = key;
    if (key.empty()) {
      info.is_dir = true;
      return info;
    }
    SLUICE_ASSIGN_OR_RETURN(HttpResponse r, Request("HEAD", Url(key)));
    if (r.status == 200) {
      info = InfoFromResponse(r);
      info.path = key;
      return info;
    }
    if (r.status == 301 || r.status == 302 || r.status == 404) return StatNotAnObject(key);
    return ErrorFor(r, "HEAD", Url(key));
  }

  Result<ListPage> List(std::string_view dir, const ListOptions& options) override {
    SLUICE_ASSIGN_OR_RETURN(std::string key, NormalizeKey(dir));
    std::vector<ObjectInfo> all;
    SLUICE_RETURN_IF_ERROR(Walk(key, options.recursive, &all));
    return PageOf(std::move(all), options);
  }

  Status Write(std::string_view, std::string_view) override { return ReadOnly(); }
  Status Delete(std::string_view) override { return ReadOnly(); }
  Status Mkdir(std::string_view) override { return ReadOnly(); }

 private:
  Result<uint64_t> ReadPinned(std::string_view path, uint64_t offset, uint64_t length, const std::string& version,
                              const ByteSink& sink, ObjectInfo* seen) override {
    SLUICE_ASSIGN_OR_RETURN(std::string key, NormalizeKey(path));
    const std::string url = Url(key);
    RangedReadHooks hooks;
    hooks.send = [&](const HeaderList& extra, HttpResponse* response, const ByteSink* body_sink) {
      HttpRequest req;
      req.url = url;
      req.headers = extra;
      return http_.Send(req, response, body_sink);
    };
    hooks.error = [&](const HttpResponse& response) {
      // A directory's URL without its slash: servers redirect (python's http.server: 301).
      if (response.status == 301 || response.status == 302) return NotFound(url + ": not a file");
      return ErrorFor(response, "GET", url);
    };
    return RangedRead(retry_, hooks, url, offset, length, sink, version, seen);
  }

  Result<ObjectInfo> StatNotAnObject(const std::string& key) override {
    SLUICE_ASSIGN_OR_RETURN(HttpResponse d, Request("HEAD", Url(key) + "/"));
    if (d.status != 200) return NotFound(Url(key) + ": no such file or directory");
    ObjectInfo info;
    info.path = key;
    info.is_dir = true;
    return info;
  }

  Status ReadOnly() const { return NotSupported(base_ + " is an HTTP store, which is read-only"); }

  std::string Url(const std::string& key) const { return key.empty() ? base_ + "/" : base_ + "/" + UriEncode(key, true); }

  Result<HttpResponse> Request(const std::string& method, const std::string& url) {
    HttpResponse out;
    Status st = RunWithRetries(retry_, [&]() -> Status {
      HttpRequest req;
      req.method = method;
      req.url = url;
      SLUICE_RETURN_IF_ERROR(http_.Send(req, &out));
      if (out.status >= 500) return ErrorFor(out, method, url);
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return out;
  }

  Status ErrorFor(const HttpResponse& r, const std::string& method, const std::string& url) const {
    std::string detail = method + " " + url + ": HTTP " + std::to_string(r.status);
    if (r.status == 404 || r.status == 410) return NotFound(url + ": no such file (" + detail + ")");
    if (r.status == 401 || r.status == 403) return Status(StatusCode::kPermissionDenied, "access denied: " + detail);
    if (r.status >= 500) return Status(StatusCode::kUnavailable, "server error: " + detail, /*retryable=*/true);
    return InvalidArgument("unexpected response: " + detail);
  }

  Status Walk(const std::string& key, bool recursive, std::vector<ObjectInfo>* out) {
    const std::string url = Url(key) + (key.empty() ? "" : "/");
    SLUICE_ASSIGN_OR_RETURN(HttpResponse r, Request("GET", url));
    if (r.status != 200) {
      if (r.status == 404) return NotFound(url + ": no such directory");
      return ErrorFor(r, "GET", url);
    }
    if (r.body.size() > kMaxIndexPage) return InvalidArgument(url + ": index page too large to list");
    for (const std::string& link : IndexLinks(r.body)) {
      bool is_dir = link.back() == '/';
      std::string name = is_dir ? link.substr(0, link.size() - 1) : link;
      std::string child = key.empty() ? name : key + "/" + name;
      if (is_dir) {
        if (recursive) {
          SLUICE_RETURN_IF_ERROR(Walk(child, true, out));
        } else {
          ObjectInfo info;
          info.path = child;
          info.is_dir = true;
          out->push_back(std::move(info));
        }
        continue;
      }
      auto info = Stat(child);
      if (!info.ok()) {
        if (info.status().code() == StatusCode::kNotFound) continue;  // a dead link in the index
        return info.status();
      }
      out->push_back(std::move(info).value());
    }
    return Status::Ok();
  }

  const std::string base_;  // without a trailing '/'
  const RetryPolicy retry_;
  HttpClient http_;
};

}  // namespace

Result<std::unique_ptr<UnderStore>> NewHttpStore(std::string_view base_url, const UnderStoreOptions& options) {
  for (const auto& [k, v] : options.options) {
    if (k != "ca_bundle") return InvalidArgument("unknown HTTP store option '" + k + "' (known: ca_bundle)");
  }
  std::string base(base_url);
  while (!base.empty() && base.back() == '/') base.pop_back();
  HttpClientOptions http;
  http.connect_timeout = options.connect_timeout;
  http.stall_timeout = options.request_timeout;
  const char* env_ca = std::getenv("AWS_CA_BUNDLE");
  http.ca_bundle = options.Get("ca_bundle", env_ca ? env_ca : "");
  return std::unique_ptr<UnderStore>(std::make_unique<HttpStore>(std::move(base), options, std::move(http)));
}

}  // namespace sluice::ufs
