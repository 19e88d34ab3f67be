// The S3 gateway: Beast sessions on Asio coroutines over one io_context per thread, each run by
// its one thread (no locks or cross-thread wake-ups per completion, which on two cores cost more
// than the requests); connections are dealt round-robin. A request may block its thread in the
// cache client (a read waits on the cache, not on the socket).
#include "gateway/gateway.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <array>
#include <filesystem>
#include <random>
#include <cctype>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "common/logging.h"
#include "common/unique_fd.h"
#include "gateway/s3_listing.h"
#include "gateway/s3_request.h"
#include "rpc/accept_loop.h"
#include "ufs/sigv4.h"
#include "ufs/xml.h"

namespace sluice::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

constexpr size_t kMaxRequestHead = 16 << 10;  // S3 allows 8 KiB of headers; leave room for the line
constexpr size_t kMaxRequestBody = 64 << 10;  // a GET or HEAD has none; a few bytes are read and dropped
constexpr uint64_t kMaxPutObjectBytes = 5ull << 30;  // S3's limit for one PUT
constexpr size_t kMaxKeysLimit = 1000;        // as S3: a larger max-keys gives pages of 1,000
constexpr const char* kXmlns = "http://s3.amazonaws.com/doc/2006-03-01/";

std::string Xml(std::string_view s) { return ufs::XmlEscape(s); }

// The ETag S3 clients see: the under-store's, or for a store without ETags a tag derived from
// the version, shaped as a multipart ETag ("...-1") so that clients do not take it for the
// MD5 of the bytes and fail their check.
std::string EtagOf(const std::string& version) {
  if (version.rfind("etag:", 0) == 0) return "\"" + version.substr(5) + "\"";
  return "\"" + ufs::Sha256Hex(version).substr(0, 32) + "-1\"";
}

std::string Hex(std::string_view s) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::optional<std::string> Unhex(std::string_view s) {
  if (s.size() % 2) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); i += 2) {
    int hi = digit(s[i]), lo = digit(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

// A connection's buffer for object bytes that are not pages of the worker in this process.
// Left uninitialized: when every byte comes as a shared page it is never touched, so it costs
// no page faults (zero-filling megabytes per connection did, on every GET).
class ChunkBuffer {
 public:
  char* Get(size_t n) {
    if (size_ < n) {
      data_.reset(new char[n]);
      size_ = n;
    }
    return data_.get();
  }
  char* data() const { return data_.get(); }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
};

// What one request is answered with: a status, headers and an XML body, or (GetObject) bytes
// of an open file streamed after the headers.
struct Reply {
  std::string operation = "Unknown";  // for metrics: "GetObject", "ListObjectsV2", ...
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::unique_ptr<client::File> file;  // GetObject: send [first, first + length) of it
  uint64_t first = 0, length = 0;
  ChunkBuffer* chunk = nullptr;        // the connection's buffer, holding the first bytes read
  std::vector<client::ReadSpan> first_spans;  // before the headers went out (their spans, as
  uint64_t first_count = 0;                   // File::ReadAt gave them) and how many
  uint64_t content_length = 0;         // HEAD: the object's length, with no body
  bool head_only = false;
};

Reply ErrorReply(std::string operation, const S3Error& e, const std::string& resource, const std::string& request_id) {
  Reply r;
  r.operation = std::move(operation);
  r.status = e.http_status;
  r.headers.emplace_back("Content-Type", "application/xml");
  r.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + Xml(e.code) + "</Code><Message>" +
           Xml(e.message) + "</Message><Resource>" + Xml(resource) + "</Resource><RequestId>" + request_id +
           "</RequestId></Error>\n";
  return r;
}

S3Error Error(int status, std::string code, std::string message) {
  return S3Error{status, std::move(code), std::move(message)};
}

// A FileSystem error as S3 states it. `missing`: the code for kNotFound (NoSuchKey, NoSuchBucket).
S3Error FromStatus(const Status& st, const std::string& missing) {
  switch (st.code()) {
    case StatusCode::kNotFound: return Error(404, missing, st.message());
    case StatusCode::kInvalidArgument: return Error(400, "InvalidArgument", st.message());
    case StatusCode::kPermissionDenied:
    case StatusCode::kNotSupported: return Error(403, "AccessDenied", st.message());  // a read-only mount
    case StatusCode::kResourceExhausted: return Error(503, "SlowDown", st.message());
    case StatusCode::kUnavailable:
    case StatusCode::kTimeout:
    case StatusCode::kStale: return Error(503, "ServiceUnavailable", st.message());
    default: return Error(500, "InternalError", st.message());
  }
}

// Request counts by operation and status, bytes sent, and a latency histogram.
class GatewayMetrics {
 public:
  static constexpr std::array<double, 14> kBounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  void Record(const std::string& operation, int status, uint64_t bytes, double seconds) {
    bytes_.fetch_add(bytes, std::memory_order_relaxed);
    size_t bucket = 0;
    while (bucket < kBounds.size() && seconds > kBounds[bucket]) ++bucket;
    buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(mu_);
    ++requests_[{operation, status}];
    seconds_sum_ += seconds;
  }

  std::string Text() const {
    std::string out =
        "# HELP sluice_gateway_requests_total S3 requests answered, by operation and HTTP status.\n"
        "# TYPE sluice_gateway_requests_total counter\n";
    double sum = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [key, n] : requests_) {
        out += "sluice_gateway_requests_total{operation=\"" + key.first + "\",status=\"" + std::to_string(key.second) +
               "\"} " + std::to_string(n) + "\n";
      }
      sum = seconds_sum_;
    }
    out += "# HELP sluice_gateway_sent_bytes_total Bytes of objects and listings sent.\n"
           "# TYPE sluice_gateway_sent_bytes_total counter\n"
           "sluice_gateway_sent_bytes_total " +
           std::to_string(bytes_.load()) + "\n";
    out += "# HELP sluice_gateway_request_seconds Time from a request's head to the end of its answer.\n"
           "# TYPE sluice_gateway_request_seconds histogram\n";
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= kBounds.size(); ++i) {
      cumulative += buckets_[i].load();
      std::string le = i < kBounds.size() ? fmt::format("{}", kBounds[i]) : "+Inf";
      out += "sluice_gateway_request_seconds_bucket{le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
    }
    out += "sluice_gateway_request_seconds_sum " + fmt::format("{:.6f}", sum) + "\n";
    out += "sluice_gateway_request_seconds_count " + std::to_string(cumulative) + "\n";
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // GUARDED_BY(mu_)
  double seconds_sum_ = 0;                                    // GUARDED_BY(mu_)
  std::atomic<uint64_t> bytes_{0};
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
};

