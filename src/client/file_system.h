// FileSystem: how FUSE, the gateway, the CLI and Python reach sluice. It talks to a worker
// over RPC (pooled connections) and, when the worker cannot be reached and fallback is on,
// reads straight from the under-store using the cluster's mount table, so a cache outage
// never fails a read the under-store can serve. File::ReadAt has pread semantics; sequential
// readers get read-ahead, bounded per handle and across the process. Thread-safe; a File is
// safe for concurrent ReadAt calls.
#pragma once

#include <atomic>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cluster/cluster_store.h"
#include "common/config.h"
#include "rpc/client.h"
#include "ufs/under_store.h"

namespace sluice::client {

struct FileInfo {
  std::string path;
  bool is_dir = false;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string version;
};

struct ClientOptions {
  rpc::RpcClientOptions worker;      // host, port, secret
  bool fallback_to_ufs = true;       // read the under-store directly when the worker is down
  bool short_circuit = true;         // with a worker on this host, read its page files directly
  cluster::ClusterStore* cluster = nullptr;  // mount table for the fallback; must outlive the client
  UfsConfig ufs;                     // retries and timeouts for the fallback
  uint64_t readahead_chunk = 8ull << 20;
  uint64_t readahead_per_handle = 32ull << 20;
  uint64_t readahead_total = 256ull << 20;
};

struct ClientStats {
  uint64_t fallback_reads = 0, readahead_hits = 0, readahead_bytes = 0, short_circuit_bytes = 0;
};

class File;

class FileSystem {
 public:
  explicit FileSystem(ClientOptions options);
  ~FileSystem();
  FileSystem(const FileSystem&) = delete;
  FileSystem& operator=(const FileSystem&) = delete;

  Result<FileInfo> Stat(const std::string& path);
  Result<std::vector<FileInfo>> List(const std::string& path);
  // Streams [offset, offset + length) of a file to `sink`.
  Result<uint64_t> Read(const std::string& path, uint64_t offset, uint64_t length, const ufs::ByteSink& sink);
  Result<std::unique_ptr<File>> Open(const std::string& path);

  // Cache administration (worker only; no fallback).
  Result<uint64_t> Sync(const std::string& path);
  Result<rpc::PathResponse> Free(const std::string& path);
  Result<rpc::PathResponse> CheckCached(const std::string& path);
  Result<std::string> Load(const std::string& path);
  Result<rpc::JobStatus> JobStatus(const std::string& job_id);
  Result<rpc::JobStatus> CancelJob(const std::string& job_id);
  Result<rpc::ReportResponse> Report();

  ClientStats Stats() const;
  const ClientOptions& options() const { return options_; }

 private:
  friend class File;
  // The under-store and key for `path`, for the fallback.
  Result<std::pair<ufs::UnderStore*, std::string>> Direct(const std::string& path);
  static bool WorkerDown(const Status& st);
  Result<uint64_t> DirectRead(const std::string& path, uint64_t offset, uint64_t length, const ufs::ByteSink& sink);
  bool ShortCircuitPossible() const;
  // Reads [offset, offset + length) of `info`'s file (clipped at its end) into `out`: from the
  // worker's page files where they exist (verifying each), the rest over RPC. Page files in
  // [hint_from, hint_to) are announced to the kernel (WILLNEED) so a sequential reader finds
  // them in memory. kStale when the file's version moved on.
  // `memo` keeps the most recent page read only in part, so small sequential reads (FUSE
  // sends 128 KiB) read and verify each page file once.
  struct PageMemo {
    std::string data;
    uint64_t index = UINT64_MAX;
    uint64_t page_size = 0;
  };
  Result<size_t> ReadShortCircuit(const FileInfo& info, uint64_t offset, uint64_t length, uint64_t hint_from,
                                  uint64_t hint_to, char* out, PageMemo* memo);

  const ClientOptions options_;
  rpc::RpcClient rpc_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<ufs::UnderStore>> direct_;  // GUARDED_BY(mu_): by mount URI
  std::atomic<uint64_t> readahead_in_use_{0};
  std::atomic<uint64_t> fallback_reads_{0}, readahead_hits_{0}, readahead_bytes_{0}, short_circuit_bytes_{0};
};

class File {
 public:
  ~File();
  const FileInfo& info() const { return info_; }
  // Reads up to `length` bytes at `offset` into `out`; fewer at the end of the file.
  Result<size_t> ReadAt(uint64_t offset, size_t length, char* out);

 private:
  friend class FileSystem;
  File(FileSystem* fs, FileInfo info) : fs_(fs), info_(std::move(info)) {}

  struct Chunk {
    uint64_t offset = 0;
    std::shared_future<Result<std::string>> data;
    uint64_t reserved = 0;  // bytes charged to the global read-ahead budget
  };
  Result<std::string> Fetch(uint64_t offset, uint64_t length);
  void Prefetch(uint64_t from);  // REQUIRES(mu_)

  FileSystem* const fs_;
  const FileInfo info_;
  std::mutex mu_;
  uint64_t next_sequential_ = 0;  // GUARDED_BY(mu_)
  uint64_t hinted_until_ = 0;     // GUARDED_BY(mu_): page files up to here were announced
  FileSystem::PageMemo memo_;     // GUARDED_BY(mu_): short-circuit: the last page read in part
  std::vector<Chunk> chunks_;     // GUARDED_BY(mu_): read-ahead, in offset order
};

}  // namespace sluice::client
