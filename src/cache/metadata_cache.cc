// TTL + LRU cache of stat and list results, single-flight, revalidated in the background.
#include "cache/metadata_cache.h"

#include "common/logging.h"

namespace sluice::cache {
namespace {

bool Cacheable(const Status& st) { return st.ok() || st.code() == StatusCode::kNotFound; }

// "a/b/c" -> "a/b"; "c" -> "".
std::string ParentOf(const std::string& key) {
  size_t slash = key.rfind('/');
  return slash == std::string::npos ? "" : key.substr(0, slash);
}

bool SameVersion(const ufs::ObjectInfo& a, const ufs::ObjectInfo& b) {
  return a.is_dir == b.is_dir && (a.is_dir || a.Version() == b.Version());
}

}  // namespace

struct MetadataCache::Pending {
  bool done = false;
  Status status;
  ufs::ObjectInfo info;
  std::vector<ufs::ObjectInfo> listing;
};

MetadataCache::MetadataCache(ufs::UnderStore* ufs, MetadataCacheOptions options, ChangeCallback on_change,
                             StatFunction stat)
    : ufs_(ufs), options_(options), on_change_(std::move(on_change)), stat_(std::move(stat)) {}

MetadataCache::~MetadataCache() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  revalidate_cv_.notify_all();
  if (revalidator_.joinable()) revalidator_.join();
}

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

std::optional<ufs::ObjectInfo> MetadataCache::StoreStatLocked(const std::string& key,
                                                               const Result<ufs::ObjectInfo>& fresh) {
  const std::string map_key = "s:" + key;
  std::optional<ufs::ObjectInfo> changed;
  auto old = entries_.find(map_key);
  if (old != entries_.end() && old->second.status.ok() && !old->second.info.is_dir &&
      (!fresh.ok() || !SameVersion(old->second.info, *fresh))) {
    changed = old->second.info;
    ++stats_.version_changes;
  }
  Entry e;
  e.expires = Clock::now() + options_.ttl;
  e.status = fresh.status();
  if (fresh.ok()) e.info = *fresh;
  InsertLocked(map_key, std::move(e));
  return changed;
}

std::vector<ufs::ObjectInfo> MetadataCache::StoreListingLocked(const std::string& dir,
                                                               const Result<std::vector<ufs::ObjectInfo>>& fresh,
                                                               bool drop_missing_children) {
  std::vector<ufs::ObjectInfo> changed;
  Entry e;
  e.expires = Clock::now() + options_.ttl;
  e.is_list = true;
  e.status = fresh.status();
  if (fresh.ok()) e.listing = *fresh;
  InsertLocked("l:" + dir, std::move(e));
  if (!fresh.ok()) return changed;
  ufs::ObjectInfo self;
  self.path = dir;
  self.is_dir = true;
  (void)StoreStatLocked(dir, self);
  if (drop_missing_children) {
    // Children remembered from before that the listing no longer holds are gone.
    std::set<std::string> listed;
    for (const auto& child : *fresh) listed.insert(child.path);
    const std::string base = "s:" + (dir.empty() ? "" : dir + "/");
    std::vector<std::string> gone;
    for (auto it = entries_.lower_bound(base); it != entries_.end() && it->first.compare(0, base.size(), base) == 0;
         ++it) {
      std::string child = it->first.substr(2);
      if (child.empty() || child.find('/', base.size() - 2) != std::string::npos) continue;  // not a direct child
      if (it->second.status.ok() && !listed.count(child)) gone.push_back(child);
    }
    for (const auto& child : gone) {
      if (auto old = StoreStatLocked(child, NotFound(child + ": no longer listed"))) changed.push_back(*old);
    }
  }
  for (const auto& child : *fresh) {
    if (auto old = StoreStatLocked(child.path, child)) changed.push_back(*old);
  }
  return changed;
}

void MetadataCache::NotifyChanged(const std::vector<ufs::ObjectInfo>& old_infos) {
  if (!on_change_) return;
  for (const auto& old : old_infos) on_change_(old);
}

std::shared_ptr<MetadataCache::Pending> MetadataCache::JoinOrLeadLocked(std::unique_lock<std::mutex>& lock,
                                                                       const std::string& map_key) {
  auto it = pending_.find(map_key);
  if (it == pending_.end()) {
    auto mine = std::make_shared<Pending>();
    pending_[map_key] = mine;
    return mine;
  }
  ++stats_.shared_misses;
  auto theirs = it->second;
  revalidate_cv_.wait(lock, [&] { return theirs->done; });
  return theirs;
}

void MetadataCache::CompleteLocked(const std::string& map_key, Pending* pending, const Status& status) {
  pending->done = true;
  pending->status = status;
  pending_.erase(map_key);
}

