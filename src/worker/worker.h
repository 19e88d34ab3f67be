// Worker: one per node. It owns the page store, and for each mount of the cluster's mount
// table an under-store (with request counters), a metadata cache and a miss path; it serves
// namespace operations (stat, list, read, write, sync, free, check-cached, load jobs, report) to
// in-process callers and, through its RPC and HTTP endpoints, to everyone else. The mount
// table is re-read from the cluster store whenever it changes. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cache/cached_reader.h"
#include "cache/metadata_cache.h"
#include "cache/page_store.h"
#include "client/router.h"
#include "cluster/cluster_store.h"
#include "common/config.h"
#include "rpc/server.h"
#include "rpc/sluice_rpc.pb.h"
#include "ufs/counting_store.h"
#include "worker/write_journal.h"

namespace sluice::worker {

class FileWriter;
class JobManager;
class Prefetcher;
class HttpEndpoint;

// A file or directory of the namespace, as the worker reports it.
struct Entry {
  std::string path;  // namespace path
  bool is_dir = false;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string version;
};

struct CacheUsage {
  uint64_t files = 0, bytes = 0, cached_bytes = 0;
};

class Worker {
 public:
  // Opens the page store, reads the mount table and starts the RPC and HTTP endpoints.
  // `store` must outlive the worker.
  static Result<std::unique_ptr<Worker>> Start(const Config& config, cluster::ClusterStore* store, std::string id);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  const std::string& id() const { return id_; }
  int rpc_port() const;
  int http_port() const;
  cluster::WorkerInfo Info() const;

  Result<Entry> Stat(const std::string& path);
  // Stat() when the metadata cache answers it at once (fresh, in memory); else nothing.
  std::optional<Result<Entry>> TryStat(const std::string& path);
  // The entries of a directory whose names sort after `start_after` ("": from the first), at
  // most `limit` (0: all), by name; *more says whether others follow.
  Result<std::vector<Entry>> List(const std::string& path, const std::string& start_after = "", size_t limit = 0,
                                  bool* more = nullptr);
  // Reads a file through the cache; bytes go to `sink` in order.
  Result<uint64_t> Read(const std::string& path, uint64_t offset, uint64_t length, const ufs::ByteSink& sink,
                        bool disk_only = false);
  // The cached pages of [offset, offset + length) that lie in page files on this host. With
  // `prefetch`, the missing pages from `prefetch_from` on are fetched in the background.
  Result<rpc::LocateResponse> Locate(const std::string& path, uint64_t offset, uint64_t length, bool prefetch = false,
                                     uint64_t prefetch_from = 0);
  // For a reader in this process (the mount of `sluice local`): the pages of [offset, offset +
  // length) of `path`, shared rather than copied, from memory, from disk (verified, then kept
  // in memory) or fetched. kStale when the file is no longer at `version`. With `prefetch_to`
  // beyond the range, the missing pages up to there are fetched in the background.
  Result<uint64_t> ReadPages(const std::string& path, const std::string& version, uint64_t offset, uint64_t length,
                             uint64_t prefetch_to, const cache::CachedReader::PageSink& sink);
  // Drops cached metadata below `path`; files found changed lose their cached pages.
  Result<uint64_t> Sync(const std::string& path);
  // Called with the normalized path after each SYNC request (`sluice fs sync`): the mount in
  // this process tells the kernel to forget what it cached there. Must outlive the worker.
  void set_sync_listener(std::function<void(const std::string& path)> listener);
  // Drops the cached pages of every file below `path`.
  Result<CacheUsage> Free(const std::string& path);
  // How much of every file below `path` is cached.
  Result<CacheUsage> CheckCached(const std::string& path);

  // Writes, on mounts with a write mode (elsewhere kNotSupported, which FUSE answers EROFS).
  // A handle for writing `path`; *size is its size to begin with: 0 with `truncate`, else
  // that of the content there, which is staged first (writes then change it in place).
  Result<uint64_t> OpenWrite(const std::string& path, bool truncate, uint64_t* size);
  // Writes or truncates what the handle stages; the file's size after.
  Result<uint64_t> WriteAt(uint64_t handle, uint64_t offset, std::string_view data);
  Result<uint64_t> TruncateWrite(uint64_t handle, uint64_t size);
  // With `commit` (close, fsync): uploads what the handle wrote, and returns once the store
  // holds it, its pages are cached and every reader of this worker sees the new version (the
  // old one's pages are freed). With `release`: forgets the handle (without commit, its
  // writes are dropped).
  // On a write-back (async) mount a commit returns once the file is in the journal on the
  // cache disk (readers see it already), and uploads it in the background; with `durable`
  // (fsync) it waits for the upload too.
  Result<Entry> CloseWrite(uint64_t handle, bool commit, bool release, bool durable = false);
  // Waits until the write-back files at or below `path` are in the under-store; kUnavailable,
  // with the last failure, when they are not within the RPC I/O timeout.
  Status Flush(const std::string& path);
  // Removes a file, or with `directory` an empty directory (kNotEmpty otherwise).
  Status Remove(const std::string& path, bool directory);
  Status MakeDirectory(const std::string& path);
  // Renames a file within a mount (see UnderStore::Rename for what is atomic).
  Status Rename(const std::string& from, const std::string& to);

