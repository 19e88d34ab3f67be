// RPC calls, the direct under-store fallback, and read-ahead.
#include "client/file_system.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "cache/page_file.h"
#include "cluster/mount_table.h"
#include "common/logging.h"

namespace sluice::client {
namespace {

FileInfo FromProto(const rpc::FileInfo& f) { return FileInfo{f.path(), f.is_dir(), f.size(), f.mtime_ns(), f.version()}; }

}  // namespace

FileSystem::FileSystem(ClientOptions options) : options_(std::move(options)), rpc_(options_.worker) {}
FileSystem::~FileSystem() = default;

bool FileSystem::WorkerDown(const Status& st) {
  return st.code() == StatusCode::kUnavailable &&
         (st.message().rfind("cannot reach sluice worker", 0) == 0 || st.message().rfind("lost connection", 0) == 0);
}

Result<std::pair<ufs::UnderStore*, std::string>> FileSystem::Direct(const std::string& path) {
  if (!options_.fallback_to_ufs || !options_.cluster) return NotSupported("fallback to the under-store is off");
  SLUICE_ASSIGN_OR_RETURN(cluster::MountTable table, options_.cluster->LoadMounts());
  SLUICE_ASSIGN_OR_RETURN(cluster::Resolved r, table.Resolve(path));
  std::lock_guard<std::mutex> lock(mu_);
  auto& store = direct_[r.mount->uri];
  if (!store) {
    SLUICE_ASSIGN_OR_RETURN(
        store, ufs::OpenUnderStore(r.mount->uri, ufs::UnderStoreOptions::FromConfig(options_.ufs, r.mount->options.ufs_options)));
  }
  return std::make_pair(store.get(), r.key);
}

Result<FileInfo> FileSystem::Stat(const std::string& path) {
  rpc::PathRequest req;
  req.set_path(path);
  rpc::StatResponse resp;
  Status st = rpc_.Call(rpc::FrameType::kStat, req, &resp);
  if (st.ok()) return FromProto(resp.info());
  if (!WorkerDown(st)) return st;
  auto direct = Direct(path);
  if (!direct.ok()) return st;
  SLUICE_ASSIGN_OR_RETURN(ufs::ObjectInfo info, direct->first->Stat(direct->second));
  return FileInfo{path, info.is_dir, info.size, info.mtime_ns, info.is_dir ? "" : info.Version()};
}

Result<std::vector<FileInfo>> FileSystem::List(const std::string& path) {
  rpc::PathRequest req;
  req.set_path(path);
  rpc::ListResponse resp;
  Status st = rpc_.Call(rpc::FrameType::kList, req, &resp);
  std::vector<FileInfo> out;
  if (st.ok()) {
    for (const auto& e : resp.entries()) out.push_back(FromProto(e));
    return out;
  }
  if (!WorkerDown(st)) return st;
  auto direct = Direct(path);
  if (!direct.ok()) return st;
  SLUICE_ASSIGN_OR_RETURN(auto entries, direct->first->ListAll(direct->second, false));
  const std::string& key = direct->second;
  for (const auto& e : entries) {
    std::string rel = key.empty() ? e.path : e.path.substr(std::min(e.path.size(), key.size() + 1));
    out.push_back(FileInfo{(path == "/" ? "" : path) + "/" + rel, e.is_dir, e.size, e.mtime_ns,
                           e.is_dir ? "" : e.Version()});
  }
  return out;
}

Result<uint64_t> FileSystem::DirectRead(const std::string& path, uint64_t offset, uint64_t length,
                                        const ufs::ByteSink& sink) {
  SLUICE_ASSIGN_OR_RETURN(auto direct, Direct(path));
  ++fallback_reads_;
  return direct.first->Read(direct.second, offset, length, sink);
}

Result<uint64_t> FileSystem::Read(const std::string& path, uint64_t offset, uint64_t length, const ufs::ByteSink& sink) {
  rpc::ReadRequest req;
  req.set_path(path);
  req.set_offset(offset);
  req.set_length(length);
  rpc::ReadResponse resp;
  uint64_t delivered = 0;
  ufs::ByteSink counting = [&](std::string_view chunk) {
    delivered += chunk.size();
    return sink(chunk);
  };
  Status st = rpc_.Call(rpc::FrameType::kRead, req, &resp, &counting);
  if (st.ok()) return resp.bytes();
  if (!WorkerDown(st)) return st;
  // The worker went away: continue from the under-store where the bytes stopped.
  auto rest = DirectRead(path, offset + delivered, length - delivered, sink);
  if (!rest.ok()) return rest.status().code() == StatusCode::kNotSupported ? st : rest.status();
  SLUICE_LOG_WARN("worker unreachable ({}); read {} directly from the under-store", st.message(), path);
  return delivered + *rest;
}

Result<std::unique_ptr<File>> FileSystem::Open(const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(FileInfo info, Stat(path));
  if (info.is_dir) return InvalidArgument(path + " is a directory");
  return std::unique_ptr<File>(new File(this, std::move(info)));
}

Result<uint64_t> FileSystem::Sync(const std::string& path) {
  rpc::PathRequest req;
  req.set_path(path);
  rpc::PathResponse resp;
  SLUICE_RETURN_IF_ERROR(rpc_.Call(rpc::FrameType::kSync, req, &resp));
  return resp.files();
}

Result<rpc::PathResponse> FileSystem::Free(const std::string& path) {
  rpc::PathRequest req;
  req.set_path(path);
  rpc::PathResponse resp;
  SLUICE_RETURN_IF_ERROR(rpc_.Call(rpc::FrameType::kFree, req, &resp));
  return resp;
}

Result<rpc::PathResponse> FileSystem::CheckCached(const std::string& path) {
  rpc::PathRequest req;
  req.set_path(path);
  rpc::PathResponse resp;
  SLUICE_RETURN_IF_ERROR(rpc_.Call(rpc::FrameType::kCheckCached, req, &resp));
  return resp;
}

Result<std::string> FileSystem::Load(const std::string& path) {
  rpc::LoadRequest req;
  req.set_path(path);
  rpc::JobStatus resp;
  SLUICE_RETURN_IF_ERROR(rpc_.Call(rpc::FrameType::kLoad, req, &resp));
  return resp.job_id();
}

Result<rpc::JobStatus> FileSystem::JobStatus(const std::string& job_id) {
  rpc::JobRequest req;
  req.set_job_id(job_id);
  rpc::JobStatus resp;
  SLUICE_RETURN_IF_ERROR(rpc_.Call(rpc::FrameType::kJobStatus, req, &resp));
  return resp;
}

Result<rpc::JobStatus> FileSystem::CancelJob(const std::string& job_id) {
  rpc::JobRequest req;
  req.set_job_id(job_id);
  rpc::JobStatus resp;
  SLUICE_RETURN_IF_ERROR(rpc_.Call(rpc::FrameType::kJobCancel, req, &resp));
  return resp;
}

Result<rpc::ReportResponse> FileSystem::Report() {
  rpc::ReportRequest req;
  rpc::ReportResponse resp;
  SLUICE_RETURN_IF_ERROR(rpc_.Call(rpc::FrameType::kReport, req, &resp));
  return resp;
}

ClientStats FileSystem::Stats() const {
  return ClientStats{fallback_reads_.load(), readahead_hits_.load(), readahead_bytes_.load(),
                     short_circuit_bytes_.load()};
}

bool FileSystem::ShortCircuitPossible() const {
  const std::string& h = options_.worker.host;
  return options_.short_circuit && (h == "127.0.0.1" || h == "localhost" || h == "::1");
}

Result<size_t> FileSystem::ReadShortCircuit(const FileInfo& info, uint64_t offset, uint64_t length,
                                            uint64_t hint_from, uint64_t hint_to, char* out, PageMemo* memo) {
  const uint64_t end = std::min(info.size, offset + length);
  if (offset >= end) return size_t{0};
  rpc::ReadRequest req;
  req.set_path(info.path);
  req.set_offset(offset);
  req.set_length(std::max(end, hint_to) - offset);
  if (hint_to > end) {  // a sequential reader: have the worker fetch what is missing ahead of it
    req.set_prefetch(true);
    req.set_prefetch_from(std::max(end, hint_from));
  }
  rpc::LocateResponse where;
  SLUICE_RETURN_IF_ERROR(rpc_.Call(rpc::FrameType::kLocate, req, &where));
  if (where.info().version() != info.version) return Status(StatusCode::kStale, info.path + " changed");
  const uint64_t ps = where.page_size();
  if (ps == 0) return Internal("worker reported no page size");
  memo->page_size = ps;
  // Fills out[from - offset, to - offset) over RPC.
  auto fill_rpc = [&](uint64_t from, uint64_t to) -> Status {
    if (from >= to) return Status::Ok();
    size_t at = static_cast<size_t>(from - offset);
    auto n = Read(info.path, from, to - from, [&](std::string_view c) {
      if (at + c.size() > end - offset) return Corruption("worker sent more bytes than asked");
      std::memcpy(out + at, c.data(), c.size());
      at += c.size();
      return Status::Ok();
    });
    if (n.ok() && *n != to - from) return Status(StatusCode::kStale, info.path + " changed size");
    return n.status();
  };
  uint64_t pos = offset;  // everything before pos is filled
  for (const auto& ref : where.pages()) {
    uint64_t page_start = ref.index() * ps;
    if (page_start >= end) {  // beyond the read: a hint for the kernel only
      if (page_start < hint_from) continue;
      int fd = ::open(ref.file().c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
        ::close(fd);
      }
      continue;
    }
    uint64_t from = std::max(pos, page_start), to = std::min(end, page_start + ref.length());
    if (from >= to) continue;
    Status st;
    if (from == page_start && to == page_start + ref.length()) {
      st = cache::ReadPageFileInto(ref.file(), ref.length(), ref.seed(), out + (from - offset));
    } else {
      memo->data.resize(static_cast<size_t>(ref.length()));
      st = cache::ReadPageFileInto(ref.file(), ref.length(), ref.seed(), memo->data.data());
      memo->index = st.ok() ? ref.index() : UINT64_MAX;
      if (st.ok()) std::memcpy(out + (from - offset), memo->data.data() + (from - page_start), to - from);
    }
    if (!st.ok()) continue;  // evicted or bad: RPC covers it below (and the worker drops a bad page)
    SLUICE_RETURN_IF_ERROR(fill_rpc(pos, from));
    short_circuit_bytes_ += to - from;
    pos = to;
  }
  SLUICE_RETURN_IF_ERROR(fill_rpc(pos, end));
  return static_cast<size_t>(end - offset);
}

File::~File() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& c : chunks_) {
    if (c.data.valid()) c.data.wait();  // the fetch thread uses this File
    fs_->readahead_in_use_ -= c.reserved;
  }
}

