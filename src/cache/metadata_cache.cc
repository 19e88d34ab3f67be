// Bounded, packed stat and listing cache with an on-disk index, single-flight, revalidated in
// the background.
#include "cache/metadata_cache.h"

#include <algorithm>

#include "cache/packed_listing.h"
#include "common/logging.h"

namespace sluice::cache {
namespace {

// A map node, an Entry and an LRU node, beyond the strings they hold.
constexpr size_t kEntryOverhead = 200;

bool Cacheable(const Status& st) { return st.ok() || st.code() == StatusCode::kNotFound; }

bool SameVersion(const ufs::ObjectInfo& a, const ufs::ObjectInfo& b) {
  return a.is_dir == b.is_dir && (a.is_dir || a.Version() == b.Version());
}

int64_t UnixNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "a/b/c" -> "a/b"; "c" -> "".
std::string ParentOf(const std::string& key) { return SplitParent(key).first; }

std::string_view BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string_view(path) : std::string_view(path).substr(slash + 1);
}

// `k` is `key` or below it.
bool IsUnder(const std::string& k, const std::string& key) {
  return key.empty() || k == key || (k.size() > key.size() && k.compare(0, key.size(), key) == 0 && k[key.size()] == '/');
}

}  // namespace

struct MetadataCache::Pending {
  bool done = false;
  bool dropped = false;  // Invalidate() came while it was out: its result is not kept
  Status status;
  ufs::ObjectInfo info;
  Packed packed;
  // A listing being fetched: what came so far, sorted by name; the first `settled` of them
  // are final (no later store page can hold a name that sorts before them).
  std::vector<ufs::ObjectInfo> received;
  size_t settled = 0;

  // Takes one store page (in store order: after every page before it).
  void Receive(const std::vector<ufs::ObjectInfo>& page) {
    if (page.empty()) return;
    const size_t old = received.size();
    received.insert(received.end(), page.begin(), page.end());
    auto by_name = [](const ufs::ObjectInfo& a, const ufs::ObjectInfo& b) { return BaseName(a.path) < BaseName(b.path); };
    std::sort(received.begin() + static_cast<std::ptrdiff_t>(old), received.end(), by_name);
    std::inplace_merge(received.begin(), received.begin() + static_cast<std::ptrdiff_t>(old), received.end(), by_name);
    // Stores list keys in byte order, a directory as "name/". A later page's keys sort after
    // this page's last key K; a name that sorts before K's can still come as a directory
    // "p/" where p is a prefix of K followed by a byte below '/' ("b/" after "b.txt"). Names
    // from the shortest such p on wait for the next page.
    std::string last;
    for (const auto& e : page) {
      std::string key = std::string(BaseName(e.path)) + (e.is_dir ? "/" : "");
      if (key > last) last = std::move(key);
    }
    size_t cut = std::string::npos;
    for (size_t i = 1; i < last.size(); ++i) {
      if (static_cast<unsigned char>(last[i]) < '/') {
        cut = i;
        break;
      }
    }
    if (cut == std::string::npos) {
      settled = received.size();
    } else {
      const std::string bound = last.substr(0, cut);
      settled = static_cast<size_t>(
          std::lower_bound(received.begin(), received.end(), bound,
                           [](const ufs::ObjectInfo& e, const std::string& b) { return BaseName(e.path) < b; }) -
          received.begin());
    }
  }

  // The first received entry whose name sorts after `name`.
  size_t UpperBound(const std::string& name) const {
    if (name.empty()) return 0;
    return static_cast<size_t>(
        std::upper_bound(received.begin(), received.end(), name,
                         [](const std::string& n, const ufs::ObjectInfo& e) { return n < BaseName(e.path); }) -
        received.begin());
  }
};

