// FileWriter: staging file plus parts uploaded while the writer goes on.
#include "worker/file_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace sluice::worker {
namespace {

Status StagingError(int err, const std::string& what) {
  std::string msg = "staging file " + what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return Status(StatusCode::kResourceExhausted, msg + " (the cache disk is full)");
  return IoError(msg);
}

}  // namespace

Result<std::unique_ptr<FileWriter>> FileWriter::Create(ufs::UnderStore* ufs, std::string key, std::string staging_path,
                                                       FileWriterOptions options) {
  UniqueFd fd(::open(staging_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) return StagingError(errno, staging_path);
  options.part_size = std::max<uint64_t>(options.part_size, 1);
  options.parallel_parts = std::max(options.parallel_parts, 1);
  return std::unique_ptr<FileWriter>(
      new FileWriter(ufs, std::move(key), std::move(staging_path), std::move(fd), options));
}

Result<std::unique_ptr<FileWriter>> FileWriter::Adopt(ufs::UnderStore* ufs, std::string key, std::string path,
                                                      uint64_t size, FileWriterOptions options) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return StagingError(errno, path);
  options.part_size = std::max<uint64_t>(options.part_size, 1);
  options.parallel_parts = std::max(options.parallel_parts, 1);
  options.stream_parts = false;
  std::unique_ptr<FileWriter> w(new FileWriter(ufs, std::move(key), std::move(path), std::move(fd), options));
  std::lock_guard<std::mutex> lock(w->mu_);
  w->adopted_ = true;
  w->size_ = size;
  if (size) w->written_[0] = size;
  return w;
}

FileWriter::~FileWriter() {
  std::lock_guard<std::mutex> lock(mu_);
  (void)DrainLocked();
  upload_.reset();  // abandoned: the store drops its parts
  if (!adopted_) ::unlink(staging_path_.c_str());
}

Status FileWriter::KeepAt(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (::fsync(fd_.get()) != 0) return StagingError(errno, staging_path_);
  if (::link(staging_path_.c_str(), path.c_str()) != 0) return StagingError(errno, path);
  shared_ = true;
  return Status::Ok();
}

Status FileWriter::UnshareLocked() {
  if (!shared_) return Status::Ok();
  const std::string copy = staging_path_ + "+";
  UniqueFd fd(::open(copy.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0) return StagingError(errno, copy);
  for (uint64_t at = 0; at < size_;) {
    loff_t in = static_cast<loff_t>(at), out = static_cast<loff_t>(at);
    ssize_t n = ::copy_file_range(fd_.get(), &in, fd.get(), &out, static_cast<size_t>(size_ - at), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      ::unlink(copy.c_str());
      return StagingError(err, copy);
    }
    at += static_cast<uint64_t>(n);
  }
  if (::rename(copy.c_str(), staging_path_.c_str()) != 0) return StagingError(errno, staging_path_);
  fd_ = std::move(fd);
  shared_ = false;
  return Status::Ok();
}

void FileWriter::MarkWrittenLocked(uint64_t from, uint64_t to) {
  auto it = written_.upper_bound(from);
  if (it != written_.begin() && std::prev(it)->second >= from) --it;
  while (it != written_.end() && it->first <= to) {
    from = std::min(from, it->first);
    to = std::max(to, it->second);
    it = written_.erase(it);
  }
  written_[from] = to;
}

uint64_t FileWriter::ContiguousEndLocked() const {
  if (written_.empty() || written_.begin()->first != 0) return 0;
  return written_.begin()->second;
}

Status FileWriter::Write(uint64_t offset, std::string_view data) {
  std::lock_guard<std::mutex> lock(mu_);
  SLUICE_RETURN_IF_ERROR(UnshareLocked());
  for (size_t done = 0; done < data.size();) {
    ssize_t n = ::pwrite(fd_.get(), data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return StagingError(errno, staging_path_);
    }
    done += static_cast<size_t>(n);
  }
  if (data.empty()) return Status::Ok();
  const uint64_t end = offset + data.size();
  size_ = std::max(size_, end);
  if (offset < parts_started_ * options_.part_size) reupload_ = true;
  MarkWrittenLocked(offset, end);
  if (reupload_ || !options_.stream_parts) return Status::Ok();  // Commit uploads it (again)
  const uint64_t ps = options_.part_size;
  while (ContiguousEndLocked() >= (parts_started_ + 1) * ps) SLUICE_RETURN_IF_ERROR(StartPartLocked(parts_started_));
  return Status::Ok();
}

Status FileWriter::Truncate(uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  SLUICE_RETURN_IF_ERROR(UnshareLocked());
  if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) return StagingError(errno, staging_path_);
  if (size < parts_started_ * options_.part_size) reupload_ = true;
  if (size > size_) {
    MarkWrittenLocked(size_, size);  // zeros, as written
  } else {
    for (auto it = written_.begin(); it != written_.end();) {
      if (it->first >= size) {
        it = written_.erase(it);
      } else {
        it->second = std::min(it->second, size);
        ++it;
      }
    }
  }
  size_ = size;
  return Status::Ok();
}

