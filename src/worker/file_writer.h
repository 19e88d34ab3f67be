// FileWriter: one file open for writing on a writable mount. Its bytes land in a staging file
// on the worker's disk, at any offset and in any order, so rewrites and random writes work;
// meanwhile every complete part of the prefix written so far uploads in the background, a few
// parts at a time, so that Commit waits only for the tail. Memory: at most `parallel_parts`
// parts in flight (a writer that outruns the store waits for the oldest). A part rewritten
// after it went up, or one that failed, makes Commit upload the file again from the staging
// file. Thread-safe (calls are serialized).
#pragma once

#include <cstdint>
#include <future>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "ufs/under_store.h"

namespace sluice::worker {

struct FileWriterOptions {
  uint64_t part_size = 16ull << 20;
  int parallel_parts = 4;
  bool stream_parts = true;  // upload complete parts while writing (through); false: at Commit only
};

class FileWriter {
 public:
  // A writer of `key` in `ufs` (which must outlive it) staging in a new file at `staging_path`.
  static Result<std::unique_ptr<FileWriter>> Create(ufs::UnderStore* ufs, std::string key, std::string staging_path,
                                                    FileWriterOptions options);
  // A writer that uploads the `size` bytes of an existing file (a write-back journal entry),
  // which it leaves in place.
  static Result<std::unique_ptr<FileWriter>> Adopt(ufs::UnderStore* ufs, std::string key, std::string path,
                                                   uint64_t size, FileWriterOptions options);
  // Abandons an upload not committed and removes the staging file (unless adopted).
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  Status Write(uint64_t offset, std::string_view data);
  Status Truncate(uint64_t size);
  uint64_t size();
  // Makes the bytes written so far the file's content in the under-store and returns its ETag
  // ("" where the store has none). The writer stays open: later writes start a new upload.
  Result<std::string> Commit();
  // Staged bytes [offset, offset + length) into `out` (for the cache).
  Status ReadStaged(uint64_t offset, uint64_t length, char* out);
  // Makes the staged bytes durable on disk and links them at `path` (a journal entry). A
  // later write goes to a copy, so what `path` holds stays as it was.
  Status KeepAt(const std::string& path);

 private:
  FileWriter(ufs::UnderStore* ufs, std::string key, std::string staging_path, UniqueFd fd, FileWriterOptions options)
      : ufs_(ufs), key_(std::move(key)), options_(options), staging_path_(std::move(staging_path)), fd_(std::move(fd)) {}
  // After KeepAt: the staging file becomes a copy of its own before it changes. REQUIRES(mu_)
  Status UnshareLocked();
  // Notes [from, to) as written, merging stretches. REQUIRES(mu_)
  void MarkWrittenLocked(uint64_t from, uint64_t to);
  // The end of the stretch written from byte 0 on. REQUIRES(mu_)
  uint64_t ContiguousEndLocked() const;
  // Starts uploading part `index`, waiting for the oldest part in flight when enough are. REQUIRES(mu_)
  Status StartPartLocked(uint64_t index);
  // Waits for every part in flight; the first failure, if any. REQUIRES(mu_)
  Status DrainLocked();
  Status ReadStagedLocked(uint64_t offset, uint64_t length, char* out);

  ufs::UnderStore* const ufs_;
  const std::string key_;
  const FileWriterOptions options_;
  std::mutex mu_;
  std::string staging_path_;                   // GUARDED_BY(mu_)
  UniqueFd fd_;                                // GUARDED_BY(mu_)
  bool adopted_ = false;                       // GUARDED_BY(mu_): the file is not ours to remove
  bool shared_ = false;                        // GUARDED_BY(mu_): linked into the journal
  uint64_t size_ = 0;                          // GUARDED_BY(mu_)
  std::map<uint64_t, uint64_t> written_;       // GUARDED_BY(mu_): start -> end, merged
  std::shared_ptr<ufs::Upload> upload_;        // GUARDED_BY(mu_): null until a part goes up
  uint64_t parts_started_ = 0;                 // GUARDED_BY(mu_): parts [0, this) went up
  bool reupload_ = false;                      // GUARDED_BY(mu_): an uploaded part changed
  std::deque<std::future<Status>> in_flight_;  // GUARDED_BY(mu_)
  // Buffers of parts that went up, reused: a fresh 16 MiB buffer per part costs its page
  // faults again (the pool holds at most parallel_parts of them).
  struct PartBuffers {
    std::mutex mu;
    std::vector<std::unique_ptr<char[]>> spare;  // GUARDED_BY(mu)
  };
  const std::shared_ptr<PartBuffers> buffers_ = std::make_shared<PartBuffers>();
};

}  // namespace sluice::worker