class BeastGateway final : public Gateway {
 public:
  BeastGateway(GatewayOptions options, client::FileSystem* fs)
      : options_(std::move(options)), fs_(fs), verifier_(options_.auth), count_(options_.max_connections) {}

  ~BeastGateway() override {
    for (auto& c : contexts_) c->stop();
    for (auto& t : threads_) t.join();
  }

  Status Listen() {
    boost::system::error_code ec;
    tcp::endpoint endpoint(asio::ip::make_address(options_.host, ec), static_cast<unsigned short>(options_.port));
    if (ec) return InvalidArgument("bad S3 gateway listen address '" + options_.host + "'");
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status(StatusCode::kUnavailable, "cannot listen for the S3 gateway on " + options_.host + ":" +
                                                  std::to_string(options_.port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(
        *contexts_[0],
        rpc::AcceptLoop(
            acceptor_, count_, "S3 gateway",
            [this](tcp::socket socket, rpc::ConnectionCount::Slot slot) {
              asio::io_context& context = *contexts_[next_context_++ % contexts_.size()];
              boost::system::error_code ec;
              tcp::socket moved(context);
              const auto protocol = socket.local_endpoint(ec).protocol();
              if (!ec) moved.assign(protocol, socket.release(ec), ec);
              if (ec) return;
              asio::co_spawn(context, Session(std::move(moved), std::move(slot)), asio::detached);
            },
            [this](tcp::socket socket) {
              Reply r = ErrorReply("Refused",
                                   Error(503, "SlowDown",
                                         "the gateway has " + std::to_string(options_.max_connections) +
                                             " connections open (gateway.max_connections); retry later"),
                                   "/", NextRequestId());
              std::string raw = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: " +
                                std::to_string(r.body.size()) + "\r\nConnection: close\r\n\r\n" + r.body;
              boost::system::error_code ec;
              socket.non_blocking(true, ec);
              socket.write_some(asio::buffer(raw), ec);
              socket.close(ec);
              metrics_->Record(r.operation, r.status, 0, 0);
            }),
        asio::detached);
    for (auto& context : contexts_) {
      threads_.emplace_back([c = context.get()] {
        auto busy = asio::make_work_guard(*c);  // runs until stopped, connections or not
        c->run();
      });
    }
    return Status::Ok();
  }

  int port() const override { return port_; }
  std::string Metrics() const override { return metrics_->Text(); }
  std::function<std::string()> MetricsSource() const override {
    return [metrics = metrics_] { return metrics->Text(); };
  }

 private:
  std::string NextRequestId() { return fmt::format("{:016X}", next_request_id_.fetch_add(1) + 1); }

  awaitable<void> Session(tcp::socket socket, rpc::ConnectionCount::Slot) {
    // Replies go out as a head and then body chunks: without TCP_NODELAY the body of a small
    // object would wait for the client's delayed ACK of the head (40 ms).
    boost::system::error_code nodelay_ec;
    socket.set_option(tcp::no_delay(true), nodelay_ec);
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    ChunkBuffer chunk;
    for (bool first = true;; first = false) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(kMaxRequestHead);
      // A PutObject's body may be large (it streams to the object); others are held below.
      parser.body_limit(kMaxPutObjectBytes);
      stream.expires_after(first ? options_.io_timeout : options_.idle_timeout);
      boost::system::error_code ec;
      co_await http::async_read_header(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
      if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
          ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
        co_return;
      }
      const auto started = std::chrono::steady_clock::now();
      const std::string request_id = NextRequestId();
      Reply reply;
      bool keep_alive = false;
      if (ec) {
        const bool too_large = ec == http::error::header_limit;
        reply = ErrorReply("Malformed",
                           too_large ? Error(400, "RequestHeaderSectionTooLarge",
                                             "the request's head is larger than " + std::to_string(kMaxRequestHead) +
                                                 " bytes")
                                     : Error(400, "BadRequest", "malformed HTTP request: " + ec.message()),
                           "/", request_id);
      } else {
        auto& req = parser.get();
        const bool reads = req.method() == http::verb::get || req.method() == http::verb::head;
        if (reads && !parser.is_done()) {  // a body on a read: read a little and drop it
          const auto length = parser.content_length();
          if (!length || *length > kMaxRequestBody) {
            ec = http::error::body_limit;  // never read into memory
          } else {
            stream.expires_after(options_.io_timeout);
            co_await http::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
          }
        }
        if (ec) {
          reply = ErrorReply("Malformed", Error(400, "MaxMessageLengthExceeded",
                                                "a GET or HEAD request carries no body (this one was cut off "
                                                "or larger than 64 KiB): " + ec.message()),
                             std::string(req.target()), request_id);
        } else {
          HttpHead head;
          head.method = std::string(req.method_string());
          head.target = std::string(req.target());
          for (const auto& field : req) head.headers.emplace_back(field.name_string(), field.value());
          const bool wants_keep_alive = req.keep_alive();
          if (req.method() == http::verb::put || req.method() == http::verb::post) {  // bodies stream
            http::request_parser<http::buffer_body> body_parser{std::move(parser)};
            reply = co_await Upload(stream, buffer, body_parser, head, request_id);
            keep_alive = wants_keep_alive && body_parser.is_done() && reply.status < 300;
          } else {
            reply = Handle(head, request_id, &chunk);
            keep_alive = reads && wants_keep_alive;  // a write's body was not read: close
          }
        }
      }
      const uint64_t sent = co_await Send(stream, reply, request_id, keep_alive, &ec);
      metrics_->Record(reply.operation, reply.status, sent,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      if (ec || !keep_alive) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  // Writes `reply`; returns the body bytes sent. Sets *ec when the connection must end (the
  // client went away, stopped reading, or an object's bytes could not all be read).
  awaitable<uint64_t> Send(beast::tcp_stream& stream, Reply& reply, const std::string& request_id, bool keep_alive,
                           boost::system::error_code* ec) {
    http::response<http::string_body> res{static_cast<http::status>(reply.status), 11};
    res.set(http::field::server, "sluice");
    res.set("x-amz-request-id", request_id);
    res.set(http::field::date, FormatHttpDate(std::chrono::duration_cast<std::chrono::seconds>(
                                                  std::chrono::system_clock::now().time_since_epoch())
                                                  .count()));
    for (const auto& [name, value] : reply.headers) res.set(name, value);
    res.keep_alive(keep_alive);
    uint64_t body_bytes = 0;
    if (reply.file) {
      res.content_length(reply.length);
    } else if (reply.head_only) {
      res.content_length(reply.content_length);
    } else {
      body_bytes = reply.body.size();
      res.body() = std::move(reply.body);
      res.prepare_payload();
    }
    stream.expires_after(options_.io_timeout);
    http::response_serializer<http::string_body> serializer(res);
    if (reply.head_only || reply.file) {
      co_await http::async_write_header(stream, serializer, asio::redirect_error(use_awaitable, *ec));
    } else {
      co_await http::async_write(stream, serializer, asio::redirect_error(use_awaitable, *ec));
    }
    if (*ec || !reply.file) co_return body_bytes;

    // The object's bytes, a chunk at a time: shared pages of the worker in this process go out
    // as they lie; other bytes are copied once into the chunk buffer.
    uint64_t offset = reply.first, left = reply.length;
    ChunkBuffer& chunk = *reply.chunk;
    std::vector<client::ReadSpan> spans = std::move(reply.first_spans);
    uint64_t have = reply.first_count;
    while (true) {
      std::vector<asio::const_buffer> out;
      if (spans.empty()) {
        out.emplace_back(chunk.data(), have);
      } else {
        size_t at = 0;
        for (const auto& s : spans) {
          out.emplace_back(s.page ? s.page->data() + s.offset : chunk.data() + at, s.length);
          at += s.length;
        }
      }
      stream.expires_after(options_.io_timeout);
      co_await asio::async_write(stream, out, rpc::WholeBuffers, asio::redirect_error(use_awaitable, *ec));
      if (*ec) co_return body_bytes;
      body_bytes += have;
      offset += have;
      left -= have;
      if (left == 0) co_return body_bytes;
      auto n = ReadChunk(*reply.file, offset, left, &chunk, &spans);
      if (!n.ok() || *n == 0) {
        SLUICE_LOG_WARN("S3 gateway: GET {} cut short at byte {}: {}", reply.file->info().path, offset - reply.first,
                        n.ok() ? "the file ended early" : n.status().ToString());
        *ec = asio::error::broken_pipe;  // the client sees a short body and retries
        co_return body_bytes;
      }
      have = *n;
    }
  }

  // The value of request header `name` (lowercase), or "".
  static std::string HeaderOf(const HttpHead& head, std::string_view name) {
    for (const auto& [k, v] : head.headers) {
      if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) == b;
          })) {
        return v;
      }
    }
    return "";
  }

