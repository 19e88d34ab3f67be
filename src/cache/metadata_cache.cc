// TTL + LRU cache of stat and list results.
#include "cache/metadata_cache.h"

namespace sluice::cache {
namespace {

bool Cacheable(const Status& st) { return st.ok() || st.code() == StatusCode::kNotFound; }

}  // namespace

MetadataCache::MetadataCache(ufs::UnderStore* ufs, MetadataCacheOptions options, ChangeCallback on_change)
    : ufs_(ufs), options_(options), on_change_(std::move(on_change)) {}

void MetadataCache::TouchLocked(Entry& entry) { lru_.splice(lru_.begin(), lru_, entry.lru); }

void MetadataCache::InsertLocked(const std::string& map_key, Entry entry) {
  auto it = entries_.find(map_key);
  if (it != entries_.end()) {
    lru_.erase(it->second.lru);
    entries_.erase(it);
  }
  lru_.push_front(map_key);
  entry.lru = lru_.begin();
  entries_.emplace(map_key, std::move(entry));
  while (entries_.size() > std::max<size_t>(1, options_.max_entries)) {
    entries_.erase(lru_.back());
    lru_.pop_back();
  }
}

Result<ufs::ObjectInfo> MetadataCache::Stat(const std::string& key) {
  const std::string map_key = "s:" + key;
  std::optional<ufs::ObjectInfo> stale;  // an expired positive entry, to compare versions with
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(map_key);
    if (it != entries_.end()) {
      if (std::chrono::steady_clock::now() < it->second.expires) {
        ++stats_.hits;
        TouchLocked(it->second);
        if (!it->second.status.ok()) return it->second.status;
        return it->second.info;
      }
      if (it->second.status.ok()) stale = it->second.info;
    }
    ++stats_.misses;
  }
  auto fresh = ufs_->Stat(key);
  if (!Cacheable(fresh.status())) return fresh;  // transient errors are not remembered
  bool changed = stale && !stale->is_dir && (!fresh.ok() || fresh->Version() != stale->Version());
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry e;
    e.expires = std::chrono::steady_clock::now() + options_.ttl;
    e.status = fresh.status();
    if (fresh.ok()) e.info = *fresh;
    InsertLocked(map_key, std::move(e));
    if (changed) ++stats_.version_changes;
  }
  if (changed && on_change_) on_change_(*stale);
  return fresh;
}

Result<std::vector<ufs::ObjectInfo>> MetadataCache::List(const std::string& key) {
  const std::string map_key = "l:" + key;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(map_key);
    if (it != entries_.end() && std::chrono::steady_clock::now() < it->second.expires) {
      ++stats_.hits;
      TouchLocked(it->second);
      if (!it->second.status.ok()) return it->second.status;
      return it->second.listing;
    }
    ++stats_.misses;
  }
  auto fresh = ufs_->ListAll(key, false);
  if (!Cacheable(fresh.status())) return fresh;
  std::lock_guard<std::mutex> lock(mu_);
  Entry e;
  e.expires = std::chrono::steady_clock::now() + options_.ttl;
  e.is_list = true;
  e.status = fresh.status();
  if (fresh.ok()) {
    e.listing = *fresh;
    // A listing also answers stat for each child until the TTL runs out.
    for (const auto& child : *fresh) {
      Entry s;
      s.expires = e.expires;
      s.info = child;
      InsertLocked("s:" + child.path, std::move(s));
    }
  }
  InsertLocked(map_key, std::move(e));
  return fresh;
}

MetadataCache::Invalidated MetadataCache::Invalidate(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  Invalidated dropped;
  for (const char* kind : {"s:", "l:"}) {
    std::string base = kind + key;
    for (auto it = entries_.lower_bound(base); it != entries_.end() && it->first.compare(0, base.size(), base) == 0;) {
      const std::string& k = it->first;
      bool below = key.empty() || k.size() == base.size() || k[base.size()] == '/';
      if (!below) {
        ++it;
        continue;
      }
      if (!it->second.is_list && it->second.status.ok() && !it->second.info.is_dir) {
        dropped.files.push_back(it->second.info);
      }
      lru_.erase(it->second.lru);
      it = entries_.erase(it);
      ++dropped.entries;
    }
  }
  return dropped;
}

MetadataCacheStats MetadataCache::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  MetadataCacheStats s = stats_;
  s.entries = entries_.size();
  return s;
}

}  // namespace sluice::cache
