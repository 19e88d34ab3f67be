// RpcClient: the blocking client side of the RPC protocol, for the CLI, FUSE and Python
// edges. It keeps a pool of authenticated connections to one worker and reuses them; a
// pooled connection found dead (worker restarted) is replaced transparently once. Errors
// reaching the worker are kUnavailable and retryable, naming host:port. A client living in
// the worker's own process (`sluice local --mountpoint`) can call the worker's handler
// directly: same frames and answers, no socket, and READ_DATA arrives without a copy.
// Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <google/protobuf/message_lite.h>

#include "common/status.h"
#include "rpc/frame.h"
#include "rpc/server.h"
#include "rpc/sluice_rpc.pb.h"
#include "ufs/under_store.h"

namespace sluice::rpc {

struct RpcClientOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string secret;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds io_timeout{120000};  // no byte moving for this long
  size_t max_idle_connections = 32;
  Handler in_process;  // when set, calls go to this handler in this process, not to host:port
};

class RpcClient {
 public:
  explicit RpcClient(RpcClientOptions options);
  ~RpcClient();
  RpcClient(const RpcClient&) = delete;
  RpcClient& operator=(const RpcClient&) = delete;

  // One request, one response header. For kRead, READ_DATA payloads go to `data` in order
  // before the final READ frame. `payload`: raw bytes sent with the request (kWrite). The
  // response's RpcStatus is turned into the returned Status.
  Status Call(FrameType type, const google::protobuf::MessageLite& request, google::protobuf::Message* response,
              const ufs::ByteSink* data = nullptr, std::string_view payload = {});

  std::string Endpoint() const { return options_.host + ":" + std::to_string(options_.port); }

 private:
  class Connection;
  Result<std::unique_ptr<Connection>> Connect();
  Status CallOn(Connection& c, FrameType type, const std::string& request, std::string_view payload,
                google::protobuf::Message* response, const ufs::ByteSink* data, bool* got_reply, bool* complete);
  Status CallInProcess(FrameType type, const std::string& request, std::string_view payload,
                       google::protobuf::Message* response, const ufs::ByteSink* data);

  const RpcClientOptions options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;  // GUARDED_BY(mu_)
  uint64_t next_request_id_ = 1;                    // GUARDED_BY(mu_)
};

// Status <-> RpcStatus.
void ToProto(const Status& st, RpcStatus* out);
Status FromProto(const RpcStatus& st);

}  // namespace sluice::rpc
