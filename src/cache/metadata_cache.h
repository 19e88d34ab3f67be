// MetadataCache: stat and directory-listing results of one under-store, kept for the mount's
// TTL, including negative entries (a path that does not exist), bounded in entry count (least
// recently used go first). When an expired entry is revalidated and the file's version
// changed, the on_change callback gets the old info so its pages can be freed. Invalidate()
// drops a path and everything below it (`sluice fs sync`). Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "ufs/under_store.h"

namespace sluice::cache {

struct MetadataCacheOptions {
  std::chrono::nanoseconds ttl = std::chrono::seconds(60);
  size_t max_entries = 100000;
};

struct MetadataCacheStats {
  uint64_t hits = 0, misses = 0, entries = 0, version_changes = 0;
};

class MetadataCache {
 public:
  using ChangeCallback = std::function<void(const ufs::ObjectInfo& old_info)>;

  // `ufs` must outlive the cache.
  MetadataCache(ufs::UnderStore* ufs, MetadataCacheOptions options, ChangeCallback on_change = nullptr);

  // Stat of a key ("" is the root); kNotFound is cached too.
  Result<ufs::ObjectInfo> Stat(const std::string& key);

  // All entries directly below directory `key`, sorted by path.
  Result<std::vector<ufs::ObjectInfo>> List(const std::string& key);

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

  void InsertLocked(const std::string& map_key, Entry entry);
  void TouchLocked(Entry& entry);

  ufs::UnderStore* const ufs_;
  const MetadataCacheOptions options_;
  const ChangeCallback on_change_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;  // GUARDED_BY(mu_): "s:" + key or "l:" + key
  std::list<std::string> lru_;            // GUARDED_BY(mu_): most recent first
  MetadataCacheStats stats_;              // GUARDED_BY(mu_)
};

}  // namespace sluice::cache
