// RpcServer: accepts framed RPC connections (frame.h) on Boost.Asio with C++20 coroutines.
// Each connection must first say HELLO with the cluster secret; then each request frame is
// handed to the Handler on a pool thread (handlers may block on disk and under-store I/O),
// which answers through a Responder. A malformed frame or a wrong secret closes that
// connection only. Thread-safe; the destructor stops accepting and joins every thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <google/protobuf/message_lite.h>

#include "common/status.h"
#include "rpc/frame.h"

namespace sluice::rpc {

struct Request {
  FrameHeader frame;
  std::string header;   // serialized protobuf of the request type
  std::string payload;  // raw bytes, usually empty for requests
};

// Writes response frames on one connection. Used by one handler at a time.
class Responder {
 public:
  virtual ~Responder() = default;
  // Sends one frame; fails when the client went away.
  virtual Status Send(FrameType type, uint64_t request_id, const google::protobuf::MessageLite& header,
                      std::string_view payload = {}) = 0;
};

using Handler = std::function<void(const Request& request, Responder& responder)>;

struct RpcServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: the kernel picks one (see port())
  std::string secret;
  std::string worker_id;
  int handler_threads = 16;
};

struct RpcServerStats {
  uint64_t connections = 0, auth_failures = 0, malformed_frames = 0, requests = 0;
};

class RpcServer {
 public:
  static Result<std::unique_ptr<RpcServer>> Start(RpcServerOptions options, Handler handler);
  virtual ~RpcServer() = default;
  virtual int port() const = 0;
  virtual RpcServerStats Stats() const = 0;
};

}  // namespace sluice::rpc