MetadataCache::MetadataCache(ufs::UnderStore* ufs, MetadataCacheOptions options, ChangeCallback on_change,
                             StatFunction stat)
    : ufs_(ufs), options_(std::move(options)), on_change_(std::move(on_change)), stat_(std::move(stat)) {
  if (!options_.index_dir.empty()) {
    auto index = MetadataIndex::Open(options_.index_dir);
    if (index.ok()) {
      index_ = std::move(index).value();
    } else {
      SLUICE_LOG_WARN("metadata of {} stays in memory only: {}", ufs_->Uri(), index.status().message());
    }
  }
}

MetadataCache::~MetadataCache() {
  std::map<uint64_t, std::thread> fetches;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    fetches = std::move(fetches_);
  }
  revalidate_cv_.notify_all();
  if (revalidator_.joinable()) revalidator_.join();
  for (auto& [id, thread] : fetches) thread.join();
}

void MetadataCache::TouchLocked(Entry& entry) { lru_.splice(lru_.begin(), lru_, entry.lru); }

void MetadataCache::EraseLocked(Entries::iterator it) {
  bytes_ -= it->second.bytes;
  listed_entries_ -= it->second.listed;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

void MetadataCache::InsertLocked(const std::string& map_key, Entry entry) {
  auto it = entries_.find(map_key);
  if (it != entries_.end()) EraseLocked(it);
  entry.bytes = kEntryOverhead + 2 * map_key.size() + entry.status.message().size() +
                (entry.packed ? entry.packed->size()
                              : entry.info.path.size() + entry.info.etag.size() + entry.info.identity.size());
  entry.listed = entry.packed ? PackedListing::View(*entry.packed).size() : 0;
  bytes_ += entry.bytes;
  listed_entries_ += entry.listed;
  lru_.push_front(map_key);
  entry.lru = lru_.begin();
  entries_.emplace(map_key, std::move(entry));
  while (bytes_ > options_.max_bytes && entries_.size() > 1) EraseLocked(entries_.find(lru_.back()));
}

MetadataCache::Lookup MetadataCache::LookupLocked(const std::string& key, std::vector<ufs::ObjectInfo>* changed) {
  Lookup out;
  auto s = entries_.find("s:" + key);
  Entry* stat = s == entries_.end() ? nullptr : &s->second;
  Entry* listing = nullptr;
  std::string dir, name;
  if (!key.empty()) {
    std::tie(dir, name) = SplitParent(key);
    auto l = entries_.find("l:" + dir);
    if (l != entries_.end()) listing = &l->second;
  }
  const auto now = Clock::now();
  if (listing && (!stat || listing->stored >= stat->stored)) {
    Result<ufs::ObjectInfo> answer = NotFound(key + ": not in the listing of its directory");
    if (listing->packed) {
      PackedListing view = PackedListing::View(*listing->packed);
      if (auto i = view.Find(name)) answer = view.InfoAt(*i, dir);
    }
    if (stat) {  // an older stat: the listing is the truth now
      if (stat->status.ok() && !stat->info.is_dir && (!answer.ok() || !SameVersion(stat->info, *answer))) {
        changed->push_back(stat->info);
        ++stats_.version_changes;
      }
      EraseLocked(s);
    }
    TouchLocked(*listing);
    out.found = out.from_listing = true;
    out.fresh = now < listing->expires;
    out.answer = std::move(answer);
    return out;
  }
  if (stat) {
    TouchLocked(*stat);
    out.found = true;
    out.fresh = now < stat->expires;
    out.answer = stat->status.ok() ? Result<ufs::ObjectInfo>(stat->info) : Result<ufs::ObjectInfo>(stat->status);
  }
  return out;
}

void MetadataCache::StoreStatLocked(const std::string& key, const Result<ufs::ObjectInfo>& fresh,
                                    std::vector<ufs::ObjectInfo>* changed) {
  Lookup now = LookupLocked(key, changed);
  if (now.found && now.answer.ok() && !now.answer->is_dir && (!fresh.ok() || !SameVersion(*now.answer, *fresh))) {
    changed->push_back(*now.answer);
    ++stats_.version_changes;
  }
  Entry e;
  e.stored = Clock::now();
  e.expires = e.stored + options_.ttl;
  e.status = fresh.status();
  if (fresh.ok()) e.info = *fresh;
  InsertLocked("s:" + key, std::move(e));
}

MetadataCache::Packed MetadataCache::StoreListingLocked(const std::string& dir,
                                                        const Result<std::vector<ufs::ObjectInfo>>& fresh,
                                                        const Packed& old, std::vector<ufs::ObjectInfo>* changed) {
  Entry e;
  e.stored = Clock::now();
  e.expires = e.stored + options_.ttl;
  e.is_list = true;
  e.status = fresh.status();
  if (fresh.ok()) e.packed = std::make_shared<const std::string>(PackedListing::Pack(*fresh, UnixNowNs()));
  Packed before = old;
  if (auto it = entries_.find("l:" + dir); it != entries_.end() && it->second.packed) before = it->second.packed;
  if (before) {
    // Files of the previous listing that are gone or different now (both sorted by name).
    PackedListing was = PackedListing::View(*before);
    std::optional<PackedListing> now;
    if (e.packed) now = PackedListing::View(*e.packed);
    size_t j = 0;
    for (size_t i = 0; i < was.size(); ++i) {
      std::string_view name = was.NameAt(i);
      while (now && j < now->size() && now->NameAt(j) < name) ++j;
      if (now && j < now->size() && now->NameAt(j) == name && was.SameAs(i, *now, j)) continue;
      ufs::ObjectInfo old_info = was.InfoAt(i, dir);
      if (old_info.is_dir) continue;
      if (now && j < now->size() && now->NameAt(j) == name && SameVersion(old_info, now->InfoAt(j, dir))) continue;
      changed->push_back(std::move(old_info));
      ++stats_.version_changes;
    }
  }
  Packed packed = e.packed;
  InsertLocked("l:" + dir, std::move(e));
  if (fresh.ok()) {
    ufs::ObjectInfo self;
    self.path = dir;
    self.is_dir = true;
    StoreStatLocked(dir, self, changed);
  }
  return packed;
}

void MetadataCache::AdoptIndexedLocked(const std::string& dir, Packed packed) {
  if (entries_.count("l:" + dir)) return;  // listed meanwhile
  const auto age = std::chrono::nanoseconds(
      std::max<int64_t>(0, UnixNowNs() - PackedListing::View(*packed).stored_unix_ns()));
  Entry e;
  e.stored = Clock::now() - age;
  e.expires = e.stored + options_.ttl;
  e.is_list = true;
  e.packed = std::move(packed);
  InsertLocked("l:" + dir, std::move(e));
  ++stats_.index_reads;
}

MetadataCache::Packed MetadataCache::ReadIndex(const std::string& dir) {
  if (!index_) return nullptr;
  auto bytes = index_->Get(dir);
  if (!bytes) return nullptr;
  auto checked = PackedListing::Open(*bytes);
  if (!checked.ok()) {
    SLUICE_LOG_WARN("the metadata index of {} holds a bad listing of '{}' ({}); it is listed again", ufs_->Uri(), dir,
                    checked.status().message());
    (void)index_->Delete(dir);
    return nullptr;
  }
  return std::make_shared<const std::string>(std::move(*bytes));
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
  if (auto it = pending_.find(map_key); it != pending_.end() && it->second.get() == pending) pending_.erase(it);
}

std::optional<Result<ufs::ObjectInfo>> MetadataCache::Peek(const std::string& key) {
  std::vector<ufs::ObjectInfo> changed;
  std::optional<Result<ufs::ObjectInfo>> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Lookup found = LookupLocked(key, &changed);
    if (found.found && found.fresh) {
      ++stats_.hits;
      out = std::move(found.answer);
    }
  }
  NotifyChanged(changed);
  return out;
}

