// Worker: writes to mounts with a write mode: handles of files open for writing, commits that
// upload them (through) or journal them for the upload threads (async), pages put in the cache
// as written, and the namespace changes (remove, mkdir, rename) that keep the metadata cache
// and the pages true.
#include <filesystem>

#include "cache/page_buffers.h"
#include "common/logging.h"
#include "common/path.h"
#include "worker/file_writer.h"
#include "worker/mount_state.h"
#include "worker/prefetcher.h"
#include "worker/worker.h"

namespace sluice::worker {
namespace {

// Files written up to this size are cached in the memory tier as well as on disk.
constexpr uint64_t kMemoryIngestMax = 64ull << 20;
constexpr std::chrono::hours kAbandonedWriterAfter{24};

}  // namespace

struct Worker::OpenFile {
  std::shared_ptr<MountState> state;
  std::string key;
  std::unique_ptr<FileWriter> writer;
  std::chrono::steady_clock::time_point last_used;
};

Result<std::pair<std::shared_ptr<Worker::MountState>, std::string>> Worker::ResolveWritable(const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(auto resolved, Resolve(path));
  auto& [state, key] = resolved;
  if (state->mount.options.read_only()) {
    return Status(StatusCode::kNotSupported,
                  "cannot change " + path + ": " + state->Name() +
                      " is read-only (mount it with `sluice mount add --write-mode through`, or `sluice local -o "
                      "write_mode=through`, to write)");
  }
  if (key.empty()) return InvalidArgument("cannot write " + path + ": it is the root of " + state->Name());
  return resolved;
}

std::string Worker::StagingDir() const {
  return config_.worker.disks.empty() ? std::string() : config_.worker.disks[0].dir + "/staging";
}

void Worker::ForgetChanged(const std::shared_ptr<MountState>& state, const std::string& key,
                           const std::string& kept_version) {
  auto dropped = state->meta->Invalidate(key);
  for (const auto& old : dropped.files) {
    if (old.Version() != kept_version) pages_->EraseFile(state->IdOf(old));
  }
}

Result<uint64_t> Worker::OpenWrite(const std::string& path, bool truncate, uint64_t* size) {
  SLUICE_ASSIGN_OR_RETURN(auto resolved, ResolveWritable(path));
  auto& [state, key] = resolved;
  const std::string staging = StagingDir();
  if (staging.empty()) {
    return Status(StatusCode::kNotSupported, "cannot write " + path +
                                                 ": writes are staged on the cache disk, and this worker has none "
                                                 "(worker.disks in its config)");
  }
  std::error_code ec;
  std::filesystem::create_directories(staging, ec);
  if (ec) return IoError("cannot create the staging directory " + staging + ": " + ec.message());
  auto existing = state->meta->Stat(key);
  if (existing.ok() && existing->is_dir) return InvalidArgument("cannot write " + path + ": it is a directory");
  // A write-back file that replaces what is there needs nothing of the store: it may be down.
  const bool replace_offline = truncate && state->mount.options.write_mode == cluster::WriteMode::kAsync;
  if (!existing.ok() && existing.status().code() != StatusCode::kNotFound && !replace_offline) {
    return existing.status().WithContext(state->Name());
  }
  FileWriterOptions options;
  options.part_size = config_.ufs.multipart_part_size;
  options.parallel_parts = std::clamp(state->mount.options.ufs_max_concurrency, 1, 8);
  options.stream_parts = state->mount.options.write_mode == cluster::WriteMode::kThrough;  // async: later
  const uint64_t seq = next_writer_.fetch_add(1);
  SLUICE_ASSIGN_OR_RETURN(
      auto writer, FileWriter::Create(state->ufs.get(), key, staging + "/" + std::to_string(::getpid()) + "-" +
                                                                std::to_string(seq), options));
  if (!truncate && existing.ok() && existing->size > 0) {  // rewriting in place: stage what is there
    uint64_t at = 0;
    auto n = state->reader->Read(state->FileOf(*existing), 0, existing->size, [&](std::string_view chunk) {
      Status st = writer->Write(at, chunk);
      at += chunk.size();
      return st;
    });
    if (!n.ok()) return n.status().WithContext("staging " + path + " to change it");
  }
  *size = writer->size();
  auto open = std::make_shared<OpenFile>();
  open->state = state;
  open->key = key;
  open->writer = std::move(writer);
  open->last_used = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(writers_mu_);
  // Handles whose client vanished without closing them (killed): dropped after a day without
  // a write (a log file written now and then keeps its handle).
  const auto now = std::chrono::steady_clock::now();
  for (auto it = writers_.begin(); it != writers_.end();) {
    if (now - it->second->last_used > kAbandonedWriterAfter) {
      SLUICE_LOG_WARN("dropping the writes to {} of a client that went away", it->second->state->NsPath(it->second->key));
      it = writers_.erase(it);
    } else {
      ++it;
    }
  }
  writers_[seq] = std::move(open);
  return seq;
}

Result<std::shared_ptr<Worker::OpenFile>> Worker::WriterFor(uint64_t handle) {
  std::lock_guard<std::mutex> lock(writers_mu_);
  auto it = writers_.find(handle);
  if (it == writers_.end()) {
    return InvalidArgument("no file is open for writing under handle " + std::to_string(handle) +
                           " (closed, or the worker restarted)");
  }
  it->second->last_used = std::chrono::steady_clock::now();
  return it->second;
}

Result<uint64_t> Worker::WriteAt(uint64_t handle, uint64_t offset, std::string_view data) {
  SLUICE_ASSIGN_OR_RETURN(auto open, WriterFor(handle));
  Status st = open->writer->Write(offset, data);
  if (!st.ok()) return st.WithContext("writing " + open->state->NsPath(open->key));
  return open->writer->size();
}

Result<uint64_t> Worker::TruncateWrite(uint64_t handle, uint64_t size) {
  SLUICE_ASSIGN_OR_RETURN(auto open, WriterFor(handle));
  Status st = open->writer->Truncate(size);
  if (!st.ok()) return st.WithContext("truncating " + open->state->NsPath(open->key));
  return open->writer->size();
}

void Worker::CacheWritten(const std::shared_ptr<MountState>& state, const ufs::ObjectInfo& info,
                          const std::function<Status(uint64_t, uint64_t, char*)>& read) {
  const uint64_t ps = pages_->page_size();
  const cache::FileId id = state->IdOf(info);
  for (uint64_t i = 0; i * ps < info.size; ++i) {
    const uint64_t len = std::min(ps, info.size - i * ps);
    auto page = cache::PageBuffers::Global().Take(static_cast<size_t>(len));
    page->Resize(static_cast<size_t>(len));
    if (!read(i * ps, len, page->data()).ok()) break;  // read from the store later
    // A small file goes to memory too (the next stage reads it soon); a checkpoint to disk
    // only, where it does not push everything else out of memory.
    pages_->Put(cache::PageKey{id, i}, cache::PageData(std::move(page)), /*memory=*/info.size <= kMemoryIngestMax);
  }
  state->meta->AddListed({info});
}

Result<Entry> Worker::CloseWrite(uint64_t handle, bool commit, bool release, bool durable) {
  SLUICE_ASSIGN_OR_RETURN(auto open, WriterFor(handle));
  if (release) {
    std::lock_guard<std::mutex> lock(writers_mu_);
    writers_.erase(handle);
  }
  const auto& state = open->state;
  const std::string path = state->NsPath(open->key);
  if (!commit) return Entry{path, false, open->writer->size(), 0, ""};
  auto read_staged = [&](uint64_t offset, uint64_t length, char* out) {
    return open->writer->ReadStaged(offset, length, out);
  };
  if (state->mount.options.write_mode == cluster::WriteMode::kAsync) {
    SLUICE_ASSIGN_OR_RETURN(JournalEntry entry, Journal(state, open->key, *open->writer));
    const ufs::ObjectInfo info = entry.Info();
    ForgetChanged(state, open->key, info.Version());
    // Readers get the bytes from the journal (PendingStore) until the upload caches them: the
    // close does not wait for a second copy.
    state->meta->AddListed({info});
    if (durable) SLUICE_RETURN_IF_ERROR(Flush(path));
    return state->ToEntry(info);
  }
  auto etag = open->writer->Commit();
  if (!etag.ok()) {
    SLUICE_LOG_WARN("could not write {} to {}: {}", path, state->Name(), etag.status().ToString());
    return etag.status().WithContext("writing " + path + " to " + state->Name());
  }
  // The version the store gave it; a writer elsewhere that closed in between wins, and then
  // these bytes are not cached under its version.
  auto info = state->ufs->Stat(open->key);
  if (!info.ok()) return info.status().WithContext("writing " + path + ": the store took it, but a stat failed");
  ForgetChanged(state, open->key, info->Version());
  if (info->size == open->writer->size() && (etag->empty() || info->etag == *etag)) {
    state->meta->AddListed({*info});
    // A large file closed for good (a checkpoint) goes to the disk tier behind the close, read
    // from its staging file, which the task keeps; a small one (the next stage's input) now.
    const bool behind = release && info->size > kMemoryIngestMax &&
                        prefetcher_->Submit([this, state, info = *info, open] {
                          CacheWritten(state, info, [&](uint64_t offset, uint64_t length, char* out) {
                            return open->writer->ReadStaged(offset, length, out);
                          });
                        });
    if (!behind) CacheWritten(state, *info, read_staged);
  }
  return state->ToEntry(*info);
}

std::string Worker::JournalDir() const {
  return config_.worker.disks.empty() ? std::string() : config_.worker.disks[0].dir + "/journal";
}

Result<JournalEntry> Worker::Journal(const std::shared_ptr<MountState>& state, const std::string& key,
                                     FileWriter& writer) {
  const std::string dir = JournalDir();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("cannot create the write-back journal " + dir + ": " + ec.message());
  JournalEntry entry;
  entry.id = next_journal_id_.fetch_add(1);
  entry.mount_path = state->mount.path;
  entry.key = key;
  entry.size = writer.size();
  struct timespec now;
  ::clock_gettime(CLOCK_REALTIME, &now);
  entry.mtime_ns = static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
  entry.data_path = dir + "/" + std::to_string(entry.id) + ".data";
  Status st = writer.KeepAt(entry.data_path);
  if (st.ok()) st = entry.Save(dir);
  if (!st.ok()) {
    entry.Remove(dir);
    return st.WithContext("keeping " + state->NsPath(key) + " for upload");
  }
  state->view->Add(entry);
  {
    std::lock_guard<std::mutex> lock(uploads_mu_);
    uploads_.push_back(Queued{entry, std::chrono::steady_clock::now(), 0});
  }
  uploads_cv_.notify_all();
  return entry;
}

void Worker::RecoverJournal() {
  std::vector<std::string> bad;
  const std::string dir = JournalDir();
  if (dir.empty()) return;
  // Files a killed worker was writing are gone with their writers (the journal holds links to
  // what it keeps).
  std::error_code ec;
  std::filesystem::remove_all(StagingDir(), ec);
  auto entries = JournalEntry::LoadAll(dir, &bad);
  for (const auto& b : bad) SLUICE_LOG_WARN("write-back journal: cannot read {}; left in place", b);
  for (const auto& e : entries) {
    next_journal_id_ = std::max<uint64_t>(next_journal_id_.load(), e.id + 1);
    auto resolved = Resolve(e.mount_path == "/" ? "/" + e.key : e.mount_path + "/" + e.key);
    if (!resolved.ok() || resolved->first->mount.path != e.mount_path) {
      SLUICE_LOG_WARN("write-back journal: {} waits for mount {}, which is not in the mount table",
                      e.data_path, e.mount_path);
      continue;
    }
    auto& state = resolved->first;
    state->view->Add(e);
    ForgetChanged(state, e.key, e.Info().Version());  // what the metadata index remembers is older
    state->meta->AddListed({e.Info()});
    std::lock_guard<std::mutex> lock(uploads_mu_);
    uploads_.push_back(Queued{e, std::chrono::steady_clock::now(), 0});
  }
  if (!entries.empty()) SLUICE_LOG_INFO("write-back journal: {} files to upload from {}", entries.size(), dir);
  uploads_cv_.notify_all();
}

void Worker::UploadLoop() {
  std::unique_lock<std::mutex> lock(uploads_mu_);
  while (!stop_uploads_) {
    if (uploads_.empty()) {
      uploads_cv_.wait(lock);
      continue;
    }
    auto due = std::min_element(uploads_.begin(), uploads_.end(),
                                [](const Queued& a, const Queued& b) { return a.due < b.due; });
    if (due->due > std::chrono::steady_clock::now()) {
      uploads_cv_.wait_until(lock, due->due);
      continue;
    }
    Queued q = *due;
    uploads_.erase(due);
    ++uploads_running_;
    lock.unlock();
    Status st = UploadJournaled(q.entry);
    lock.lock();
    --uploads_running_;
    if (!st.ok()) {
      ++upload_failures_;
      last_upload_error_ = st.ToString();
      // Back off: 1 s, 2 s, 4 s ... a minute between tries; the entry waits on disk meanwhile.
      q.attempts++;
      q.due = std::chrono::steady_clock::now() + std::chrono::seconds(std::min(60, 1 << std::min(q.attempts - 1, 6)));
      static LogLimiter limiter;
      uint64_t held_back = 0;
      if (limiter.Allow(&held_back)) {
        SLUICE_LOG_WARN("write-back: upload of {} failed (try {}), retrying: {}", q.entry.key, q.attempts,
                        st.ToString());
      }
      uploads_.push_back(std::move(q));
    }
    uploads_cv_.notify_all();
  }
}

Status Worker::UploadJournaled(const JournalEntry& e) {
  SLUICE_ASSIGN_OR_RETURN(auto resolved, Resolve(e.mount_path == "/" ? "/" + e.key : e.mount_path + "/" + e.key));
  auto& state = resolved.first;
  if (state->mount.path != e.mount_path) return Status(StatusCode::kNotFound, "mount " + e.mount_path + " is gone");
  auto latest = state->view->Find(e.key);
  if (!latest || latest->id != e.id) {  // a later close of the same file supersedes this one
    e.Remove(JournalDir());
    return Status::Ok();
  }
  FileWriterOptions options;
  options.part_size = config_.ufs.multipart_part_size;
  options.parallel_parts = std::clamp(state->mount.options.ufs_max_concurrency, 1, 8);
  SLUICE_ASSIGN_OR_RETURN(auto writer, FileWriter::Adopt(state->ufs.get(), e.key, e.data_path, e.size, options));
  SLUICE_ASSIGN_OR_RETURN(std::string etag, writer->Commit());
  auto info = state->ufs->Stat(e.key);
  if (!info.ok()) return info.status().WithContext("after uploading " + e.key);
  const bool ours = info->size == e.size && (etag.empty() || info->etag == etag);
  ForgetChanged(state, e.key, info->Version());  // frees the pages of the journal's version
  if (ours) {
    CacheWritten(state, *info, [&](uint64_t offset, uint64_t length, char* out) {
      return writer->ReadStaged(offset, length, out);
    });
  }
  state->view->Drop(e.key, e.id, ours ? info->Version() : "");
  e.Remove(JournalDir());
  ++uploads_done_;
  return Status::Ok();
}

Status Worker::Flush(const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(auto resolved, Resolve(path));
  auto& [state, key] = resolved;
  std::unique_lock<std::mutex> lock(uploads_mu_);
  const auto deadline = std::chrono::steady_clock::now() + config_.rpc.io_timeout;
  while (true) {
    auto [files, bytes] = state->view->PendingBelow(key);
    if (files == 0) return Status::Ok();
    if (uploads_cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      auto [left, left_bytes] = state->view->PendingBelow(key);
      if (left == 0) return Status::Ok();
      return Status(StatusCode::kUnavailable,
                    std::to_string(left) + " file(s) (" + std::to_string(left_bytes) + " bytes) below " + path +
                        " still wait for " + state->Name() +
                        (last_upload_error_.empty() ? std::string() : "; last failure: " + last_upload_error_) +
                        " (they are safe in the journal and go up when the store takes them)");
    }
  }
}

Status Worker::Remove(const std::string& path, bool directory) {
  SLUICE_ASSIGN_OR_RETURN(auto resolved, ResolveWritable(path));
  auto& [state, key] = resolved;
  auto info = state->meta->Stat(key);
  if (!info.ok()) return info.status().WithContext(state->Name());
  if (info->is_dir != directory) {
    return InvalidArgument("cannot remove " + path + ": it is " + (info->is_dir ? "a directory" : "not a directory"));
  }
  if (directory) {
    auto page = state->ufs->List(key, ufs::ListOptions{false, "", 1});
    if (page.ok() && !page->entries.empty()) {
      return Status(StatusCode::kNotEmpty, "cannot remove " + path + ": the directory is not empty");
    }
  }
  Status st = state->ufs->Delete(key);
  ForgetChanged(state, key, "");
  // A directory that only existed as its files' prefix (S3) has nothing of its own to delete.
  if (directory && st.code() == StatusCode::kNotFound) return Status::Ok();
  return st.ok() ? st : st.WithContext(state->Name());
}

Status Worker::MakeDirectory(const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(auto resolved, ResolveWritable(path));
  auto& [state, key] = resolved;
  auto info = state->meta->Stat(key);
  if (info.ok()) return Status(StatusCode::kAlreadyExists, "cannot create " + path + ": it exists");
  Status st = state->ufs->Mkdir(key);
  ForgetChanged(state, key, "");
  return st.ok() ? st : st.WithContext(state->Name());
}

Status Worker::Rename(const std::string& from, const std::string& to) {
  SLUICE_ASSIGN_OR_RETURN(auto source, ResolveWritable(from));
  SLUICE_ASSIGN_OR_RETURN(auto target, ResolveWritable(to));
  if (source.first != target.first) {
    return Status(StatusCode::kNotSupported, "cannot rename " + from + " to " + to + ": they lie in different mounts");
  }
  auto& [state, key] = source;
  auto info = state->meta->Stat(key);
  if (!info.ok()) return info.status().WithContext(state->Name());
  if (info->is_dir) {
    return Status(StatusCode::kNotSupported, "cannot rename the directory " + from + ": sluice renames files only");
  }
  if (state->mount.options.write_mode == cluster::WriteMode::kAsync) {
    // The store renames what it has: the source's upload (and any of an older `to`, which
    // would land on top of the renamed file) must be done first.
    SLUICE_RETURN_IF_ERROR(Flush(from));
    SLUICE_RETURN_IF_ERROR(Flush(to));
  }
  Status st = state->ufs->Rename(key, target.second);
  ForgetChanged(state, key, "");
  ForgetChanged(state, target.second, "");
  return st.ok() ? st : st.WithContext(state->Name());
}

}  // namespace sluice::worker
