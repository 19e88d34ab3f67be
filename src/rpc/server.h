// RpcServer: accepts framed RPC connections (frame.h) on Boost.Asio with C++20 coroutines.
// Each connection must first say HELLO with the cluster secret, in a small frame and within
// the handshake timeout: nothing larger is allocated before that. Then each request frame is
// read as its bytes arrive (buffers grow with them, under a per-worker bound on bytes held)
// and handed to the Handler on a pool thread (handlers may block on disk and under-store
// I/O), which answers through a Responder. Replies never block a pool thread on a client
// that does not read: what the socket does not take at once is queued on the connection and
// written asynchronously, and a client that takes none of it within the I/O timeout is cut
// off. A malformed frame, a wrong secret or a timeout closes that connection only.
// Thread-safe; the destructor stops accepting and joins every thread.
#pragma once

#include <atomic>
#include <chrono>
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
  // A caller in this process (RpcClientOptions::in_process) lends its payload instead of
  // copying it into `payload`; Payload() is whichever holds it.
  std::string_view lent_payload;
  std::string_view Payload() const { return lent_payload.data() ? lent_payload : std::string_view(payload); }
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
  int handler_threads = 64;
  // Tried first, on the connection's I/O thread: answers the requests it can without blocking
  // (a cached stat) and returns true; the rest go to the pool of handler threads. Saves the
  // two thread hand-offs that cost a cheap request most of its time.
  std::function<bool(const Request& request, Responder& responder)> answer_inline = nullptr;
  std::chrono::milliseconds handshake_timeout{10000};  // from connect to a valid HELLO
  std::chrono::milliseconds idle_timeout{600000};      // no request for this long: closed
  std::chrono::milliseconds io_timeout{30000};         // a started frame must arrive, a reply be taken
  size_t max_connections = 1024;                       // beyond: refused with a reason
  uint64_t max_buffered_bytes = 256ull << 20;          // request and unsent reply bytes, all connections
};

// The largest READ one request may ask for: a reply is held whole when its client is slow,
// so its size is bounded (clients split longer reads).
inline constexpr uint64_t kMaxReadRequestBytes = 16ull << 20;

struct RpcServerStats {
  uint64_t connections = 0, auth_failures = 0, malformed_frames = 0, requests = 0;
  uint64_t refused_connections = 0, timeouts = 0;
};

class RpcServer {
 public:
  static Result<std::unique_ptr<RpcServer>> Start(RpcServerOptions options, Handler handler);
  virtual ~RpcServer() = default;
  virtual int port() const = 0;
  virtual RpcServerStats Stats() const = 0;
};

}  // namespace sluice::rpc
