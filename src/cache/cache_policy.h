// Eviction and admission for one cache tier. The tier tells the policy about inserts,
// accesses and removals; when it needs room it asks for a victim. A policy that returns no
// victim refuses the new page instead (admission control). Not thread-safe: the owning tier
// serializes calls.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "cache/page_key.h"
#include "common/status.h"

namespace sluice::cache {

class CachePolicy {
 public:
  CachePolicy() = default;
  CachePolicy(const CachePolicy&) = delete;
  CachePolicy& operator=(const CachePolicy&) = delete;
  virtual ~CachePolicy() = default;

  virtual void OnInsert(const PageKey& key) = 0;
  virtual void OnAccess(const PageKey& key) = 0;
  virtual void OnRemove(const PageKey& key) = 0;
  // The page to evict to make room, or nullopt to keep everything and refuse the newcomer.
  virtual std::optional<PageKey> Victim() = 0;
};

// Least recently used: evicts the page touched longest ago.
std::unique_ptr<CachePolicy> NewLruPolicy();

// "Stable": keeps the pages it admitted first and refuses new ones once full (the CoorDL
// "MinIO" policy). On epoch-style scans of a dataset larger than the cache, LRU evicts every
// page just before its next use and hits ~0%; this keeps hitting cache/dataset of the reads.
std::unique_ptr<CachePolicy> NewStablePolicy();

// "lru" or "stable"; anything else is kInvalidArgument naming it.
Result<std::unique_ptr<CachePolicy>> NewCachePolicy(std::string_view name);

}  // namespace sluice::cache
