// Additive-increase, multiplicative-decrease concurrency limit.
#include "worker/aimd_limit.h"

#include <algorithm>

namespace sluice::worker {

AimdLimit::AimdLimit(AimdOptions options)
    : options_(options), limit_(std::clamp(options.initial, std::max(1, options.min), std::max(1, options.max))) {}

void AimdLimit::Acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return in_flight_ < static_cast<int>(limit_); });
  ++in_flight_;
}

void AimdLimit::DecreaseLocked(Clock::time_point now) {
  // One decrease per cooldown: the requests in flight when the store pushed back all report
  // it, and that is one signal, not many.
  if (now - last_decrease_ < options_.cooldown) return;
  last_decrease_ = now;
  limit_ = std::max<double>(std::max(1, options_.min), limit_ / 2);
}

void AimdLimit::Release(bool throttled, std::chrono::nanoseconds latency) {
  bool grew = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
    const auto now = Clock::now();
    bool queueing = false;
    if (latency.count() > 0) {
      if (fastest_.count() == 0 || latency < fastest_) fastest_ = latency;
      queueing = latency > 3 * fastest_ && latency - fastest_ > std::chrono::milliseconds(20);
    }
    if (throttled || queueing) {
      DecreaseLocked(now);
    } else {
      const int before = static_cast<int>(limit_);
      limit_ = std::min<double>(options_.max, limit_ + 1.0 / limit_);
      grew = static_cast<int>(limit_) > before;
    }
  }
  // One request done frees one place (two when the limit grew): a herd of waiters woken for
  // it costs more CPU than the requests themselves.
  cv_.notify_one();
  if (grew) cv_.notify_one();
}

int AimdLimit::limit() {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(limit_);
}

int AimdLimit::in_flight() {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

}  // namespace sluice::worker