  // Reads a request's body into `sink` as it arrives (one 1 MiB buffer), answering a client
  // that waits for 100-continue first, and checks it against the signed x-amz-content-sha256
  // when that is a hash. An S3 error when the body was cut off, too large, not what was
  // signed, or `sink` failed.
  awaitable<std::optional<S3Error>> ReadBody(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                             http::request_parser<http::buffer_body>& parser, const HttpHead& head,
                                             uint64_t limit, const std::function<Status(std::string_view)>& sink) {
    const std::string payload_hash = HeaderOf(head, "x-amz-content-sha256");
    if (payload_hash.rfind("STREAMING-", 0) == 0) {
      co_return Error(501, "NotImplemented",
                      "streaming (aws-chunked) uploads are not supported: sign the payload's SHA-256 or send "
                      "UNSIGNED-PAYLOAD");
    }
    if (HeaderOf(head, "expect") == "100-continue") {  // the client waits for this before it sends the body
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      boost::system::error_code ec;
      stream.expires_after(options_.io_timeout);
      co_await asio::async_write(stream, asio::buffer(kContinue.data(), kContinue.size()),
                                 asio::redirect_error(use_awaitable, ec));
      if (ec) co_return Error(400, "IncompleteBody", "the client went away: " + ec.message());
    }
    const bool check_hash = !payload_hash.empty() && payload_hash != "UNSIGNED-PAYLOAD";
    ufs::DigestStream hash;
    parser.body_limit(limit);
    std::vector<char> buf(1 << 20);
    while (!parser.is_done()) {
      parser.get().body().data = buf.data();
      parser.get().body().size = buf.size();
      stream.expires_after(options_.io_timeout);
      boost::system::error_code ec;
      co_await http::async_read_some(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec == http::error::body_limit) {
        co_return Error(400, "EntityTooLarge", "the body is larger than the " + std::to_string(limit) +
                                                   " bytes this request may carry");
      }
      if (ec) co_return Error(400, "IncompleteBody", "the request's body ended early: " + ec.message());
      const size_t n = buf.size() - parser.get().body().size;
      if (n == 0) continue;
      if (check_hash) hash.Update(std::string_view(buf.data(), n));
      if (Status st = sink(std::string_view(buf.data(), n)); !st.ok()) co_return FromStatus(st, "NoSuchKey");
    }
    if (check_hash && hash.Hex() != payload_hash) {
      co_return Error(400, "XAmzContentSHA256Mismatch",
                      "the body's SHA-256 is not the x-amz-content-sha256 the request was signed with");
    }
    co_return std::nullopt;
  }

