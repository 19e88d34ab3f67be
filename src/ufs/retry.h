// Retry policy for under-store requests: exponential back-off with full jitter, a bounded
// number of attempts, and retries only for errors marked retryable (5xx, SlowDown, resets,
// timeouts; never 4xx). Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "common/status.h"

namespace sluice::ufs {

struct RetryPolicy {
  int max_attempts = 5;
  std::chrono::nanoseconds base_delay = std::chrono::milliseconds(100);
  std::chrono::nanoseconds max_delay = std::chrono::seconds(5);

  // The pause before retry number `retry` (1 = first retry): uniform in
  // [0, min(max_delay, base_delay * 2^(retry-1))].
  std::chrono::nanoseconds Backoff(int retry) const;
};

// Calls `attempt` until it returns OK, a non-retryable error, or max_attempts is reached;
// returns the last status, noting the number of attempts when it gave up on a retryable one.
Status RunWithRetries(const RetryPolicy& policy, const std::function<Status()>& attempt);

// How many retryable failures (SlowDown, 5xx, resets, timeouts) requests made on this thread
// have met so far: a caller that adapts its concurrency to the store reads it before and
// after its requests.
uint64_t RetryableFailuresOnThisThread();
// Adds failures met elsewhere on this thread's behalf (a cluster load's piece, fetched by
// another worker, reports them back).
void NoteRetryableFailures(uint64_t count);

}  // namespace sluice::ufs
