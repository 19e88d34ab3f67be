// MetadataCache: stat and directory-listing results of one under-store, kept for the mount's
// TTL, including negative entries (a path that does not exist). Built for stores far away,
// where each request costs a round trip, and for directories of millions of entries:
//  - a listing is kept packed (PackedListing: ~30 bytes + the strings per entry) and answers
//    the stat of each of its entries (size, version and mtime come with it) by binary search;
//    a stat made later than the listing takes precedence over it, and a listing made later
//    than a stat is the truth about its directory (a name it lacks is gone);
//  - memory is bounded in bytes (max_bytes), least recently used first out. With an index
//    directory, every listing is also written to a MetadataIndex on disk (RocksDB): what the
//    bound pushes out of memory, and everything after a restart, is read back from there
//    instead of relisted (an entry older than the TTL is served and revalidated, as below);
//  - concurrent misses of one key cause one request (single-flight); misses of different keys
//    run in parallel, and no lock is held across a request or a disk read;
//  - an expired entry is served while its directory is revalidated in the background with one
//    LIST (stale-while-revalidate): a warm epoch never waits on a request per file. Files
//    found changed or gone get on_change with their old info, so their pages can be freed; a
//    failed revalidation keeps the stale entries (the store may be down);
//  - listings are read whole (List) or a page at a time after a name (ListPage): a reader
//    pages through a directory by cursor, never by re-walking it. A directory not cached is
//    fetched once, in the store's pages, by a thread of its own, and ListPage answers from
//    what has come so far (the entries no later store page can sort before): the first
//    page of a large S3 prefix is served after the first LIST, not the last.
// Invalidate() drops a path and everything below it (`sluice fs sync`). Thread-safe; the
// destructor waits for a running revalidation.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cache/metadata_index.h"
#include "ufs/under_store.h"

namespace sluice::cache {

struct MetadataCacheOptions {
  std::chrono::nanoseconds ttl = std::chrono::seconds(60);
  // Memory for stats and listings (an S3 entry of a listing costs ~80 bytes, a stat of a
  // file looked up by name ~250). Beyond it the least recently used go (to the index).
  uint64_t max_bytes = 256ull << 20;
  // A revalidation lists at most this many entries of a directory; in a larger one, an expired
  // entry is revalidated by itself.
  size_t max_revalidate_entries = 1000000;
  // Where the on-disk index lives; "" keeps metadata in memory only.
  std::string index_dir;
};

struct MetadataCacheStats {
  uint64_t hits = 0, misses = 0, entries = 0, version_changes = 0;
  uint64_t shared_misses = 0;  // misses that waited for another caller's request of the key
  uint64_t stale_hits = 0;     // expired entries served while being revalidated
  uint64_t revalidations = 0;  // background revalidations (a LIST, or a stat) that completed
  uint64_t bytes = 0;           // memory held by entries and listings
  uint64_t listed_entries = 0;  // entries of the listings in memory
  uint64_t index_reads = 0;     // listings read back from the index on disk
  uint64_t index_directories = 0, index_disk_bytes = 0;
};

// One page of a listing (ListPage).
struct ListingPage {
  std::vector<ufs::ObjectInfo> entries;
  bool more = false;  // entries follow the last one
};

class MetadataCache {
 public:
  using ChangeCallback = std::function<void(const ufs::ObjectInfo& old_info)>;
  // How a stat miss is answered; the default is ufs->Stat. The worker's fetches the file's
  // first page in the same round trip (UnderStore::StatWithHead).
  using StatFunction = std::function<Result<ufs::ObjectInfo>(const std::string& key)>;

  // `ufs` must outlive the cache. An index that cannot be opened is logged, and the cache
  // keeps to memory.
  MetadataCache(ufs::UnderStore* ufs, MetadataCacheOptions options, ChangeCallback on_change = nullptr,
                StatFunction stat = nullptr);
  ~MetadataCache();
  MetadataCache(const MetadataCache&) = delete;
  MetadataCache& operator=(const MetadataCache&) = delete;

  // Stat of a key ("" is the root); kNotFound is cached too.
  Result<ufs::ObjectInfo> Stat(const std::string& key);

  // Stat of `key` if memory holds a fresh answer (no request, no disk read, nothing to
  // wait for): for callers that must not block.
  std::optional<Result<ufs::ObjectInfo>> Peek(const std::string& key);

  // All entries directly below directory `key`, sorted by name.
  Result<std::vector<ufs::ObjectInfo>> List(const std::string& key);
  // At most `limit` entries of directory `key` whose names sort after `start_after` ("": from
  // the first), in name order.
  Result<ListingPage> ListPage(const std::string& key, const std::string& start_after, size_t limit);

  // Remembers entries listed elsewhere (a load job's recursive listing) as fresh stats.
  void AddListed(const std::vector<ufs::ObjectInfo>& entries);

  struct Invalidated {
    size_t entries = 0;                  // stat and list entries dropped
    std::vector<ufs::ObjectInfo> files;  // the files whose stat was dropped (to revalidate)
  };
  // Forgets `key` and everything below it, and the listing of its parent; what requests out
  // for them bring back is not kept.
  Invalidated Invalidate(const std::string& key);

  MetadataCacheStats Stats();

