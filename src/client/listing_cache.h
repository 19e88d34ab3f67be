// ListingCache: the directory pages a client listed lately, so that a lookup of a listed name
// (a loader opening the files of a directory it has just listed, `find` followed by stats) is
// answered in the client's process instead of by a round trip to the worker. A page covers
// the names after its cursor up to its last entry (to the end of the directory when it was
// the last page) and answers for each of them both ways: the entry, or "no such name". Pages
// are kept packed (cache::PackedListing), for at most the TTL the kernel keeps the same
// entries (FUSE passes its attribute timeout: no staleness the kernel would not add), within a
// memory bound (least recently used pages go first). Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "client/file_info.h"
#include "common/status.h"

namespace sluice::client {

class ListingCache {
 public:
  // Off (nothing kept) when either is 0.
  ListingCache(uint64_t max_bytes, std::chrono::nanoseconds ttl);

  // A page of directory `dir` as the worker answered ListPage(dir, start_after): entries in
  // name order, `more` when others follow.
  void AddPage(const std::string& dir, const std::string& start_after, const std::vector<FileInfo>& entries,
               bool more);
  // What the pages say about `path`: its entry, kNotFound when a page covering its name lacks
  // it, nullopt when no fresh page covers it.
  std::optional<Result<FileInfo>> Lookup(const std::string& path);
  // Forgets `path`'s own entry and everything listed at or below it.
  void Drop(const std::string& path);

  struct Stats {
    uint64_t bytes = 0, pages = 0, hits = 0, misses = 0;
  };
  Stats GetStats() const;

 private:
  // Pages of one directory by the name they end at; {true, ""} is the page reaching the end.
  using PageKey = std::pair<bool, std::string>;
  struct Page {
    std::string start_after;
    std::string packed;  // cache::PackedListing bytes
    std::chrono::steady_clock::time_point added;
    std::list<std::pair<std::string, PageKey>>::iterator lru;
  };
  using DirPages = std::map<PageKey, Page>;

  static uint64_t Charge(const std::string& dir, const Page& page);
  void Erase(const std::string& dir, DirPages& pages, DirPages::iterator it);  // REQUIRES(mu_)

  const uint64_t max_bytes_;
  const std::chrono::nanoseconds ttl_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, DirPages> dirs_;         // GUARDED_BY(mu_)
  std::list<std::pair<std::string, PageKey>> lru_;         // GUARDED_BY(mu_): least recent first
  uint64_t bytes_ = 0, pages_ = 0, hits_ = 0, misses_ = 0;  // GUARDED_BY(mu_)
};

}  // namespace sluice::client
