// The depth-first listing walk of ListObjects.
#include "gateway/s3_listing.h"

#include <algorithm>

namespace sluice::gateway {
namespace {

class Walk {
 public:
  Walk(const ListQuery& query, const ListDirFn& list_dir) : q_(query), list_dir_(list_dir) {}

  Result<ListPage> Run() {
    // The directory the prefix lies in, and what names in it must start with.
    const size_t slash = q_.prefix.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : q_.prefix.substr(0, slash + 1);
    const std::string name_prefix = q_.prefix.substr(dir.size());
    if (q_.max_keys > 0) SLUICE_RETURN_IF_ERROR(Visit(dir, name_prefix).status());
    return std::move(page_);
  }

 private:
  // Walks directory `dir` (a key prefix ending in '/', or ""); false once the page is full
  // and one more entry showed it is truncated.
  Result<bool> Visit(const std::string& dir, const std::string& name_prefix) {
    auto listed = list_dir_(dir);
    if (!listed.ok()) {
      if (listed.status().code() == StatusCode::kNotFound) return true;
      return listed.status();
    }
    std::vector<ListedEntry>& entries = *listed;
    // Sorted as their keys sort: a directory's keys all start with "name/".
    auto sort_key = [](const ListedEntry& e) { return e.is_dir ? e.name + "/" : e.name; };
    std::sort(entries.begin(), entries.end(),
              [&](const ListedEntry& a, const ListedEntry& b) { return sort_key(a) < sort_key(b); });
    for (const ListedEntry& e : entries) {
      if (e.name.compare(0, name_prefix.size(), name_prefix) != 0) continue;
      const std::string key = dir + sort_key(e);
      if (!e.is_dir) {
        if (!Emit(key, &e)) return false;
        continue;
      }
      // Every key below lies between `key` and the first string past all its extensions.
      if (q_.after > key && q_.after.compare(0, key.size(), key) != 0) continue;  // all before the marker
      // With the delimiter "/", a directory past the prefix rolls up whole: no need to read it.
      if (q_.delimiter == "/" && key.size() > q_.prefix.size()) {
        if (!Emit(key, nullptr)) return false;
        continue;
      }
      SLUICE_ASSIGN_OR_RETURN(bool more, Visit(key, ""));
      if (!more) return false;
    }
    return true;
  }

  // Adds an object (`entry`), or the common prefix `key` stands for; false when the page was
  // already full (it is then marked truncated).
  bool Emit(const std::string& key, const ListedEntry* entry) {
    std::string rolled;
    if (!q_.delimiter.empty()) {
      size_t at = key.find(q_.delimiter, q_.prefix.size());
      if (at != std::string::npos) rolled = key.substr(0, at + q_.delimiter.size());
    }
    const std::string& item = rolled.empty() ? key : rolled;
    if (item <= q_.after) return true;
    if (!rolled.empty() && !page_.common_prefixes.empty() && page_.common_prefixes.back() == rolled) return true;
    if (page_.objects.size() + page_.common_prefixes.size() >= q_.max_keys) {
      page_.truncated = true;
      return false;
    }
    if (!rolled.empty()) {
      page_.common_prefixes.push_back(rolled);
    } else if (entry) {
      page_.objects.push_back(ListedObject{key, entry->size, entry->mtime_ns, entry->etag});
    }
    page_.last = item;
    return true;
  }

  const ListQuery& q_;
  const ListDirFn& list_dir_;
  ListPage page_;
};

}  // namespace

Result<ListPage> ListKeys(const ListQuery& query, const ListDirFn& list_dir) { return Walk(query, list_dir).Run(); }

}  // namespace sluice::gateway