Result<ufs::ObjectInfo> MetadataCache::Stat(const std::string& key) {
  const std::string map_key = "s:" + key;
  std::vector<ufs::ObjectInfo> changed;
  std::shared_ptr<Pending> pending;
  bool index_read = index_ == nullptr || key.empty();
  for (;;) {
    std::unique_lock<std::mutex> lock(mu_);
    Lookup found = LookupLocked(key, &changed);
    if (found.found && (found.fresh || (found.answer.ok() && options_.ttl.count() > 0))) {
      if (found.fresh) {
        ++stats_.hits;
      } else {
        ++stats_.stale_hits;  // served as it is while one LIST revalidates its directory
      }
      lock.unlock();
      if (!found.fresh) ScheduleRevalidation(key);
      NotifyChanged(changed);
      return found.answer;
    }
    if (!index_read && !found.from_listing) {
      // The directory's listing may be on disk (pushed out of memory, or from before a restart).
      lock.unlock();
      index_read = true;
      const std::string dir = ParentOf(key);
      if (Packed packed = ReadIndex(dir)) {
        lock.lock();
        AdoptIndexedLocked(dir, std::move(packed));
      }
      continue;
    }
    ++stats_.misses;
    pending = JoinOrLeadLocked(lock, map_key);
    if (pending->done) {
      lock.unlock();
      NotifyChanged(changed);
      if (!pending->status.ok()) return pending->status;
      return pending->info;
    }
    break;
  }
  auto fresh = stat_ ? stat_(key) : ufs_->Stat(key);
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Transient errors are not remembered, nor what a sync made while it was out.
    if (Cacheable(fresh.status()) && !pending->dropped) StoreStatLocked(key, fresh, &changed);
    if (fresh.ok()) pending->info = *fresh;
    CompleteLocked(map_key, pending.get(), fresh.status());
  }
  revalidate_cv_.notify_all();
  NotifyChanged(changed);
  return fresh;
}

