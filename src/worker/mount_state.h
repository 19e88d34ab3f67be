// Worker::MountState: what the worker keeps per mount (its under-store with counters, its
// metadata cache and miss path), shared by the worker's parts and its running jobs.
#pragma once

#include <memory>
#include <string>

#include "cache/cached_reader.h"
#include "cache/metadata_cache.h"
#include "cluster/mount_table.h"
#include "common/path.h"
#include "ufs/counting_store.h"
#include "worker/worker.h"
#include "worker/write_journal.h"

namespace sluice::worker {

struct Worker::MountState {
  cluster::MountPoint mount;
  std::string fingerprint;  // what the state was built from; a change rebuilds it
  std::unique_ptr<ufs::CountingStore> ufs;
  // The store as readers see it: `ufs` and the mount's write-back files not uploaded yet.
  std::unique_ptr<PendingStore> view;
  std::unique_ptr<cache::MetadataCache> meta;
  std::unique_ptr<cache::CachedReader> reader;

  cache::FileId IdOf(const ufs::ObjectInfo& info) const {
    return cache::FileId::For(ufs->Uri(), info.path, info.Version());
  }
  cache::CachedFile FileOf(const ufs::ObjectInfo& info) const {
    return {info.path, info.size, IdOf(info), info.Version()};
  }
  std::string NsPath(const std::string& key) const { return key.empty() ? mount.path : JoinPath(mount.path, key); }
  Entry ToEntry(const ufs::ObjectInfo& info) const {
    return Entry{NsPath(info.path), info.is_dir, info.size, info.mtime_ns, info.is_dir ? "" : info.Version()};
  }
  // "mount /data (s3://b/p)": how errors name the mount.
  std::string Name() const { return "mount " + mount.path + " (" + mount.uri + ")"; }
};

}  // namespace sluice::worker
