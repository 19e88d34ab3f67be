// RPC calls, the direct under-store fallback, and read-ahead.
#include "client/file_system.h"

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "cache/page_file.h"
#include "common/path.h"
#include "cluster/mount_table.h"
#include "cluster/placement.h"
#include "common/logging.h"

namespace sluice::client {
namespace {

FileInfo FromProto(const rpc::FileInfo& f) { return FileInfo{f.path(), f.is_dir(), f.size(), f.mtime_ns(), f.version()}; }

}  // namespace

FileSystem::FileSystem(ClientOptions options)
    : options_(std::move(options)),
      rpc_(std::make_shared<rpc::RpcClient>(options_.worker)),
      listings_(options_.listing_memory, options_.listing_ttl) {
  if (options_.cluster_routing && options_.cluster) {
    RouterOptions o;
    o.secret = options_.worker.secret;
    o.span = options_.placement_span;
    router_ = std::make_unique<Router>(options_.cluster, o);
  }
}
FileSystem::~FileSystem() = default;

Status FileSystem::Routed(std::string_view key, const std::string& path,
                          const std::function<Status(const std::shared_ptr<rpc::RpcClient>&)>& call, bool spread) {
  if (!router_) return call(rpc_);
  auto targets = router_->Route(key, spread ? router_->Replicas(path) : 1);
  if (targets.empty()) return Status(StatusCode::kUnavailable, "cannot reach sluice worker: none is registered in " +
                                                                   options_.cluster->Describe(), true);
  Status st;
  for (const auto& t : targets) {
    st = call(t.rpc);
    if (!WorkerDown(st)) return st;
    router_->MarkDown(t.id);
  }
  return st;
}

Status FileSystem::Broadcast(const std::function<Status(rpc::RpcClient&)>& call) {
  if (!router_) return call(*rpc_);
  for (const auto& t : router_->All()) {
    Status st = call(*t.rpc);
    if (!st.ok() && !WorkerDown(st)) return st;
  }
  return Status::Ok();
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
  if (auto listed = listings_.Lookup(path)) return std::move(*listed);
  return StatFromWorker(path);
}

Result<FileInfo> FileSystem::StatFromWorker(const std::string& path) {
  rpc::PathRequest req;
  req.set_path(path);
  rpc::StatResponse resp;
  Status st = Routed(path, path, [&](const auto& rpc) { return rpc->Call(rpc::FrameType::kStat, req, &resp); });
  if (st.ok()) return FromProto(resp.info());
  if (!WorkerDown(st)) return st;
  auto direct = Direct(path);
  if (!direct.ok()) return st;
  SLUICE_ASSIGN_OR_RETURN(ufs::ObjectInfo info, direct->first->Stat(direct->second));
  return FileInfo{path, info.is_dir, info.size, info.mtime_ns, info.is_dir ? "" : info.Version()};
}

Result<std::vector<FileInfo>> FileSystem::List(const std::string& path) {
  std::vector<FileInfo> out;
  std::string cursor;
  for (bool more = true; more;) {
    SLUICE_ASSIGN_OR_RETURN(auto page, ListPage(path, cursor, kListPageEntries, &more));
    if (page.empty()) break;
    cursor = BaseName(page.back().path);
    if (out.empty()) {
      out = std::move(page);
    } else {
      out.insert(out.end(), std::make_move_iterator(page.begin()), std::make_move_iterator(page.end()));
    }
  }
  return out;
}

Result<std::vector<FileInfo>> FileSystem::ListPage(const std::string& path, const std::string& start_after,
                                                   size_t limit, bool* more) {
  rpc::PathRequest req;
  req.set_path(path);
  req.set_start_after(start_after);
  req.set_limit(static_cast<uint32_t>(std::min<size_t>(limit, UINT32_MAX)));
  rpc::ListResponse resp;
  Status st = Routed(path, path, [&](const auto& rpc) { return rpc->Call(rpc::FrameType::kList, req, &resp); });
  std::vector<FileInfo> out;
  if (st.ok()) {
    out.reserve(static_cast<size_t>(resp.entries_size()));
    for (const auto& e : resp.entries()) out.push_back(FromProto(e));
    *more = resp.more();
    listings_.AddPage(path, start_after, out, *more);
    return out;
  }
  if (!WorkerDown(st)) return st;
  auto direct = Direct(path);
  if (!direct.ok()) return st;
  SLUICE_ASSIGN_OR_RETURN(auto entries, direct->first->ListAll(direct->second, false));
  std::sort(entries.begin(), entries.end(),
            [](const ufs::ObjectInfo& a, const ufs::ObjectInfo& b) { return a.path < b.path; });
  const std::string& key = direct->second;
  for (const auto& e : entries) {
    std::string rel = key.empty() ? e.path : e.path.substr(std::min(e.path.size(), key.size() + 1));
    if (!start_after.empty() && rel <= start_after) continue;
    out.push_back(FileInfo{(path == "/" ? "" : path) + "/" + rel, e.is_dir, e.size, e.mtime_ns,
                           e.is_dir ? "" : e.Version()});
  }
  *more = false;
  return out;
}

Result<uint64_t> FileSystem::DirectRead(const std::string& path, uint64_t offset, uint64_t length,
                                        const ufs::ByteSink& sink) {
  SLUICE_ASSIGN_OR_RETURN(auto direct, Direct(path));
  ++fallback_reads_;
  return direct.first->Read(direct.second, offset, length, sink);
}

Result<uint64_t> FileSystem::Read(const std::string& path, uint64_t offset, uint64_t length, const ufs::ByteSink& sink,
                                  bool disk_only, uint64_t file_size) {
  uint64_t delivered = 0;
  ufs::ByteSink counting = [&](std::string_view chunk) {
    delivered += chunk.size();
    return sink(chunk);
  };
  // The worker answers at most kMaxReadRequestBytes per READ; a longer read is several,
  // until one comes back short (the end of the file).
  // In a cluster each span of a large file is read from its owners; a worker that goes away
  // mid-read leaves the rest to the next one.
  if (router_ && file_size == 0 && length > 0) {  // which span is whose depends on the size
    auto info = Stat(path);
    if (info.ok()) file_size = info->size;
  }
  const uint64_t span = router_ && file_size > router_->span() ? router_->span() : UINT64_MAX;
  Status st;
  bool at_end = false;
  const uint64_t end = offset + std::min(length, UINT64_MAX - offset);  // "to the end" may be a huge length
  while (st.ok() && !at_end && offset + delivered < end) {
    const uint64_t at = offset + delivered;
    const uint64_t piece_end = span == UINT64_MAX ? end : std::min(end, (at / span + 1) * span);
    const std::string key = span == UINT64_MAX ? path : cluster::PlacementKey(path, at, file_size, span);
    st = Routed(key, path, [&](const std::shared_ptr<rpc::RpcClient>& rpc) {
      while (offset + delivered < piece_end) {
        const uint64_t want = std::min(piece_end - (offset + delivered), rpc::kMaxReadRequestBytes);
        rpc::ReadRequest req;
        req.set_path(path);
        req.set_offset(offset + delivered);
        req.set_length(want);
        req.set_disk_only(disk_only);
        rpc::ReadResponse resp;
        SLUICE_RETURN_IF_ERROR(rpc->Call(rpc::FrameType::kRead, req, &resp, &counting));
        if (resp.bytes() < want) {
          at_end = true;
          break;
        }
      }
      return Status::Ok();
    }, /*spread=*/true);
  }
  if (st.ok()) return delivered;
  if (!WorkerDown(st)) return st;
  // The worker went away: continue from the under-store where the bytes stopped.
  auto rest = DirectRead(path, offset + delivered, length - delivered, sink);
  if (!rest.ok()) return rest.status().code() == StatusCode::kNotSupported ? st : rest.status();
  static LogLimiter limiter;  // an epoch without its worker would log a line per file
  uint64_t held_back = 0;
  if (limiter.Allow(&held_back)) {
    SLUICE_LOG_WARN("worker unreachable ({}); read {} directly from the under-store (and {} more reads so since the "
                    "last such line)",
                    st.message(), path, held_back);
  }
  return delivered + *rest;
}

Result<std::unique_ptr<File>> FileSystem::Open(const std::string& path) {
  // The version read against is the worker's, not an older one a listing page remembers.
  SLUICE_ASSIGN_OR_RETURN(FileInfo info, StatFromWorker(path));
  if (info.is_dir) return InvalidArgument(path + " is a directory");
  return std::unique_ptr<File>(new File(this, std::move(info)));
}

void FileSystem::Changed(const std::string& path) {
  listings_.Drop(path);
  auto normalized = NormalizePath(path);
  if (normalized.ok() && *normalized != "/") listings_.Drop(ParentPath(*normalized));
}

Result<std::unique_ptr<Writer>> FileSystem::OpenForWrite(const std::string& path, bool truncate) {
  rpc::WriteOpenRequest req;
  req.set_path(path);
  req.set_truncate(truncate);
  rpc::WriteResponse resp;
  std::shared_ptr<rpc::RpcClient> holder;
  SLUICE_RETURN_IF_ERROR(Routed(path, path, [&](const std::shared_ptr<rpc::RpcClient>& rpc) {
    holder = rpc;
    return rpc->Call(rpc::FrameType::kWriteOpen, req, &resp);
  }));
  // A truncating open changes the file even with nothing written after it.
  return std::unique_ptr<Writer>(new Writer(this, holder, path, resp.handle(), resp.size(), truncate));
}

Status FileSystem::Remove(const std::string& path, bool directory) {
  rpc::PathRequest req;
  req.set_path(path);
  req.set_directory(directory);
  rpc::PathResponse resp;
  Status st = Routed(path, path, [&](const auto& rpc) { return rpc->Call(rpc::FrameType::kRemove, req, &resp); });
  Changed(path);
  return st;
}

Status FileSystem::Mkdir(const std::string& path) {
  rpc::PathRequest req;
  req.set_path(path);
  rpc::PathResponse resp;
  Status st = Routed(path, path, [&](const auto& rpc) { return rpc->Call(rpc::FrameType::kMkdir, req, &resp); });
  Changed(path);
  return st;
}

Status FileSystem::Rename(const std::string& from, const std::string& to) {
  rpc::RenameRequest req;
  req.set_path(from);
  req.set_to(to);
  rpc::PathResponse resp;
  Status st = Routed(from, from, [&](const auto& rpc) { return rpc->Call(rpc::FrameType::kRename, req, &resp); });
  Changed(from);
  Changed(to);
  return st;
}

Status FileSystem::Flush(const std::string& path) {
  rpc::PathRequest req;
  req.set_path(path);
  return Broadcast([&](rpc::RpcClient& rpc) {
    rpc::PathResponse resp;
    return rpc.Call(rpc::FrameType::kFlush, req, &resp);
  });
}

Writer::~Writer() {
  if (closed_) return;
  rpc::WriteCloseRequest req;
  req.set_handle(handle_);
  req.set_release(true);
  rpc::WriteResponse resp;
  (void)rpc_->Call(rpc::FrameType::kWriteClose, req, &resp);
}

Status Writer::Write(uint64_t offset, std::string_view data) {
  // Requests of at most 8 MiB: the worker stages each as it comes.
  constexpr size_t kMaxWriteRequest = 8 << 20;
  do {
    const std::string_view piece = data.substr(0, kMaxWriteRequest);
    rpc::WriteRequest req;
    req.set_handle(handle_);
    req.set_offset(offset);
    rpc::WriteResponse resp;
    {
      std::lock_guard<std::mutex> lock(mu_);
      dirty_ = true;
    }
    SLUICE_RETURN_IF_ERROR(rpc_->Call(rpc::FrameType::kWrite, req, &resp, nullptr, piece));
    size_ = resp.size();
    offset += piece.size();
    data.remove_prefix(piece.size());
  } while (!data.empty());
  return Status::Ok();
}

Status Writer::Truncate(uint64_t size) {
  rpc::WriteRequest req;
  req.set_handle(handle_);
  req.set_offset(size);
  req.set_truncate(true);
  rpc::WriteResponse resp;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dirty_ = true;
  }
  SLUICE_RETURN_IF_ERROR(rpc_->Call(rpc::FrameType::kWrite, req, &resp));
  size_ = resp.size();
  return Status::Ok();
}