Result<std::string> File::Fetch(uint64_t offset, uint64_t length) {
  std::string out;
  out.reserve(static_cast<size_t>(length));
  auto n = fs_->Read(info_.path, offset, length, [&out](std::string_view c) {
    out.append(c);
    return Status::Ok();
  });
  if (!n.ok()) return n.status();
  return out;
}

void File::Prefetch(uint64_t from) {
  const ClientOptions& o = fs_->options_;
  const uint64_t max_chunks = std::max<uint64_t>(1, o.readahead_per_handle / o.readahead_chunk);
  uint64_t next = chunks_.empty() ? from : chunks_.back().offset + o.readahead_chunk;
  while (chunks_.size() < max_chunks && next < info_.size) {
    uint64_t len = std::min(o.readahead_chunk, info_.size - next);
    // The global budget: beyond it, readers go without read-ahead rather than grow memory.
    uint64_t in_use = fs_->readahead_in_use_.fetch_add(len);
    if (in_use + len > o.readahead_total) {
      fs_->readahead_in_use_ -= len;
      return;
    }
    Chunk c;
    c.offset = next;
    c.reserved = len;
    c.data = std::async(std::launch::async, [this, next, len] { return Fetch(next, len); }).share();
    chunks_.push_back(std::move(c));
    next += len;
  }
}

