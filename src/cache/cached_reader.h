// CachedReader: the miss path. A read is served page by page from the PageStore; missing
// pages come from the under-store, where
//  - each page is fetched once however many readers want it at the same time (single-flight:
//    later readers wait for the first one's fetch);
//  - consecutive missing pages are fetched with one ranged read (coalescing);
//  - fetches towards one under-store are bounded in number (concurrency) and in bytes/s, and
//    a reader's misses go before a preload's (Load);
//  - a page is handed to the reader as soon as its bytes have arrived, not after the run.
// A page that cannot be cached (full disk, policy refusal) is still served. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "cache/page_store.h"
#include "ufs/under_store.h"

namespace sluice::cache {

// What a read needs to know of a file: its key in the under-store and its current version.
struct CachedFile {
  std::string path;
  uint64_t size = 0;
  FileId id;
  std::string version;  // ObjectInfo::Version(); fetches of another version fail with kStale
};

struct MissPathOptions {
  uint64_t max_coalesced_bytes = 16ull << 20;  // one ranged read covers at most this much
  int ufs_max_concurrency = 64;                // under-store reads in flight at once
  uint64_t ufs_rate_limit = 0;                 // bytes/s towards the under-store; 0 = none
};

struct MissPathStats {
  uint64_t page_hits = 0, page_misses = 0, shared_waits = 0;
  uint64_t ufs_reads = 0, ufs_bytes = 0;
};

class CachedReader {
 public:
  // `store` and `ufs` must outlive the reader.
  CachedReader(PageStore* store, ufs::UnderStore* ufs, MissPathOptions options);
  ~CachedReader();
  CachedReader(const CachedReader&) = delete;
  CachedReader& operator=(const CachedReader&) = delete;

  // Reads [offset, offset + length) of `file`, clipped at its size, into `sink` in order.
  // Returns the bytes delivered.
  // With `memory` false, pages fetched for it go to the disk tier only (see PageStore::Put).
  Result<uint64_t> Read(const CachedFile& file, uint64_t offset, uint64_t length, const ufs::ByteSink& sink,
                        bool memory = true);

  // The same range as shared pages, for a reader in this process that keeps them without
  // copying: `sink` gets each page with the stretch [from, from + length) of it in the range.
  // A miss fetches up to `ahead_pages` more pages in the same ranged read, to the end of an
  // aligned group of ahead_pages + 1 (for a sequential reader: one large GET rather than one
  // per page the kernel asks for).
  using PageSink = std::function<Status(const PageData& page, size_t from, size_t length)>;
  Result<uint64_t> ReadPages(const CachedFile& file, uint64_t offset, uint64_t length, const PageSink& sink,
                             bool memory = true, uint64_t ahead_pages = 0);

  // Brings every page of [offset, offset + length) into the cache, behind readers' misses;
  // returns the bytes fetched from the under-store (0 when all was cached).
  Result<uint64_t> Load(const CachedFile& file, uint64_t offset, uint64_t length);

  // Like Load, for read-ahead: pages another reader is already fetching are skipped rather
  // than waited for, so a prefetch thread never idles behind someone else's fetch. With
  // `memory` false the fetched pages go to the disk tier only (see PageStore::Put).
  Result<uint64_t> Prefetch(const CachedFile& file, uint64_t offset, uint64_t length, bool memory);

  // How many bytes of the file are cached (in any tier).
  uint64_t CachedBytes(const CachedFile& file, uint64_t offset = 0, uint64_t length = UINT64_MAX);

  MissPathStats Stats();

 private:
  struct Flight;
  class Throttle;

  // Fetches pages [first, first + flights.size()) with one ranged read, completing each
  // flight as its page arrives and passing completed pages to `on_page`.
  using OnPage = std::function<Status(uint64_t index, const PageSlice&)>;
  Status FetchRun(const CachedFile& file, uint64_t first, const std::vector<std::shared_ptr<Flight>>& flights,
                  const OnPage& on_page, uint64_t* fetched, bool memory, bool background);

  struct FetchOptions {
    bool readahead = false;    // Prefetch: pages being fetched by others are passed over, not waited for
    bool skip_cached = false;  // Load, Prefetch: cached pages are passed over, not read
    bool memory = true;        // fetched pages are kept in the memory tier too
    uint64_t ahead_pages = 0;  // a miss also fetches pages past the range, up to a multiple of this + 1
    uint64_t max_run_pages = 0;  // if set, a ranged read claims fewer pages than max_coalesced_bytes
    bool background = false;     // Load: under-store slots go to readers first
  };
  // Calls on_page for every page of the range, in order (but see FetchOptions::readahead),
  // with the whole page or, read from disk, at least the part of it in the range; adds
  // under-store bytes to *fetched.
  Status ForEachPage(const CachedFile& file, uint64_t offset, uint64_t length, const OnPage& on_page,
                     uint64_t* fetched, const FetchOptions& options);

  PageStore* const store_;
  ufs::UnderStore* const ufs_;
  const MissPathOptions options_;
  std::unique_ptr<Throttle> throttle_;

  std::mutex mu_;
  std::unordered_map<PageKey, std::shared_ptr<Flight>, PageKeyHash> flights_;  // GUARDED_BY(mu_)
  MissPathStats stats_;                                                          // GUARDED_BY(mu_)
};

}  // namespace sluice::cache
