// Gateway: sluice's S3 door. An HTTP/1.1 server (Boost.Beast; keep-alive, pipelined requests
// answered in order) that serves the cached namespace to any S3 client: the namespace's
// top-level directories are buckets (or, with a mount at "/", one bucket named in the options
// is the root), and GetObject, HeadObject, ListObjects v1/v2, ListBuckets, HeadBucket and
// GetBucketLocation read through a client::FileSystem, so they take the cache's pages, and
// the under-store directly when the worker cannot serve. Requests are verified with SigV4.
// PutObject (streamed, checked against the signed payload hash) and DeleteObject go through
// the client's write path; a read-only mount answers AccessDenied. Each connection holds at
// most one read chunk (or a 1 MiB upload buffer) of memory; a client that stops reading is
// cut off after the I/O timeout. Thread-safe; the destructor stops it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "client/file_system.h"
#include "common/status.h"
#include "gateway/sigv4_verify.h"

namespace sluice::gateway {

struct GatewayOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: the kernel picks one
  SigV4VerifierOptions auth;
  // When set, the bucket of this name is the namespace's root (`sluice local --ufs URI`
  // mounts at "/"), and it is the only bucket; else buckets are the top-level directories.
  std::string root_bucket;
  std::string region = "us-east-1";  // what GetBucketLocation answers
  std::chrono::milliseconds io_timeout{std::chrono::seconds(30)};    // a request head, a reply chunk taken
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};  // between kept-alive requests
  size_t max_connections = 512;  // beyond: 503 SlowDown, then closed
  int threads = 16;              // requests served at once (each may wait on the cache)
  size_t read_chunk = 8 << 20;   // bytes of an object read from the cache per step
  // Where the parts of multipart uploads wait for their completion ("": no multipart uploads).
  std::string upload_dir;
};

class Gateway {
 public:
  // Listens and serves. `fs` must outlive the gateway.
  static Result<std::unique_ptr<Gateway>> Start(GatewayOptions options, client::FileSystem* fs);
  virtual ~Gateway() = default;
  virtual int port() const = 0;
  // Requests by operation and status, bytes sent and a latency histogram, in Prometheus text.
  virtual std::string Metrics() const = 0;
  // A function giving Metrics(); it stays valid after the gateway is destroyed.
  virtual std::function<std::string()> MetricsSource() const = 0;
};

}  // namespace sluice::gateway
