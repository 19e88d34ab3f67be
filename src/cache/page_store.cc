// Memory and disk tiers of the page store.
//
// Disk layout: DIR/pages/<first 2 hex of file id>/<file id hex>-<index>-<length>, holding a
// header (magic, format, length, a checksum per 32 KiB chunk; page_file.h) and the page
// bytes. The name alone rebuilds the index at start-up, so a restart costs a directory walk,
// not a read of every page.
#include "cache/page_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <list>

#include "cache/page_file.h"
#include "common/logging.h"
#include "common/units.h"

namespace sluice::cache {
namespace {

std::atomic<uint64_t> g_tmp_counter{0};

}  // namespace

// The memory tier: shared page buffers, bounded by a byte quota on their capacity (the memory
// they really hold). With a disk tier below, a page starts "unwritten" (in memory only) and
// stays on an oldest-first list until the writer takes it or eviction hands it back to be
// written on its way out.
class PageStore::MemoryTier {
 public:
  MemoryTier(uint64_t quota, std::unique_ptr<CachePolicy> policy) : quota_(quota), policy_(std::move(policy)) {}

  PageData Get(const PageKey& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pages_.find(key);
    if (it == pages_.end()) return nullptr;
    policy_->OnAccess(key);
    return it->second.data;
  }

  bool Contains(const PageKey& key) {
    std::lock_guard<std::mutex> lock(mu_);
    return pages_.count(key) > 0;
  }

  // Returns false when the policy refused the page. Evicted pages that were never written
  // to disk are appended to `*demoted`.
  bool Put(const PageKey& key, PageData data, bool unwritten, std::vector<KeyedPage>* demoted) {
    std::lock_guard<std::mutex> lock(mu_);
    if (data->capacity() > quota_) return false;
    if (pages_.count(key)) {
      policy_->OnAccess(key);
      return true;
    }
    while (bytes_ + data->capacity() > quota_) {
      auto victim = policy_->Victim();
      if (!victim) return false;
      auto it = pages_.find(*victim);
      if (it != pages_.end() && it->second.unwritten) demoted->push_back(KeyedPage{*victim, it->second.data});
      RemoveLocked(*victim);
      ++evictions_;
    }
    bytes_ += data->capacity();
    Entry& e = pages_[key];
    e.data = std::move(data);
    if (unwritten) {
      e.unwritten = true;
      e.unwritten_pos = unwritten_.insert(unwritten_.end(), key);
      unwritten_bytes_ += e.data->size();
    }
    policy_->OnInsert(key);
    return true;
  }

  // Up to `max` unwritten pages, oldest first, now counted as written.
  std::vector<KeyedPage> TakeUnwritten(size_t max) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<KeyedPage> out;
    while (!unwritten_.empty() && out.size() < max) {
      Entry& e = pages_.at(unwritten_.front());
      out.push_back(KeyedPage{unwritten_.front(), e.data});
      e.unwritten = false;
      unwritten_bytes_ -= e.data->size();
      unwritten_.pop_front();
    }
    return out;
  }

  bool HasUnwritten() {
    std::lock_guard<std::mutex> lock(mu_);
    return !unwritten_.empty();
  }

  uint64_t EraseFile(const FileId& file) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<PageKey> doomed;
    for (const auto& [k, v] : pages_) {
      if (k.file == file) doomed.push_back(k);
    }
    for (const auto& k : doomed) RemoveLocked(k);
    return doomed.size();
  }

  TierStats Stats(uint64_t* evictions) {
    std::lock_guard<std::mutex> lock(mu_);
    *evictions += evictions_;
    return TierStats{"memory", quota_, bytes_, pages_.size(), unwritten_bytes_};
  }

 private:
  struct Entry {
    PageData data;
    bool unwritten = false;
    std::list<PageKey>::iterator unwritten_pos;  // valid while unwritten
  };

  void RemoveLocked(const PageKey& key) {
    auto it = pages_.find(key);
    if (it == pages_.end()) return;
    bytes_ -= it->second.data->capacity();
    if (it->second.unwritten) {
      unwritten_.erase(it->second.unwritten_pos);
      unwritten_bytes_ -= it->second.data->size();
    }
    pages_.erase(it);
    policy_->OnRemove(key);
  }

  const uint64_t quota_;
  std::mutex mu_;
  std::unique_ptr<CachePolicy> policy_;                      // GUARDED_BY(mu_)
  std::unordered_map<PageKey, Entry, PageKeyHash> pages_;   // GUARDED_BY(mu_)
  std::list<PageKey> unwritten_;                            // GUARDED_BY(mu_): oldest first
  uint64_t unwritten_bytes_ = 0;                            // GUARDED_BY(mu_)
  uint64_t bytes_ = 0;                                      // GUARDED_BY(mu_)
  uint64_t evictions_ = 0;                                  // GUARDED_BY(mu_)
};