MetadataCache::Found MetadataCache::FindListing(const std::string& key) {
  const std::string map_key = "l:" + key;
  bool index_read = index_ == nullptr;
  for (;;) {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = entries_.find(map_key);
    if (it != entries_.end() &&
        (Clock::now() < it->second.expires || (it->second.status.ok() && options_.ttl.count() > 0))) {
      TouchLocked(it->second);
      Found found{it->second.status, it->second.packed, nullptr};
      if (Clock::now() < it->second.expires) {
        ++stats_.hits;
      } else {
        ++stats_.stale_hits;
        lock.unlock();
        ScheduleRevalidation(key.empty() ? "" : key + "/");  // the directory itself is relisted
      }
      return found;
    }
    if (!index_read) {
      lock.unlock();
      index_read = true;
      if (Packed packed = ReadIndex(key)) {
        lock.lock();
        AdoptIndexedLocked(key, std::move(packed));
      }
      continue;
    }
    ++stats_.misses;
    return Found{Status::Ok(), nullptr, StartFetchLocked(key)};
  }
}

std::shared_ptr<MetadataCache::Pending> MetadataCache::StartFetchLocked(const std::string& key) {
  const std::string map_key = "l:" + key;
  if (auto it = pending_.find(map_key); it != pending_.end()) {
    ++stats_.shared_misses;
    return it->second;
  }
  for (uint64_t id : fetches_ended_) {
    auto it = fetches_.find(id);
    if (it == fetches_.end()) continue;  // the destructor has it
    it->second.join();  // it ended: nothing left to wait for
    fetches_.erase(it);
  }
  fetches_ended_.clear();
  auto pending = std::make_shared<Pending>();
  pending_[map_key] = pending;
  if (stopping_) {
    CompleteLocked(map_key, pending.get(), Status(StatusCode::kUnavailable, "the metadata cache is shutting down"));
    return pending;
  }
  const uint64_t id = next_fetch_id_++;
  fetches_.emplace(id, std::thread([this, key, pending, id] {
                     Fetch(key, pending);
                     std::lock_guard<std::mutex> lock(mu_);
                     fetches_ended_.push_back(id);
                   }));
  return pending;
}