  // Load jobs: preload a tree into the cache in the background.
  // `replicas` > 0: that many copies of each page across the cluster, else the mount's count.
  Result<std::string> StartLoad(const std::string& path, int replicas = 0);
  // In a cluster: caches a range of a listed file here (see LoadRangeRequest).
  Result<rpc::PathResponse> LoadRange(const rpc::LoadRangeRequest& request);
  Result<rpc::JobStatus> JobStatus(const std::string& job_id);
  Status CancelJob(const std::string& job_id);

  rpc::ReportResponse Report();
  // The same counters in Prometheus text format, followed by those of `source` (below).
  std::string Metrics();
  // More metrics for /metrics, from a part of this process (the S3 gateway); nullptr: none.
  // Called on the HTTP endpoint's thread; must outlive the worker or be reset first.
  void set_metrics_source(std::function<std::string()> source);

  // Internal: a mount's live state, shared with running jobs.
  struct MountState;

  // Answers one RPC request: the RPC server's handler, and an in-process client's.
  void HandleRpc(const rpc::Request& request, rpc::Responder& responder);
  // Answers a request that needs no waiting (a stat the metadata cache holds fresh) and
  // returns true; false leaves it to HandleRpc (RpcServerOptions::answer_inline).
  bool AnswerInline(const rpc::Request& request, rpc::Responder& responder);

 private:
  Worker(Config config, cluster::ClusterStore* store, std::string id);
  Result<std::shared_ptr<MountState>> StateFor(const cluster::MountPoint& mount);
  // Resolves a namespace path to its mount state and key, reloading the table if it changed.
  Result<std::pair<std::shared_ptr<MountState>, std::string>> Resolve(const std::string& path);
  // A file to read: its mount state, key and (cached) stat; an error for a directory.
  struct ResolvedFile {
    std::shared_ptr<MountState> state;
    std::string key;
    ufs::ObjectInfo info;
  };
  Result<ResolvedFile> ResolveFile(const std::string& path);
  // The entries of `path` in the mount that holds it (none for a path that only holds mount
  // points).
  Result<std::vector<Entry>> ListMount(const std::string& path, const std::string& start_after, size_t limit,
                                       bool* more);
  // For a path above some mount points but inside none ("/" with only /data mounted): the
  // next component of each mount below it; nullopt when no mount lies below.
  std::optional<std::vector<std::string>> MountsBelow(const std::string& path);
  // Every file below `path` (or the file itself).
  Result<std::vector<std::pair<std::shared_ptr<MountState>, ufs::ObjectInfo>>> FilesBelow(const std::string& path);
  // Queues read-ahead of the pages of `info` from `first` to `last` (inclusive) that are not
  // cached, each stretch once however often readers ask (they ask with every read). `memory`:
  // whether the pages are kept in the memory tier too (the reader will want them from there).
  void QueuePrefetch(const std::shared_ptr<MountState>& state, const ufs::ObjectInfo& info, uint64_t first,
                     uint64_t last, bool memory);
  // Cluster loads (cluster_load.cc): loads a piece of a listed file on its owners, the first
  // from the under-store and the other replicas from that one; returns the bytes read from the
  // under-store and adds the piece's cached bytes (on the first owner) to *cached.
  Result<uint64_t> LoadOnOwners(const std::shared_ptr<MountState>& state, const ufs::ObjectInfo& info,
                                uint64_t offset, uint64_t length, int replicas, std::atomic<uint64_t>* cached);
  Result<rpc::PathResponse> LoadRangeOn(const client::Router::Target& target, const rpc::LoadRangeRequest& request);
  // Caches the range of `file` that a peer worker (host:port) holds.
  Status CopyFromPeer(const std::shared_ptr<MountState>& state, const cache::CachedFile& file, uint64_t offset,
                      uint64_t length, const std::string& peer);
  // Writes (writes.cc).
  struct OpenFile;
  // The mount state and key of `path` when its mount takes writes; kNotSupported otherwise.
  Result<std::pair<std::shared_ptr<MountState>, std::string>> ResolveWritable(const std::string& path);
  Result<std::shared_ptr<OpenFile>> WriterFor(uint64_t handle);
  // Where files open for writing are staged: beside the first disk tier ("" without one).
  std::string StagingDir() const;
  // Where write-back files wait for their upload (beside the first disk tier).
  std::string JournalDir() const;
  // Keeps what `writer` wrote as a journal entry, shown to readers and queued for upload.
  Result<JournalEntry> Journal(const std::shared_ptr<MountState>& state, const std::string& key, FileWriter& writer);
  // At start: the journal's entries, shown and queued again.
  void RecoverJournal();
  // The upload thread: journal entries, oldest due first, retried with back-off.
  void UploadLoop();
  Status UploadJournaled(const JournalEntry& entry);
  // Puts the pages of a file just written (`read` gives its bytes) into the cache under
  // `info`'s version, and its stat into the metadata cache.
  void CacheWritten(const std::shared_ptr<MountState>& state, const ufs::ObjectInfo& info,
                    const std::function<Status(uint64_t offset, uint64_t length, char* out)>& read);
  // After `key` changed in the store: forgets its metadata (and its parent's listing) and the
  // pages of versions other than `kept_version`.
  void ForgetChanged(const std::shared_ptr<MountState>& state, const std::string& key, const std::string& kept_version);
  std::string WithWorkerLabel(const std::string& metrics_text) const;
  // The HTTP endpoint's pages: /metrics, /api/v1/report, /api/v1/jobs/ID. Sets the content type.
  Result<std::string> HttpGet(const std::string& target, std::string* content_type);