// One disk directory: an in-memory index of page files, the files themselves written and
// read outside the lock.
class PageStore::DiskTier {
 public:
  DiskTier(std::string dir, uint64_t quota, uint64_t reserve, std::unique_ptr<CachePolicy> policy)
      : dir_(std::move(dir)), quota_(quota), reserve_(reserve), policy_(std::move(policy)) {}

  Status Load() {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) return IoError("cannot create cache directory " + dir_ + ": " + ec.message());
    DIR* top = ::opendir(dir_.c_str());
    if (!top) return IoError("cannot read cache directory " + dir_ + ": " + std::strerror(errno));
    std::vector<std::string> subdirs;
    while (dirent* e = ::readdir(top)) {
      if (std::strlen(e->d_name) == 2 && e->d_name[0] != '.') subdirs.push_back(e->d_name);
    }
    ::closedir(top);
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& sub : subdirs) {
      std::string path = dir_ + "/" + sub;
      DIR* d = ::opendir(path.c_str());
      if (!d) continue;
      while (dirent* e = ::readdir(d)) {
        std::string_view name = e->d_name;
        if (name == "." || name == "..") continue;
        PageKey key;
        uint64_t length;
        if (!ParseName(name, &key, &length)) {
          ::unlinkat(::dirfd(d), e->d_name, 0);  // a temporary file of an interrupted write
          continue;
        }
        if (index_.count(key) || bytes_ + length > quota_) continue;
        index_.emplace(key, length);
        bytes_ += length;
        policy_->OnInsert(key);
      }
      ::closedir(d);
    }
    return Status::Ok();
  }

  // Reads and verifies bytes [from, from + n) of a page, or the whole page when they cover it
  // (then *whole is set). *corrupt is set when a file existed but failed the check.
  PageSlice Get(const PageKey& key, uint64_t from, uint64_t n, bool* whole, bool* corrupt) {
    uint64_t length;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = index_.find(key);
      if (it == index_.end()) return {};
      length = it->second;
      policy_->OnAccess(key);
    }
    std::string path = PathOf(key, length);
    const auto [start, end] = ChunksCovering(length, from, n);
    *whole = start == 0 && end >= length;
    Result<PageData> data = *whole ? ReadPageFile(path, length, PageSeed(key))
                                   : ReadPageRange(path, length, PageSeed(key), start, end - start);
    if (!data.ok()) {
      if (data.status().code() == StatusCode::kCorruption) {
        SLUICE_LOG_WARN("dropping corrupt cache page: {}", data.status().message());
        *corrupt = true;
      }
      // Bad, of an older format, or gone (evicted meanwhile, removed behind our back). Still
      // indexed while unlinked, so no one can cache it again at this path in between.
      if (data.status().code() != StatusCode::kIoError) ::unlink(path.c_str());
      Forget(key);
      return {};
    }
    return PageSlice{std::move(data).value(), *whole ? 0 : start};
  }

  // Where the page's file is, for a short-circuit reader; nullopt when not on this tier.
  std::optional<PageLocation> Locate(const PageKey& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    policy_->OnAccess(key);
    return PageLocation{PathOf(key, it->second), it->second, PageSeed(key)};
  }

  bool Contains(const PageKey& key) {
    std::lock_guard<std::mutex> lock(mu_);
    return index_.count(key) > 0;
  }

  // Writes a page file; returns false (and counts why) when it cannot be cached.
  bool Put(const PageKey& key, std::string_view data, uint64_t* evictions, uint64_t* write_errors) {
    std::vector<std::string> doomed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Cached already, or being written by another thread: reserving its bytes again would
      // leak quota when the second writer's index insert finds the first one's entry.
      if (index_.count(key) || pending_.count(key)) return true;
      if (data.size() > quota_) return false;
      while (bytes_ + data.size() > quota_) {
        auto victim = policy_->Victim();
        if (!victim) return false;
        doomed.push_back(PathOf(*victim, index_[*victim]));
        RemoveLocked(*victim);
        ++*evictions;
      }
      // Reserve the bytes now so concurrent writers cannot overshoot the quota.
      bytes_ += data.size();
      pending_.emplace(key, data.size());
    }
    for (const auto& p : doomed) ::unlink(p.c_str());
    bool written = HasRoom(data.size()) && WriteFile(key, data);
    std::lock_guard<std::mutex> lock(mu_);
    pending_.erase(key);
    if (!written) {
      bytes_ -= data.size();
      ++*write_errors;
      return false;
    }
    index_.emplace(key, data.size());
    policy_->OnInsert(key);
    return true;
  }

  uint64_t EraseFile(const FileId& file) {
    std::vector<std::string> doomed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::vector<PageKey> keys;
      for (const auto& [k, len] : index_) {
        if (k.file == file) keys.push_back(k);
      }
      for (const auto& k : keys) {
        doomed.push_back(PathOf(k, index_[k]));
        RemoveLocked(k);
      }
    }
    for (const auto& p : doomed) ::unlink(p.c_str());
    return doomed.size();
  }

  TierStats Stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return TierStats{dir_, quota_, bytes_, index_.size()};
  }

 private:
  static bool ParseName(std::string_view name, PageKey* key, uint64_t* length) {
    // <32 hex>-<index>-<length>
    if (name.size() < 36 || name[32] != '-') return false;
    if (!FileId::ParseHex(name.substr(0, 32), &key->file)) return false;
    std::string rest(name.substr(33));
    size_t dash = rest.find('-');
    if (dash == std::string::npos || dash == 0 || dash + 1 >= rest.size()) return false;
    for (char c : rest) {
      if (c != '-' && (c < '0' || c > '9')) return false;
    }
    key->index = std::strtoull(rest.c_str(), nullptr, 10);
    *length = std::strtoull(rest.c_str() + dash + 1, nullptr, 10);
    return true;
  }

  std::string PathOf(const PageKey& key, uint64_t length) const {
    std::string hex = key.file.Hex();
    return dir_ + "/" + hex.substr(0, 2) + "/" + hex + "-" + std::to_string(key.index) + "-" + std::to_string(length);
  }

  bool HasRoom(uint64_t bytes) const {
    struct statvfs vfs;
    if (::statvfs(dir_.c_str(), &vfs) != 0) return false;
    return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize >= bytes + reserve_;
  }

  // Writes to a temporary name and renames, so a crash leaves no half page under a real name.
  bool WriteFile(const PageKey& key, std::string_view data) {
    std::string path = PathOf(key, data.size());
    std::string tmp = path + ".tmp" + std::to_string(g_tmp_counter++);
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    std::string header = EncodePageHeader(PageSeed(key), data);
    bool ok = WriteAll(fd, header.data(), header.size()) && WriteAll(fd, data.data(), data.size());
    ok = (::close(fd) == 0) && ok;
    if (ok) ok = ::rename(tmp.c_str(), path.c_str()) == 0;
    if (!ok) {
      SLUICE_LOG_WARN("cannot cache a page in {}: {}", dir_, std::strerror(errno));
      ::unlink(tmp.c_str());
    }
    return ok;
  }

  static bool WriteAll(int fd, const void* buf, size_t n) {
    const auto* p = static_cast<const char*>(buf);
    while (n > 0) {
      ssize_t w = ::write(fd, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }

  void Forget(const PageKey& key) {
    std::lock_guard<std::mutex> lock(mu_);
    RemoveLocked(key);
  }

  void RemoveLocked(const PageKey& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return;
    bytes_ -= it->second;
    index_.erase(it);
    policy_->OnRemove(key);
  }

  const std::string dir_;
  const uint64_t quota_;
  const uint64_t reserve_;
  std::mutex mu_;
  std::unique_ptr<CachePolicy> policy_;                             // GUARDED_BY(mu_)
  std::unordered_map<PageKey, uint64_t, PageKeyHash> index_;       // GUARDED_BY(mu_): key -> length
  std::unordered_map<PageKey, uint64_t, PageKeyHash> pending_;     // GUARDED_BY(mu_): being written
  uint64_t bytes_ = 0;                                             // GUARDED_BY(mu_): index + pending
};

PageStore::PageStore(PageStoreOptions options) : options_(std::move(options)) {}

PageStore::~PageStore() {
  if (!writer_.joinable()) return;
  Flush();
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    stopping_ = true;
  }
  write_cv_.notify_all();
  writer_.join();
}