Result<FileInfo> Writer::Commit(bool durable) { return Finish(false, durable); }

Result<FileInfo> Writer::Close() {
  closed_ = true;
  return Finish(true, false);
}

Result<FileInfo> Writer::Finish(bool release, bool durable) {
  std::lock_guard<std::mutex> lock(mu_);
  rpc::WriteCloseRequest req;
  req.set_handle(handle_);
  req.set_commit(dirty_);
  req.set_release(release);
  req.set_durable(durable);
  rpc::WriteResponse resp;
  if (!dirty_) {  // nothing to upload: what is there stays
    if (release) SLUICE_RETURN_IF_ERROR(rpc_->Call(rpc::FrameType::kWriteClose, req, &resp));
    if (durable) SLUICE_RETURN_IF_ERROR(fs_->Flush(path_));
    if (committed_) return *committed_;
    return fs_->StatFromWorker(path_);
  }
  Status st = rpc_->Call(rpc::FrameType::kWriteClose, req, &resp);
  fs_->Changed(path_);
  if (!st.ok()) return st;
  dirty_ = false;
  committed_ = FromProto(resp.info());
  return *committed_;
}

Result<uint64_t> FileSystem::Sync(const std::string& path) {
  DropListed(path);
  rpc::PathRequest req;
  req.set_path(path);
  uint64_t files = 0;
  SLUICE_RETURN_IF_ERROR(Broadcast([&](rpc::RpcClient& rpc) {
    rpc::PathResponse resp;
    SLUICE_RETURN_IF_ERROR(rpc.Call(rpc::FrameType::kSync, req, &resp));
    files = std::max<uint64_t>(files, resp.files());  // each worker checks every file it knows
    return Status::Ok();
  }));
  return files;
}

