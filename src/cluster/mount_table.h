// The mount table: namespace prefixes mapped to under-store URIs with per-mount options.
// Resolution is by longest prefix. Credentials in the options stay here and on the workers;
// Describe() masks them for listings and logs. Plain values; thread-compatible.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace sluice::cluster {

// How a mount takes writes. kThrough: a file is in the under-store when close() or fsync()
// returns (large files upload in parts while they are written); its pages are in the cache as
// written. kAsync (write-back): close() returns once the file is durable on the worker's cache
// disk; it uploads in the background, and readers see it meanwhile.
enum class WriteMode { kReadOnly, kThrough, kAsync };

// "read-only", "through", "async".
const char* WriteModeName(WriteMode mode);
// The mode a name stands for; kInvalidArgument naming the modes there are.
Result<WriteMode> ParseWriteMode(const std::string& name);

struct MountOptions {
  WriteMode write_mode = WriteMode::kReadOnly;
  bool read_only() const { return write_mode == WriteMode::kReadOnly; }
  std::chrono::nanoseconds metadata_ttl = std::chrono::seconds(60);
  int replicas = 1;
  int ufs_max_concurrency = 64;
  uint64_t ufs_rate_limit = 0;  // bytes/s, 0 = unlimited
  std::vector<std::pair<std::string, std::string>> ufs_options;  // endpoint, region, credentials...
};

struct MountPoint {
  std::string path;  // normalized namespace path, e.g. "/" or "/imagenet"
  std::string uri;   // s3://bucket/prefix, file:///dir, http(s)://host/prefix
  MountOptions options;

  // One line for humans: "/imagenet -> s3://b/p (read-only, ttl 60s, secret_key=****)".
  std::string Describe() const;
};

// True for option keys whose values are secrets.
bool IsSecretOption(const std::string& key);

// A namespace path resolved to its mount and the key below the mount's URI.
struct Resolved {
  const MountPoint* mount = nullptr;
  std::string key;  // "" for the mount root
};

class MountTable {
 public:
  MountTable() = default;
  explicit MountTable(std::vector<MountPoint> mounts) : mounts_(std::move(mounts)) {}

  // Adds a mount; rejects a bad path, a duplicate, or a mount below a read-only one.
  Status Add(MountPoint mount);
  Status Remove(const std::string& path);
  const std::vector<MountPoint>& mounts() const { return mounts_; }

  // The mount whose path is the longest prefix of `path` (normalized first). kNotFound,
  // naming the path, when no mount covers it.
  Result<Resolved> Resolve(const std::string& path) const;

 private:
  std::vector<MountPoint> mounts_;
};

// Parses option flags as the CLI takes them ("write_mode=through", "read_only=false" (the same),
// "metadata_ttl=30s",
// "secret_key=..."): mount options by name, anything else an under-store option.
Status ApplyMountOption(const std::string& key, const std::string& value, MountOptions* options);

}  // namespace sluice::cluster
