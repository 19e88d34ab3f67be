// MetadataCache: stat and directory-listing results of one under-store, kept for the mount's
// TTL, including negative entries (a path that does not exist), bounded in entry count (least
// recently used go first). Built for stores far away, where each request costs a round trip:
//  - a listing answers stat for each of its entries (size, version and mtime come with it);
//  - concurrent misses of one key cause one request (single-flight); misses of different keys
//    run in parallel, and no lock is held across a request;
//  - an expired entry is served while its directory is revalidated in the background with one
//    LIST (stale-while-revalidate): a warm epoch never waits on a request per file. Entries
//    found changed or gone are replaced, and on_change gets the old info so its pages can be
//    freed; a failed revalidation keeps the stale entries (the store may be down).
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
#include <vector>

#include "ufs/under_store.h"

namespace sluice::cache {

struct MetadataCacheOptions {
  std::chrono::nanoseconds ttl = std::chrono::seconds(60);
  size_t max_entries = 100000;
  // A revalidation lists at most this many entries of a directory; in a larger one, an expired
  // entry is revalidated by itself.
  size_t max_revalidate_entries = 100000;
};

struct MetadataCacheStats {
  uint64_t hits = 0, misses = 0, entries = 0, version_changes = 0;
  uint64_t shared_misses = 0;  // misses that waited for another caller's request of the key
  uint64_t stale_hits = 0;     // expired entries served while being revalidated
  uint64_t revalidations = 0;  // background revalidations (a LIST, or a stat) that completed
};

class MetadataCache {
 public:
  using ChangeCallback = std::function<void(const ufs::ObjectInfo& old_info)>;
  // How a stat miss is answered; the default is ufs->Stat. The worker's fetches the file's
  // first page in the same round trip (UnderStore::StatWithHead).
  using StatFunction = std::function<Result<ufs::ObjectInfo>(const std::string& key)>;

  // `ufs` must outlive the cache.
  MetadataCache(ufs::UnderStore* ufs, MetadataCacheOptions options, ChangeCallback on_change = nullptr,
                StatFunction stat = nullptr);
  ~MetadataCache();
  MetadataCache(const MetadataCache&) = delete;
  MetadataCache& operator=(const MetadataCache&) = delete;

  // Stat of a key ("" is the root); kNotFound is cached too.
  Result<ufs::ObjectInfo> Stat(const std::string& key);

  // All entries directly below directory `key`, sorted by path.
  Result<std::vector<ufs::ObjectInfo>> List(const std::string& key);

  // Remembers entries listed elsewhere (a load job's recursive listing) as fresh stats.
  void AddListed(const std::vector<ufs::ObjectInfo>& entries);

  struct Invalidated {
    size_t entries = 0;                  // stat and list entries dropped
    std::vector<ufs::ObjectInfo> files;  // the files whose stat was dropped (to revalidate)
  };
  // Forgets `key` and everything below it.
  Invalidated Invalidate(const std::string& key);

  MetadataCacheStats Stats();

 private:
  struct Entry {
    std::chrono::steady_clock::time_point expires;
    bool is_list = false;
    Status status;                        // non-OK: a negative entry
    ufs::ObjectInfo info;                 // for stat entries
    std::vector<ufs::ObjectInfo> listing; // for list entries
    std::list<std::string>::iterator lru;
  };
  // A request in progress for one map key; callers that miss the same key wait for it.
  struct Pending;

  using Clock = std::chrono::steady_clock;
  void InsertLocked(const std::string& map_key, Entry entry);
  void TouchLocked(Entry& entry);
  // Records a fresh stat result for `key`; returns the old info when it was a file whose
  // version is now different or gone (its pages are to be freed).
  std::optional<ufs::ObjectInfo> StoreStatLocked(const std::string& key, const Result<ufs::ObjectInfo>& fresh);
  // With `lock` held on mu_: when a request for `map_key` is in flight, waits for it and
  // returns it, done; else registers one that the caller is to make and complete.
  std::shared_ptr<Pending> JoinOrLeadLocked(std::unique_lock<std::mutex>& lock, const std::string& map_key);
  // Hands the old infos of changed files to on_change (outside mu_).
  void NotifyChanged(const std::vector<ufs::ObjectInfo>& old_infos);
  // Marks the caller's request done with `status` (its result set); the caller then
  // notifies revalidate_cv_ once mu_ is released.
  void CompleteLocked(const std::string& map_key, Pending* pending, const Status& status);
  // Stores a listing of `dir` and its entries' stats; returns the files that changed or went.
  std::vector<ufs::ObjectInfo> StoreListingLocked(const std::string& dir, const Result<std::vector<ufs::ObjectInfo>>& fresh,
                                                  bool drop_missing_children);
  // Queues a background revalidation of the directory of `key`, an expired stat entry (or
  // with a trailing '/', of the directory `key` names, an expired listing).
  void ScheduleRevalidation(const std::string& key);
  void Revalidate(const std::string& dir, const std::set<std::string>& triggers);
  void RevalidationLoop();

  ufs::UnderStore* const ufs_;
  const MetadataCacheOptions options_;
  const ChangeCallback on_change_;
  const StatFunction stat_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;  // GUARDED_BY(mu_): "s:" + key or "l:" + key
  std::list<std::string> lru_;            // GUARDED_BY(mu_): most recent first
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
};

}  // namespace sluice::cache