// Free and CheckCached: every worker answers for the pages it holds; files and bytes are
// the tree's (the same from each), cached bytes add up over the workers.
Result<rpc::PathResponse> FileSystem::Free(const std::string& path) { return CacheQuery(rpc::FrameType::kFree, path); }

Result<rpc::PathResponse> FileSystem::CheckCached(const std::string& path) {
  return CacheQuery(rpc::FrameType::kCheckCached, path);
}

Result<rpc::PathResponse> FileSystem::CacheQuery(rpc::FrameType type, const std::string& path) {
  rpc::PathRequest req;
  req.set_path(path);
  rpc::PathResponse total;
  SLUICE_RETURN_IF_ERROR(Broadcast([&](rpc::RpcClient& rpc) {
    rpc::PathResponse resp;
    SLUICE_RETURN_IF_ERROR(rpc.Call(type, req, &resp));
    total.set_files(std::max(total.files(), resp.files()));
    total.set_bytes(std::max(total.bytes(), resp.bytes()));
    total.set_cached_bytes(total.cached_bytes() + resp.cached_bytes());
    return Status::Ok();
  }));
  return total;
}

Result<std::string> FileSystem::Load(const std::string& path, int replicas) {
  rpc::LoadRequest req;
  req.set_path(path);
  req.set_replicas(replicas);
  rpc::JobStatus resp;
  // The worker asked coordinates: it lists the tree and sends each owner its share.
  SLUICE_RETURN_IF_ERROR(Routed("load:" + path, path, [&](const auto& rpc) { return rpc->Call(rpc::FrameType::kLoad, req, &resp); }));
  return resp.job_id();
}