void PageStore::WriterLoop() {
  std::unique_lock<std::mutex> lock(write_mu_);
  while (true) {
    PendingWrite w;
    if (!write_queue_.empty()) {
      w = std::move(write_queue_.front());
      write_queue_.pop_front();
    } else if (stopping_) {
      return;
    } else if (!memory_->HasUnwritten()) {
      writer_sleeping_ = true;  // until a put or a queued write
      write_cv_.wait(lock);
      writer_sleeping_ = false;
      continue;
    } else {
      auto quiet_for = std::chrono::steady_clock::now() - last_memory_put_;
      if (quiet_for < options_.disk_write_delay) {
        write_cv_.wait_for(lock, options_.disk_write_delay - quiet_for);
        continue;
      }
      std::vector<PendingWrite> taken = TakeUnwrittenLocked(1);
      if (taken.empty()) continue;
      w = std::move(taken[0]);
    }
    lock.unlock();
    WritePending(w);
    lock.lock();
  }
}

std::vector<PageStore::PendingWrite> PageStore::TakeUnwrittenLocked(size_t max) {
  // Under write_mu_, so EraseFile never sees a page neither in memory nor pending.
  std::vector<PendingWrite> out;
  for (auto& page : memory_->TakeUnwritten(max)) {
    if (!pending_.emplace(page.key, page.data).second) continue;  // already on its way
    pending_bytes_ += page.data->size();
    out.push_back(PendingWrite{page.key, std::move(page.data), /*in_memory=*/true});
  }
  return out;
}

