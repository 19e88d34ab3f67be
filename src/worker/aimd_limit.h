// AimdLimit: how many requests a background job keeps in flight towards one under-store,
// adapted to what the store says (additive increase, multiplicative decrease, as TCP does).
// It starts high, since a far store needs many requests in flight to hide its latency; it
// grows by about one per window of successes, and halves (at most once per `cooldown`) when a
// request met a throttling answer (503 SlowDown, 5xx, a reset) or when a request took more
// than three times the fastest one seen (the store is queueing). Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace sluice::worker {

struct AimdOptions {
  int initial = 64;
  int min = 2;
  int max = 64;
  std::chrono::nanoseconds cooldown = std::chrono::milliseconds(200);
};

class AimdLimit {
 public:
  explicit AimdLimit(AimdOptions options);

  // Waits until fewer than the limit are in flight, then counts one more.
  void Acquire();
  // One request done. `throttled`: it met a throttling answer; `latency`: how long it took,
  // or zero when its duration says nothing of the store's latency (a large transfer).
  void Release(bool throttled, std::chrono::nanoseconds latency);

  int limit();
  int in_flight();

 private:
  using Clock = std::chrono::steady_clock;
  void DecreaseLocked(Clock::time_point now);

  const AimdOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  double limit_;                                   // GUARDED_BY(mu_)
  int in_flight_ = 0;                              // GUARDED_BY(mu_)
  std::chrono::nanoseconds fastest_{0};            // GUARDED_BY(mu_): 0 until a sample
  Clock::time_point last_decrease_{};              // GUARDED_BY(mu_)
};

}  // namespace sluice::worker
