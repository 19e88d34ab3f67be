// Plain-http GETs on pooled sockets: the request, the response head, then the body straight
// into the thread's receive target when there is one.
#include "ufs/plain_http.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace sluice::ufs {
namespace {

constexpr size_t kMaxHeadBytes = 64 << 10;
constexpr size_t kHeadReadBytes = 4 << 10;
constexpr size_t kScratchBytes = 128 << 10;
constexpr size_t kMaxIdlePerEndpoint = 64;

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool ProxyConfigured() {
  static const bool proxy = [] {
    for (const char* name : {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"}) {
      const char* v = std::getenv(name);
      if (v && *v) return true;
    }
    return false;
  }();
  return proxy;
}

// "http://host:port/path?query" -> its parts; false if it is not such a URL.
struct Url {
  std::string authority, host, port = "80", target = "/";
};
bool ParseUrl(const std::string& url, Url* out) {
  constexpr std::string_view kScheme = "http://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) return false;
  size_t start = kScheme.size(), slash = url.find_first_of("/?", start);
  out->authority = url.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
  if (slash != std::string::npos) out->target = url[slash] == '/' ? url.substr(slash) : "/" + url.substr(slash);
  const std::string& a = out->authority;
  if (a.empty() || a.find('@') != std::string::npos) return false;
  size_t colon = a.rfind(':'), bracket = a.rfind(']');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    out->host = a.substr(0, colon);
    out->port = a.substr(colon + 1);
  } else {
    out->host = a;
  }
  if (out->host.size() >= 2 && out->host.front() == '[' && out->host.back() == ']') {
    out->host = out->host.substr(1, out->host.size() - 2);
  }
  return !out->host.empty() && !out->port.empty();
}

// "GET http://host/key", for messages.
std::string Where(const HttpRequest& request) { return request.method + " " + UrlForMessage(request.url); }

// A transport failure of the request, retryable, in HttpClient's words.
Status Failure(const HttpRequest& request, int err, const char* doing) {
  std::string what = Where(request) + ": " + doing + ": ";
  if (err == EAGAIN || err == EWOULDBLOCK || err == ETIMEDOUT) {
    return Status(StatusCode::kTimeout, "timed out: " + what + "no progress", /*retryable=*/true);
  }
  return Status(StatusCode::kUnavailable, "cannot reach the server: " + what + std::strerror(err), /*retryable=*/true);
}

Status Failure(const HttpRequest& request, const std::string& detail) {
  return Status(StatusCode::kUnavailable, "cannot reach the server: " + Where(request) + ": " + detail,
                /*retryable=*/true);
}

timeval ToTimeval(std::chrono::nanoseconds d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return timeval{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
}

}  // namespace

PlainHttp::~PlainHttp() {
  for (auto& [endpoint, fds] : idle_) {
    for (int fd : fds) ::close(fd);
  }
}

bool PlainHttp::Handles(const HttpRequest& request) {
  Url url;
  return request.method == "GET" && request.body.empty() && !ProxyConfigured() && ParseUrl(request.url, &url);
}

Result<int> PlainHttp::Connect(const std::string& host, const std::string& port, bool* reused) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& fds = idle_[host + ":" + port];
    if (!fds.empty()) {
      int fd = fds.back();
      fds.pop_back();
      *reused = true;
      return fd;
    }
  }
  *reused = false;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    return Status(StatusCode::kUnavailable, "cannot resolve " + host + ": " + ::gai_strerror(rc), /*retryable=*/true);
  }
  int err = ECONNREFUSED;
  const int timeout_ms =
      static_cast<int>(std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                options_.connect_timeout).count()));
  for (addrinfo* ai = found; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int connected = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (connected != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int ready = ::poll(&p, 1, timeout_ms);
      socklen_t len = sizeof(err);
      if (ready == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) connected = 0;
      if (ready == 0) err = ETIMEDOUT;
    } else if (connected != 0) {
      err = errno;
    }
    if (connected != 0) {
      ::close(fd);
      continue;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    // A receive or send making no progress for this long fails with EAGAIN.
    timeval stall = ToTimeval(options_.stall_timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &stall, sizeof(stall));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &stall, sizeof(stall));
    ::freeaddrinfo(found);
    return fd;
  }
  ::freeaddrinfo(found);
  return Status(err == ETIMEDOUT ? StatusCode::kTimeout : StatusCode::kUnavailable,
                "cannot connect to " + host + ":" + port + ": " + std::strerror(err), /*retryable=*/true);
}