Result<size_t> File::ReadAt(uint64_t offset, size_t length, char* out) {
  if (offset >= info_.size || length == 0) return size_t{0};
  length = static_cast<size_t>(std::min<uint64_t>(length, info_.size - offset));
  bool short_circuit = fs_->ShortCircuitPossible();
  if (short_circuit) {
    // A small read at a random place is cheaper over RPC: the worker answers it from its
    // memory tier, where a page file would have to be read and verified whole.
    std::lock_guard<std::mutex> lock(mu_);
    // A file of one page is one RPC either way; skip the LOCATE round trip.
    const uint64_t ps = memo_.page_size ? memo_.page_size : (1 << 20);
    short_circuit = info_.size > ps && (offset == next_sequential_ || length >= ps);
  }
  if (short_circuit) {
    // Same host as the worker: read its page files straight into `out`; the kernel reads
    // ahead for sequential readers (hinted), so no read-ahead buffers of our own.
    uint64_t hint_from = 0, hint_to = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const uint64_t ps = memo_.page_size;
      if (ps && offset / ps == memo_.index && (offset + length - 1) / ps == memo_.index &&
          offset + length <= memo_.index * ps + memo_.data.size()) {
        // Inside the page read last time (already verified).
        std::memcpy(out, memo_.data.data() + (offset - memo_.index * ps), length);
        next_sequential_ = offset + length;
        return length;
      }
      bool sequential = offset == next_sequential_;
      next_sequential_ = offset + length;
      // Announce only the stretch not announced yet, in steps of half the window, so each
      // page file is hinted once.
      const uint64_t window = fs_->options_.readahead_per_handle;
      uint64_t window_end = offset + length + window;
      if (sequential && window_end >= hinted_until_ + window / 2) {
        hint_from = std::max(offset + length, hinted_until_);
        hint_to = window_end;
        hinted_until_ = window_end;
      }
    }
    std::lock_guard<std::mutex> lock(mu_);  // guards last_page_; one short-circuit read at a time per handle
    auto n = fs_->ReadShortCircuit(info_, offset, length, hint_from, hint_to, out, &memo_);
    if (n.ok()) return n;
  }
  std::unique_lock<std::mutex> lock(mu_);
  bool sequential = offset == next_sequential_;
  next_sequential_ = offset + length;
  const uint64_t chunk_size = fs_->options_.readahead_chunk;

  // Drop read-ahead the reader has moved past, or all of it when the reader jumped.
  auto drop_front = [&] {
    if (chunks_.front().data.valid()) chunks_.front().data.wait();
    fs_->readahead_in_use_ -= chunks_.front().reserved;
    chunks_.erase(chunks_.begin());
  };
  while (!chunks_.empty() && (!sequential || chunks_.front().offset + chunk_size <= offset)) drop_front();
  size_t done = 0;
  while (done < length && !chunks_.empty() && chunks_.front().offset <= offset + done) {
    auto chunk = chunks_.front().data;
    uint64_t chunk_offset = chunks_.front().offset;
    lock.unlock();
    const Result<std::string>& data = chunk.get();
    lock.lock();
    if (!data.ok() || chunk_offset + data->size() <= offset + done) break;  // refetch below
    size_t from = static_cast<size_t>(offset + done - chunk_offset);
    size_t n = std::min(length - done, data->size() - from);
    std::memcpy(out + done, data->data() + from, n);
    done += n;
    fs_->readahead_hits_ += 1;
    fs_->readahead_bytes_ += n;
    if (from + n == data->size() && !chunks_.empty() && chunks_.front().offset == chunk_offset) drop_front();
  }
  if (sequential) Prefetch(offset + length);
  lock.unlock();
  if (done < length) {
    SLUICE_ASSIGN_OR_RETURN(std::string rest, Fetch(offset + done, length - done));
    std::memcpy(out + done, rest.data(), rest.size());
    done += rest.size();
  }
  return done;
}

}  // namespace sluice::client
