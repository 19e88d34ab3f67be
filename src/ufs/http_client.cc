// libcurl easy handles, pooled; one transfer per Send().
#include "ufs/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "ufs/plain_http.h"

namespace sluice::ufs {
namespace {

constexpr size_t kMaxIdleHandles = 64;
constexpr long kReceiveBufferBytes = 128 << 10;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// State of one transfer, reached from curl's callbacks.
struct Transfer {
  HttpResponse* response;
  const ByteSink* sink;
  std::string_view upload;
  size_t upload_pos = 0;
  Status sink_status;
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.substr(0, 5) == "HTTP/") {
    // A new status line (after 100 Continue or a redirect) starts a new header block.
    t->response->headers.clear();
    size_t sp = line.find(' ');
    t->response->status = sp == std::string_view::npos ? 0 : std::atol(std::string(line.substr(sp + 1, 3)).c_str());
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    t->response->headers.emplace_back(std::move(name), std::string(value));
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view chunk(data, size * n);
  long st = t->response->status;
  if (t->sink && st >= 200 && st < 300) {
    t->sink_status = (*t->sink)(chunk);
    return t->sink_status.ok() ? chunk.size() : 0;  // 0 aborts the transfer
  }
  if (t->sink && t->response->body.size() + chunk.size() > kMaxErrorBody) return chunk.size();
  t->response->body.append(chunk);
  return chunk.size();
}

size_t OnUpload(char* buffer, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = std::min(size * n, t->upload.size() - t->upload_pos);
  std::copy_n(t->upload.data() + t->upload_pos, len, buffer);
  t->upload_pos += len;
  return len;
}

int OnSeek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > t->upload.size()) return CURL_SEEKFUNC_FAIL;
  t->upload_pos = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

Status TransportError(CURLcode code, const char* detail, const std::string& method, const std::string& url) {
  std::string what = method + " " + UrlForMessage(url) + ": " + (detail[0] ? detail : curl_easy_strerror(code));
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return Status(StatusCode::kTimeout, "timed out: " + what, /*retryable=*/true);
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return Status(StatusCode::kUnavailable, "cannot reach the server: " + what, /*retryable=*/true);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return Status(StatusCode::kUnavailable, "TLS verification failed (check AWS_CA_BUNDLE / ca_bundle): " + what);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return InvalidArgument("bad URL: " + what);
    default:
      return Status(StatusCode::kUnavailable, "HTTP request failed: " + what);
  }
}

}  // namespace

int64_t ParseHttpDate(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  if (!strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm)) return 0;
  return static_cast<int64_t>(timegm(&tm)) * 1000000000;
}

int64_t ParseIso8601(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return 0;
  int64_t ns = static_cast<int64_t>(timegm(&tm)) * 1000000000;
  if (*rest == '.') {
    int64_t scale = 100000000;
    for (++rest; std::isdigit(static_cast<unsigned char>(*rest)) && scale > 0; ++rest, scale /= 10) {
      ns += (*rest - '0') * scale;
    }
  }
  return ns;
}

std::string UrlForMessage(const std::string& url) { return url.substr(0, url.find('?')); }

std::string UnquoteEtag(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  return std::string(etag);
}

struct HttpClient::Handle {
  CURL* curl = nullptr;
  ~Handle() {
    if (curl) curl_easy_cleanup(curl);
  }
};

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

namespace {
thread_local const ReceiveTarget::Next* current_target = nullptr;
}  // namespace

ReceiveTarget::ReceiveTarget(Next next) : next_(std::move(next)), previous_(current_target) {
  current_target = &next_;
}
ReceiveTarget::~ReceiveTarget() { current_target = previous_; }
const ReceiveTarget::Next* ReceiveTarget::Current() { return current_target; }

HttpClient::HttpClient(HttpClientOptions options)
    : options_(std::move(options)), plain_(std::make_unique<PlainHttp>(options_)) {
  GlobalInit();
}

HttpClient::~HttpClient() = default;

std::unique_ptr<HttpClient::Handle> HttpClient::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      auto h = std::move(idle_.back());
      idle_.pop_back();
      return h;
    }
  }
  auto h = std::make_unique<Handle>();
  h->curl = curl_easy_init();
  return h;
}

void HttpClient::Release(std::unique_ptr<Handle> handle) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < kMaxIdleHandles) idle_.push_back(std::move(handle));
}

Status HttpClient::Send(const HttpRequest& request, HttpResponse* response, const ByteSink* sink) {
  if (PlainHttp::Handles(request)) return plain_->Get(request, response, sink);
  auto handle = Acquire();
  if (!handle->curl) return Internal("curl_easy_init failed");
  CURL* c = handle->curl;
  curl_easy_reset(c);  // keeps the handle's live connections

  *response = HttpResponse();
  Transfer transfer{response, sink, request.body, 0, Status::Ok()};
  char error[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  // curl receives into a 16 KiB buffer by default: a 100 KiB object took 7 recv and 12 poll
  // calls. 128 KiB takes most bodies in one go (GETs over https, here).
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, kReceiveBufferBytes);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::max<int64_t>(1, options_.connect_timeout.count() / 1000000)));
  // Abort when fewer than 1 byte/s moves for stall_timeout: a hung server, not a big object.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
                   static_cast<long>(std::max<int64_t>(1, options_.stall_timeout.count() / 1000000000)));
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
  if (!options_.ca_bundle.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_bundle.c_str());

  const std::string& m = request.method;
  if (m == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (m == "PUT" || m == "POST") {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, OnUpload);
    curl_easy_setopt(c, CURLOPT_READDATA, &transfer);
    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, OnSeek);
    curl_easy_setopt(c, CURLOPT_SEEKDATA, &transfer);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    // curl sends 64 KiB per call by default: a 16 MiB part took 256 sends (measured: a
    // 512 MiB upload at half the speed of awscli's); 1 MiB sends move it in far fewer.
    curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, static_cast<long>(std::min<size_t>(request.body.size() + 1, 1 << 20)));
    if (m == "POST") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "POST");
  } else if (m != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m.c_str());
  }

  curl_slist* headers = nullptr;
  for (const auto& [k, v] : request.headers) headers = curl_slist_append(headers, (k + ": " + v).c_str());
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);

  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  // After a failed transfer curl closes that connection; the handle itself stays reusable.
  Release(std::move(handle));
  if (rc == CURLE_OK) return Status::Ok();
  if (rc == CURLE_WRITE_ERROR && !transfer.sink_status.ok()) return transfer.sink_status;
  return TransportError(rc, error, request.method, request.url);
}

}  // namespace sluice::ufs
