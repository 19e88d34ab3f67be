// PageStore: the worker's page cache. Pages live in a memory tier and, below it, in one or
// more disk directories, each with a byte quota and its own eviction policy. Every disk page
// carries XXH3 checksums, one per 32 KiB chunk, and a read verifies the chunks it reads (all
// of them for a whole page): a corrupt or truncated page file is deleted,
// counted and reported as a miss, never served. The disk tiers survive a restart (Open
// rescans them; file names carry everything the index needs). Caching is best effort: a full
// disk or a refused admission leaves the page uncached, and the caller serves through.
//
// With a disk tier, a page put in memory is written to disk later: once puts have been quiet
// for `disk_write_delay`, when memory evicts it, or on Flush (and so on a clean shutdown). A
// cold scan that fits in memory then pays for no disk writes while it runs; a crash loses at
// most the memory tier's unwritten pages, which the under-store still serves. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <thread>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/cache_policy.h"
#include "cache/page_buffers.h"
#include "cache/page_key.h"
#include "common/config.h"
#include "common/status.h"

namespace sluice::cache {

struct PageStoreOptions {
  uint64_t page_size = 1 << 20;
  uint64_t memory_quota = 256ull << 20;
  // Each dir gets a "pages" subdirectory; each keeps its `reserve` free on its file system.
  // Open refuses a tier whose quota is below one page, and warns when a file system is too
  // small to hold a page beyond its reserve (that tier would cache nothing).
  std::vector<DiskTierConfig> disks;
  std::string policy = "lru";  // for every tier: "lru" or "stable"
  // Disk writes happen behind the reader's back (a page is served, from memory, while it is
  // still being written); at most this many bytes wait, beyond that Put writes in place.
  uint64_t max_pending_write_bytes = 64ull << 20;
  // Pages kept in memory go to disk once no page has been put for this long.
  std::chrono::milliseconds disk_write_delay{1000};
};

struct TierStats {
  std::string name;  // "memory" or the disk directory
  uint64_t quota = 0;
  uint64_t bytes = 0;
  uint64_t pages = 0;
  uint64_t unwritten_bytes = 0;  // memory tier: pages not written to a disk tier yet
};

struct PageStoreStats {
  uint64_t hits_memory = 0, hits_disk = 0, misses = 0;
  uint64_t puts = 0, refused = 0, evictions = 0;
  uint64_t corrupt_pages = 0;      // failed checksum or truncated, dropped
  uint64_t disk_write_errors = 0;  // full disk or I/O error while caching
  std::vector<TierStats> tiers;
};

// A page's file on a disk tier (see page_file.h), for readers on the same host.
struct PageLocation {
  std::string path;
  uint64_t length = 0;
  uint64_t seed = 0;  // checksum seed
};

// A page's bytes, or a stretch of them: `data` holds the page from byte `offset` on.
struct PageSlice {
  PageData data;
  uint64_t offset = 0;
  explicit operator bool() const { return data != nullptr; }
};

class PageStore {
 public:
  // Creates the tiers; rescans each disk directory and drops leftover temporary files.
  static Result<std::unique_ptr<PageStore>> Open(const PageStoreOptions& options);
  ~PageStore();
  PageStore(const PageStore&) = delete;
  PageStore& operator=(const PageStore&) = delete;

  // The page's bytes, from memory or (verified) from disk; nullptr on a miss. A page read
  // from disk is promoted to memory.
  PageData Get(const PageKey& key);

  // Bytes [from, from + length) of the page, or more of it. From memory it is the whole page.
  // From disk, when the range is less than the page, only the chunks covering it are read and
  // verified (the slice is those chunks), and that part is not promoted: a random reader of a
  // dataset larger than memory would otherwise read and hash a whole page per record and
  // churn the memory tier.
  PageSlice GetRange(const PageKey& key, uint64_t from, uint64_t length);

  // Caches a page in memory and (later, see above) on disk, evicting per policy; best effort.
  // With `memory` false and a disk tier for the page, it goes to disk only, queued at once:
  // read-ahead for short-circuit readers, who read page files, would otherwise push other
  // readers' pages out of memory.
  void Put(const PageKey& key, PageData data, bool memory = true);

  // Writes every page not yet on disk and waits for the queued writes.
  void Flush();

  // The page's file when a disk tier holds it (counted as a disk hit); nullopt otherwise.
  std::optional<PageLocation> Locate(const PageKey& key);

  // True when some tier holds the page (no checksum check, no policy update).
  bool Contains(const PageKey& key);

  // Drops every page of `file` from every tier; returns how many were dropped.
  uint64_t EraseFile(const FileId& file);

  PageStoreStats Stats();
  uint64_t page_size() const { return options_.page_size; }

 private:
  class MemoryTier;
  class DiskTier;
  explicit PageStore(PageStoreOptions options);
  DiskTier* DiskFor(const PageKey& key);
  struct KeyedPage {
    PageKey key;
    PageData data;
  };
  struct PendingWrite {
    PageKey key;
    PageData data;
    bool in_memory;  // cached in memory too (a failed write is then no refusal)
  };
  // Caches a page in memory (`unwritten`: not on disk yet); evicted unwritten pages are queued
  // for disk. False when the memory policy refused it.
  bool PutInMemory(const PageKey& key, PageData data, bool unwritten);
  // Queues a disk write, or writes in place when the queue is full.
  void QueueWrite(const PageKey& key, PageData data, bool in_memory);
  enum class Pending { kAlready, kQueued, kWriteInPlace };
  // Adds a page to pending_ (so Get finds it until it is on disk) and, within the bound, to the
  // writer's queue; kWriteInPlace: the caller writes it (WritePending) once it drops the lock.
  Pending AddPendingLocked(PendingWrite& w);  // REQUIRES(write_mu_)
  // Moves up to `max` of the oldest unwritten memory pages into pending_, to be written.
  std::vector<PendingWrite> TakeUnwrittenLocked(size_t max);  // REQUIRES(write_mu_)
  void WritePending(const PendingWrite& w);
  void WaitForQueuedWrites();
  void WriteToDisk(const PageKey& key, const PageData& data, bool in_memory);
  void WriterLoop();

  const PageStoreOptions options_;
  std::unique_ptr<MemoryTier> memory_;
  std::vector<std::unique_ptr<DiskTier>> disks_;
  std::atomic<uint64_t> hits_memory_{0}, hits_disk_{0}, misses_{0}, puts_{0}, refused_{0}, corrupt_{0};
  std::atomic<uint64_t> disk_evictions_{0}, disk_write_errors_{0};

  std::mutex write_mu_;
  std::condition_variable write_cv_, drained_cv_;
  std::deque<PendingWrite> write_queue_;                          // GUARDED_BY(write_mu_)
  std::unordered_map<PageKey, PageData, PageKeyHash> pending_;     // GUARDED_BY(write_mu_): queued or being written
  uint64_t pending_bytes_ = 0;                                     // GUARDED_BY(write_mu_)
  bool stopping_ = false;                                          // GUARDED_BY(write_mu_)
  std::chrono::steady_clock::time_point last_memory_put_;          // GUARDED_BY(write_mu_)
  bool writer_sleeping_ = false;                                   // GUARDED_BY(write_mu_): nothing to wait for
  std::thread writer_;
};

}  // namespace sluice::cache
