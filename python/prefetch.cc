// Prefetch: see prefetch.h.
#include "prefetch.h"

#include <algorithm>
#include <chrono>

#include <unistd.h>

namespace sluice::python {

Prefetch::Prefetch(std::shared_ptr<Connection> connection, std::vector<PrefetchItem> items, uint64_t window_bytes,
                   int concurrency)
    : connection_(std::move(connection)),
      items_(std::move(items)),
      window_bytes_(std::max<uint64_t>(1, window_bytes)),
      charged_(items_.size(), 0) {
  stats_.items = items_.size();
  const int n = std::clamp(concurrency, 1, 256);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Run(); });
}

Prefetch::~Prefetch() {
  if (pid_ != ::getpid()) {  // a forked child's copy: its threads live in the parent only
    for (auto& t : threads_) new std::thread(std::move(t));
    return;
  }
  Cancel();
  for (auto& t : threads_) t.join();
}

void Prefetch::Consumed(uint64_t position) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t until = static_cast<size_t>(std::min<uint64_t>(position, items_.size()));
  for (; consumed_ < until; ++consumed_) {
    stats_.ahead_bytes -= charged_[consumed_];
    charged_[consumed_] = 0;
  }
  cv_.notify_all();
}

void Prefetch::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!cancelled_) stats_.skipped = items_.size() - next_;
  cancelled_ = true;
  cv_.notify_all();
}

bool Prefetch::Wait(double timeout_s) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] { return ended_ == items_.size(); });
}

PrefetchStats Prefetch::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Prefetch::Run() {
  client::FileSystem& fs = *connection_->fs;
  while (true) {
    size_t i;
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++stats_.waiting;  // seen by Stats() only while blocked on a full window
      cv_.wait(lock, [&] { return cancelled_ || next_ >= items_.size() || stats_.ahead_bytes < window_bytes_; });
      --stats_.waiting;
      if (cancelled_ || next_ >= items_.size()) return;
      // Items the reader has been handed already are fetched all the same: a sampler hands
      // out indices batches before its loader's workers read them.
      i = next_++;
    }
    // One READ per item (the worker answers from its cache or fetches); its bytes are charged
    // to the window when they are in, so the window is exceeded by at most what the fetchers
    // have in flight.
    const PrefetchItem& item = items_[i];
    const uint64_t want = item.length < 0 ? UINT64_MAX : static_cast<uint64_t>(item.length);
    Result<uint64_t> got = fs.Read(item.path, item.offset, want, [](std::string_view) { return Status::Ok(); });
    std::lock_guard<std::mutex> lock(mu_);
    if (got.ok()) {
      ++stats_.fetched;
      stats_.fetched_bytes += *got;
      if (i >= consumed_) {  // held in the window until the reader takes it
        charged_[i] = *got;
        stats_.ahead_bytes += *got;
        stats_.max_ahead_bytes = std::max(stats_.max_ahead_bytes, stats_.ahead_bytes);
      }
    } else {
      ++stats_.failed;
    }
    ++ended_;
    cv_.notify_all();
  }
}

}  // namespace sluice::python
