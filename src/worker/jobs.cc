// Load job execution and progress.
#include "worker/jobs.h"

#include <algorithm>
#include <system_error>

#include "common/units.h"
#include "ufs/retry.h"

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

JobManager::JobManager(JobOptions options) : options_(options) {}

JobManager::~JobManager() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, job] : jobs_) job->cancelled = true;
  for (auto& [id, job] : jobs_) {
    if (job->thread.joinable()) job->thread.join();
  }
}

std::string JobManager::Start(const std::string& path, Lister list) {
  std::vector<std::unique_ptr<Job>> dropped;
  std::string id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A bounded history: the oldest finished jobs go, their threads joined (they have ended).
    size_t finished = 0;
    for (const auto& [job_id, job] : jobs_) finished += job->finished_flag ? 1 : 0;
    for (auto it = jobs_.begin(); it != jobs_.end() && finished >= kMaxFinishedJobs;) {
      if (!it->second->finished_flag) {
        ++it;
        continue;
      }
      dropped.push_back(std::move(it->second));
      it = jobs_.erase(it);
      --finished;
    }
    auto job = std::make_unique<Job>();
    job->id = "load-" + std::to_string(next_id_++);
    job->path = path;
    Job* raw = job.get();
    jobs_[job->id] = std::move(job);
    id = raw->id;
    try {
      raw->thread = std::thread([this, raw, list = std::move(list)] { Run(raw, list); });
    } catch (const std::system_error& e) {  // out of threads: an error, not an abort
      jobs_.erase(id);
      id.clear();
    }
  }
  for (auto& job : dropped) {
    if (job->thread.joinable()) job->thread.join();
  }
  return id;
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
      auto latency = piece.length <= (1u << 20) ? std::chrono::steady_clock::now() - started
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
  for (size_t t = 0; t < thread_count; ++t) threads.emplace_back(loader);
  for (auto& t : threads) t.join();
  std::lock_guard<std::mutex> lock(job->mu);
  job->state = job->cancelled ? "cancelled" : (job->failure_count ? "failed" : "done");
  job->finished = std::chrono::steady_clock::now();
  job->finished_flag = true;
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

Result<rpc::JobStatus> JobManager::Status(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return NotFound("no load job '" + id + "' on this worker");
  return StatusLocked(it->second.get());
}

std::vector<rpc::JobStatus> JobManager::List() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<uint64_t, rpc::JobStatus>> out;
  for (const auto& [id, job] : jobs_) out.emplace_back(std::stoull(id.substr(5)), StatusLocked(job.get()));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<rpc::JobStatus> jobs;
  for (auto& [n, s] : out) jobs.push_back(std::move(s));
  return jobs;
}

sluice::Status JobManager::Cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return NotFound("no load job '" + id + "' on this worker");
  it->second->cancelled = true;
  return sluice::Status::Ok();
}

}  // namespace sluice::worker
