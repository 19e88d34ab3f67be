// UnderStore: the one interface sluice uses to reach the data where it lives (a local or NFS
// directory, an S3-compatible bucket, a plain HTTP server). Paths are keys relative to the
// store's root URI ("train/0001.tar"; "" is the root), normalized by the caller or here.
// Implementations are thread-safe: one instance serves every thread of a process.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace sluice::ufs {

struct ObjectInfo {
  std::string path;  // relative to the store root; "" for the root
  bool is_dir = false;
  uint64_t size = 0;
  int64_t mtime_ns = 0;  // last modification, ns since the epoch (0 when unknown)
  std::string etag;      // without quotes; "" when the store has none
  // Where there is no ETag, what else every change alters that a writer cannot set back, as
  // it can the mtime (file://: inode and ctime); "" when the store has nothing such.
  std::string identity;

  // What identifies this content: the ETag when there is one, else mtime, size and identity.
  // The cache keys pages by it, so a changed object never mixes old and new bytes.
  std::string Version() const;
};

// The ETag inside a Version() string, or "" when the version is mtime+size based.
std::string EtagOfVersion(std::string_view version);

struct ListOptions {
  bool recursive = false;    // false: one level; subdirectories appear as is_dir entries
  std::string continuation;  // from a previous page's next_token; "" for the first page
  size_t max_keys = 1000;    // upper bound on entries per page
};

struct ListPage {
  std::vector<ObjectInfo> entries;  // sorted by path within the page
  std::string next_token;           // "" on the last page
};

// Receives bytes of a read as they arrive; a non-OK return aborts the read with that status.
using ByteSink = std::function<Status(std::string_view chunk)>;

// A file written part by part while its bytes are produced, and made visible whole, at once,
// by Finish (a multipart upload on S3, a temporary file renamed on file://). Destroying an
// Upload that was not finished abandons it and leaves nothing behind. Thread-safe.
class Upload {
 public:
  virtual ~Upload() = default;
  // Part `index` (from 0): the bytes at index * part_size, part_size of them except in the last
  // part. Parts may come in any order, from several threads at once.
  virtual Status PutPart(uint64_t index, std::string_view data) = 0;
  // Makes parts [0, parts) the file's content (none: an empty file), replacing what was there.
  // Returns the new content's ETag where the store gives one ("" otherwise).
  virtual Result<std::string> Finish(uint64_t parts) = 0;
};

class UnderStore {
 public:
  UnderStore() = default;
  UnderStore(const UnderStore&) = delete;
  UnderStore& operator=(const UnderStore&) = delete;
  virtual ~UnderStore() = default;

  // The root URI, without credentials ("s3://bucket/prefix").
  virtual std::string Uri() const = 0;

  // Size, mtime and version of a file, or is_dir for a directory. kNotFound when neither.
  virtual Result<ObjectInfo> Stat(std::string_view path) = 0;

  // One page of the entries below directory `dir`. kNotFound when `dir` does not exist.
  virtual Result<ListPage> List(std::string_view dir, const ListOptions& options) = 0;

  // Reads [offset, offset + length) of a file, clipped at its end, handing bytes to `sink` in
  // order as they arrive. Returns the number of bytes delivered (0 at or past the end).
  // `expected_version`, when not empty, makes the read fail with kNotFound-like staleness
  // (kAlreadyExists is not used; see implementations) if the object changed.
  virtual Result<uint64_t> Read(std::string_view path, uint64_t offset, uint64_t length, const ByteSink& sink) = 0;

  // Read() of exactly the content `version` (ObjectInfo::Version()) names: kStale, before or
  // instead of any byte of another version, when the object changed. The default checks
  // with a Stat first; stores that can pin a version in the request itself override it.
  virtual Result<uint64_t> ReadVersion(std::string_view path, uint64_t offset, uint64_t length,
                                       std::string_view version, const ByteSink& sink);

  // Stat() of `path` in the round trip that also fetches its first bytes, where a store pays a
  // round trip per request (a ranged GET answers size, ETag and mtime as a HEAD does): bytes
  // of [0, min(length, size)) go to `sink` in order, pinned to the returned version. The
  // default is a plain Stat() that delivers nothing; callers count what arrived.
  virtual Result<ObjectInfo> StatWithHead(std::string_view path, uint64_t length, const ByteSink& sink);

  // Creates or replaces a whole file. kNotSupported on read-only stores.
  virtual Status Write(std::string_view path, std::string_view data) = 0;

