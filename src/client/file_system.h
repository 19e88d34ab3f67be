// FileSystem: how FUSE, the gateway, the CLI and Python reach sluice. It talks to a worker
// over RPC (pooled connections) and, when the worker cannot be reached and fallback is on,
// reads straight from the under-store using the cluster's mount table, so a cache outage
// never fails a read the under-store can serve. File::ReadAt has pread semantics and takes
// the cheapest way there is: pages in place from a worker in this process; verified page files
// of a worker on this host (short-circuit); else RPC, with read-ahead bounded per handle and
// across the process. Writer writes a file through the worker (mounts that take writes).
// Thread-safe; a File is safe for concurrent ReadAt calls.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cache/page_buffers.h"
#include "client/file_info.h"
#include "client/listing_cache.h"
#include "client/router.h"
#include "cluster/cluster_store.h"
#include "common/config.h"
#include "common/unique_fd.h"
#include "rpc/client.h"
#include "ufs/under_store.h"

namespace sluice::client {

// Entries per LIST request when a client pages through a directory.
constexpr size_t kListPageEntries = 5000;

// A sluice worker in this process (the mount of `sluice local`) that hands out its cached
// pages shared, without a copy: Worker::ReadPages.
using SharedPage = cache::PageData;
using PageSink = std::function<Status(const SharedPage& page, size_t from, size_t length)>;
using InProcessPages = std::function<Result<uint64_t>(const std::string& path, const std::string& version,
                                                      uint64_t offset, uint64_t length, uint64_t prefetch_to,
                                                      const PageSink& sink)>;

struct ClientOptions {
  rpc::RpcClientOptions worker;      // host, port, secret
  bool fallback_to_ufs = true;       // read the under-store directly when the worker is down
  bool short_circuit = true;         // with a worker on this host, read its page files directly
  cluster::ClusterStore* cluster = nullptr;  // mount table for the fallback; must outlive the client
  UfsConfig ufs;                     // retries and timeouts for the fallback
  uint64_t readahead_chunk = 8ull << 20;
  uint64_t readahead_per_handle = 128ull << 20;
  uint64_t readahead_total = 256ull << 20;
  InProcessPages in_process_pages;   // when set, file reads take pages from it
  // Directory pages listed through this client answer Stat of the names they cover, for this
  // long (0: off; FUSE sets its attribute timeout) within this many bytes: see ListingCache.
  std::chrono::nanoseconds listing_ttl{0};
  uint64_t listing_memory = 64ull << 20;
  // A cluster of several workers (a store on etcd): each request goes to the workers that
  // placement names for its path (and span of a large file), failing over to the next one
  // and then to the under-store; admin requests go to every worker. Off: `worker` serves all.
  bool cluster_routing = false;
  uint64_t placement_span = 64ull << 20;
};

// Part of a read's result, for callers that can send it without copying (FUSE): `length`
// bytes at `offset` of an open, verified page file (spliced), or of a page in this process's
// worker, or (neither) the same stretch of the read's buffer.
struct ReadSpan {
  UniqueFd fd;
  SharedPage page;
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct ClientStats {
  uint64_t fallback_reads = 0, readahead_hits = 0, readahead_bytes = 0, short_circuit_bytes = 0;
  ListingCache::Stats listings;
};

class File;
class Writer;

class FileSystem {
 public:
  explicit FileSystem(ClientOptions options);
  ~FileSystem();
  FileSystem(const FileSystem&) = delete;
  FileSystem& operator=(const FileSystem&) = delete;

  // From a page this client listed when one covers the name (ClientOptions::listing_ttl),
  // else from the worker.
  Result<FileInfo> Stat(const std::string& path);
  // A whole directory, by name, fetched kListPageEntries at a time.
  Result<std::vector<FileInfo>> List(const std::string& path);
  // One page of a directory: at most `limit` entries whose names sort after `start_after`
  // ("": from the first), by name; *more says whether others follow. The worker pages through
  // its cached listing by that cursor, so reading a directory page by page stays linear.
  // Without a worker (fallback) the rest of the directory comes as one page.
  Result<std::vector<FileInfo>> ListPage(const std::string& path, const std::string& start_after, size_t limit,
                                         bool* more);
  // Streams [offset, offset + length) of a file to `sink`. `disk_only`: see ReadRequest.
  // `file_size` (0: unknown) lets a cluster client send each span of a large file to its owner.
  Result<uint64_t> Read(const std::string& path, uint64_t offset, uint64_t length, const ufs::ByteSink& sink,
                        bool disk_only = false, uint64_t file_size = 0);
  Result<std::unique_ptr<File>> Open(const std::string& path);