  // A request that writes: its target parsed, its signature verified, the caller allowed to
  // write the bucket and the bucket there; else the error reply.
  std::optional<Reply> CheckWrite(const HttpHead& head, const std::string& operation, const std::string& request_id,
                                  S3Request* req) {
    if (auto e = ParseS3Target(head.target, req)) return ErrorReply("Malformed", *e, head.target, request_id);
    Caller caller;
    if (auto e = verifier_.Verify(head, std::chrono::system_clock::now(), &caller)) {
      return ErrorReply("Unauthorized", *e, head.target, request_id);
    }
    const std::string resource = "/" + req->bucket + (req->key.empty() ? "" : "/" + req->key);
    auto fail = [&](const S3Error& e) { return ErrorReply(operation, e, resource, request_id); };
    if (req->key.empty()) return fail(Error(501, "NotImplemented", "bucket operations are not implemented"));
    if (caller.access_key.empty()) return fail(Error(403, "AccessDenied", "anonymous callers may not write"));
    if (!caller.MayRead(req->bucket)) {
      return fail(Error(403, "AccessDenied", "access key '" + caller.access_key + "' may not use bucket '" +
                                                 req->bucket + "'"));
    }
    if (auto e = CheckBucket(req->bucket)) return fail(*e);
    return std::nullopt;
  }

