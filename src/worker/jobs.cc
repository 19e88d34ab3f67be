// Load job execution and progress.
#include "worker/jobs.h"

#include <algorithm>
#include <system_error>

#include "common/logging.h"
#include "common/units.h"
#include "ufs/retry.h"

namespace sluice::worker {

constexpr size_t kMaxFailuresKept = 100;

struct JobManager::Job {
  std::string id, path;
  Lister list;  // taken by the runner
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point finished;
  std::atomic<bool> cancelled{false}, finished_flag{false}, listing_done{false};
  std::atomic<uint64_t> files_total{0}, files_done{0}, bytes_total{0}, bytes_done{0}, bytes_fetched{0};
  std::mutex mu;
  std::vector<std::string> failures;  // GUARDED_BY(mu)
  uint64_t failure_count = 0;         // GUARDED_BY(mu)
  std::string state = "queued";       // GUARDED_BY(mu)

  void Fail(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    ++failure_count;
    if (failures.size() < kMaxFailuresKept) failures.push_back(what);
  }
  void Finish(const std::string& final_state) {
    std::lock_guard<std::mutex> lock(mu);
    state = final_state;
    finished = std::chrono::steady_clock::now();
    finished_flag = true;
  }
};

JobManager::JobManager(JobOptions options) : options_(options) {}

JobManager::~JobManager() {
  std::vector<std::thread> runners;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& [n, job] : jobs_) job->cancelled = true;
    runners.swap(runners_);
  }
  queued_cv_.notify_all();
  for (auto& t : runners) t.join();
}

Result<std::string> JobManager::Start(const std::string& path, Lister list) {
  std::lock_guard<std::mutex> lock(mu_);
  if (queue_.size() >= kMaxQueuedJobs) {
    return sluice::Status(StatusCode::kResourceExhausted,
                  std::to_string(queue_.size()) + " load jobs are waiting to run already (the limit); cancel some or "
                                                  "wait for them",
                  true);
  }
  // A bounded history: the oldest finished jobs go.
  size_t finished = 0;
  for (const auto& [n, job] : jobs_) finished += job->finished_flag ? 1 : 0;
  for (auto it = jobs_.begin(); it != jobs_.end() && finished >= kMaxFinishedJobs;) {
    if (!it->second->finished_flag) {
      ++it;
      continue;
    }
    it = jobs_.erase(it);
    --finished;
  }
  if (idle_runners_ == 0 && runners_.size() < kMaxRunningJobs) {
    try {
      runners_.emplace_back([this] { RunnerLoop(); });
    } catch (const std::system_error& e) {  // out of threads: an error, not an abort
      if (runners_.empty()) {
        return sluice::Status(StatusCode::kResourceExhausted, std::string("cannot start a load job: ") + e.what(), true);
      }
    }
  }
  const uint64_t n = next_id_++;
  auto job = std::make_unique<Job>();
  job->id = "load-" + std::to_string(n) + options_.id_suffix;
  job->path = path;
  job->list = std::move(list);
  queue_.push_back(job.get());
  std::string id = job->id;
  jobs_[n] = std::move(job);
  queued_cv_.notify_one();
  return id;
}

void JobManager::RunnerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    ++idle_runners_;
    queued_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    --idle_runners_;
    if (stopping_) return;
    Job* job = queue_.front();  // jobs_ keeps it while it is unfinished
    queue_.pop_front();
    lock.unlock();
    Run(job);
    lock.lock();
  }
}

