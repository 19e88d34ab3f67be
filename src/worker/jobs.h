// JobManager: background load jobs. A job lists the files below a path, then loads them in
// pieces (a large file is many pieces, so one big shard is fetched in parallel too) with as
// many requests in flight as the under-store takes (AimdLimit: starts high to hide a far
// store's latency, backs off on SlowDown, 5xx and growing latency), keeping exact counts
// (files and bytes: total, done, fetched from the under-store) and the failures. A job is
// "done" only once every byte it counted is in the cache; what did not fit or failed is
// listed. Jobs run on a bounded set of runner threads (kMaxRunningJobs at once; the rest wait,
// "queued", up to kMaxQueuedJobs), and only the last kMaxFinishedJobs finished ones are kept,
// so a client starting job after job holds neither threads nor memory. Thread-safe; the
// destructor cancels every job and joins the runners.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "worker/aimd_limit.h"
#include "rpc/sluice_rpc.pb.h"

namespace sluice::worker {

// One file a job must load; `load` fetches [offset, offset + length) of it and returns the
// bytes read from the under-store.
struct LoadItem {
  std::string path;
  uint64_t size = 0;
  std::function<Result<uint64_t>(uint64_t offset, uint64_t length)> load;
  std::function<uint64_t()> cached_bytes;  // checked after loading
  // Loaded by other workers (a cluster): the time a piece takes is theirs and the RPC's, so
  // only the store's push-back they report adapts the job's concurrency, not that time.
  bool remote = false;
};

struct JobOptions {
  AimdOptions in_flight;              // pieces loading at once, per job
  uint64_t piece_bytes = 16ull << 20;  // a file is loaded in pieces of this size
  std::string id_suffix;               // ends every job id (a cluster: "@" and the worker's id)
  // Called (on the job's thread) when a job's listing is done and when it ends: a cluster
  // keeps the record where any client finds it.
  std::function<void(const rpc::JobStatus&)> on_update;
};

class JobManager {
 public:
  using Lister = std::function<Result<std::vector<LoadItem>>()>;

  explicit JobManager(JobOptions options = {});
  ~JobManager();

  // Queues a job and returns its id; `list` runs on the runner thread that takes it. Refused
  // (kResourceExhausted) when kMaxQueuedJobs wait already or no runner thread can start.
  Result<std::string> Start(const std::string& path, Lister list);
  Result<rpc::JobStatus> Status(const std::string& id);
  // Every job kept, oldest first: the running ones and the last kMaxFinishedJobs finished.
  std::vector<rpc::JobStatus> List();
  sluice::Status Cancel(const std::string& id);

 private:
  struct Job;
  void RunnerLoop();
  void Run(Job* job);
  void Notify(Job* job);

 public:
  // A finished job's record is dropped once this many newer ones finished.
  static constexpr size_t kMaxFinishedJobs = 100;
  static constexpr size_t kMaxRunningJobs = 4;
  static constexpr size_t kMaxQueuedJobs = 1000;

 private:
  rpc::JobStatus StatusLocked(Job* job);  // REQUIRES(mu_)

  const JobOptions options_;
  std::mutex mu_;
  std::condition_variable queued_cv_;
  std::map<uint64_t, std::unique_ptr<Job>> jobs_;  // GUARDED_BY(mu_), by number: oldest first
  std::deque<Job*> queue_;                         // GUARDED_BY(mu_)
  std::vector<std::thread> runners_;               // GUARDED_BY(mu_)
  size_t idle_runners_ = 0;                        // GUARDED_BY(mu_)
  bool stopping_ = false;                          // GUARDED_BY(mu_)
  uint64_t next_id_ = 1;                           // GUARDED_BY(mu_)
};

}  // namespace sluice::worker