  // Writes, on mounts that take them (kNotSupported elsewhere). With `truncate` the file
  // starts empty; without, the writer changes the content there.
  Result<std::unique_ptr<Writer>> OpenForWrite(const std::string& path, bool truncate);
  // A file, or with `directory` an empty directory.
  Status Remove(const std::string& path, bool directory);
  Status Mkdir(const std::string& path);
  Status Rename(const std::string& from, const std::string& to);
  // Waits until what was written at or below `path` on write-back mounts is in the under-store.
  Status Flush(const std::string& path);

  // Cache administration (worker only; no fallback).
  Result<uint64_t> Sync(const std::string& path);
  Result<rpc::PathResponse> Free(const std::string& path);
  Result<rpc::PathResponse> CheckCached(const std::string& path);
  // Starts a load job; `replicas` > 0 overrides the mount's copy count (a cluster).
  Result<std::string> Load(const std::string& path, int replicas = 0);
  Result<rpc::JobStatus> JobStatus(const std::string& job_id);
  Result<rpc::JobStatus> CancelJob(const std::string& job_id);
  Result<rpc::ReportResponse> Report();
  // Every worker's report (one worker's without cluster routing); a worker that cannot be
  // reached gets a report with only its id and the error in its status.
  std::vector<rpc::ReportResponse> ReportAll();

  // Forgets what listed pages say about `path` and below (the worker re-listed them).
  void DropListed(const std::string& path) { listings_.Drop(path); }

  ClientStats Stats() const;
  const ClientOptions& options() const { return options_; }
  // The cluster's workers and placement; nullptr without cluster routing.
  Router* router() { return router_.get(); }

 private:
  friend class File;
  friend class Writer;
  // Forgets what listed pages say of `path` and its directory: it changed.
  void Changed(const std::string& path);
  Result<FileInfo> StatFromWorker(const std::string& path);
  // The under-store and key for `path`, for the fallback.
  Result<std::pair<ufs::UnderStore*, std::string>> Direct(const std::string& path);
  static bool WorkerDown(const Status& st) { return Router::Unreachable(st); }
  // Sends a request about `key` (a placement key of `path`) to the worker that serves it:
  // `call` runs with each candidate in turn while the last could not be reached (those are
  // marked down); the last Status is returned. Without routing, `call` runs with `rpc_`.
  // `spread`: data reads take turns among the mount's copies; everything else (metadata,
  // writes) goes to the first owner, so one worker holds a path's current state.
  Status Routed(std::string_view key, const std::string& path,
                const std::function<Status(const std::shared_ptr<rpc::RpcClient>&)>& call, bool spread = false);
  // Runs `call` with every worker (or `rpc_`), stopping at the first error but one of
  // reaching a worker.
  Status Broadcast(const std::function<Status(rpc::RpcClient&)>& call);
  Result<rpc::PathResponse> CacheQuery(rpc::FrameType type, const std::string& path);
  Result<rpc::JobStatus> JobCall(rpc::FrameType type, const std::string& job_id);
  Result<uint64_t> DirectRead(const std::string& path, uint64_t offset, uint64_t length, const ufs::ByteSink& sink);
  bool ShortCircuitPossible() const;
  // A page file of the worker's disk tier, as LOCATE reports it.
  struct PageRef {
    uint64_t index = 0;
    std::string file;
    uint64_t length = 0;
    uint64_t seed = 0;
  };
  // Asks the worker where the cached pages of [offset, end) of `info`'s file are; with
  // `prefetch_from` < end, the worker also starts fetching the missing ones from there on.
  // kStale when the file's version moved on.
  Result<std::vector<PageRef>> Locate(const FileInfo& info, uint64_t offset, uint64_t end, uint64_t prefetch_from,
                                      uint64_t* page_size);