 private:
  using Clock = std::chrono::steady_clock;
  using Packed = std::shared_ptr<const std::string>;
  struct Entry {
    Clock::time_point stored, expires;
    bool is_list = false;
    Status status;          // non-OK: a negative entry
    ufs::ObjectInfo info;   // a stat entry
    Packed packed;          // a listing (status OK)
    size_t bytes = 0;       // what it holds in memory, its key included
    size_t listed = 0;      // entries of the listing
    std::list<std::string>::iterator lru;
  };
  // A request in progress for one map key; callers that miss the same key wait for it.
  struct Pending;
  // What memory says about one key's stat: the entry that answers it, if any.
  struct Lookup {
    bool found = false, fresh = false, from_listing = false;
    Result<ufs::ObjectInfo> answer = Status(StatusCode::kNotFound, "");
  };

  using Entries = std::unordered_map<std::string, Entry>;
  void InsertLocked(const std::string& map_key, Entry entry);
  void EraseLocked(Entries::iterator it);
  void TouchLocked(Entry& entry);
  // Answers `key` from its stat entry or its directory's listing, whichever was made later;
  // a stat entry that the later listing contradicts is dropped (its old info to `changed`).
  Lookup LookupLocked(const std::string& key, std::vector<ufs::ObjectInfo>* changed);
  // Records a fresh stat result for `key`; adds the old info to `changed` when it was a file
  // whose version is now different or gone (its pages are to be freed).
  void StoreStatLocked(const std::string& key, const Result<ufs::ObjectInfo>& fresh,
                       std::vector<ufs::ObjectInfo>* changed);
  // Stores a listing of `dir` made at `stored_unix_ns`; returns the packed bytes (to write to
  // the index outside the lock) and adds the files of `old` that changed or went to `changed`.
  Packed StoreListingLocked(const std::string& dir, const Result<std::vector<ufs::ObjectInfo>>& fresh,
                            const Packed& old, std::vector<ufs::ObjectInfo>* changed);
  // Puts a listing read from the index into memory.
  void AdoptIndexedLocked(const std::string& dir, Packed packed);
  // The listing of `dir` from the index, if there is one and it holds it (no lock held).
  Packed ReadIndex(const std::string& dir);
  // The packed listing of `key` from memory or the index (it may be stale: revalidation is
  // scheduled), or a fetch of it from the store in flight, started if need be (single-flight).
  struct Found {
    Status status;                     // a cached error (kNotFound)
    Packed packed;                     // cached
    std::shared_ptr<Pending> pending;  // being fetched
  };
  Found FindListing(const std::string& key);
  // The packed listing of `key`, waiting for the store when it is not cached.
  Result<Packed> Listing(const std::string& key);
  // Starts fetching the listing of `key` in a thread of its own, unless that is under way;
  // returns the fetch.
  std::shared_ptr<Pending> StartFetchLocked(const std::string& key);
  void Fetch(const std::string& key, std::shared_ptr<Pending> pending);
  // With `lock` held on mu_: when a request for `map_key` is in flight, waits for it and
  // returns it, done; else registers one that the caller is to make and complete.
  std::shared_ptr<Pending> JoinOrLeadLocked(std::unique_lock<std::mutex>& lock, const std::string& map_key);
  // Hands the old infos of changed files to on_change (outside mu_).
  void NotifyChanged(const std::vector<ufs::ObjectInfo>& old_infos);
  // Marks the caller's request done with `status` (its result set); the caller then
  // notifies revalidate_cv_ once mu_ is released.
  void CompleteLocked(const std::string& map_key, Pending* pending, const Status& status);
  // Queues a background revalidation of the directory of `key`, an expired stat entry (or
  // with a trailing '/', of the directory `key` names, an expired listing).
  void ScheduleRevalidation(const std::string& key);
  void Revalidate(const std::string& dir, const std::set<std::string>& triggers);
  void RevalidationLoop();

  ufs::UnderStore* const ufs_;
  const MetadataCacheOptions options_;
  const ChangeCallback on_change_;
  const StatFunction stat_;
  std::unique_ptr<MetadataIndex> index_;  // null: memory only
  std::mutex mu_;
  Entries entries_;                       // GUARDED_BY(mu_): "s:" + key or "l:" + key
  std::list<std::string> lru_;            // GUARDED_BY(mu_): most recent first
  uint64_t bytes_ = 0;                    // GUARDED_BY(mu_): sum of entries' bytes
  uint64_t listed_entries_ = 0;           // GUARDED_BY(mu_)
  std::map<std::string, std::shared_ptr<Pending>> pending_;  // GUARDED_BY(mu_): by map key
  MetadataCacheStats stats_;              // GUARDED_BY(mu_)

  // Background revalidation: directories whose entries expired, one thread, started on first
  // use. Also signalled when a pending request completes.
  std::condition_variable revalidate_cv_;
  std::deque<std::string> revalidate_queue_;  // GUARDED_BY(mu_)
  std::set<std::string> revalidate_queued_;   // GUARDED_BY(mu_)
  std::map<std::string, std::set<std::string>> revalidate_triggers_;  // GUARDED_BY(mu_): by directory
  bool stopping_ = false;                     // GUARDED_BY(mu_)
  std::thread revalidator_;                   // GUARDED_BY(mu_) (started once)
  // Listing fetches, by id; those that ended put their id in fetches_ended_ to be joined.
  std::map<uint64_t, std::thread> fetches_;  // GUARDED_BY(mu_)
  std::vector<uint64_t> fetches_ended_;      // GUARDED_BY(mu_)
  uint64_t next_fetch_id_ = 0;               // GUARDED_BY(mu_)
};

}  // namespace sluice::cache
