// Write-back (`async` mounts): files closed but not yet in their under-store.
//
// JournalEntry files: each such file is two files in <first cache disk>/journal: <id>.data
// (its bytes) and <id>.entry (where it goes), both on disk and fsynced before close()
// returns, so a worker killed at any point finds them at its next start and uploads them.
//
// PendingStore: the under-store as readers see it, a mount's pending files included. It
// answers Stat, List and reads of a pending file from its journal entry (a version of its
// own, "journal-<id>"), so that after close() every reader sees the new content even while
// the store does not have it yet, and never a mix. Everything else goes to the store.
// Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "ufs/under_store.h"

namespace sluice::worker {

struct JournalEntry {
  uint64_t id = 0;
  std::string mount_path;  // the namespace path of the mount
  std::string key;         // below the mount
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string data_path;  // <journal>/<id>.data

  // What readers see of the file until it is uploaded.
  ufs::ObjectInfo Info() const;
  // Writes <id>.entry beside the data file, durably (temporary file, fsync, rename, fsync of
  // the directory).
  Status Save(const std::string& journal_dir) const;
  // Reads every entry of `journal_dir`; entries that cannot be read are reported in *bad.
  static std::vector<JournalEntry> LoadAll(const std::string& journal_dir, std::vector<std::string>* bad);
  // Removes the entry's files.
  void Remove(const std::string& journal_dir) const;
};

class PendingStore final : public ufs::UnderStore {
 public:
  // `base` is the store with counters; it must outlive this one.
  explicit PendingStore(ufs::UnderStore* base) : base_(base) {}

  // A file closed on write-back: readers see it from now on (replacing an older entry).
  void Add(const JournalEntry& entry);
  // The entry went up as `uploaded_version` (or, with that empty, was superseded): drops it
  // if it is still the key's latest. A reader that got the entry's version before this
  // reads the same bytes from the store under the uploaded version.
  void Drop(const std::string& key, uint64_t id, const std::string& uploaded_version);
  std::optional<JournalEntry> Find(const std::string& key);
  // Pending files, and their bytes, at `key` or below it ("" for all).
  std::pair<uint64_t, uint64_t> PendingBelow(const std::string& key);

  Result<ufs::ObjectInfo> Stat(std::string_view path) override;
  Result<ufs::ListPage> List(std::string_view dir, const ufs::ListOptions& options) override;
  Result<uint64_t> Read(std::string_view path, uint64_t offset, uint64_t length, const ufs::ByteSink& sink) override;
  Result<uint64_t> ReadVersion(std::string_view path, uint64_t offset, uint64_t length, std::string_view version,
                               const ufs::ByteSink& sink) override;
  Result<ufs::ObjectInfo> StatWithHead(std::string_view path, uint64_t length, const ufs::ByteSink& sink) override;
  // Changes go to the store itself.
  std::string Uri() const override { return base_->Uri(); }
  Status Write(std::string_view path, std::string_view data) override { return base_->Write(path, data); }
  Result<std::unique_ptr<ufs::Upload>> StartUpload(std::string_view path, uint64_t part_size) override {
    return base_->StartUpload(path, part_size);
  }
  Status Rename(std::string_view from, std::string_view to) override { return base_->Rename(from, to); }
  Status Delete(std::string_view path) override { return base_->Delete(path); }
  Status Mkdir(std::string_view path) override { return base_->Mkdir(path); }

 private:
  static Result<uint64_t> ReadData(const JournalEntry& entry, uint64_t offset, uint64_t length,
                                   const ufs::ByteSink& sink);

  ufs::UnderStore* const base_;
  std::mutex mu_;
  std::map<std::string, JournalEntry> pending_;  // GUARDED_BY(mu_): by key
  // Journal versions of entries uploaded lately -> the store's version of the same bytes.
  std::map<std::string, std::string> uploaded_;  // GUARDED_BY(mu_): at most kRememberedUploads
  std::deque<std::string> uploaded_order_;       // GUARDED_BY(mu_): oldest first
  static constexpr size_t kRememberedUploads = 4096;
};

}  // namespace sluice::worker
