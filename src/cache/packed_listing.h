// PackedListing: the entries of one directory in a single buffer, as the metadata cache keeps
// them in memory and on disk (the same bytes: no decoding when a listing is read back).
// Layout: a header, then one fixed-size record per entry sorted by name, then the names,
// ETags and identities the records point into. An entry costs 28 bytes plus its strings
// (about 80 bytes for an S3 object with a 20-character name), against ~1 KB as ObjectInfos
// in a map. Readers work on a string_view of the bytes (a RocksDB value read in place too);
// records are read with memcpy, so the buffer needs no alignment.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "ufs/under_store.h"

namespace sluice::cache {

class PackedListing {
 public:
  // Packs the direct children of a directory (paths "dir/name"; any order) by name.
  // `stored_unix_ns`: when the listing came from the store (wall clock, so it means something
  // after a restart).
  static std::string Pack(std::vector<ufs::ObjectInfo> entries, int64_t stored_unix_ns);

  // Checks `bytes` (e.g. read from disk) before it is used; kCorruption names what is wrong.
  static Result<PackedListing> Open(std::string_view bytes);
  // A view of bytes that Pack made or Open checked (no check: O(1)).
  static PackedListing View(std::string_view bytes) { return PackedListing(bytes); }

  size_t size() const { return count_; }
  int64_t stored_unix_ns() const { return stored_unix_ns_; }
  std::string_view bytes() const { return bytes_; }

  std::string_view NameAt(size_t i) const;
  // Entry i as the store described it, its path joined to `dir`.
  ufs::ObjectInfo InfoAt(size_t i, const std::string& dir) const;
  // The index of `name`, if listed.
  std::optional<size_t> Find(std::string_view name) const;
  // The index of the first entry whose name sorts after `name` (size() if none).
  size_t UpperBound(std::string_view name) const;
  // Whether entry i describes the same content as entry j of `other` (size, mtime, kind, ETag,
  // identity), compared in place.
  bool SameAs(size_t i, const PackedListing& other, size_t j) const;

 private:
  struct Record;
  explicit PackedListing(std::string_view bytes);
  Record RecordAt(size_t i) const;

  std::string_view bytes_;
  size_t count_ = 0;
  int64_t stored_unix_ns_ = 0;
};

// "a/b/c" -> ("a/b", "c"); "c" -> ("", "c").
std::pair<std::string, std::string> SplitParent(const std::string& key);

}  // namespace sluice::cache