void MetadataCache::Fetch(const std::string& key, std::shared_ptr<Pending> pending) {
  auto fresh = ufs_->ListAll(key, false, SIZE_MAX, [&](const std::vector<ufs::ObjectInfo>& page) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending->Receive(page);
    }
    revalidate_cv_.notify_all();
  });
  std::vector<ufs::ObjectInfo> changed;
  Packed packed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (Cacheable(fresh.status()) && !pending->dropped) packed = StoreListingLocked(key, fresh, nullptr, &changed);
  }
  // On disk before the fetch completes: memory may drop it at once, and who then reads it
  // back from the index must find it.
  if (packed && index_) {
    Status st = index_->Put(key, *packed);
    if (!st.ok()) SLUICE_LOG_WARN("{}", st.message());
  }
  bool undo = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    undo = packed && pending->dropped;  // a sync came between the two locks
    if (packed) {
      pending->packed = packed;
    } else if (fresh.ok()) {  // dropped by a sync meanwhile: only for who waits
      pending->packed = std::make_shared<const std::string>(PackedListing::Pack(*fresh, UnixNowNs()));
    }
    pending->received.clear();
    pending->received.shrink_to_fit();
    CompleteLocked("l:" + key, pending.get(), fresh.status());
  }
  revalidate_cv_.notify_all();
  if (undo && index_) (void)index_->Delete(key);
  NotifyChanged(changed);
}

Result<MetadataCache::Packed> MetadataCache::Listing(const std::string& key) {
  Found found = FindListing(key);
  if (found.pending) {
    std::unique_lock<std::mutex> lock(mu_);
    revalidate_cv_.wait(lock, [&] { return found.pending->done; });
    if (!found.pending->status.ok()) return found.pending->status;
    return found.pending->packed;
  }
  if (!found.status.ok()) return found.status;
  return found.packed;
}

Result<std::vector<ufs::ObjectInfo>> MetadataCache::List(const std::string& key) {
  SLUICE_ASSIGN_OR_RETURN(Packed packed, Listing(key));
  PackedListing view = PackedListing::View(*packed);
  std::vector<ufs::ObjectInfo> out;
  out.reserve(view.size());
  for (size_t i = 0; i < view.size(); ++i) out.push_back(view.InfoAt(i, key));
  return out;
}

Result<ListingPage> MetadataCache::ListPage(const std::string& key, const std::string& start_after, size_t limit) {
  limit = std::max<size_t>(1, limit);
  Found found = FindListing(key);
  ListingPage page;
  if (found.pending) {
    // Served from what the store sent so far, as soon as it holds the page.
    Pending& p = *found.pending;
    std::unique_lock<std::mutex> lock(mu_);
    auto end = [&](size_t from) { return limit > SIZE_MAX - from ? SIZE_MAX : from + limit; };
    revalidate_cv_.wait(lock, [&] { return p.done || p.settled >= end(p.UpperBound(start_after)); });
    if (!p.done) {
      const size_t from = p.UpperBound(start_after);
      page.entries.assign(p.received.begin() + static_cast<std::ptrdiff_t>(from),
                          p.received.begin() + static_cast<std::ptrdiff_t>(end(from)));
      page.more = true;
      return page;
    }
    if (!p.status.ok()) return p.status;
    found.packed = p.packed;
  } else if (!found.status.ok()) {
    return found.status;
  }
  PackedListing view = PackedListing::View(*found.packed);
  const size_t from = start_after.empty() ? 0 : view.UpperBound(start_after);
  const size_t to = from + std::min(view.size() - from, limit);
  page.entries.reserve(to - from);
  for (size_t i = from; i < to; ++i) page.entries.push_back(view.InfoAt(i, key));
  page.more = to < view.size();
  return page;
}