  // PUT and POST: PutObject, and the multipart upload's UploadPart, CreateMultipartUpload and
  // CompleteMultipartUpload. A PutObject's body goes to a writer of the namespace path as it
  // arrives; an upload's parts wait in files of their own (gateway.upload_dir) and go to a
  // writer in order at completion. The object exists once the writer closes (on a write-back
  // mount: once the worker journaled it); anything that fails leaves no object.
  awaitable<Reply> Upload(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                          http::request_parser<http::buffer_body>& parser, const HttpHead& head,
                          const std::string& request_id) {
    S3Request req;
    const bool post = head.method == "POST";
    std::string operation = post ? "CompleteMultipartUpload" : "PutObject";
    if (auto refused = CheckWrite(head, operation, request_id, &req)) co_return std::move(*refused);
    const std::string resource = "/" + req.bucket + "/" + req.key;
    auto fail = [&](const S3Error& e) { return ErrorReply(operation, e, resource, request_id); };
    const std::string* upload_id = req.Query("uploadId");
    const std::string* part_number = req.Query("partNumber");
    const bool create = post && req.Query("uploads") && req.query.size() == 1;
    const bool complete = post && upload_id && req.query.size() == 1;
    const bool part = !post && upload_id && part_number && req.query.size() == 2;
    if ((!create && !complete && !part && !(req.query.empty() && !post)) || !HeaderOf(head, "x-amz-copy-source").empty()) {
      co_return fail(Error(501, "NotImplemented",
                           head.method + " " + resource + ": of the S3 writes, sluice's gateway takes PutObject, "
                           "DeleteObject and multipart uploads; CopyObject, DeleteObjects and the other "
                           "subresources are not implemented"));
    }
    if ((create || complete || part) && options_.upload_dir.empty()) {
      co_return fail(Error(501, "NotImplemented", "multipart uploads need gateway.upload_dir"));
    }
    if (create) {
      operation = "CreateMultipartUpload";
      std::string id = NewUploadId();
      std::error_code ec;
      std::filesystem::create_directories(options_.upload_dir + "/" + id, ec);
      if (ec) co_return fail(Error(500, "InternalError", "cannot stage the upload: " + ec.message()));
      Reply r;
      r.operation = operation;
      r.headers.emplace_back("Content-Type", "application/xml");
      r.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult><Bucket>" + Xml(req.bucket) +
               "</Bucket><Key>" + Xml(req.key) + "</Key><UploadId>" + id + "</UploadId></InitiateMultipartUploadResult>\n";
      co_return r;
    }
    if (part || complete) {
      if (!ValidUploadId(*upload_id) || !std::filesystem::is_directory(options_.upload_dir + "/" + *upload_id)) {
        co_return fail(Error(404, "NoSuchUpload", "no multipart upload '" + *upload_id + "' is in progress here"));
      }
    }
    if (part) {
      operation = "UploadPart";
      char* end = nullptr;
      const long n = std::strtol(part_number->c_str(), &end, 10);
      if (part_number->empty() || *end || n < 1 || n > 10000) {
        co_return fail(Error(400, "InvalidArgument", "partNumber must be 1..10000"));
      }
      const std::string path = options_.upload_dir + "/" + *upload_id + "/" + std::to_string(n);
      UniqueFd fd(::open((path + ".tmp").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (fd.get() < 0) co_return fail(Error(500, "InternalError", "cannot stage the part: " + std::string(std::strerror(errno))));
      ufs::DigestStream md5(ufs::DigestStream::Kind::kMd5);
      auto e = co_await ReadBody(stream, buffer, parser, head, kMaxPutObjectBytes, [&](std::string_view data) -> Status {
        md5.Update(data);
        if (::write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
          return Status(StatusCode::kResourceExhausted, "cannot stage the part: " + std::string(std::strerror(errno)));
        }
        return Status::Ok();
      });
      if (e) {
        ::unlink((path + ".tmp").c_str());
        co_return fail(*e);
      }
      if (::rename((path + ".tmp").c_str(), path.c_str()) != 0) co_return fail(Error(500, "InternalError", "cannot stage the part"));
      Reply r;
      r.operation = operation;
      r.headers.emplace_back("ETag", "\"" + md5.Hex() + "\"");
      co_return r;
    }
    auto writer = [&]() { return fs_->OpenForWrite(PathOf(req.bucket, req.key), true); };
    if (complete) {
      std::string xml;
      auto e = co_await ReadBody(stream, buffer, parser, head, 1 << 20, [&](std::string_view data) {
        xml.append(data);
        return Status::Ok();
      });
      if (e) co_return fail(*e);
      auto doc = ufs::ParseXml(xml);
      if (!doc.ok()) co_return fail(Error(400, "MalformedXML", "the part list is not XML: " + doc.status().message()));
      const std::string dir = options_.upload_dir + "/" + *upload_id;
      auto w = writer();
      if (!w.ok()) co_return fail(FromStatus(w.status(), "NoSuchKey"));
      uint64_t offset = 0;
      long previous = 0;
      std::vector<char> buf(1 << 20);
      for (const auto* p : doc->Children("Part")) {
        const long n = std::strtol(p->ChildText("PartNumber").c_str(), nullptr, 10);
        if (n <= previous) co_return fail(Error(400, "InvalidPartOrder", "the parts must be listed in ascending order"));
        previous = n;
        UniqueFd fd(::open((dir + "/" + std::to_string(n)).c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.get() < 0) co_return fail(Error(400, "InvalidPart", "part " + std::to_string(n) + " was not uploaded"));
        for (ssize_t got; (got = ::read(fd.get(), buf.data(), buf.size())) > 0; offset += static_cast<uint64_t>(got)) {
          if (Status st = (*w)->Write(offset, std::string_view(buf.data(), static_cast<size_t>(got))); !st.ok()) {
            co_return fail(FromStatus(st, "NoSuchKey"));
          }
        }
      }
      if (previous == 0) co_return fail(Error(400, "MalformedXML", "the part list names no part"));
      auto info = (*w)->Close();
      if (!info.ok()) co_return fail(FromStatus(info.status(), "NoSuchKey"));
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
      Reply r;
      r.operation = operation;
      r.headers.emplace_back("Content-Type", "application/xml");
      r.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult><Bucket>" + Xml(req.bucket) +
               "</Bucket><Key>" + Xml(req.key) + "</Key><ETag>" + Xml(EtagOf(info->version)) +
               "</ETag></CompleteMultipartUploadResult>\n";
      co_return r;
    }
    auto w = writer();
    if (!w.ok()) co_return fail(FromStatus(w.status(), "NoSuchKey"));
    uint64_t offset = 0;
    auto e = co_await ReadBody(stream, buffer, parser, head, kMaxPutObjectBytes, [&](std::string_view data) {
      Status st = (*w)->Write(offset, data);
      offset += data.size();
      return st;
    });
    if (e) co_return fail(*e);
    auto info = (*w)->Close();
    if (!info.ok()) co_return fail(FromStatus(info.status(), "NoSuchKey"));
    Reply r;
    r.operation = operation;
    r.headers.emplace_back("ETag", EtagOf(info->version));
    co_return r;
  }

  static std::string NewUploadId() {
    static const char kHex[] = "0123456789abcdef";
    std::random_device random;
    std::string id;
    for (int i = 0; i < 32; ++i) id += kHex[random() & 15];
    return id;
  }
  static bool ValidUploadId(const std::string& id) {
    return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
  }

  // DeleteObject: 204 whether or not the key was there, as S3 answers.
  Reply DeleteObject(const S3Request& req, const Caller& caller, const std::string& resource,
                     const std::string& request_id) {
    auto fail = [&](const S3Error& e) { return ErrorReply("DeleteObject", e, resource, request_id); };
    if (caller.access_key.empty()) return fail(Error(403, "AccessDenied", "anonymous callers may not write"));
    if (!caller.MayRead(req.bucket)) {
      return fail(Error(403, "AccessDenied", "access key '" + caller.access_key + "' may not use bucket '" +
                                                  req.bucket + "'"));
    }
    if (auto e = CheckBucket(req.bucket)) return fail(*e);
    Status st = fs_->Remove(PathOf(req.bucket, req.key), false);
    if (!st.ok() && st.code() != StatusCode::kNotFound) return fail(FromStatus(st, "NoSuchKey"));
    Reply r;
    r.operation = "DeleteObject";
    r.status = 204;
    return r;
  }

  Result<uint64_t> ReadChunk(client::File& file, uint64_t offset, uint64_t left, ChunkBuffer* chunk,
                             std::vector<client::ReadSpan>* spans) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(left, options_.read_chunk));
    spans->clear();
    return file.ReadAt(offset, want, chunk->Get(options_.read_chunk), spans, /*page_files=*/false);
  }

  // The namespace path of `key` in `bucket`.
  std::string PathOf(const std::string& bucket, const std::string& key) const {
    if (!options_.root_bucket.empty()) return "/" + key;
    return "/" + bucket + (key.empty() ? "" : "/" + key);
  }

  // Whether `bucket` exists; an S3 error when it does not or cannot be told.
  std::optional<S3Error> CheckBucket(const std::string& bucket) {
    if (!options_.root_bucket.empty()) {
      if (bucket == options_.root_bucket) return std::nullopt;
      return Error(404, "NoSuchBucket",
                   "no bucket '" + bucket + "': this gateway serves one bucket, '" + options_.root_bucket +
                       "' (the namespace root)");
    }
    auto info = fs_->Stat("/" + bucket);
    if (info.ok() && info->is_dir) return std::nullopt;
    if (info.ok() || info.status().code() == StatusCode::kNotFound) {
      return Error(404, "NoSuchBucket", "no bucket '" + bucket + "': buckets are the namespace's top-level directories");
    }
    return FromStatus(info.status(), "NoSuchBucket");
  }

  // `chunk`: the connection's buffer for object bytes.
  Reply Handle(const HttpHead& head, const std::string& request_id, ChunkBuffer* chunk) {
    // A target that cannot name an object is refused before the signature is checked: its
    // error says what is wrong with it.
    S3Request req;
    if (auto e = ParseS3Target(head.target, &req)) return ErrorReply("Malformed", *e, head.target, request_id);
    Caller caller;
    if (auto e = verifier_.Verify(head, std::chrono::system_clock::now(), &caller)) {
      return ErrorReply("Unauthorized", *e, head.target, request_id);
    }
    const std::string resource = "/" + req.bucket + (req.key.empty() ? "" : "/" + req.key);
    const bool is_head = head.method == "HEAD";
    auto fail = [&](std::string op, const S3Error& e) {
      Reply r = ErrorReply(std::move(op), e, resource, request_id);
      if (is_head) {  // S3 answers a failed HEAD with its status alone
        r.body.clear();
        r.head_only = true;
      }
      return r;
    };
    if (head.method != "GET" && !is_head) {
      const bool write = head.method == "PUT" || head.method == "POST" || head.method == "DELETE";
      if (!write) return fail("Unknown", Error(405, "MethodNotAllowed", "method " + head.method + " is not allowed"));
      if (head.method == "DELETE" && !req.key.empty() && req.query.empty()) {
        return DeleteObject(req, caller, resource, request_id);
      }
      if (const std::string* id = req.Query("uploadId");
          head.method == "DELETE" && id && req.query.size() == 1 && !options_.upload_dir.empty()) {
        if (!caller.MayRead(req.bucket) || caller.access_key.empty()) {
          return fail("AbortMultipartUpload", Error(403, "AccessDenied", "this key may not write bucket '" + req.bucket + "'"));
        }
        if (!ValidUploadId(*id)) return fail("AbortMultipartUpload", Error(404, "NoSuchUpload", "no upload '" + *id + "'"));
        std::error_code ec;
        std::filesystem::remove_all(options_.upload_dir + "/" + *id, ec);
        Reply r;
        r.operation = "AbortMultipartUpload";
        r.status = 204;
        return r;
      }
      return fail("Write", Error(501, "NotImplemented",
                                 head.method + " " + resource +
                                     ": of the S3 writes, sluice's gateway takes PutObject, DeleteObject and "
                                     "multipart uploads; bucket operations, DeleteObjects and CopyObject are not "
                                     "implemented"));
    }
    if (req.bucket.empty()) {
      if (is_head) return fail("Unknown", Error(405, "MethodNotAllowed", "HEAD / is not an S3 operation"));
      return ListBuckets(caller, request_id);
    }
    if (!caller.MayRead(req.bucket)) {
      return fail(req.key.empty() ? "ListObjects" : "GetObject",
                  Error(403, "AccessDenied", "access key '" + caller.access_key + "' may not read bucket '" +
                                                 req.bucket + "'"));
    }
    if (auto e = CheckBucket(req.bucket)) return fail(req.key.empty() ? "HeadBucket" : "GetObject", *e);
    for (const char* sub : {"acl", "tagging", "torrent", "retention", "legal-hold", "attributes", "uploads", "versions",
                            "policy", "cors", "lifecycle", "website", "encryption", "replication", "notification",
                            "object-lock", "logging", "versioning", "accelerate", "requestPayment", "uploadId"}) {
      if (req.Query(sub)) {
        return fail("Unsupported", Error(501, "NotImplemented",
                                         std::string("the '") + sub + "' subresource is not implemented by sluice's gateway"));
      }
    }
    if (req.key.empty()) {
      if (is_head) {
        Reply r;
        r.operation = "HeadBucket";
        r.head_only = true;
        r.headers.emplace_back("x-amz-bucket-region", options_.region);
        return r;
      }
      if (req.Query("location")) return BucketLocation(request_id);
      return ListObjects(req, request_id, fail);
    }
    return GetObject(head, req, is_head, chunk, fail);
  }

  Reply ListBuckets(const Caller& caller, const std::string& request_id) {
    std::vector<std::pair<std::string, int64_t>> buckets;  // name, creation time (ns)
    if (!options_.root_bucket.empty()) {
      auto root = fs_->Stat("/");
      buckets.emplace_back(options_.root_bucket, root.ok() ? root->mtime_ns : 0);
    } else {
      auto top = fs_->List("/");
      if (!top.ok()) return ErrorReply("ListBuckets", FromStatus(top.status(), "NoSuchBucket"), "/", request_id);
      for (const auto& e : *top) {
        if (e.is_dir) buckets.emplace_back(e.path.substr(e.path.rfind('/') + 1), e.mtime_ns);
      }
    }
    std::string body = std::string("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"") +
                       kXmlns + "\"><Owner><ID>sluice</ID><DisplayName>sluice</DisplayName></Owner><Buckets>";
    for (const auto& [name, created] : buckets) {
      if (!caller.MayRead(name)) continue;
      // Object stores' directories have no time of their own: the gateway's start stands in.
      body += "<Bucket><Name>" + Xml(name) + "</Name><CreationDate>" + FormatIso8601(created > 0 ? created : started_ns_) +
              "</CreationDate></Bucket>";
    }
    body += "</Buckets></ListAllMyBucketsResult>\n";
    return XmlReply("ListBuckets", std::move(body));
  }

  Reply BucketLocation(const std::string&) {
    // us-east-1 is S3's empty LocationConstraint.
    std::string region = options_.region == "us-east-1" ? "" : options_.region;
    return XmlReply("GetBucketLocation", std::string("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"") +
                                             kXmlns + "\">" + Xml(region) + "</LocationConstraint>\n");
  }

  static Reply XmlReply(std::string operation, std::string body) {
    Reply r;
    r.operation = std::move(operation);
    r.headers.emplace_back("Content-Type", "application/xml");
    r.body = std::move(body);
    return r;
  }

  template <typename Fail>
  Reply ListObjects(const S3Request& req, const std::string& request_id, const Fail& fail) {
    (void)request_id;
    const bool v2 = req.Query("list-type") && *req.Query("list-type") == "2";
    const std::string op = v2 ? "ListObjectsV2" : "ListObjects";
    auto param = [&](const char* name) { return req.Query(name) ? *req.Query(name) : std::string(); };
    ListQuery q;
    q.prefix = param("prefix");
    q.delimiter = param("delimiter");
    if (const std::string* max = req.Query("max-keys")) {
      char* end = nullptr;
      errno = 0;
      long long n = std::strtoll(max->c_str(), &end, 10);
      if (max->empty() || *end != '\0' || errno != 0 || n < 0) {
        return fail(op, Error(400, "InvalidArgument", "max-keys '" + *max + "' is not a number of keys (0 or more)"));
      }
      q.max_keys = static_cast<size_t>(std::min<long long>(n, kMaxKeysLimit));
    }
    const bool url_encoding = param("encoding-type") == "url";
    if (req.Query("encoding-type") && !url_encoding) {
      return fail(op, Error(400, "InvalidArgument", "encoding-type '" + param("encoding-type") + "': only 'url' is known"));
    }
    std::string token;
    if (v2) {
      if (const std::string* t = req.Query("continuation-token")) {
        auto decoded = Unhex(*t);
        if (!decoded || t->empty()) {
          return fail(op, Error(400, "InvalidArgument", "the continuation-token is not one this gateway gave out"));
        }
        token = *t;
        q.after = *decoded;
      } else {
        q.after = param("start-after");
      }
    } else {
      q.after = param("marker");
    }
    const std::string bucket = req.bucket;
    auto page = ListKeys(q, [&](const std::string& dir) -> Result<std::vector<ListedEntry>> {
      std::string path = PathOf(bucket, dir.empty() ? "" : dir.substr(0, dir.size() - 1));
      if (path.size() > 1 && path.back() == '/') path.pop_back();
      SLUICE_ASSIGN_OR_RETURN(auto entries, fs_->List(path));
      std::vector<ListedEntry> out;
      out.reserve(entries.size());
      for (auto& e : entries) {
        out.push_back(ListedEntry{e.path.substr(e.path.rfind('/') + 1), e.is_dir, e.size, e.mtime_ns,
                                  e.is_dir ? "" : EtagOf(e.version)});
      }
      return out;
    });
    if (!page.ok()) return fail(op, FromStatus(page.status(), "NoSuchKey"));
    auto enc = [&](const std::string& s) { return Xml(url_encoding ? ufs::UriEncode(s, true) : s); };
    const bool owner = !v2 || param("fetch-owner") == "true";
    std::string body = std::string("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"") + kXmlns +
                       "\"><Name>" + Xml(bucket) + "</Name><Prefix>" + enc(q.prefix) + "</Prefix>";
    if (v2) {
      body += "<KeyCount>" + std::to_string(page->objects.size() + page->common_prefixes.size()) + "</KeyCount>";
      if (!token.empty()) body += "<ContinuationToken>" + token + "</ContinuationToken>";
      if (page->truncated) body += "<NextContinuationToken>" + Hex(page->last) + "</NextContinuationToken>";
      if (req.Query("start-after")) body += "<StartAfter>" + enc(param("start-after")) + "</StartAfter>";
    } else {
      body += "<Marker>" + enc(q.after) + "</Marker>";
      if (page->truncated) body += "<NextMarker>" + enc(page->last) + "</NextMarker>";
    }
    body += "<MaxKeys>" + std::to_string(q.max_keys) + "</MaxKeys>";
    if (!q.delimiter.empty()) body += "<Delimiter>" + enc(q.delimiter) + "</Delimiter>";
    if (url_encoding) body += "<EncodingType>url</EncodingType>";
    body += std::string("<IsTruncated>") + (page->truncated ? "true" : "false") + "</IsTruncated>";
    for (const auto& o : page->objects) {
      body += "<Contents><Key>" + enc(o.key) + "</Key><LastModified>" + FormatIso8601(o.mtime_ns) +
              "</LastModified><ETag>" + Xml(o.etag) + "</ETag><Size>" + std::to_string(o.size) + "</Size>";
      if (owner) body += "<Owner><ID>sluice</ID><DisplayName>sluice</DisplayName></Owner>";
      body += "<StorageClass>STANDARD</StorageClass></Contents>";
    }
    for (const auto& p : page->common_prefixes) body += "<CommonPrefixes><Prefix>" + enc(p) + "</Prefix></CommonPrefixes>";
    body += "</ListBucketResult>\n";
    return XmlReply(op, std::move(body));
  }

  template <typename Fail>
  Reply GetObject(const HttpHead& head, const S3Request& req, bool is_head, ChunkBuffer* chunk, const Fail& fail) {
    const std::string op = is_head ? "HeadObject" : "GetObject";
    if (req.Query("partNumber")) {
      return fail(op, Error(501, "NotImplemented",
                            "partNumber is not supported by sluice's gateway: ask for a byte Range instead"));
    }
    if (const std::string* version = req.Query("versionId"); version && *version != "null") {
      return fail(op, Error(501, "NotImplemented", "versionId: sluice serves the current version of each object only"));
    }
    const std::string path = PathOf(req.bucket, req.key);
    // A file that changes between the stat and the first read is opened once more.
    for (int attempt = 0;; ++attempt) {
      auto opened = fs_->Open(path);
      if (!opened.ok()) {
        if (opened.status().code() == StatusCode::kInvalidArgument) {  // a directory: no such object
          return fail(op, Error(404, "NoSuchKey", "no object '" + req.key + "' in bucket '" + req.bucket + "'"));
        }
        S3Error e = FromStatus(opened.status(), "NoSuchKey");
        if (e.code == "NoSuchKey") e.message = "no object '" + req.key + "' in bucket '" + req.bucket + "'";
        return fail(op, e);
      }
      std::unique_ptr<client::File> file = std::move(opened).value();
      const client::FileInfo& info = file->info();
      const std::string etag = EtagOf(info.version);
      const int64_t mtime_s = info.mtime_ns / 1000000000;
      Reply r;
      r.operation = op;
      r.headers.emplace_back("ETag", etag);
      r.headers.emplace_back("Last-Modified", FormatHttpDate(mtime_s));
      const int condition = EvaluateConditions(head, std::string_view(etag).substr(1, etag.size() - 2), mtime_s);
      if (condition == 412) {
        return fail(op, Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"));
      }
      if (condition == 304) {
        r.status = 304;
        r.head_only = true;
        return r;
      }
      r.headers.emplace_back("Accept-Ranges", "bytes");
      RangeOutcome range = ResolveRange(head.Header("range"), info.size);
      if (range.error) {
        Reply e = fail(op, *range.error);
        e.headers.emplace_back("Content-Range", "bytes */" + std::to_string(info.size));
        return e;
      }
      r.first = range.range ? range.range->first : 0;
      r.length = range.range ? range.range->last - range.range->first + 1 : info.size;
      if (range.range) {
        r.status = 206;
        r.headers.emplace_back("Content-Range", "bytes " + std::to_string(range.range->first) + "-" +
                                                    std::to_string(range.range->last) + "/" +
                                                    std::to_string(info.size));
      }
      std::string content_type = "application/octet-stream";
      for (const auto& [param, header] : {std::pair{"response-content-type", "Content-Type"},
                                          std::pair{"response-content-language", "Content-Language"},
                                          std::pair{"response-expires", "Expires"},
                                          std::pair{"response-cache-control", "Cache-Control"},
                                          std::pair{"response-content-disposition", "Content-Disposition"},
                                          std::pair{"response-content-encoding", "Content-Encoding"}}) {
        if (const std::string* v = req.Query(param)) {
          if (std::string_view(header) == "Content-Type") {
            content_type = *v;
          } else {
            r.headers.emplace_back(header, *v);
          }
        }
      }
      r.headers.emplace_back("Content-Type", content_type);
      if (is_head) {
        r.head_only = true;
        r.content_length = r.length;
        return r;
      }
      if (r.length > 0) {
        // The first chunk is read before any header goes out, so that a failure is S3's error.
        auto n = ReadChunk(*file, r.first, r.length, chunk, &r.first_spans);
        if (!n.ok() && n.status().code() == StatusCode::kStale && attempt == 0) continue;
        if (!n.ok()) return fail(op, FromStatus(n.status(), "NoSuchKey"));
        if (*n == 0) return fail(op, Error(503, "ServiceUnavailable", path + " ended before its size: it is changing"));
        r.first_count = *n;
        r.chunk = chunk;
        r.file = std::move(file);
      } else {
        r.head_only = true;  // an empty body: the headers are the whole answer
        r.content_length = 0;
      }
      return r;
    }
  }

  const GatewayOptions options_;
  const int64_t started_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  client::FileSystem* const fs_;
  const SigV4Verifier verifier_;
  rpc::ConnectionCount count_;
  const std::shared_ptr<GatewayMetrics> metrics_ = std::make_shared<GatewayMetrics>();
  std::atomic<uint64_t> next_request_id_{0};
  static std::vector<std::unique_ptr<asio::io_context>> MakeContexts(int threads) {
    std::vector<std::unique_ptr<asio::io_context>> out;
    for (int i = 0; i < std::max(1, threads); ++i) out.push_back(std::make_unique<asio::io_context>(1));
    return out;
  }
  std::vector<std::unique_ptr<asio::io_context>> contexts_ = MakeContexts(options_.threads);  // one per thread
  size_t next_context_ = 0;                                  // on contexts_[0]'s thread only
  tcp::acceptor acceptor_{*contexts_.front()};
  std::vector<std::thread> threads_;
  int port_ = 0;
};

}  // namespace

Result<std::unique_ptr<Gateway>> Gateway::Start(GatewayOptions options, client::FileSystem* fs) {
  auto gateway = std::make_unique<BeastGateway>(std::move(options), fs);
  SLUICE_RETURN_IF_ERROR(gateway->Listen());
  return std::unique_ptr<Gateway>(std::move(gateway));
}

}  // namespace sluice::gateway