void PlainHttp::Keep(const std::string& endpoint, int fd) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& fds = idle_[endpoint];
    if (fds.size() < kMaxIdlePerEndpoint) {
      fds.push_back(fd);
      return;
    }
  }
  ::close(fd);
}

Status PlainHttp::Get(const HttpRequest& request, HttpResponse* response, const ByteSink* sink) {
  Url url;
  if (!ParseUrl(request.url, &url)) return InvalidArgument("bad URL: " + request.url);
  std::string text = "GET " + url.target + " HTTP/1.1\r\n";
  bool has_host = false;
  for (const auto& [name, value] : request.headers) {
    has_host = has_host || Lower(name) == "host";
    text += name + ": " + value + "\r\n";
  }
  if (!has_host) text += "Host: " + url.authority + "\r\n";
  text += "\r\n";
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    auto fd = Connect(url.host, url.port, &reused);
    if (!fd.ok()) {
      const bool timeout = fd.status().code() == StatusCode::kTimeout;
      return Status(fd.status().code(),
                    std::string(timeout ? "timed out: " : "cannot reach the server: ") + Where(request) + ": " +
                        fd.status().message(),
                    /*retryable=*/true);
    }
    *response = HttpResponse();
    bool reusable = false, nothing_received = true;
    Status st = Exchange(*fd, text, request, response, sink, &reusable, &nothing_received);
    if (st.ok() && reusable) {
      Keep(url.host + ":" + url.port, *fd);
    } else {
      ::close(*fd);
    }
    // A kept connection the server has since closed fails before any byte: once more, fresh.
    if (!st.ok() && reused && nothing_received && attempt == 0) continue;
    return st;
  }
}

