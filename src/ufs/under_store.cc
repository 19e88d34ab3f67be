// The store registry (URI scheme -> implementation) and the interface's convenience methods.
#include "ufs/under_store.h"

#include <algorithm>

#include "common/path.h"
#include "ufs/stores.h"

namespace sluice::ufs {

std::string ObjectInfo::Version() const {
  if (!etag.empty()) return "etag:" + etag;
  std::string v = "mtime:" + std::to_string(mtime_ns) + ":size:" + std::to_string(size);
  if (!identity.empty()) v += ":" + identity;
  return v;
}

Result<uint64_t> UnderStore::ReadVersion(std::string_view path, uint64_t offset, uint64_t length,
                                         std::string_view version, const ByteSink& sink) {
  SLUICE_ASSIGN_OR_RETURN(ObjectInfo info, Stat(path));
  if (info.Version() != version) {
    return Status(StatusCode::kStale, Uri() + "/" + std::string(path) + " changed in the under-store (now " +
                                          info.Version() + ", expected " + std::string(version) + ")");
  }
  return Read(path, offset, length, sink);
}

std::string EtagOfVersion(std::string_view version) {
  return version.rfind("etag:", 0) == 0 ? std::string(version.substr(5)) : std::string();
}

Result<std::string> UnderStore::ReadToString(std::string_view path, uint64_t offset, uint64_t length) {
  std::string out;
  auto n = Read(path, offset, length, [&out](std::string_view chunk) {
    out.append(chunk);
    return Status::Ok();
  });
  if (!n.ok()) return n.status();
  return out;
}

Result<std::vector<ObjectInfo>> UnderStore::ListAll(std::string_view dir, bool recursive, size_t max_entries,
                                                    const std::function<void(const std::vector<ObjectInfo>&)>& on_page) {
  std::vector<ObjectInfo> all;
  ListOptions opts;
  opts.recursive = recursive;
  // Pages as large as the store will give: S3 pages by 1,000 whatever is asked, while a local
  // directory or an HTTP index is read whole for each page, so paging them would make a
  // listing quadratic in its size.
  opts.max_keys = SIZE_MAX;
  while (true) {
    SLUICE_ASSIGN_OR_RETURN(ListPage page, List(dir, opts));
    if (on_page) on_page(page.entries);
    for (auto& e : page.entries) all.push_back(std::move(e));
    if (all.size() > max_entries) {
      return Status(StatusCode::kResourceExhausted, Uri() + "/" + std::string(dir) + " holds more than " +
                                                        std::to_string(max_entries) + " entries");
    }
    if (page.next_token.empty()) break;
    opts.continuation = page.next_token;
  }
  return all;
}

UnderStoreOptions UnderStoreOptions::FromConfig(const UfsConfig& config,
                                                std::vector<std::pair<std::string, std::string>> options) {
  UnderStoreOptions o;
  o.options = std::move(options);
  o.max_attempts = static_cast<int>(config.max_attempts);
  o.retry_base_delay = config.retry_base_delay;
  o.retry_max_delay = config.retry_max_delay;
  o.connect_timeout = config.connect_timeout;
  o.request_timeout = config.request_timeout;
  o.multipart_threshold = config.multipart_threshold;
  o.multipart_part_size = config.multipart_part_size;
  return o;
}

std::string UnderStoreOptions::Get(std::string_view key, std::string_view fallback) const {
  for (const auto& [k, v] : options) {
    if (k == key) return v;
  }
  return std::string(fallback);
}

ListPage PageOf(std::vector<ObjectInfo> all, const ListOptions& options) {
  std::sort(all.begin(), all.end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.path < b.path; });
  auto it = all.begin();
  if (!options.continuation.empty()) {
    it = std::upper_bound(all.begin(), all.end(), options.continuation,
                          [](const std::string& token, const ObjectInfo& e) { return token < e.path; });
  }
  ListPage page;
  const size_t max_keys = std::max<size_t>(1, options.max_keys);
  for (; it != all.end() && page.entries.size() < max_keys; ++it) page.entries.push_back(std::move(*it));
  if (it != all.end()) page.next_token = page.entries.back().path;
  return page;
}

