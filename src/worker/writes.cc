// Worker: writes to mounts with a write mode (through): handles of files open for writing,
// commits that upload them and put their pages in the cache as written, and the namespace
// changes (remove, mkdir, rename) that keep the metadata cache and the pages true.
#include <filesystem>

#include "cache/page_buffers.h"
#include "common/logging.h"
#include "common/path.h"
#include "worker/file_writer.h"
#include "worker/mount_state.h"
#include "worker/worker.h"

namespace sluice::worker {
namespace {

// Files written up to this size are cached in the memory tier as well as on disk.
constexpr uint64_t kMemoryIngestMax = 64ull << 20;

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
  if (!existing.ok() && existing.status().code() != StatusCode::kNotFound) {
    return existing.status().WithContext(state->Name());
  }
  FileWriterOptions options;
  options.part_size = config_.ufs.multipart_part_size;
  options.parallel_parts = std::clamp(state->mount.options.ufs_max_concurrency, 1, 8);
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
  // Handles whose client vanished without closing them (killed): dropped after the RPC idle time.
  const auto now = std::chrono::steady_clock::now();
  for (auto it = writers_.begin(); it != writers_.end();) {
    if (now - it->second->last_used > config_.rpc.idle_timeout) {
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

Result<Entry> Worker::CloseWrite(uint64_t handle, bool commit, bool release) {
  SLUICE_ASSIGN_OR_RETURN(auto open, WriterFor(handle));
  if (release) {
    std::lock_guard<std::mutex> lock(writers_mu_);
    writers_.erase(handle);
  }
  const auto& state = open->state;
  const std::string path = state->NsPath(open->key);
  if (!commit) return Entry{path, false, open->writer->size(), 0, ""};
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
  const uint64_t size = open->writer->size();
  if (info->size == size && (etag->empty() || info->etag == *etag)) {
    const uint64_t ps = pages_->page_size();
    const cache::FileId id = state->IdOf(*info);
    for (uint64_t i = 0; i * ps < size; ++i) {
      const uint64_t len = std::min(ps, size - i * ps);
      auto page = cache::PageBuffers::Global().Take(static_cast<size_t>(len));
      page->Resize(static_cast<size_t>(len));
      if (!open->writer->ReadStaged(i * ps, len, page->data()).ok()) break;  // read from the store later
      // A small file goes to memory too (the next stage reads it soon); a checkpoint to disk
      // only, where it does not push everything else out of memory.
      pages_->Put(cache::PageKey{id, i}, cache::PageData(std::move(page)), /*memory=*/size <= kMemoryIngestMax);
    }
    state->meta->AddListed({*info});
  }
  return state->ToEntry(*info);
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
  Status st = state->ufs->Rename(key, target.second);
  ForgetChanged(state, key, "");
  ForgetChanged(state, target.second, "");
  return st.ok() ? st : st.WithContext(state->Name());
}

}  // namespace sluice::worker
