// PageBuffers: recycles page-sized byte buffers. A fresh 1 MiB buffer is a fresh mapping that
// the kernel must fault in and zero page by page, which costs more than the bytes' own copy on
// the miss path; a buffer handed back is reused as is. Pages are shared (PageData) and return
// here when their last holder lets go. At most `max_idle` buffers wait for reuse; beyond that
// they are freed, so idle memory stays bounded. Thread-safe; one process-wide instance.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sluice::cache {

class PageBuffers {
 public:
  // The process's pool: 32 idle buffers at most (32 MiB with 1 MiB pages).
  static PageBuffers& Global();

  explicit PageBuffers(size_t max_idle) : max_idle_(max_idle) {}
  PageBuffers(const PageBuffers&) = delete;
  PageBuffers& operator=(const PageBuffers&) = delete;

  // An empty buffer with room for `capacity` bytes.
  std::unique_ptr<std::string> Take(size_t capacity);
  // Shares `buffer` read-only; it comes back here when the last reference goes.
  std::shared_ptr<const std::string> Share(std::unique_ptr<std::string> buffer);

 private:
  void Give(std::string* buffer);

  const size_t max_idle_;
  std::mutex mu_;
  std::vector<std::unique_ptr<std::string>> idle_;  // GUARDED_BY(mu_)
};

}  // namespace sluice::cache