Result<ufs::ObjectInfo> MetadataCache::Stat(const std::string& key) {
  const std::string map_key = "s:" + key;
  std::shared_ptr<Pending> pending;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = entries_.find(map_key);
    if (it != entries_.end()) {
      if (Clock::now() < it->second.expires) {
        ++stats_.hits;
        TouchLocked(it->second);
        if (!it->second.status.ok()) return it->second.status;
        return it->second.info;
      }
      if (it->second.status.ok() && options_.ttl.count() > 0) {
        // Expired: served as it is while one LIST revalidates its directory.
        ++stats_.stale_hits;
        TouchLocked(it->second);
        ufs::ObjectInfo stale = it->second.info;
        lock.unlock();
        ScheduleRevalidation(key);
        return stale;
      }
    }
    ++stats_.misses;
    pending = JoinOrLeadLocked(lock, map_key);
    if (pending->done) {
      if (!pending->status.ok()) return pending->status;
      return pending->info;
    }
  }
  auto fresh = stat_ ? stat_(key) : ufs_->Stat(key);
  std::optional<ufs::ObjectInfo> changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (Cacheable(fresh.status())) changed = StoreStatLocked(key, fresh);  // transient errors are not remembered
    if (fresh.ok()) pending->info = *fresh;
    CompleteLocked(map_key, pending.get(), fresh.status());
  }
  revalidate_cv_.notify_all();
  if (changed) NotifyChanged({*changed});
  return fresh;
}

Result<std::vector<ufs::ObjectInfo>> MetadataCache::List(const std::string& key) {
  const std::string map_key = "l:" + key;
  std::shared_ptr<Pending> pending;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = entries_.find(map_key);
    if (it != entries_.end() &&
        (Clock::now() < it->second.expires || (it->second.status.ok() && options_.ttl.count() > 0))) {
      TouchLocked(it->second);
      std::vector<ufs::ObjectInfo> listing = it->second.listing;
      Status status = it->second.status;
      if (Clock::now() < it->second.expires) {
        ++stats_.hits;
      } else {
        ++stats_.stale_hits;
        lock.unlock();
        ScheduleRevalidation(key.empty() ? "" : key + "/");  // the directory itself is relisted
      }
      if (!status.ok()) return status;
      return listing;
    }
    ++stats_.misses;
    pending = JoinOrLeadLocked(lock, map_key);
    if (pending->done) {
      if (!pending->status.ok()) return pending->status;
      return pending->listing;
    }
  }
  auto fresh = ufs_->ListAll(key, false);
  std::vector<ufs::ObjectInfo> changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (Cacheable(fresh.status())) changed = StoreListingLocked(key, fresh, /*drop_missing_children=*/false);
    if (fresh.ok()) pending->listing = *fresh;
    CompleteLocked(map_key, pending.get(), fresh.status());
  }
  revalidate_cv_.notify_all();
  NotifyChanged(changed);
  return fresh;
}

void MetadataCache::AddListed(const std::vector<ufs::ObjectInfo>& entries) {
  std::vector<ufs::ObjectInfo> changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& info : entries) {
      // A stat in flight stays the one answer: who looks the key up joins it (and finds what
      // it brought, the first page included) rather than fetching again.
      if (pending_.count("s:" + info.path)) continue;
      if (auto old = StoreStatLocked(info.path, info)) changed.push_back(*old);
    }
  }
  NotifyChanged(changed);
}

void MetadataCache::ScheduleRevalidation(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  // One revalidation per directory, however many of its entries expired; the entries that
  // asked are kept (a few) for a directory too large to list.
  const bool listing = !key.empty() && key.back() == '/';
  const std::string dir = listing ? key.substr(0, key.size() - 1) : ParentOf(key);
  auto& triggers = revalidate_triggers_[dir];
  if (!listing && triggers.size() < 64) triggers.insert(key);
  if (!revalidate_queued_.insert(dir).second) return;
  revalidate_queue_.push_back(dir);
  if (!revalidator_.joinable()) revalidator_ = std::thread([this] { RevalidationLoop(); });
  revalidate_cv_.notify_all();
}

void MetadataCache::RevalidationLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    revalidate_cv_.wait(lock, [&] { return stopping_ || !revalidate_queue_.empty(); });
    if (stopping_) return;
    std::string dir = revalidate_queue_.front();
    revalidate_queue_.pop_front();
    std::set<std::string> triggers = std::move(revalidate_triggers_[dir]);
    revalidate_triggers_.erase(dir);
    lock.unlock();
    Revalidate(dir, triggers);
    lock.lock();
    // Entries that expired while the LIST was out were refreshed by it: no second one.
    revalidate_queued_.erase(dir);
    revalidate_triggers_.erase(dir);
  }
}

// Lists `dir` once and refreshes its entries; a directory too large to list whole (or gone)
// revalidates the entries that expired (`triggers`) one by one instead.
void MetadataCache::Revalidate(const std::string& dir, const std::set<std::string>& triggers) {
  auto fresh = ufs_->ListAll(dir, false, options_.max_revalidate_entries);
  const Status& st = fresh.status();
  std::vector<ufs::ObjectInfo> changed;
  if (fresh.ok() || (st.code() == StatusCode::kNotFound && triggers.empty())) {
    std::lock_guard<std::mutex> lock(mu_);
    changed = StoreListingLocked(dir, fresh, /*drop_missing_children=*/true);
    ++stats_.revalidations;
  } else if (st.code() == StatusCode::kResourceExhausted || st.code() == StatusCode::kNotFound) {
    for (const auto& key : triggers) {
      auto fresh = ufs_->Stat(key);
      std::lock_guard<std::mutex> lock(mu_);
      if (Cacheable(fresh.status())) {
        if (auto old = StoreStatLocked(key, fresh)) changed.push_back(*old);
        ++stats_.revalidations;
      }
    }
  } else {
    SLUICE_LOG_DEBUG("revalidating {} in the background failed: {}", dir, st.ToString());
  }
  NotifyChanged(changed);
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