void JobManager::Run(Job* job) {
  if (job->cancelled) return job->Finish("cancelled");
  {
    std::lock_guard<std::mutex> lock(job->mu);
    job->state = "running";
    job->started = std::chrono::steady_clock::now();
  }
  Lister list = std::move(job->list);
  auto items = list();
  if (!items.ok()) {
    job->Fail(items.status().message());
    return job->Finish("failed");
  }
  for (const auto& item : *items) job->bytes_total += item.size;
  job->files_total = items->size();
  job->listing_done = true;
  Notify(job);

  // Pieces of every file, in listing order; a file is done when its last piece is.
  struct Piece {
    size_t item;
    uint64_t offset, length;
  };
  std::vector<Piece> pieces;
  const uint64_t piece_bytes = std::max<uint64_t>(1, options_.piece_bytes);
  for (size_t i = 0; i < items->size(); ++i) {
    uint64_t size = (*items)[i].size;
    for (uint64_t off = 0; off == 0 || off < size; off += piece_bytes) {
      pieces.push_back(Piece{i, off, std::min(piece_bytes, size - off)});
    }
  }
  std::vector<std::atomic<size_t>> pieces_left(items->size());
  std::vector<std::atomic<bool>> failed(items->size());
  for (size_t i = 0; i < items->size(); ++i) {
    pieces_left[i] = ((*items)[i].size + piece_bytes - 1) / piece_bytes;
    if (pieces_left[i] == 0) pieces_left[i] = 1;
  }

  AimdLimit limit(options_.in_flight);
  std::atomic<size_t> next{0};
  auto loader = [&] {
    for (;;) {
      limit.Acquire();
      size_t p = next++;
      if (p >= pieces.size() || job->cancelled) {
        limit.Release(false, std::chrono::nanoseconds(0));
        return;
      }
      const Piece& piece = pieces[p];
      const LoadItem& item = (*items)[piece.item];
      const uint64_t failures_before = ufs::RetryableFailuresOnThisThread();
      const auto started = std::chrono::steady_clock::now();
      auto fetched = item.load(piece.offset, piece.length);
      // Small pieces time the store's answer; large ones mostly the transfer.
      auto latency = piece.length <= (1u << 20) && !item.remote ? std::chrono::steady_clock::now() - started
                                                                 : std::chrono::nanoseconds(0);
      limit.Release(ufs::RetryableFailuresOnThisThread() != failures_before, latency);
      if (!fetched.ok()) {
        if (!failed[piece.item].exchange(true)) job->Fail(item.path + ": " + fetched.status().message());
      } else {
        job->bytes_fetched += *fetched;
        job->bytes_done += piece.length;
      }
      if (--pieces_left[piece.item] == 0) {
        uint64_t cached = failed[piece.item] ? item.size : item.cached_bytes();
        if (cached < item.size) {
          job->Fail(item.path + ": only " + FormatSize(cached) + " of " + FormatSize(item.size) +
                    " stayed in the cache (it is full)");
        }
        ++job->files_done;
      }
    }
  };
  std::vector<std::thread> threads;
  const size_t thread_count = std::min<size_t>(std::max(1, options_.in_flight.max), std::max<size_t>(1, pieces.size()));
  try {  // one loader runs here; the others on threads of their own
    for (size_t t = 1; t < thread_count; ++t) threads.emplace_back(loader);
  } catch (const std::system_error& e) {  // fewer loaders than wanted; none is a failure
    SLUICE_LOG_WARN("load {}: {} of {} loader threads started ({})", job->id, threads.size() + 1, thread_count,
                    e.what());
  }
  loader();
  for (auto& t : threads) t.join();
  bool failed_any = false;
  {
    std::lock_guard<std::mutex> lock(job->mu);
    failed_any = job->failure_count > 0;
  }
  job->Finish(job->cancelled ? "cancelled" : (failed_any ? "failed" : "done"));
  Notify(job);
}

void JobManager::Notify(Job* job) {
  if (!options_.on_update) return;
  rpc::JobStatus status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status = StatusLocked(job);
  }
  options_.on_update(status);
}

rpc::JobStatus JobManager::StatusLocked(Job* job) {
  rpc::JobStatus s;
  s.set_job_id(job->id);
  s.set_path(job->path);
  s.set_files_total(job->files_total);
  s.set_files_done(job->files_done);
  s.set_bytes_total(job->bytes_total);
  s.set_bytes_done(job->bytes_done);
  s.set_bytes_fetched(job->bytes_fetched);
  s.set_listing_done(job->listing_done);
  std::lock_guard<std::mutex> job_lock(job->mu);
  s.set_state(job->state);
  for (const auto& f : job->failures) s.add_failures(f);
  if (job->failure_count > job->failures.size()) {
    s.add_failures("... and " + std::to_string(job->failure_count - job->failures.size()) + " more");
  }
  auto end = job->finished_flag ? job->finished : std::chrono::steady_clock::now();
  s.set_elapsed_s(std::chrono::duration<double>(end - job->started).count());
  return s;
}

namespace {

// "load-12" (with this manager's suffix) -> 12; 0 for anything else (no job has number 0).
uint64_t JobNumber(std::string id, const std::string& suffix) {
  if (id.size() < suffix.size() || id.compare(id.size() - suffix.size(), suffix.size(), suffix) != 0) return 0;
  id.resize(id.size() - suffix.size());
  if (id.rfind("load-", 0) != 0 || id.size() == 5 || id.size() > 25) return 0;
  uint64_t n = 0;
  for (char c : id.substr(5)) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

}  // namespace

Result<rpc::JobStatus> JobManager::Status(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(JobNumber(id, options_.id_suffix));
  if (it == jobs_.end()) return NotFound("no load job '" + id + "' on this worker");
  return StatusLocked(it->second.get());
}

std::vector<rpc::JobStatus> JobManager::List() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<rpc::JobStatus> jobs;
  for (const auto& [n, job] : jobs_) jobs.push_back(StatusLocked(job.get()));
  return jobs;
}

sluice::Status JobManager::Cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(JobNumber(id, options_.id_suffix));
  if (it == jobs_.end()) return NotFound("no load job '" + id + "' on this worker");
  Job* job = it->second.get();
  job->cancelled = true;
  auto queued = std::find(queue_.begin(), queue_.end(), job);
  if (queued != queue_.end()) {  // it never ran: it ends now
    queue_.erase(queued);
    job->Finish("cancelled");
  }
  return sluice::Status::Ok();
}

}  // namespace sluice::worker
