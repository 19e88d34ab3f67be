// Back-off computation and the retry loop.
#include "ufs/retry.h"

#include <algorithm>
#include <random>
#include <thread>

#include "common/logging.h"

namespace sluice::ufs {

std::chrono::nanoseconds RetryPolicy::Backoff(int retry) const {
  double cap = static_cast<double>(base_delay.count()) * static_cast<double>(1ull << std::min(retry - 1, 30));
  cap = std::min(cap, static_cast<double>(max_delay.count()));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> dist(0.0, std::max(cap, 0.0));
  return std::chrono::nanoseconds(static_cast<int64_t>(dist(rng)));
}

namespace {
thread_local uint64_t retryable_failures = 0;
}  // namespace

uint64_t RetryableFailuresOnThisThread() { return retryable_failures; }
void NoteRetryableFailures(uint64_t count) { retryable_failures += count; }

Status RunWithRetries(const RetryPolicy& policy, const std::function<Status()>& attempt) {
  Status st;
  for (int i = 1;; ++i) {
    st = attempt();
    if (st.ok() || !st.retryable()) return st;
    ++retryable_failures;
    if (i >= policy.max_attempts) break;
    auto pause = policy.Backoff(i);
    SLUICE_LOG_DEBUG("retry {}/{} in {} ms after: {}", i, policy.max_attempts - 1, pause.count() / 1000000,
                     st.ToString());
    std::this_thread::sleep_for(pause);
  }
  if (policy.max_attempts > 1) {
    return Status(st.code(), st.message() + " (gave up after " + std::to_string(policy.max_attempts) + " attempts)",
                  st.retryable());
  }
  return st;
}

}  // namespace sluice::ufs