Result<rpc::JobStatus> FileSystem::JobStatus(const std::string& job_id) {
  rpc::JobRequest req;
  req.set_job_id(job_id);
  return JobCall(rpc::FrameType::kJobStatus, job_id);
}

// A job lives on the worker that coordinates it; its id names that worker after the '@'.
Result<rpc::JobStatus> FileSystem::JobCall(rpc::FrameType type, const std::string& job_id) {
  rpc::JobRequest req;
  req.set_job_id(job_id);
  rpc::JobStatus resp;
  const size_t at = job_id.find('@');
  if (!router_ || at == std::string::npos) {
    SLUICE_RETURN_IF_ERROR(rpc_->Call(type, req, &resp));
    return resp;
  }
  const std::string coordinator = job_id.substr(at + 1);
  Status st = Status(StatusCode::kUnavailable, "its coordinating worker " + coordinator + " is not in the cluster now");
  for (const auto& t : router_->All()) {
    if (t.id != coordinator) continue;
    st = t.rpc->Call(type, req, &resp);
    if (st.ok() || !WorkerDown(st)) return st.ok() ? Result<rpc::JobStatus>(resp) : Result<rpc::JobStatus>(st);
  }
  // The coordinator is gone: what it last recorded in the cluster store.
  auto record = options_.cluster->GetRecord("jobs", job_id);
  if (!record.ok() || !google::protobuf::util::JsonStringToMessage(*record, &resp).ok()) {
    return st.WithContext("job " + job_id);
  }
  if (type == rpc::FrameType::kJobCancel) return st.WithContext("cannot cancel job " + job_id);
  resp.add_failures("the coordinating worker " + coordinator + " is unreachable (" + st.message() +
                    "); this is the state it last recorded");
  return resp;
}