uint64_t FileWriter::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return size_;
}

Status FileWriter::StartPartLocked(uint64_t index) {
  if (!upload_) {
    SLUICE_ASSIGN_OR_RETURN(auto upload, ufs_->StartUpload(key_, options_.part_size));
    upload_ = std::move(upload);
  }
  while (in_flight_.size() >= static_cast<size_t>(options_.parallel_parts)) {
    Status st = in_flight_.front().get();
    in_flight_.pop_front();
    if (!st.ok()) reupload_ = true;  // Commit tries the whole file again
  }
  const uint64_t ps = options_.part_size, offset = index * ps;
  const size_t length = static_cast<size_t>(std::min(ps, size_ - offset));
  std::unique_ptr<char[]> buffer;
  {
    std::lock_guard<std::mutex> lock(buffers_->mu);
    if (!buffers_->spare.empty()) {
      buffer = std::move(buffers_->spare.back());
      buffers_->spare.pop_back();
    }
  }
  if (!buffer) buffer = std::make_unique_for_overwrite<char[]>(static_cast<size_t>(ps));
  SLUICE_RETURN_IF_ERROR(ReadStagedLocked(offset, length, buffer.get()));
  in_flight_.push_back(std::async(std::launch::async, [upload = upload_, index, length, buffers = buffers_,
                                                       max_spare = static_cast<size_t>(options_.parallel_parts),
                                                       buffer = std::move(buffer)]() mutable {
    Status st = upload->PutPart(index, std::string_view(buffer.get(), length));
    std::lock_guard<std::mutex> lock(buffers->mu);
    if (buffers->spare.size() < max_spare) buffers->spare.push_back(std::move(buffer));
    return st;
  }));
  parts_started_ = index + 1;
  return Status::Ok();
}

Status FileWriter::DrainLocked() {
  Status first;
  for (auto& f : in_flight_) {
    Status st = f.get();
    if (!st.ok() && first.ok()) first = st;
  }
  in_flight_.clear();
  return first;
}

Result<std::string> FileWriter::Commit() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!DrainLocked().ok()) reupload_ = true;
  if (reupload_) {  // start over from the staging file
    upload_.reset();
    parts_started_ = 0;
    reupload_ = false;
  }
  const uint64_t ps = options_.part_size, parts = (size_ + ps - 1) / ps;
  Status st;
  for (uint64_t i = parts_started_; i < parts && st.ok(); ++i) st = StartPartLocked(i);
  Status drained = DrainLocked();
  if (st.ok()) st = drained;
  Result<std::string> etag = std::string();
  if (!st.ok()) {
    etag = st;
  } else {
    if (!upload_) {  // nothing went up yet: an empty file, or one part
      auto upload = ufs_->StartUpload(key_, ps);
      if (upload.ok()) upload_ = std::move(*upload);
      else etag = upload.status();
    }
    if (upload_) etag = upload_->Finish(parts);
  }
  // Whether or not it worked, the next Commit uploads everything again.
  upload_.reset();
  parts_started_ = 0;
  reupload_ = false;
  return etag;
}

Status FileWriter::ReadStaged(uint64_t offset, uint64_t length, char* out) {
  std::lock_guard<std::mutex> lock(mu_);
  return ReadStagedLocked(offset, length, out);
}

Status FileWriter::ReadStagedLocked(uint64_t offset, uint64_t length, char* out) {
  for (uint64_t done = 0; done < length;) {
    ssize_t n = ::pread(fd_.get(), out + done, static_cast<size_t>(length - done), static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return StagingError(errno, staging_path_);
    if (n == 0) {  // a hole at the end (truncated up): zeros
      std::memset(out + done, 0, static_cast<size_t>(length - done));
      break;
    }
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

}  // namespace sluice::worker
