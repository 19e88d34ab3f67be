// Prefetch in the reader's order: a training loader knows which samples an epoch reads next
// (its sampler's order), so sluice fetches them into the cache ahead of the reader, in that
// order, at most `window_bytes` beyond the reader's position (told with Consumed), with
// `concurrency` fetches in flight. Cancel drops what has not started (a new epoch's order
// replaces the old one; those items count as skipped). Fetches go
// through the worker (its miss path and single-flight), so the reader, in this process or a
// DataLoader worker, finds the bytes cached. Thread-safe.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cli/context.h"
#include "client/file_system.h"

namespace sluice::python {

// One process's connection to the worker: the config's context and a client of it. A forked
// child makes its own (see Client::Current).
struct Connection {
  pid_t pid = 0;
  std::unique_ptr<cli::Context> context;
  std::unique_ptr<client::FileSystem> fs;  // declared after context: destroyed before it
};

struct PrefetchItem {
  std::string path;
  uint64_t offset = 0;
  int64_t length = -1;  // -1: to the end of the file
};

struct PrefetchStats {
  uint64_t items = 0, fetched = 0, fetched_bytes = 0, failed = 0;
  uint64_t skipped = 0;          // not fetched: cancelled before their turn
  uint64_t ahead_bytes = 0;      // fetched, not yet consumed
  uint64_t max_ahead_bytes = 0;  // the most that ever was
  uint64_t waiting = 0;          // fetchers idle because the window is full
};

class Prefetch {
 public:
  Prefetch(std::shared_ptr<Connection> connection, std::vector<PrefetchItem> items, uint64_t window_bytes,
           int concurrency);
  ~Prefetch();
  Prefetch(const Prefetch&) = delete;
  Prefetch& operator=(const Prefetch&) = delete;

  // The reader has taken items [0, position).
  void Consumed(uint64_t position);
  void Cancel();
  // Until every item is fetched, skipped or failed, or `timeout_s` passed; true when all are.
  bool Wait(double timeout_s);
  PrefetchStats Stats();
  uint64_t window_bytes() const { return window_bytes_; }

 private:
  void Run();

  const std::shared_ptr<Connection> connection_;
  const std::vector<PrefetchItem> items_;
  const uint64_t window_bytes_;
  const pid_t pid_ = ::getpid();
  std::mutex mu_;
  std::condition_variable cv_;
  size_t next_ = 0;                // GUARDED_BY(mu_): the next item to fetch
  size_t consumed_ = 0;            // GUARDED_BY(mu_)
  size_t ended_ = 0;               // GUARDED_BY(mu_): fetched, skipped or failed
  bool cancelled_ = false;         // GUARDED_BY(mu_)
  std::vector<uint64_t> charged_;  // GUARDED_BY(mu_): bytes each item holds of the window
  PrefetchStats stats_;            // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

}  // namespace sluice::python