Result<rpc::JobStatus> FileSystem::CancelJob(const std::string& job_id) {
  return JobCall(rpc::FrameType::kJobCancel, job_id);
}

Result<rpc::ReportResponse> FileSystem::Report() {
  rpc::ReportRequest req;
  const uint64_t unreported = fallback_reads_.load() - fallback_reported_.load();
  req.set_fallback_reads(unreported);
  rpc::ReportResponse resp;
  SLUICE_RETURN_IF_ERROR(rpc_->Call(rpc::FrameType::kReport, req, &resp));
  fallback_reported_ += unreported;
  return resp;
}

std::vector<rpc::ReportResponse> FileSystem::ReportAll() {
  if (!router_) {
    auto one = Report();
    if (one.ok()) return {*one};
    rpc::ReportResponse failed;
    rpc::ToProto(one.status(), failed.mutable_status());
    return {failed};
  }
  std::vector<rpc::ReportResponse> out;
  for (const auto& t : router_->All()) {
    rpc::ReportRequest req;
    rpc::ReportResponse resp;
    Status st = t.rpc->Call(rpc::FrameType::kReport, req, &resp);
    if (!st.ok()) {
      resp.Clear();
      rpc::ToProto(st, resp.mutable_status());
    }
    resp.set_worker_id(t.id);
    resp.set_address(t.endpoint);
    out.push_back(std::move(resp));
  }
  return out;
}

ClientStats FileSystem::Stats() const {
  return ClientStats{fallback_reads_.load(), readahead_hits_.load(), readahead_bytes_.load(),
                     short_circuit_bytes_.load(), listings_.GetStats()};
}

bool FileSystem::ShortCircuitPossible() const {
  const std::string& h = options_.worker.host;
  return options_.short_circuit && !router_ && (h == "127.0.0.1" || h == "localhost" || h == "::1");
}

Result<std::vector<FileSystem::PageRef>> FileSystem::Locate(const FileInfo& info, uint64_t offset, uint64_t end,
                                                           uint64_t prefetch_from, uint64_t* page_size) {
  rpc::ReadRequest req;
  req.set_path(info.path);
  req.set_offset(offset);
  req.set_length(end - offset);
  if (prefetch_from < end) {
    req.set_prefetch(true);
    req.set_prefetch_from(prefetch_from);
  }
  rpc::LocateResponse where;
  SLUICE_RETURN_IF_ERROR(rpc_->Call(rpc::FrameType::kLocate, req, &where));
  if (where.info().version() != info.version) return Status(StatusCode::kStale, info.path + " changed");
  if (where.page_size() == 0) return Internal("worker reported no page size");
  *page_size = where.page_size();
  std::vector<PageRef> out;
  out.reserve(static_cast<size_t>(where.pages_size()));
  for (const auto& p : where.pages()) out.push_back(PageRef{p.index(), p.file(), p.length(), p.seed()});
  return out;
}

File::~File() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& c : chunks_) {
    if (c.data.valid()) c.data.wait();  // the fetch thread uses this File
    fs_->readahead_in_use_ -= c.reserved;
  }
}