void PageStore::WritePending(const PendingWrite& w) {
  WriteToDisk(w.key, w.data, w.in_memory);
  std::lock_guard<std::mutex> lock(write_mu_);
  pending_.erase(w.key);
  pending_bytes_ -= w.data->size();
  if (pending_.empty()) drained_cv_.notify_all();
}

void PageStore::Flush() {
  if (!disks_.empty()) {
    // The pages unwritten now; later ones are the next Flush's (a busy reader could otherwise
    // keep this one going).
    std::vector<PendingWrite> taken;
    {
      std::lock_guard<std::mutex> lock(write_mu_);
      taken = TakeUnwrittenLocked(std::numeric_limits<size_t>::max());
    }
    for (const auto& w : taken) WritePending(w);
  }
  WaitForQueuedWrites();
}

void PageStore::WaitForQueuedWrites() {
  std::unique_lock<std::mutex> lock(write_mu_);
  drained_cv_.wait(lock, [this] { return pending_.empty(); });
}

void PageStore::WriteToDisk(const PageKey& key, const PageData& data, bool in_memory) {
  DiskTier* disk = DiskFor(key);
  uint64_t evictions = 0, errors = 0;
  bool written = disk->Put(key, *data, &evictions, &errors);
  disk_evictions_ += evictions;
  disk_write_errors_ += errors;
  if (!written && !in_memory) ++refused_;
}

Result<std::unique_ptr<PageStore>> PageStore::Open(const PageStoreOptions& options) {
  if (options.page_size == 0) return InvalidArgument("page size must be positive");
  std::unique_ptr<PageStore> store(new PageStore(options));
  SLUICE_ASSIGN_OR_RETURN(auto memory_policy, NewCachePolicy(options.policy));
  store->memory_ = std::make_unique<MemoryTier>(options.memory_quota, std::move(memory_policy));
  for (const auto& disk : options.disks) {
    if (disk.quota < options.page_size) {
      return InvalidArgument("the disk cache in " + disk.dir + " (" + FormatSize(disk.quota) +
                             ") cannot hold one page (" + FormatSize(options.page_size) + ")");
    }
    SLUICE_ASSIGN_OR_RETURN(auto policy, NewCachePolicy(options.policy));
    auto tier = std::make_unique<DiskTier>(disk.dir + "/pages", disk.quota, disk.reserve, std::move(policy));
    SLUICE_RETURN_IF_ERROR(tier->Load());
    // A page is written only while the reserve stays free (HasRoom): on a file system no larger
    // than the reserve plus a page, this tier caches nothing at all.
    struct statvfs vfs;
    if (::statvfs(disk.dir.c_str(), &vfs) == 0) {
      const uint64_t size = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
      if (size < disk.reserve + options.page_size) {
        SLUICE_LOG_WARN(
            "disk cache {} will cache nothing: its file system holds {}, and {} of it is kept free "
            "(the reserve, worker.disks[].reserve) with pages of {}; lower the reserve or use a larger "
            "file system",
            disk.dir, FormatSize(size), FormatSize(disk.reserve), FormatSize(options.page_size));
      }
    }
    store->disks_.push_back(std::move(tier));
  }
  if (!store->disks_.empty()) {
    PageStore* raw = store.get();
    store->writer_ = std::thread([raw] { raw->WriterLoop(); });
  }
  return store;
}