  const Config config_;
  cluster::ClusterStore* const cluster_;
  const std::string id_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::unique_ptr<cache::PageStore> pages_;

  std::mutex mu_;
  std::string mounts_version_;                                // GUARDED_BY(mu_)
  cluster::MountTable table_;                                 // GUARDED_BY(mu_)
  std::map<std::string, std::shared_ptr<MountState>> states_;  // GUARDED_BY(mu_): by mount path
  // Per file (by id), the page up to which read-ahead was already queued.
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> prefetched_until_;  // GUARDED_BY(mu_)

  std::function<void(const std::string&)> sync_listener_;  // GUARDED_BY(mu_)
  std::function<std::string()> metrics_source_;            // GUARDED_BY(mu_)
  std::deque<rpc::SyncEvent> syncs_;                        // GUARDED_BY(mu_): the latest, for Report
  uint64_t next_sync_seq_ = 1;                              // GUARDED_BY(mu_)
  std::atomic<uint64_t> bytes_served_{0};
  std::atomic<uint64_t> client_fallback_reads_{0};  // reported by clients (REPORT requests)
  std::atomic<uint64_t> located_pages_{0}, located_bytes_{0};  // served by short-circuit readers
  std::mutex writers_mu_;
  std::map<uint64_t, std::shared_ptr<OpenFile>> writers_;  // GUARDED_BY(writers_mu_): by handle
  std::atomic<uint64_t> next_writer_{1};
  std::atomic<uint64_t> next_journal_id_{1};
  struct Queued {
    JournalEntry entry;
    std::chrono::steady_clock::time_point due;
    int attempts = 0;
  };
  std::mutex uploads_mu_;
  std::condition_variable uploads_cv_;  // an entry queued or done; stop
  std::deque<Queued> uploads_;          // GUARDED_BY(uploads_mu_)
  int uploads_running_ = 0;             // GUARDED_BY(uploads_mu_)
  bool stop_uploads_ = false;           // GUARDED_BY(uploads_mu_)
  std::string last_upload_error_;       // GUARDED_BY(uploads_mu_)
  uint64_t upload_failures_ = 0;        // GUARDED_BY(uploads_mu_)
  uint64_t uploads_done_ = 0;           // GUARDED_BY(uploads_mu_)
  std::vector<std::thread> uploaders_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<client::Router> router_;  // the other workers, in a cluster on etcd
  std::unique_ptr<Prefetcher> prefetcher_;
  // Populates the memory tier's page buffers after start (see Start); stopped first.
  std::atomic<bool> stop_prefill_{false};
  std::thread prefill_;
  std::unique_ptr<rpc::RpcServer> rpc_;
  std::unique_ptr<HttpEndpoint> http_;
};

}  // namespace sluice::worker