Result<std::string> NormalizeKey(std::string_view path) {
  SLUICE_ASSIGN_OR_RETURN(std::string normalized, NormalizePath(path));
  return normalized.substr(1);  // drop the leading '/'; the root becomes ""
}

Result<std::unique_ptr<UnderStore>> OpenUnderStore(std::string_view uri, const UnderStoreOptions& options) {
  size_t sep = uri.find("://");
  if (sep == std::string_view::npos) {
    return InvalidArgument("'" + std::string(uri) +
                           "' is not an under-store URI (expected file:///dir, s3://bucket/prefix or http(s)://host/path)");
  }
  std::string_view scheme = uri.substr(0, sep);
  std::string_view rest = uri.substr(sep + 3);
  if (scheme == "file") {
    if (rest.empty() || rest.front() != '/') {
      return InvalidArgument("'" + std::string(uri) + "': a file URI needs an absolute path, as file:///data/set");
    }
    return NewLocalStore(rest, options);
  }
  if (scheme == "s3") {
    size_t slash = rest.find('/');
    std::string_view bucket = rest.substr(0, slash);
    std::string_view prefix = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (bucket.empty()) return InvalidArgument("'" + std::string(uri) + "': missing bucket name, as s3://bucket/prefix");
    SLUICE_ASSIGN_OR_RETURN(std::string key_prefix, NormalizeKey(prefix));
    return NewS3Store(bucket, key_prefix, options);
  }
  if (scheme == "http" || scheme == "https") {
    if (rest.empty()) return InvalidArgument("'" + std::string(uri) + "': missing host");
    return NewHttpStore(uri, options);
  }
  return InvalidArgument("'" + std::string(uri) + "': unknown scheme '" + std::string(scheme) +
                         "' (supported: file, s3, http, https)");
}

Result<ObjectInfo> UnderStore::StatWithHead(std::string_view path, uint64_t, const ByteSink&) { return Stat(path); }

Result<std::unique_ptr<Upload>> UnderStore::StartUpload(std::string_view path, uint64_t) {
  return Status(StatusCode::kNotSupported, "cannot write " + std::string(path) + ": " + Uri() + " is read-only");
}

Status UnderStore::Rename(std::string_view from, std::string_view to) {
  return Status(StatusCode::kNotSupported,
                "cannot rename " + std::string(from) + " to " + std::string(to) + ": " + Uri() + " is read-only");
}

Result<uint64_t> VersionPinnedStore::Read(std::string_view path, uint64_t offset, uint64_t length,
                                          const ByteSink& sink) {
  return ReadPinned(path, offset, length, "", sink, nullptr);
}

Result<uint64_t> VersionPinnedStore::ReadVersion(std::string_view path, uint64_t offset, uint64_t length,
                                                 std::string_view version, const ByteSink& sink) {
  return ReadPinned(path, offset, length, std::string(version), sink, nullptr);
}

Result<ObjectInfo> VersionPinnedStore::StatWithHead(std::string_view path, uint64_t length, const ByteSink& sink) {
  SLUICE_ASSIGN_OR_RETURN(std::string key, NormalizeKey(path));
  if (key.empty() || length == 0) return Stat(key);
  ObjectInfo info;
  info.path = key;
  auto n = ReadPinned(key, 0, length, "", sink, &info);
  if (!n.ok() && n.status().code() == StatusCode::kNotFound) return StatNotAnObject(key);
  if (!n.ok()) return n.status();
  // An empty object (416), or a response that did not state its size: a HEAD tells.
  if (*n == 0 || info.size < *n) return Stat(key);
  return info;
}

}  // namespace sluice::ufs
