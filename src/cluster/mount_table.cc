// Mount table operations.
#include "cluster/mount_table.h"

#include <algorithm>

#include "common/path.h"
#include "common/units.h"

namespace sluice::cluster {

bool IsSecretOption(const std::string& key) {
  return key == "secret_key" || key == "session_token" || key == "access_key";
}

const char* WriteModeName(WriteMode mode) {
  switch (mode) {
    case WriteMode::kReadOnly: return "read-only";
    case WriteMode::kThrough: return "through";
    case WriteMode::kAsync: return "async";
  }
  return "read-only";
}

Result<WriteMode> ParseWriteMode(const std::string& name) {
  if (name == "read-only" || name == "read_only") return WriteMode::kReadOnly;
  if (name == "through") return WriteMode::kThrough;
  if (name == "async" || name == "write-back") return WriteMode::kAsync;
  return InvalidArgument("unknown write mode '" + name +
                         "': a mount is read-only (the default), takes writes 'through' to its under-store, or "
                         "'async' (write-back: close() returns once the file is on the cache disk)");
}

std::string MountPoint::Describe() const {
  std::string out = path + " -> " + uri + " (" +
                    (options.read_only() ? std::string("read-only")
                                         : std::string("writes ") + WriteModeName(options.write_mode)) +
                    ", metadata ttl " + FormatDuration(options.metadata_ttl) + ", replicas " +
                    std::to_string(options.replicas);
  if (options.ufs_rate_limit) out += ", rate limit " + FormatSize(options.ufs_rate_limit) + "/s";
  for (const auto& [k, v] : options.ufs_options) {
    std::string shown = v;
    if (k == "access_key") shown = v.substr(0, std::min<size_t>(4, v.size())) + "****";
    else if (IsSecretOption(k)) shown = "****";
    out += ", " + k + "=" + shown;
  }
  return out + ")";
}

Status MountTable::Add(MountPoint mount) {
  SLUICE_ASSIGN_OR_RETURN(mount.path, NormalizePath(mount.path));
  if (mount.uri.find("://") == std::string::npos) {
    return InvalidArgument("'" + mount.uri + "' is not an under-store URI (file:///dir, s3://bucket/prefix, http://host/path)");
  }
  for (const auto& m : mounts_) {
    if (m.path == mount.path) return Status(StatusCode::kAlreadyExists, mount.path + " is already mounted (" + m.uri + ")");
    if (m.path != mount.path && PathIsUnder(mount.path, m.path) && m.path != "/" && m.options.read_only()) {
      return InvalidArgument("cannot mount at " + mount.path + ": it lies inside the read-only mount " + m.path +
                             ", whose data it would hide");
    }
  }
  mounts_.push_back(std::move(mount));
  std::sort(mounts_.begin(), mounts_.end(), [](const MountPoint& a, const MountPoint& b) { return a.path < b.path; });
  return Status::Ok();
}

Status MountTable::Remove(const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(std::string normalized, NormalizePath(path));
  auto it = std::find_if(mounts_.begin(), mounts_.end(), [&](const MountPoint& m) { return m.path == normalized; });
  if (it == mounts_.end()) return NotFound("nothing is mounted at " + normalized);
  mounts_.erase(it);
  return Status::Ok();
}

Result<Resolved> MountTable::Resolve(const std::string& path) const {
  SLUICE_ASSIGN_OR_RETURN(std::string normalized, NormalizePath(path));
  const MountPoint* best = nullptr;
  for (const auto& m : mounts_) {
    if (PathIsUnder(normalized, m.path) && (!best || m.path.size() > best->path.size())) best = &m;
  }
  if (!best) {
    return NotFound(normalized + " is outside every mount (see `sluice mount list`; add one with `sluice mount add`)");
  }
  Resolved r;
  r.mount = best;
  r.key = best->path == "/" ? normalized.substr(1) : normalized.substr(std::min(normalized.size(), best->path.size() + 1));
  return r;
}

Status ApplyMountOption(const std::string& key, const std::string& value, MountOptions* o) {
  auto boolean = [&](bool* out) -> Status {
    if (value != "true" && value != "false") return InvalidArgument("mount option " + key + " must be true or false");
    *out = value == "true";
    return Status::Ok();
  };
  if (key == "read_only") {
    bool read_only = true;
    SLUICE_RETURN_IF_ERROR(boolean(&read_only));
    o->write_mode = read_only ? WriteMode::kReadOnly : WriteMode::kThrough;
    return Status::Ok();
  }
  if (key == "write_mode") {
    SLUICE_ASSIGN_OR_RETURN(o->write_mode, ParseWriteMode(value));
    return Status::Ok();
  }
  if (key == "metadata_ttl") {
    SLUICE_ASSIGN_OR_RETURN(o->metadata_ttl, ParseDuration(value));
    return Status::Ok();
  }
  if (key == "replicas" || key == "ufs_max_concurrency") {
    char* end = nullptr;
    long v = std::strtol(value.c_str(), &end, 10);
    if (value.empty() || *end || v < 1 || v > 1000) return InvalidArgument("mount option " + key + " must be 1..1000");
    (key == "replicas" ? o->replicas : o->ufs_max_concurrency) = static_cast<int>(v);
    return Status::Ok();
  }
  if (key == "ufs_rate_limit") {
    SLUICE_ASSIGN_OR_RETURN(o->ufs_rate_limit, ParseSize(value));
    return Status::Ok();
  }
  o->ufs_options.emplace_back(key, value);
  return Status::Ok();
}

}  // namespace sluice::cluster