Status PlainHttp::Exchange(int fd, const std::string& text, const HttpRequest& request, HttpResponse* response,
                           const ByteSink* sink, bool* reusable, bool* nothing_received) {
  for (size_t sent = 0; sent < text.size();) {
    ssize_t n = ::send(fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Failure(request, errno, "sending the request");
    sent += static_cast<size_t>(n);
  }
  thread_local std::vector<char> scratch(kScratchBytes);
  auto receive = [&](char* into, size_t max) -> ssize_t {
    for (;;) {
      ssize_t n = ::recv(fd, into, max, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) *nothing_received = false;
      return n;
    }
  };

  // The response head, past any 1xx interim responses.
  std::string pending;  // received and not yet consumed
  size_t head_end = std::string::npos;
  bool http10 = false;
  for (;;) {
    head_end = pending.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      std::string_view head(pending.data(), head_end);
      size_t line_end = head.find("\r\n");
      std::string_view status_line = head.substr(0, line_end);
      if (status_line.substr(0, 5) != "HTTP/" || status_line.size() < 12) {
        return Failure(request, "malformed status line '" + std::string(status_line.substr(0, 64)) + "'");
      }
      http10 = status_line.substr(0, 8) == "HTTP/1.0";
      response->status = std::atol(std::string(status_line.substr(9, 3)).c_str());
      response->headers.clear();
      while (line_end != std::string_view::npos) {
        size_t start = line_end + 2;
        line_end = head.find("\r\n", start);
        std::string_view line = head.substr(start, line_end == std::string_view::npos ? std::string_view::npos
                                                                                      : line_end - start);
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
        response->headers.emplace_back(Lower(line.substr(0, colon)), std::string(value));
      }
      if (response->status >= 100 && response->status < 200) {
        pending.erase(0, head_end + 4);
        continue;
      }
      break;
    }
    if (pending.size() > kMaxHeadBytes) return Failure(request, "response head larger than 64 KiB");
    // The head is read in small pieces, so most of the body stays in the socket for the
    // receive target: a whole small object read along with the head is one more copy.
    ssize_t n = receive(scratch.data(), std::min(scratch.size(), kHeadReadBytes));
    if (n < 0) return Failure(request, errno, "receiving the response");
    if (n == 0) return Failure(request, "the server closed the connection before answering");
    pending.append(scratch.data(), static_cast<size_t>(n));
  }
  pending.erase(0, head_end + 4);

  const bool to_sink = sink && response->status >= 200 && response->status < 300;
  const std::string connection = Lower(response->Header("connection"));
  const bool keep_alive = http10 ? connection.find("keep-alive") != std::string::npos
                                 : connection.find("close") == std::string::npos;
  auto deliver = [&](const char* data, size_t n) -> Status {
    if (to_sink) return (*sink)(std::string_view(data, n));
    if (sink && response->body.size() + n > kMaxErrorBody) return Status::Ok();  // an error body, capped
    response->body.append(data, n);
    return Status::Ok();
  };
  const bool no_body = response->status == 204 || response->status == 304;
  const std::string length_header = response->Header("content-length");

  if (Lower(response->Header("transfer-encoding")).find("chunked") != std::string::npos) {
    // Chunked: sizes in hex, each chunk followed by CRLF, a 0-size chunk and trailers last.
    auto fill = [&](size_t want) -> Status {
      while (pending.size() < want) {
        ssize_t n = receive(scratch.data(), scratch.size());
        if (n < 0) return Failure(request, errno, "receiving the body");
        if (n == 0) return Failure(request, "the response body ended early");
        pending.append(scratch.data(), static_cast<size_t>(n));
      }
      return Status::Ok();
    };
    auto line = [&](std::string* out) -> Status {
      size_t eol;
      while ((eol = pending.find("\r\n")) == std::string::npos) SLUICE_RETURN_IF_ERROR(fill(pending.size() + 1));
      *out = pending.substr(0, eol);
      pending.erase(0, eol + 2);
      return Status::Ok();
    };
    for (;;) {
      std::string size_line;
      SLUICE_RETURN_IF_ERROR(line(&size_line));
      size_t size = std::strtoull(size_line.c_str(), nullptr, 16);
      if (size == 0) break;
      SLUICE_RETURN_IF_ERROR(fill(size + 2));
      SLUICE_RETURN_IF_ERROR(deliver(pending.data(), size));
      pending.erase(0, size + 2);
    }
    for (std::string trailer = "x"; !trailer.empty();) SLUICE_RETURN_IF_ERROR(line(&trailer));
    *reusable = keep_alive && pending.empty();
    return Status::Ok();
  }

  if (no_body || !length_header.empty()) {
    uint64_t remaining = no_body ? 0 : std::strtoull(length_header.c_str(), nullptr, 10);
    size_t first = static_cast<size_t>(std::min<uint64_t>(remaining, pending.size()));
    const ReceiveTarget::Next* target = to_sink ? ReceiveTarget::Current() : nullptr;
    if (first > 0) {
      // The body's first bytes came with the head: they go to the target too, so the whole
      // body lies there and its owner learns the body's size before any byte.
      const char* from = pending.data();
      if (target) {
        auto into = (*target)(remaining);
        if (into.first && into.second >= first) {
          std::memcpy(into.first, pending.data(), first);
          from = into.first;
        }
      }
      SLUICE_RETURN_IF_ERROR(deliver(from, first));
    }
    remaining -= first;
    while (remaining > 0) {
      std::pair<char*, size_t> into{nullptr, 0};
      if (target) into = (*target)(remaining);
      if (!into.first || into.second == 0) into = {scratch.data(), scratch.size()};
      ssize_t n = receive(into.first, static_cast<size_t>(std::min<uint64_t>(into.second, remaining)));
      if (n < 0) return Failure(request, errno, "receiving the body");
      if (n == 0) return Failure(request, "the response body ended early");
      remaining -= static_cast<uint64_t>(n);
      SLUICE_RETURN_IF_ERROR(deliver(into.first, static_cast<size_t>(n)));
    }
    *reusable = keep_alive && pending.size() == first;
    return Status::Ok();
  }

  // Neither a length nor chunks: the body runs to the end of the connection.
  if (!pending.empty()) SLUICE_RETURN_IF_ERROR(deliver(pending.data(), pending.size()));
  for (;;) {
    ssize_t n = receive(scratch.data(), scratch.size());
    if (n < 0) return Failure(request, errno, "receiving the body");
    if (n == 0) return Status::Ok();
    SLUICE_RETURN_IF_ERROR(deliver(scratch.data(), static_cast<size_t>(n)));
  }
}

}  // namespace sluice::ufs
