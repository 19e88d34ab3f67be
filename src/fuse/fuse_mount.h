// FuseMount: the namespace as a POSIX file system, on the libfuse3 low-level API
// with a multi-threaded loop. Inodes map to namespace paths; attributes and listings come
// from the worker (its metadata cache, so one under-store LIST per directory per TTL);
// reads go through client::File (pages in place from a worker in this process, page files
// spliced from a worker on this host, read-ahead, fallback). The kernel keeps a
// file's cached pages while its version is unchanged; large files bypass them (direct I/O)
// unless read in small pieces. On mounts that take writes, files are created, written
// (through a client::Writer: flush commits, fsync waits for the store), truncated, renamed
// and removed, and directories made and removed; elsewhere writes fail with EROFS and a log
// line.
// Mount() checks the mount point first (missing, not a directory, not empty, already
// mounted) and explains what is wrong. Thread-safe; Unmount() (or the destructor) ends it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "client/file_system.h"
#include "common/status.h"

namespace sluice::fuse {

struct FuseOptions {
  std::chrono::nanoseconds attr_timeout = std::chrono::seconds(60);  // the mount's metadata TTL
  int max_threads = 16;
  bool allow_other = false;
  // How long Unmount lets files still open under the mount be read before it aborts them.
  std::chrono::milliseconds unmount_grace = std::chrono::seconds(5);
  // Files at least this large are opened with direct I/O (0: none): ClientConfig.
  uint64_t direct_io_min_size = 64ull << 20;
  // Extended attributes user.sluice.cached and user.sluice.version: ClientConfig.
  bool xattrs = false;
  // Called once, from the mount's loop thread, when the mount ends without Unmount() (someone
  // ran `fusermount3 -u`): `sluice fuse` then exits.
  std::function<void()> on_external_unmount;
};

// StatusCode -> errno, the one translation point of this edge.
int ErrnoFor(const Status& st);

class FuseMount {
 public:
  // Mounts at `mountpoint` and starts serving; `fs` must outlive the mount.
  static Result<std::unique_ptr<FuseMount>> Mount(const std::string& mountpoint, client::FileSystem* fs,
                                                 FuseOptions options);
  virtual ~FuseMount() = default;
  // Unmounts and waits for the request loop to end: at most `unmount_grace` while files are
  // still open under the mount, whose reads then fail (ENOTCONN). Idempotent.
  virtual void Unmount() = 0;
  // Makes the kernel forget what it cached of `path` (attributes, pages, a directory's
  // listing) and of everything below it, as after `sluice fs sync PATH`. Not from within a
  // request of this mount.
  virtual void Invalidate(const std::string& path) = 0;
  virtual const std::string& mountpoint() const = 0;
};

}  // namespace sluice::fuse