void MetadataCache::AddListed(const std::vector<ufs::ObjectInfo>& entries) {
  std::vector<ufs::ObjectInfo> changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& info : entries) {
      // A stat in flight stays the one answer: who looks the key up joins it (and finds what
      // it brought, the first page included) rather than fetching again.
      if (pending_.count("s:" + info.path)) continue;
      StoreStatLocked(info.path, info, &changed);
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
    Packed before;
    bool in_memory;
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_memory = entries_.count("l:" + dir) > 0;
    }
    if (!in_memory) before = ReadIndex(dir);  // to free the pages of files that changed
    Packed packed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      packed = StoreListingLocked(dir, fresh, before, &changed);
      ++stats_.revalidations;
    }
    if (index_) {
      Status written = packed ? index_->Put(dir, *packed) : index_->DeleteTree(dir);
      if (!written.ok()) SLUICE_LOG_WARN("{}", written.message());
    }
  } else if (st.code() == StatusCode::kResourceExhausted || st.code() == StatusCode::kNotFound) {
    for (const auto& key : triggers) {
      auto fresh = ufs_->Stat(key);
      std::lock_guard<std::mutex> lock(mu_);
      if (Cacheable(fresh.status())) {
        StoreStatLocked(key, fresh, &changed);
        ++stats_.revalidations;
      }
    }
  } else {
    SLUICE_LOG_DEBUG("revalidating {} in the background failed: {}", dir, st.ToString());
  }
  NotifyChanged(changed);
}

MetadataCache::Invalidated MetadataCache::Invalidate(const std::string& key) {
  Invalidated dropped;
  // The parent's listing goes too (it describes `key`); of its files only `key` is reported.
  const std::string parent = ParentOf(key);
  Packed own = ReadIndex(key), parents = key.empty() ? nullptr : ReadIndex(parent);
  if (index_) {
    (void)index_->DeleteTree(key);
    if (!key.empty()) (void)index_->Delete(parent);
  }
  std::lock_guard<std::mutex> lock(mu_);
  // Requests out for what is dropped: their answers go to who waits for them, not into the cache.
  for (auto it = pending_.begin(); it != pending_.end();) {
    const std::string k = it->first.substr(2);
    if (IsUnder(k, key) || (it->first[0] == 'l' && !key.empty() && k == parent)) {
      it->second->dropped = true;
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  std::set<std::string> files;
  auto add_files = [&](const std::string& dir, const Packed& packed, const std::string* only) {
    if (!packed) return;
    PackedListing view = PackedListing::View(*packed);
    for (size_t i = 0; i < view.size(); ++i) {
      ufs::ObjectInfo info = view.InfoAt(i, dir);
      if (info.is_dir || (only && info.path != *only)) continue;
      if (files.insert(info.path).second) dropped.files.push_back(std::move(info));
    }
  };
  add_files(key, own, nullptr);
  add_files(parent, parents, &key);
  for (auto it = entries_.begin(); it != entries_.end();) {
    const std::string k = it->first.substr(2);
    const bool is_list = it->second.is_list;
    if (!(IsUnder(k, key) || (is_list && !key.empty() && k == parent))) {
      ++it;
      continue;
    }
    if (is_list) {
      add_files(k, it->second.packed, IsUnder(k, key) ? nullptr : &key);
    } else if (it->second.status.ok() && !it->second.info.is_dir && files.insert(k).second) {
      dropped.files.push_back(it->second.info);
    }
    auto next = std::next(it);
    EraseLocked(it);
    it = next;
    ++dropped.entries;
  }
  std::sort(dropped.files.begin(), dropped.files.end(),
            [](const ufs::ObjectInfo& a, const ufs::ObjectInfo& b) { return a.path < b.path; });
  return dropped;
}

MetadataCacheStats MetadataCache::Stats() {
  MetadataCacheStats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s = stats_;
    s.entries = entries_.size();
    s.bytes = bytes_;
    s.listed_entries = listed_entries_;
  }
  if (index_) {
    s.index_directories = index_->ApproximateDirectories();
    s.index_disk_bytes = index_->DiskBytes();
  }
  return s;
}

}  // namespace sluice::cache