  const ClientOptions options_;
  const std::shared_ptr<rpc::RpcClient> rpc_;  // the worker of options_.worker
  std::unique_ptr<Router> router_;
  ListingCache listings_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<ufs::UnderStore>> direct_;  // GUARDED_BY(mu_): by mount URI
  std::atomic<uint64_t> readahead_in_use_{0};
  std::atomic<uint64_t> fallback_reads_{0}, readahead_hits_{0}, readahead_bytes_{0}, short_circuit_bytes_{0};
  std::atomic<uint64_t> fallback_reported_{0};  // of fallback_reads_, told to the worker (Report)
};

class File {
 public:
  ~File();
  const FileInfo& info() const { return info_; }
  // Reads up to `length` bytes at `offset` into `out`; fewer at the end of the file. With
  // `spans`, cached pages may come back as shared pages or (with `page_files`) open page files
  // instead of being copied into `out`; `spans` then lists the result in order (empty: all in
  // `out`).
  Result<size_t> ReadAt(uint64_t offset, size_t length, char* out, std::vector<ReadSpan>* spans = nullptr,
                        bool page_files = true);

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
  // Same host as the worker: reads [offset, offset + length) from its page files, verifying
  // each, and over RPC what is not cached.
  Result<size_t> ReadShortCircuit(uint64_t offset, size_t length, char* out, std::vector<ReadSpan>* spans);
  // From the worker in this process (ClientOptions::in_process_pages).
  Result<size_t> ReadInProcess(uint64_t offset, size_t length, char* out, std::vector<ReadSpan>* spans);
  // Notes a read of [offset, end); true when it continues a sequential run. A handle's reads
  // run in parallel (the kernel's read-ahead sends many at once, out of order), so "sequential"
  // means within one read-ahead window (readahead_per_handle) of the furthest read. REQUIRES(mu_)
  bool NoteRead(uint64_t offset, uint64_t end);
  // Fills out[from - offset, to - offset) over RPC.
  Status FillOverRpc(uint64_t offset, uint64_t from, uint64_t to, char* out);

  FileSystem* const fs_;
  const FileInfo info_;
  std::mutex mu_;
  uint64_t next_sequential_ = 0;  // GUARDED_BY(mu_)
  uint64_t furthest_read_ = 0;    // GUARDED_BY(mu_): see NoteRead
  // Short-circuit state.
  uint64_t page_size_ = 0;      // GUARDED_BY(mu_): 0 until the first LOCATE
  // Page files located ahead of a sequential reader, so it asks the worker once per half
  // window rather than once per read; an evicted one is dropped when its open fails.
  std::map<uint64_t, FileSystem::PageRef> located_;  // GUARDED_BY(mu_): by page index
  uint64_t located_until_ = 0;                        // GUARDED_BY(mu_)
  // The page read last in part, so small sequential reads read and verify a page file once.
  std::string memo_;                 // GUARDED_BY(mu_)
  uint64_t memo_index_ = UINT64_MAX;  // GUARDED_BY(mu_)
  std::vector<Chunk> chunks_;     // GUARDED_BY(mu_): read-ahead, in offset order
};

// A file open for writing: its bytes go to the worker, which stages them on its disk and
// uploads them in parts as they come; Commit (fsync) and Close return once the file is in the
// under-store and cached. Close-to-open: readers that open it after Close see the new
// version. Destroying a Writer that was not closed drops its writes. Thread-safe.
class Writer {
 public:
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  const std::string& path() const { return path_; }
  // The size as written so far.
  uint64_t size() const { return size_; }
  Status Write(uint64_t offset, std::string_view data);
  Status Truncate(uint64_t size);
  // The file as written so far into the under-store (with `durable` false, on a write-back
  // mount: into its journal); the writer stays open. Nothing is uploaded again when nothing
  // changed since the last commit.
  Result<FileInfo> Commit(bool durable = true);
  // Commit, then the handle is released (also when the commit failed: the error is the caller's).
  Result<FileInfo> Close();

 private:
  friend class FileSystem;
  Writer(FileSystem* fs, std::shared_ptr<rpc::RpcClient> rpc, std::string path, uint64_t handle, uint64_t size,
         bool dirty)
      : fs_(fs), rpc_(std::move(rpc)), path_(std::move(path)), handle_(handle), size_(size), dirty_(dirty) {}
  Result<FileInfo> Finish(bool release, bool durable);

  FileSystem* const fs_;
  const std::shared_ptr<rpc::RpcClient> rpc_;  // the worker that holds the handle
  const std::string path_;
  const uint64_t handle_;
  std::atomic<uint64_t> size_;
  std::atomic<bool> closed_{false};
  std::mutex mu_;
  bool dirty_;                  // GUARDED_BY(mu_): written since the last commit
  std::optional<FileInfo> committed_;  // GUARDED_BY(mu_): what the last commit made
};

}  // namespace sluice::client
