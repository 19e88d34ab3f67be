// Cluster loads: a load job's coordinator sends each piece of a file to the workers that
// placement names for it (LOAD_RANGE); the first fetches it from the under-store, the other
// replicas copy it from the first over RPC, so a page is read from the store once per cluster.
#include <algorithm>

#include "cache/page_buffers.h"
#include "cluster/placement.h"
#include "ufs/retry.h"
#include "common/logging.h"
#include "worker/mount_state.h"
#include "worker/worker.h"

namespace sluice::worker {

Result<rpc::PathResponse> Worker::LoadRange(const rpc::LoadRangeRequest& request) {
  SLUICE_ASSIGN_OR_RETURN(auto resolved, Resolve(request.path()));
  auto& [state, key] = resolved;
  ufs::ObjectInfo info;
  info.path = key;
  info.size = request.size();
  info.mtime_ns = request.mtime_ns();
  info.etag = request.etag();
  info.identity = request.identity();
  state->meta->AddListed({info});  // a reader's stat here needs no HEAD
  const cache::CachedFile file = state->FileOf(info);
  const uint64_t offset = std::min(request.offset(), info.size);
  const uint64_t length = std::min(request.length(), info.size - offset);
  rpc::PathResponse resp;
  if (request.from_peer().empty()) {
    const uint64_t failures_before = ufs::RetryableFailuresOnThisThread();
    SLUICE_ASSIGN_OR_RETURN(uint64_t fetched, state->reader->Load(file, offset, length));
    resp.set_bytes(fetched);
    resp.set_retryable_failures(ufs::RetryableFailuresOnThisThread() - failures_before);
  } else {
    SLUICE_RETURN_IF_ERROR(CopyFromPeer(state, file, offset, length, request.from_peer()));
  }
  resp.set_cached_bytes(state->reader->CachedBytes(file, offset, length));
  return resp;
}

Status Worker::CopyFromPeer(const std::shared_ptr<MountState>& state, const cache::CachedFile& file, uint64_t offset,
                            uint64_t length, const std::string& peer) {
  std::shared_ptr<rpc::RpcClient> rpc;
  for (const auto& t : router_ ? router_->All() : std::vector<client::Router::Target>{}) {
    if (t.endpoint == peer) rpc = t.rpc;
  }
  if (!rpc) return Status(StatusCode::kUnavailable, "worker " + peer + " is not in the cluster", true);
  const uint64_t ps = pages_->page_size();
  uint64_t index = offset / ps;  // the page being filled
  offset = index * ps;           // whole pages
  const uint64_t end = std::min(file.size, offset + length);
  std::unique_ptr<cache::PageBuffer> page;
  auto flush = [&] {
    pages_->Put(cache::PageKey{file.id, index}, cache::PageData(std::move(page)));
    ++index;
  };
  ufs::ByteSink sink = [&](std::string_view chunk) {
    while (!chunk.empty()) {
      const uint64_t page_len = std::min(ps, file.size - index * ps);
      if (!page) page = cache::PageBuffers::Global().Take(static_cast<size_t>(page_len));
      const size_t n = std::min<size_t>(chunk.size(), static_cast<size_t>(page_len) - page->size());
      page->Append(chunk.substr(0, n));
      chunk.remove_prefix(n);
      if (page->size() == page_len) flush();
    }
    return Status::Ok();
  };
  for (uint64_t at = offset; at < end;) {
    rpc::ReadRequest req;
    req.set_path(state->NsPath(file.path));
    req.set_offset(at);
    req.set_length(std::min(end - at, rpc::kMaxReadRequestBytes));
    rpc::ReadResponse resp;
    SLUICE_RETURN_IF_ERROR(rpc->Call(rpc::FrameType::kRead, req, &resp, &sink));
    if (resp.bytes() == 0) return Status(StatusCode::kStale, state->NsPath(file.path) + " is shorter at " + peer);
    at += resp.bytes();
  }
  return Status::Ok();
}

Result<rpc::PathResponse> Worker::LoadRangeOn(const client::Router::Target& target,
                                             const rpc::LoadRangeRequest& request) {
  if (target.id == id_) return LoadRange(request);  // its failures count on this thread already
  rpc::PathResponse resp;
  SLUICE_RETURN_IF_ERROR(target.rpc->Call(rpc::FrameType::kLoadRange, request, &resp));
  ufs::NoteRetryableFailures(resp.retryable_failures());  // the job's limit backs off on them
  return resp;
}

Result<uint64_t> Worker::LoadOnOwners(const std::shared_ptr<MountState>& state, const ufs::ObjectInfo& info,
                                      uint64_t offset, uint64_t length, int replicas, std::atomic<uint64_t>* cached) {
  const std::string path = state->NsPath(info.path);
  const std::string key = cluster::PlacementKey(path, offset, info.size, router_->span());
  replicas = std::max(1, replicas);
  rpc::LoadRangeRequest req;
  req.set_path(path);
  req.set_size(info.size);
  req.set_mtime_ns(info.mtime_ns);
  req.set_etag(info.etag);
  req.set_identity(info.identity);
  req.set_offset(offset);
  req.set_length(length);
  // The first candidate that answers fetches from the under-store; the next ones copy from it
  // until there are `replicas` copies. Candidates: the owners, then the next worker by rank,
  // which stands in for an owner that is dead or cut off.
  const auto candidates = router_->Route(key, replicas);
  Status last = Status(StatusCode::kUnavailable, "no worker is registered", true);
  std::string primary;
  uint64_t fetched = 0;
  int copies = 0;
  for (const auto& t : candidates) {
    if (copies == replicas) break;
    if (!primary.empty()) req.set_from_peer(primary);
    auto done = LoadRangeOn(t, req);
    if (!done.ok()) {
      last = done.status().WithContext(t.id);
      if (!client::Router::Unreachable(done.status())) return last;
      router_->MarkDown(t.id);
      continue;
    }
    if (primary.empty()) {
      primary = t.endpoint;
      fetched = done->bytes();
      *cached += done->cached_bytes();
    }
    ++copies;
  }
  if (primary.empty()) return last;
  return fetched;
}

}  // namespace sluice::worker
