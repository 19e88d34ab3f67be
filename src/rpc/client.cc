// Blocking POSIX-socket client with a connection pool.
#include "rpc/client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice::rpc {

void ToProto(const Status& st, RpcStatus* out) {
  out->set_code(static_cast<int>(st.code()));
  out->set_message(st.message());
  out->set_retryable(st.retryable());
}

Status FromProto(const RpcStatus& st) {
  if (st.code() == 0) return Status::Ok();
  return Status(static_cast<StatusCode>(st.code()), st.message(), st.retryable());
}

class RpcClient::Connection {
 public:
  explicit Connection(int fd) : fd_(fd) {}
  ~Connection() { ::close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool WriteAll(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  std::string& payload_buffer() { return payload_; }

  bool ReadAll(char* p, size_t n) {
    while (n > 0) {
      ssize_t r = ::recv(fd_, p, n, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      p += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }

 private:
  int fd_;
  std::string payload_;
};

RpcClient::RpcClient(RpcClientOptions options) : options_(std::move(options)) {}
RpcClient::~RpcClient() = default;

Result<std::unique_ptr<RpcClient::Connection>> RpcClient::Connect() {
  auto unreachable = [&](const std::string& why) {
    return Status(StatusCode::kUnavailable, "cannot reach sluice worker at " + Endpoint() + ": " + why, true);
  };
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(options_.host.c_str(), std::to_string(options_.port).c_str(), &hints, &res); rc != 0) {
    return unreachable(gai_strerror(rc));
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ::freeaddrinfo(res);
    return unreachable(std::strerror(errno));
  }
  auto conn = std::make_unique<Connection>(fd);  // owns fd from here on
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  int rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
  ::freeaddrinfo(res);
  if (rc != 0 && errno != EINPROGRESS) return unreachable(std::strerror(errno));
  if (rc != 0) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(options_.connect_timeout.count())) != 1) return unreachable("connect timed out");
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return unreachable(std::strerror(err));
  }
  ::fcntl(fd, F_SETFL, flags);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv{static_cast<time_t>(options_.io_timeout.count() / 1000),
             static_cast<suseconds_t>((options_.io_timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

  HelloRequest hello;
  hello.set_secret(options_.secret);
  HelloResponse welcome;
  bool got_reply = false, complete = false;
  Status st = CallOn(*conn, FrameType::kHello, hello.SerializeAsString(), {}, &welcome, nullptr, &got_reply, &complete);
  if (!st.ok()) return st;
  return conn;
}

namespace {

// The status field every response message carries.
Status StatusOf(const google::protobuf::Message& response) {
  const auto* field = response.GetDescriptor()->FindFieldByName("status");
  return field ? FromProto(static_cast<const RpcStatus&>(response.GetReflection()->GetMessage(response, field)))
               : Status::Ok();
}

// Collects a handler's answer in this process: READ_DATA payloads go straight to the sink
// (a sink error stops the handler, as a vanished client would), the last frame is the reply.
class InProcessResponder final : public Responder {
 public:
  InProcessResponder(FrameType type, google::protobuf::Message* response, const ufs::ByteSink* data)
      : type_(type), response_(response), data_(data) {}

  Status Send(FrameType type, uint64_t, const google::protobuf::MessageLite& header,
              std::string_view payload) override {
    if (type == FrameType::kReadData && type_ == FrameType::kRead) {
      if (data_ && sink_status_.ok()) sink_status_ = (*data_)(payload);
      return sink_status_;
    }
    if (type != type_ || !response_->ParseFromString(header.SerializeAsString())) {
      reply_ = Corruption("unexpected answer from the in-process sluice worker");
    } else {
      reply_ = StatusOf(*response_);
    }
    answered_ = true;
    return Status::Ok();
  }

  Status Result() const {
    if (!sink_status_.ok()) return sink_status_;  // what stopped the stream
    if (!answered_) return Internal("the in-process sluice worker did not answer");
    return reply_;
  }

 private:
  const FrameType type_;
  google::protobuf::Message* const response_;
  const ufs::ByteSink* const data_;
  Status sink_status_, reply_;
  bool answered_ = false;
};

}  // namespace

Status RpcClient::CallOn(Connection& c, FrameType type, const std::string& request, std::string_view payload,
                         google::protobuf::Message* response, const ufs::ByteSink* data, bool* got_reply,
                         bool* complete) {
  auto lost = [&](const std::string& what) {
    return Status(StatusCode::kUnavailable, "lost connection to sluice worker at " + Endpoint() + " (" + what + ")",
                  true);
  };
  FrameHeader h;
  h.type = type;
  {
    std::lock_guard<std::mutex> lock(mu_);
    h.request_id = next_request_id_++;
  }
  h.header_len = static_cast<uint32_t>(request.size());
  h.payload_len = static_cast<uint32_t>(payload.size());
  std::string frame(kFrameHeaderSize, '\0');
  EncodeFrameHeader(h, frame.data());
  frame += request;
  if (!c.WriteAll(frame.data(), frame.size()) || !c.WriteAll(payload.data(), payload.size())) return lost("sending");
  Status sink_status;
  while (true) {
    char fixed[kFrameHeaderSize];
    if (!c.ReadAll(fixed, sizeof(fixed))) return lost(errno == EAGAIN ? "timed out" : "receiving");
    *got_reply = true;
    auto rh = DecodeFrameHeader(fixed);
    if (!rh.ok()) return rh.status().WithContext("bad frame from " + Endpoint());
    std::string header(rh->header_len, '\0');
    // The payload buffer lives with the connection and only grows, so a stream of 1 MiB
    // pages costs no allocation or zero-filling per frame.
    std::string& payload = c.payload_buffer();
    if (payload.size() < rh->payload_len) payload.resize(rh->payload_len);
    if (!c.ReadAll(header.data(), header.size()) || !c.ReadAll(payload.data(), rh->payload_len)) {
      return lost("receiving");
    }
    if (rh->type == FrameType::kReadData && type == FrameType::kRead) {
      if (data && sink_status.ok()) sink_status = (*data)(std::string_view(payload).substr(0, rh->payload_len));
      continue;  // keep draining so the connection stays usable
    }
    if (rh->type != type) return Corruption("unexpected frame type from " + Endpoint());
    if (!response->ParseFromString(header)) return Corruption("unparsable response from " + Endpoint());
    *complete = true;  // the exchange is over: the connection can serve the next call
    Status st = StatusOf(*response);
    if (!st.ok()) return st;
    return sink_status;
  }
}


Status RpcClient::CallInProcess(FrameType type, const std::string& request, std::string_view payload,
                                google::protobuf::Message* response, const ufs::ByteSink* data) {
  Request req;
  req.frame.type = type;
  req.frame.header_len = static_cast<uint32_t>(request.size());
  req.frame.payload_len = static_cast<uint32_t>(payload.size());
  req.header = request;
  req.lent_payload = payload.data() ? payload : std::string_view("", 0);
  InProcessResponder out(type, response, data);
  options_.in_process(req, out);
  return out.Result();
}

Status RpcClient::Call(FrameType type, const google::protobuf::MessageLite& request, google::protobuf::Message* response,
                       const ufs::ByteSink* data, std::string_view payload) {
  if (payload.size() > kMaxPayloadBytes) {
    return InvalidArgument("a request of " + std::to_string(payload.size()) + " bytes is over the limit of " +
                           std::to_string(kMaxPayloadBytes) + " (split it)");
  }
  std::string bytes = request.SerializeAsString();
  if (options_.in_process) return CallInProcess(type, bytes, payload, response, data);
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Connection> conn;
    bool pooled = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        conn = std::move(idle_.back());
        idle_.pop_back();
        pooled = true;
      }
    }
    if (!conn) {
      SLUICE_ASSIGN_OR_RETURN(conn, Connect());
    }
    bool got_reply = false, complete = false;
    Status st = CallOn(*conn, type, bytes, payload, response, data, &got_reply, &complete);
    if (complete) {
      std::lock_guard<std::mutex> lock(mu_);
      if (idle_.size() < options_.max_idle_connections) idle_.push_back(std::move(conn));
      return st;
    }
    // A pooled connection that died before answering (e.g. the worker restarted): try a new
    // one. The other idle ones date from before the same event, so they go too.
    if (!(pooled && !got_reply)) return st;
    std::lock_guard<std::mutex> lock(mu_);
    idle_.clear();
  }
  return Status(StatusCode::kUnavailable, "cannot reach sluice worker at " + Endpoint(), true);
}

}  // namespace sluice::rpc