Status File::FillOverRpc(uint64_t offset, uint64_t from, uint64_t to, char* out) {
  if (from >= to) return Status::Ok();
  size_t at = static_cast<size_t>(from - offset);
  const size_t limit = static_cast<size_t>(to - offset);
  // This reader finds cached pages in page files, so it needs none kept in worker memory.
  auto n = fs_->Read(info_.path, from, to - from, [&](std::string_view c) {
    if (at + c.size() > limit) return Corruption("worker sent more bytes than asked");
    std::memcpy(out + at, c.data(), c.size());
    at += c.size();
    return Status::Ok();
  }, /*disk_only=*/true, info_.size);
  if (n.ok() && *n != to - from) return Status(StatusCode::kStale, info_.path + " changed size");
  return n.status();
}

bool File::NoteRead(uint64_t offset, uint64_t end) {
  const uint64_t window = fs_->options_.readahead_per_handle;
  bool sequential = offset <= furthest_read_ + window && offset + window >= furthest_read_;
  next_sequential_ = end;
  furthest_read_ = sequential ? std::max(furthest_read_, end) : end;
  return sequential;
}

Result<size_t> File::ReadInProcess(uint64_t offset, size_t length, char* out, std::vector<ReadSpan>* spans) {
  const uint64_t end = offset + length;  // within the file (ReadAt clipped it)
  uint64_t prefetch_to = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (NoteRead(offset, end)) prefetch_to = std::min(info_.size, end + fs_->options_.readahead_per_handle);
  }
  size_t at = 0;
  auto n = fs_->options_.in_process_pages(info_.path, info_.version, offset, length, prefetch_to,
                                          [&](const SharedPage& page, size_t from, size_t len) {
    if (at + len > length) return Corruption("the worker handed over more bytes than asked");
    if (spans) {
      spans->push_back(ReadSpan{UniqueFd(), page, from, len});
    } else {
      std::memcpy(out + at, page->data() + from, len);
    }
    at += len;
    return Status::Ok();
  });
  if (!n.ok()) return n.status();
  if (at != length) return Status(StatusCode::kStale, info_.path + " changed size");
  return length;
}

