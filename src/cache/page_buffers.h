// PageBuffer: the bytes of one cached page, and PageBuffers, the pool they come from.
//
// Fresh memory costs more than the bytes' own copy on the miss path: the kernel faults it in
// and zeroes it 4 KiB at a time (on this project's 2-core VM, faults were a quarter of the
// worker's CPU in a cold scan), and malloc spends as much again on 100 KiB blocks in a busy
// heap. So a buffer of 64 KiB or more is its own mapping, populated when mapped (a third
// cheaper than faulting it in as it fills: 117 vs 180 ms per 256 MiB here), its capacity
// rounded up to one of four sizes per doubling (at most a quarter wasted), and when its last
// reference goes it returns here to be reused as is. The mapped buffers, in use and idle, are
// bounded by `max_pooled_bytes`: a freed buffer is kept only within it (else unmapped). A
// buffer of a size none is idle of is carved, with its siblings, from an idle buffer at least
// twice as large; else a new mapping first unmaps idle buffers of other sizes to stay within
// the bound. Buffers in use are never refused. A worker sets the bound to its memory tier's quota plus the bytes allowed on
// their way to disk: the tier then refills, after evictions or `sluice free`, without a fault,
// and its pages and idle buffers together stay within that. Smaller buffers come from malloc.
// Thread-safe; one process-wide pool.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice::cache {

class PageBuffers;

// A fixed-capacity byte buffer, filled once and then shared read-only (PageData).
class PageBuffer {
 public:
  ~PageBuffer();
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;

  const char* data() const { return data_; }
  char* data() { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  std::string_view view() const { return {data_, size_}; }
  operator std::string_view() const { return view(); }

  // Appends as many of `bytes` as fit; returns how many did. Bytes that already lie at the
  // end of the data (received there, see ufs::ReceiveTarget) are kept where they are.
  size_t Append(std::string_view bytes);
  // Sets the size (at most the capacity); new bytes are left as they are.
  void Resize(size_t size);

 private:
  friend class PageBuffers;
  PageBuffer(PageBuffers* pool, char* data, size_t capacity) : pool_(pool), data_(data), capacity_(capacity) {}

  PageBuffers* const pool_;
  char* const data_;
  size_t size_ = 0;
  const size_t capacity_;
};

inline bool operator==(const PageBuffer& a, std::string_view b) { return a.view() == b; }
inline bool operator==(const PageBuffer& a, const PageBuffer& b) { return a.view() == b.view(); }

using PageData = std::shared_ptr<const PageBuffer>;

class PageBuffers {
 public:
  // The process's pool: 32 MiB of pooled buffers at most until set_max_pooled_bytes.
  static PageBuffers& Global();

  explicit PageBuffers(size_t max_pooled_bytes) : max_pooled_bytes_(max_pooled_bytes) {}
  ~PageBuffers();
  PageBuffers(const PageBuffers&) = delete;
  PageBuffers& operator=(const PageBuffers&) = delete;

  // An empty buffer with room for `capacity` bytes (its capacity may be larger).
  std::unique_ptr<PageBuffer> Take(size_t capacity);
  // A shared page holding a copy of `bytes`.
  PageData Copy(std::string_view bytes);

  // Maps and writes buffers of `capacity` bytes into the idle pool until buffers in use and
  // idle reach `bytes` (or the bound), or `stop` is set: buffers taken later cost no faults.
  void Prefill(size_t capacity, size_t bytes, const std::atomic<bool>& stop);

  void set_max_pooled_bytes(size_t bytes);
  size_t idle_bytes();
  size_t in_use_bytes();  // mapped buffers handed out and not yet back

 private:
  friend class PageBuffer;
  void Give(char* data, size_t capacity);
  // The pooled capacity serving `capacity`, or 0 when such buffers come from malloc.
  static size_t PooledCapacity(size_t capacity);

  std::mutex mu_;
  // Takes idle buffers out until the pooled bytes are within the bound (or none is left
  // idle); returns them, to be unmapped once the lock is dropped.
  std::vector<std::pair<char*, size_t>> TrimLocked();  // REQUIRES(mu_)
  size_t max_pooled_bytes_;                              // GUARDED_BY(mu_)
  size_t in_use_bytes_ = 0;                              // GUARDED_BY(mu_): mapped, handed out
  std::unordered_map<size_t, std::vector<char*>> idle_;  // GUARDED_BY(mu_): capacity -> buffers
  size_t idle_bytes_ = 0;                                // GUARDED_BY(mu_)
};

}  // namespace sluice::cache
