// Load job execution and progress.
#include "worker/jobs.h"

#include "common/units.h"

namespace sluice::worker {

constexpr size_t kMaxFailuresKept = 100;

struct JobManager::Job {
  std::string id, path;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point finished;
  std::atomic<bool> cancelled{false}, finished_flag{false}, listing_done{false};
  std::atomic<uint64_t> files_total{0}, files_done{0}, bytes_total{0}, bytes_done{0}, bytes_fetched{0};
  std::mutex mu;
  std::vector<std::string> failures;  // GUARDED_BY(mu)
  uint64_t failure_count = 0;         // GUARDED_BY(mu)
  std::string state = "running";      // GUARDED_BY(mu)
  std::thread thread;

  void Fail(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    ++failure_count;
    if (failures.size() < kMaxFailuresKept) failures.push_back(what);
  }
};

JobManager::JobManager(int parallel_files) : parallel_files_(std::max(1, parallel_files)) {}

JobManager::~JobManager() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, job] : jobs_) job->cancelled = true;
  for (auto& [id, job] : jobs_) {
    if (job->thread.joinable()) job->thread.join();
  }
}

std::string JobManager::Start(const std::string& path, Lister list) {
  std::lock_guard<std::mutex> lock(mu_);
  auto job = std::make_unique<Job>();
  job->id = "load-" + std::to_string(next_id_++);
  job->path = path;
  Job* raw = job.get();
  jobs_[job->id] = std::move(job);
  raw->thread = std::thread([this, raw, list = std::move(list)] { Run(raw, list); });
  return raw->id;
}

void JobManager::Run(Job* job, Lister list) {
  auto items = list();
  if (!items.ok()) {
    job->Fail(items.status().message());
    std::lock_guard<std::mutex> lock(job->mu);
    job->state = "failed";
    job->finished = std::chrono::steady_clock::now();
    job->finished_flag = true;
    return;
  }
  for (const auto& item : *items) job->bytes_total += item.size;
  job->files_total = items->size();
  job->listing_done = true;

  std::atomic<size_t> next{0};
  auto loader = [&] {
    for (size_t i = next++; i < items->size() && !job->cancelled; i = next++) {
      const LoadItem& item = (*items)[i];
      auto fetched = item.load();
      if (!fetched.ok()) {
        job->Fail(item.path + ": " + fetched.status().message());
      } else {
        job->bytes_fetched += *fetched;
        uint64_t cached = item.cached_bytes();
        if (cached < item.size) {
          job->Fail(item.path + ": only " + FormatSize(cached) + " of " + FormatSize(item.size) +
                    " stayed in the cache (it is full)");
        }
        job->bytes_done += item.size;
      }
      ++job->files_done;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < parallel_files_; ++t) threads.emplace_back(loader);
  for (auto& t : threads) t.join();
  std::lock_guard<std::mutex> lock(job->mu);
  job->state = job->cancelled ? "cancelled" : (job->failure_count ? "failed" : "done");
  job->finished = std::chrono::steady_clock::now();
  job->finished_flag = true;
}

Result<rpc::JobStatus> JobManager::Status(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return NotFound("no load job '" + id + "' on this worker");
  Job* job = it->second.get();
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

sluice::Status JobManager::Cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return NotFound("no load job '" + id + "' on this worker");
  it->second->cancelled = true;
  return sluice::Status::Ok();
}

}  // namespace sluice::worker
