// MetadataIndex: the metadata cache's directory listings on disk, in RocksDB, one value per
// directory (a PackedListing's bytes, key: the directory's key in its store). It holds what
// the cache's memory bound leaves out, and it outlives the process: a restarted worker
// answers stats and listings from it (stale ones while they are listed again) instead of
// relisting the namespace. One index per mount, in a directory of its own. Thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/status.h"

namespace rocksdb {
class DB;
}

namespace sluice::cache {

class MetadataIndex {
 public:
  // Opens (or creates) the index in `dir`. An index that cannot be read (corrupt, written by
  // something else) is moved aside to `dir`.bad and a new one is started: it is a cache. One
  // held open by another process is an error.
  static Result<std::unique_ptr<MetadataIndex>> Open(const std::string& dir);
  ~MetadataIndex();
  MetadataIndex(const MetadataIndex&) = delete;
  MetadataIndex& operator=(const MetadataIndex&) = delete;

  Status Put(const std::string& dir_key, const std::string& packed);
  // The packed listing of `dir_key`, if stored; read errors are logged and read as absent.
  std::optional<std::string> Get(const std::string& dir_key);
  // Drops the listing of `dir_key` alone.
  Status Delete(const std::string& dir_key);
  // Drops `key`'s listing and those of every directory below it ("" drops all).
  Status DeleteTree(const std::string& key);
  // Directories stored (RocksDB's estimate) and bytes on disk.
  uint64_t ApproximateDirectories();
  uint64_t DiskBytes();

 private:
  explicit MetadataIndex(std::unique_ptr<rocksdb::DB> db);
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace sluice::cache