Result<size_t> File::ReadShortCircuit(uint64_t offset, size_t length, char* out, std::vector<ReadSpan>* spans) {
  const uint64_t end = offset + length;  // within the file (ReadAt clipped it)
  const uint64_t window = fs_->options_.readahead_per_handle;
  std::vector<FileSystem::PageRef> refs;  // the located pages of this read, in order
  bool locate = false, sequential = false, contiguous = false;
  uint64_t ps = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ps = page_size_;
    if (ps && memo_index_ != UINT64_MAX && offset / ps == memo_index_ && (end - 1) / ps == memo_index_ &&
        end <= memo_index_ * ps + memo_.size()) {
      std::memcpy(out, memo_.data() + (offset - memo_index_ * ps), length);  // verified already
      next_sequential_ = end;
      furthest_read_ = std::max(furthest_read_, end);
      return length;
    }
    contiguous = offset == next_sequential_;
    sequential = NoteRead(offset, end);
    if (!sequential) {  // a jump: what was located ahead is of no use now
      located_.clear();
      located_until_ = 0;
    }
    locate = ps == 0 || (sequential && end + window / 2 > located_until_);
    for (uint64_t i = ps ? offset / ps : 0; ps && !locate && i <= (end - 1) / ps; ++i) {
      auto it = located_.find(i);
      if (it == located_.end()) locate = true;
      else refs.push_back(it->second);
    }
  }
  if (locate) {
    // Ask for the read and, for a sequential reader, the window ahead of it: the worker
    // fetches what is missing there, and the kernel is told to read the rest ahead.
    const uint64_t locate_end = sequential ? std::min(info_.size, end + window) : end;
    uint64_t page_size = 0;
    SLUICE_ASSIGN_OR_RETURN(auto pages, fs_->Locate(info_, offset, locate_end, end, &page_size));
    refs.clear();
    std::lock_guard<std::mutex> lock(mu_);
    ps = page_size_ = page_size;
    located_.erase(located_.begin(), located_.lower_bound(offset / ps));
    for (auto& p : pages) {
      if (p.index * ps < end) {
        refs.push_back(p);
      } else if (located_.emplace(p.index, p).second) {
        int fd = ::open(p.file.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
          ::posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
          ::close(fd);
        }
      }
    }
    if (sequential) located_until_ = std::max(located_until_, locate_end);
  }
  std::string memo;
  uint64_t memo_index = UINT64_MAX;
  uint64_t pos = offset;      // everything before pos is filled
  uint64_t spanned = offset;  // everything before spanned is in `spans`
  for (const auto& ref : refs) {
    const uint64_t page_start = ref.index * ps;
    const uint64_t from = std::max(pos, page_start), to = std::min(end, page_start + ref.length);
    if (from >= to) continue;
    Status st;
    UniqueFd fd;
    if (from == page_start && to == page_start + ref.length && spans) {
      auto opened = cache::OpenVerifiedPageFile(ref.file, ref.length, ref.seed);
      st = opened.status();
      if (opened.ok()) fd = std::move(*opened);
    } else if (from == page_start && to == page_start + ref.length) {
      st = cache::ReadPageFileInto(ref.file, ref.length, ref.seed, out + (from - offset));
    } else if (!contiguous) {  // a stretch of a page: its chunks alone
      st = cache::ReadPageRangeInto(ref.file, ref.length, ref.seed, from - page_start, to - from, out + (from - offset));
    } else {  // the whole page, kept for the reads after this one
      memo.resize(static_cast<size_t>(ref.length));
      st = cache::ReadPageFileInto(ref.file, ref.length, ref.seed, memo.data());
      if (st.ok()) {
        memo_index = ref.index;
        std::memcpy(out + (from - offset), memo.data() + (from - page_start), to - from);
      }
    }
    if (!st.ok()) {  // evicted or bad: RPC covers it below (and the worker drops a bad page)
      std::lock_guard<std::mutex> lock(mu_);
      located_.erase(ref.index);
      continue;
    }
    SLUICE_RETURN_IF_ERROR(FillOverRpc(offset, pos, from, out));
    if (fd.valid()) {
      if (from > spanned) spans->push_back(ReadSpan{UniqueFd(), nullptr, 0, from - spanned});
      spans->push_back(ReadSpan{std::move(fd), nullptr, cache::PageHeaderBytes(ref.length), to - from});
      spanned = to;
    }
    fs_->short_circuit_bytes_ += to - from;
    pos = to;
  }
  SLUICE_RETURN_IF_ERROR(FillOverRpc(offset, pos, end, out));
  if (spans && !spans->empty() && end > spanned) spans->push_back(ReadSpan{UniqueFd(), nullptr, 0, end - spanned});
  if (memo_index != UINT64_MAX) {
    std::lock_guard<std::mutex> lock(mu_);
    memo_ = std::move(memo);
    memo_index_ = memo_index;
  }
  return length;
}

Result<std::string> File::Fetch(uint64_t offset, uint64_t length) {
  std::string out;
  out.reserve(static_cast<size_t>(length));
  auto n = fs_->Read(info_.path, offset, length, [&out](std::string_view c) {
    out.append(c);
    return Status::Ok();
  }, false, info_.size);
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

Result<size_t> File::ReadAt(uint64_t offset, size_t length, char* out, std::vector<ReadSpan>* spans,
                            bool page_files) {
  if (offset >= info_.size || length == 0) return size_t{0};
  length = static_cast<size_t>(std::min<uint64_t>(length, info_.size - offset));
  if (fs_->options_.in_process_pages) {
    auto n = ReadInProcess(offset, length, out, spans);
    if (n.ok()) return n;
    if (spans) spans->clear();  // changed or failed: the paths below decide what to answer
  }
  bool short_circuit = fs_->ShortCircuitPossible();
  if (short_circuit) {
    // A small read at a random place is cheaper over RPC: the worker answers it from its
    // memory tier when it can, where a page file costs a LOCATE, an open and a verify.
    std::lock_guard<std::mutex> lock(mu_);
    // A file of one page is one RPC either way; skip the LOCATE round trip.
    const uint64_t ps = page_size_ ? page_size_ : (1 << 20);
    short_circuit = info_.size > ps && (offset == next_sequential_ || length >= ps);
  }
  if (short_circuit) {
    auto n = ReadShortCircuit(offset, length, out, page_files ? spans : nullptr);
    if (n.ok()) return n;
    if (spans) spans->clear();
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
