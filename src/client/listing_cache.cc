// ListingCache: see listing_cache.h.
#include "client/listing_cache.h"

#include "cache/packed_listing.h"
#include "common/path.h"
#include "ufs/under_store.h"

namespace sluice::client {
namespace {

// Pages are keyed by directory as the caller spells it, without a trailing slash.
std::string DirKey(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

std::pair<std::string, std::string> ParentAndName(const std::string& path) {
  return {ParentPath(path), BaseName(path)};
}

// A file's version is ObjectInfo::Version() of its store entry: kept as the ETag or the
// identity it was made of, so that a packed page stores it in a few bytes. False when the
// version is not of that form (the page is then not kept).
bool ToObjectInfo(const FileInfo& f, ufs::ObjectInfo* o) {
  o->path = f.path;
  o->is_dir = f.is_dir;
  o->size = f.size;
  o->mtime_ns = f.mtime_ns;
  if (f.is_dir) return f.version.empty();
  o->etag = ufs::EtagOfVersion(f.version);
  if (o->etag.empty()) {
    const std::string plain = "mtime:" + std::to_string(f.mtime_ns) + ":size:" + std::to_string(f.size);
    if (f.version.size() > plain.size() && f.version.compare(0, plain.size() + 1, plain + ":") == 0) {
      o->identity = f.version.substr(plain.size() + 1);
    }
  }
  return o->Version() == f.version;
}

}  // namespace

ListingCache::ListingCache(uint64_t max_bytes, std::chrono::nanoseconds ttl) : max_bytes_(max_bytes), ttl_(ttl) {}

uint64_t ListingCache::Charge(const std::string& dir, const Page& page) {
  // The page's bytes, its keys (in the map and the LRU list) and the nodes holding them.
  return page.packed.size() + page.start_after.size() + 2 * dir.size() + 160;
}

void ListingCache::Erase(const std::string& dir, DirPages& pages, DirPages::iterator it) {
  bytes_ -= Charge(dir, it->second) + it->first.second.size();
  --pages_;
  lru_.erase(it->second.lru);
  pages.erase(it);
}

void ListingCache::AddPage(const std::string& dir_path, const std::string& start_after,
                           const std::vector<FileInfo>& entries, bool more) {
  if (max_bytes_ == 0 || ttl_.count() == 0 || (more && entries.empty())) return;
  std::vector<ufs::ObjectInfo> objects(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!ToObjectInfo(entries[i], &objects[i])) return;
  }
  const std::string dir = DirKey(dir_path);
  PageKey key = more ? PageKey{false, ParentAndName(entries.back().path).second} : PageKey{true, ""};
  Page page;
  page.start_after = start_after;
  page.packed = cache::PackedListing::Pack(std::move(objects), 0);
  page.added = std::chrono::steady_clock::now();
  const uint64_t charge = Charge(dir, page) + key.second.size();
  if (charge > max_bytes_) return;

  std::lock_guard<std::mutex> lock(mu_);
  DirPages& pages = dirs_[dir];
  // Pages of an earlier pass that overlap (start_after, key] give way to this one.
  for (auto it = pages.upper_bound(PageKey{false, start_after}); it != pages.end();) {
    if (!key.first && it->second.start_after >= key.second) break;
    Erase(dir, pages, it++);
  }
  auto it = pages.emplace(key, std::move(page)).first;  // an equal key overlapped: erased above
  it->second.lru = lru_.insert(lru_.end(), {dir, key});
  bytes_ += charge;
  ++pages_;
  while (bytes_ > max_bytes_ && !lru_.empty()) {
    auto [victim_dir, victim_key] = lru_.front();
    auto d = dirs_.find(victim_dir);
    Erase(victim_dir, d->second, d->second.find(victim_key));
    if (d->second.empty()) dirs_.erase(d);
  }
}

std::optional<Result<FileInfo>> ListingCache::Lookup(const std::string& path) {
  if (max_bytes_ == 0 || ttl_.count() == 0) return std::nullopt;
  auto [dir, name] = ParentAndName(DirKey(path));
  if (name.empty()) return std::nullopt;  // the root
  std::lock_guard<std::mutex> lock(mu_);
  auto d = dirs_.find(dir);
  if (d == dirs_.end()) {
    ++misses_;
    return std::nullopt;
  }
  DirPages& pages = d->second;
  auto it = pages.lower_bound(PageKey{false, name});
  if (it == pages.end() || it->second.start_after >= name) {
    ++misses_;
    return std::nullopt;
  }
  if (std::chrono::steady_clock::now() - it->second.added >= ttl_) {
    Erase(dir, pages, it);
    if (pages.empty()) dirs_.erase(d);
    ++misses_;
    return std::nullopt;
  }
  lru_.splice(lru_.end(), lru_, it->second.lru);
  ++hits_;
  auto listing = cache::PackedListing::View(it->second.packed);
  auto index = listing.Find(name);
  if (!index) return Result<FileInfo>(Status(StatusCode::kNotFound, path + ": no such file or directory"));
  ufs::ObjectInfo o = listing.InfoAt(*index, "");
  return Result<FileInfo>(FileInfo{path, o.is_dir, o.size, o.mtime_ns, o.is_dir ? "" : o.Version()});
}

void ListingCache::Drop(const std::string& path_in) {
  if (max_bytes_ == 0) return;
  const std::string path = DirKey(path_in);
  auto [dir, name] = ParentAndName(path);
  std::lock_guard<std::mutex> lock(mu_);
  auto drop_dir = [this](std::unordered_map<std::string, DirPages>::iterator d) {
    while (!d->second.empty()) Erase(d->first, d->second, d->second.begin());
    dirs_.erase(d);
  };
  // The page holding path's own entry.
  if (auto d = dirs_.find(dir); d != dirs_.end() && !name.empty()) {
    auto it = d->second.lower_bound(PageKey{false, name});
    if (it != d->second.end() && it->second.start_after < name) Erase(d->first, d->second, it);
    if (d->second.empty()) dirs_.erase(d);
  }
  // Listings at or below path.
  const std::string below = path == "/" ? "/" : path + "/";
  for (auto d = dirs_.begin(); d != dirs_.end();) {
    auto next = std::next(d);
    if (d->first == path || d->first.compare(0, below.size(), below) == 0) drop_dir(d);
    d = next;
  }
}

ListingCache::Stats ListingCache::GetStats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Stats{bytes_, pages_, hits_, misses_};
}

}  // namespace sluice::client
