// Prefetcher: background fetches of page ranges into the cache, for sequential readers that
// announce where they are going (short-circuit LOCATE with prefetch). A few threads and a
// bounded queue: when the queue is full a request is dropped, never waited for — prefetch
// is a hint. Thread-safe; the destructor drops what is queued and joins the threads.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice::worker {

class Prefetcher {
 public:
  Prefetcher(int threads, size_t max_queued);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // Queues `fetch`; returns false (and drops it) when the queue is full.
  bool Submit(std::function<void()> fetch);

 private:
  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                   // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

}  // namespace sluice::worker