PageStore::DiskTier* PageStore::DiskFor(const PageKey& key) {
  if (disks_.empty()) return nullptr;
  return disks_[PageKeyHash()(key) % disks_.size()].get();
}

std::optional<PageLocation> PageStore::Locate(const PageKey& key) {
  DiskTier* disk = DiskFor(key);
  if (!disk) return std::nullopt;
  auto loc = disk->Locate(key);
  if (loc) ++hits_disk_;
  return loc;
}

PageData PageStore::Get(const PageKey& key) { return GetRange(key, 0, UINT64_MAX).data; }

PageSlice PageStore::GetRange(const PageKey& key, uint64_t from, uint64_t length) {
  if (PageData data = memory_->Get(key)) {
    ++hits_memory_;
    return {std::move(data), 0};
  }
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    auto it = pending_.find(key);
    if (it != pending_.end()) {
      ++hits_memory_;  // still on its way to disk
      return {it->second, 0};
    }
  }
  if (DiskTier* disk = DiskFor(key)) {
    bool whole = false, corrupt = false;
    if (PageSlice slice = disk->Get(key, from, length, &whole, &corrupt)) {
      ++hits_disk_;
      if (whole) PutInMemory(key, slice.data, /*unwritten=*/false);  // promote
      return slice;
    }
    if (corrupt) ++corrupt_;
  }
  ++misses_;
  return {};
}

void PageStore::Put(const PageKey& key, PageData data, bool memory) {
  ++puts_;
  const bool disk = DiskFor(key) != nullptr;
  bool in_memory = (memory || !disk) && PutInMemory(key, data, /*unwritten=*/disk);
  if (!disk) {
    if (!in_memory) ++refused_;
    return;
  }
  if (in_memory) return;  // the writer takes it once puts go quiet, or eviction hands it back
  QueueWrite(key, std::move(data), /*in_memory=*/false);
}

bool PageStore::PutInMemory(const PageKey& key, PageData data, bool unwritten) {
  std::vector<KeyedPage> demoted;
  std::vector<PendingWrite> in_place;
  bool cached;
  {
    // Under write_mu_: a page memory evicts is pending before anyone can miss it in memory,
    // and the writer never sees an unwritten page with an old put time.
    std::lock_guard<std::mutex> lock(write_mu_);
    if (unwritten) last_memory_put_ = std::chrono::steady_clock::now();
    cached = memory_->Put(key, std::move(data), unwritten, &demoted);
    for (auto& page : demoted) {  // on its way out
      PendingWrite w{page.key, std::move(page.data), /*in_memory=*/true};
      if (AddPendingLocked(w) == Pending::kWriteInPlace) in_place.push_back(std::move(w));
    }
    if (cached && unwritten && writer_sleeping_) write_cv_.notify_one();
  }
  for (const auto& w : in_place) WritePending(w);
  return cached;
}

PageStore::Pending PageStore::AddPendingLocked(PendingWrite& w) {
  if (!pending_.emplace(w.key, w.data).second) return Pending::kAlready;
  pending_bytes_ += w.data->size();
  if (pending_bytes_ > options_.max_pending_write_bytes) return Pending::kWriteInPlace;  // back-pressure
  write_queue_.push_back(w);
  write_cv_.notify_one();
  return Pending::kQueued;
}

void PageStore::QueueWrite(const PageKey& key, PageData data, bool in_memory) {
  PendingWrite w{key, std::move(data), in_memory};
  Pending p;
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    p = AddPendingLocked(w);
  }
  if (p == Pending::kWriteInPlace) WritePending(w);
}

bool PageStore::Contains(const PageKey& key) {
  if (memory_->Contains(key)) return true;
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (pending_.count(key)) return true;
  }
  DiskTier* disk = DiskFor(key);
  return disk && disk->Contains(key);
}

uint64_t PageStore::EraseFile(const FileId& file) {
  uint64_t n = memory_->EraseFile(file);  // its unwritten pages are never written
  WaitForQueuedWrites();                   // so no queued write brings a page back
  for (auto& d : disks_) n += d->EraseFile(file);
  return n;
}

PageStoreStats PageStore::Stats() {
  PageStoreStats s;
  s.hits_memory = hits_memory_;
  s.hits_disk = hits_disk_;
  s.misses = misses_;
  s.puts = puts_;
  s.refused = refused_;
  s.corrupt_pages = corrupt_;
  s.disk_write_errors = disk_write_errors_;
  s.evictions = disk_evictions_;
  s.tiers.push_back(memory_->Stats(&s.evictions));
  for (auto& d : disks_) s.tiers.push_back(d->Stats());
  return s;
}

}  // namespace sluice::cache