  // Starts writing the file at `path` in parts of `part_size` bytes (see Upload).
  // kNotSupported on read-only stores.
  virtual Result<std::unique_ptr<Upload>> StartUpload(std::string_view path, uint64_t part_size);

  // Moves a file to `to`, replacing what is there: atomic where the store has renames
  // (file://); a copy and a delete on S3, where a reader may briefly see both.
  virtual Status Rename(std::string_view from, std::string_view to);

  // Deletes a file, or an empty directory (on S3 its "dir/" marker). Deleting a missing file is
  // kNotFound.
  virtual Status Delete(std::string_view path) = 0;

  // Creates a directory (and its parents) where the store has directories; on S3 it writes a
  // "dir/" marker object.
  virtual Status Mkdir(std::string_view path) = 0;

  // Convenience: reads a range into a string.
  Result<std::string> ReadToString(std::string_view path, uint64_t offset, uint64_t length);

  // Convenience: every entry below `dir`, following continuation tokens; kResourceExhausted
  // once more than `max_entries` came (the listing is not read further). `on_page`, when
  // given, sees each page's entries as they come.
  Result<std::vector<ObjectInfo>> ListAll(std::string_view dir, bool recursive, size_t max_entries = SIZE_MAX,
                                          const std::function<void(const std::vector<ObjectInfo>&)>& on_page = nullptr);
};

// Mount options that select and configure a store: for S3 endpoint, region, path_style,
// access_key, secret_key, session_token, ca_bundle; retry and timeout settings for all.
struct UnderStoreOptions {
  std::vector<std::pair<std::string, std::string>> options;  // key=value pairs, as given by the user
  int max_attempts = 5;
  std::chrono::nanoseconds retry_base_delay = std::chrono::milliseconds(100);
  std::chrono::nanoseconds retry_max_delay = std::chrono::seconds(5);
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(5);
  std::chrono::nanoseconds request_timeout = std::chrono::seconds(60);
  uint64_t multipart_threshold = 64ull << 20;
  uint64_t multipart_part_size = 16ull << 20;

  // Retry, timeout and multipart settings from the config's ufs: section; `options` as given.
  static UnderStoreOptions FromConfig(const UfsConfig& config,
                                      std::vector<std::pair<std::string, std::string>> options = {});

  // The value of option `key`, or `fallback`.
  std::string Get(std::string_view key, std::string_view fallback = "") const;
};

// Base for stores read with ranged GETs whose responses carry validators (S3, HTTP): a read
// is pinned to a version by its own request and response (ranged_read.h), so a changed object
// answers 412 or is refused, never mixed in, and a stat can ride on the first GET.
class VersionPinnedStore : public UnderStore {
 public:
  Result<uint64_t> Read(std::string_view path, uint64_t offset, uint64_t length, const ByteSink& sink) override;
  Result<uint64_t> ReadVersion(std::string_view path, uint64_t offset, uint64_t length, std::string_view version,
                               const ByteSink& sink) override;
  // One ranged GET; when the key is no object, StatNotAnObject.
  Result<ObjectInfo> StatWithHead(std::string_view path, uint64_t length, const ByteSink& sink) override;

 protected:
  // A ranged GET pinned to `version` unless it is empty; `seen`: see RangedRead.
  virtual Result<uint64_t> ReadPinned(std::string_view path, uint64_t offset, uint64_t length,
                                      const std::string& version, const ByteSink& sink, ObjectInfo* seen) = 0;
  // Stat() of a normalized, non-root key that is not an object (a GET found none): a
  // directory, or kNotFound.
  virtual Result<ObjectInfo> StatNotAnObject(const std::string& key) = 0;
};

// Opens the store for `uri`, chosen by scheme: file://, s3://, http:// or https://.
// An unknown scheme or option is kInvalidArgument naming it.
Result<std::unique_ptr<UnderStore>> OpenUnderStore(std::string_view uri, const UnderStoreOptions& options);

// The page of `all` (sorted by path here) that `options` asks for; for stores that list a
// whole directory at once and page it themselves. The token is the last path returned.
ListPage PageOf(std::vector<ObjectInfo> all, const ListOptions& options);

// Normalizes a key relative to a store root: "/a/b/" -> "a/b"; "" -> "". Rejects keys that
// escape the root, hold NUL bytes or are not UTF-8 (see common/path.h).
Result<std::string> NormalizeKey(std::string_view path);

}  // namespace sluice::ufs
