// Worker: mount states, namespace operations, load jobs and reports.
#include "worker/worker.h"

#include <google/protobuf/util/json_util.h>

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

#include "cache/page_buffers.h"
#include "common/logging.h"
#include "common/path.h"
#include "common/units.h"
#include "ufs/http_client.h"
#include "worker/http_endpoint.h"
#include "worker/jobs.h"
#include "worker/mount_state.h"
#include "worker/prefetcher.h"

namespace sluice::worker {

namespace {

// FNV-1a of `s` in hex: the same in every build, for names on disk.
std::string StableHash(const std::string& s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

std::string Fingerprint(const cluster::MountPoint& m) {
  std::string f = m.Describe();
  for (const auto& [k, v] : m.options.ufs_options) f += ";" + k + "=" + v;
  return f;
}

}  // namespace

Worker::Worker(Config config, cluster::ClusterStore* store, std::string id)
    : config_(std::move(config)), cluster_(store), id_(std::move(id)) {}

Worker::~Worker() {
  stop_prefill_ = true;
  if (prefill_.joinable()) prefill_.join();
  http_.reset();
  rpc_.reset();
  {
    std::lock_guard<std::mutex> lock(writers_mu_);
    writers_.clear();  // handles never closed: their uploads are abandoned
  }
  {
    std::lock_guard<std::mutex> lock(uploads_mu_);
    stop_uploads_ = true;  // what is still queued stays in the journal for the next start
  }
  uploads_cv_.notify_all();
  for (auto& t : uploaders_) t.join();
  prefetcher_.reset();
  jobs_.reset();
}

Result<std::unique_ptr<Worker>> Worker::Start(const Config& config, cluster::ClusterStore* store, std::string id) {
  // Small pages come from malloc, allocated and freed by many threads. glibc would raise its
  // mmap threshold after the first frees and then keep freed pages in fragmented arenas, so
  // RSS would drift far above the memory quota; a fixed threshold returns them to the kernel.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  mallopt(M_ARENA_MAX, 4);
  std::unique_ptr<Worker> w(new Worker(config, store, std::move(id)));
  cache::PageStoreOptions po;
  po.page_size = config.worker.page_size;
  po.memory_quota = config.worker.memory_quota;
  po.disks = config.worker.disks;
  po.policy = config.worker.cache_policy;
  // Page buffers the memory tier lets go are kept for its next pages; the tier's pages, those
  // on their way to disk and the idle buffers together stay within the quota plus that queue.
  cache::PageBuffers::Global().set_max_pooled_bytes(po.memory_quota + po.max_pending_write_bytes);
  SLUICE_ASSIGN_OR_RETURN(w->pages_, cache::PageStore::Open(po));
  // The memory tier's buffers are mapped and populated in the background, at the lowest CPU
  // priority, rather than faulted in 4 KiB at a time on the first cold reads: those took
  // 23-24 jiffies of CPU per 256 MiB instead of 11-14 on 2 cores. The quota is reserved, as a
  // RAM-disk tier would be.
  w->prefill_ = std::thread([w = w.get(), page_size = po.page_size, quota = po.memory_quota] {
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);  // this thread only, on Linux
    cache::PageBuffers::Global().Prefill(page_size, quota, w->stop_prefill_);
  });
  JobOptions jo;
  if (config.cluster.Distributed()) {
    client::RouterOptions rp;
    rp.secret = config.cluster.secret;
    rp.span = config.cluster.placement_span;
    w->router_ = std::make_unique<client::Router>(store, rp);
    jo.id_suffix = "@" + w->id_;
    jo.piece_bytes = std::min(jo.piece_bytes, rp.span);  // a piece never straddles two owners
    jo.on_update = [store](const rpc::JobStatus& status) {
      std::string text;
      (void)google::protobuf::util::MessageToJsonString(status, &text);
      Status st = store->PutRecord("jobs", status.job_id(), text);
      if (!st.ok()) SLUICE_LOG_WARN("cannot record {} in the cluster store: {}", status.job_id(), st.message());
    };
  }
  w->jobs_ = std::make_unique<JobManager>(jo);
  // Eight 8 MiB read-ahead GETs in flight keep a loopback S3 server busy while a sequential
  // reader consumes the pages before them (four left it idle a seventh of a cold scan).
  w->prefetcher_ = std::make_unique<Prefetcher>(8, 64);
  // Write-back files a previous run left in the journal are shown and go up again.
  w->RecoverJournal();
  for (int i = 0; i < 2; ++i) w->uploaders_.emplace_back([raw = w.get()] { raw->UploadLoop(); });

  rpc::RpcServerOptions ro;
  ro.host = config.worker.host;
  ro.port = static_cast<int>(config.worker.rpc_port);
  ro.secret = config.cluster.secret;
  ro.worker_id = w->id_;
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  ro.handler_threads = static_cast<int>(config.rpc.handler_threads);
  ro.handshake_timeout = duration_cast<milliseconds>(config.rpc.handshake_timeout);
  ro.idle_timeout = duration_cast<milliseconds>(config.rpc.idle_timeout);
  ro.io_timeout = duration_cast<milliseconds>(config.rpc.io_timeout);
  ro.max_connections = static_cast<size_t>(config.rpc.max_connections);
  ro.max_buffered_bytes = config.rpc.max_buffered_bytes;
  Worker* raw = w.get();
  ro.answer_inline = [raw](const rpc::Request& req, rpc::Responder& out) { return raw->AnswerInline(req, out); };
  SLUICE_ASSIGN_OR_RETURN(w->rpc_, rpc::RpcServer::Start(ro, [raw](const rpc::Request& req, rpc::Responder& out) {
                            raw->HandleRpc(req, out);
                          }));
  HttpEndpointOptions ho;
  ho.host = config.worker.host;
  ho.port = static_cast<int>(config.worker.http_port);
  ho.io_timeout = ro.io_timeout;
  ho.max_connections = static_cast<size_t>(config.rpc.max_http_connections);
  SLUICE_ASSIGN_OR_RETURN(w->http_, HttpEndpoint::Start(ho, [raw](const std::string& target, std::string* type) {
                            return raw->HttpGet(target, type);
                          }));
  SLUICE_LOG_INFO("worker {} serving RPC on {}:{}, HTTP on {}:{}", w->id_, config.worker.host, w->rpc_port(),
                  config.worker.host, w->http_port());
  return w;
}

int Worker::rpc_port() const { return rpc_->port(); }
int Worker::http_port() const { return http_->port(); }

cluster::WorkerInfo Worker::Info() const {
  cluster::WorkerInfo info;
  info.id = id_;
  info.host = config_.worker.host;
  info.rpc_port = rpc_port();
  info.http_port = http_port();
  info.pid = static_cast<int64_t>(::getpid());
  // The memory tier holds pages of the disk tiers (when there are any), not others.
  for (const auto& d : config_.worker.disks) info.capacity += d.quota;
  if (info.capacity == 0) info.capacity = config_.worker.memory_quota;
  info.zone = config_.worker.zone;
  return info;
}

Result<std::shared_ptr<Worker::MountState>> Worker::StateFor(const cluster::MountPoint& mount) {
  auto state = std::make_shared<MountState>();
  state->mount = mount;
  state->fingerprint = Fingerprint(mount);
  auto store = ufs::OpenUnderStore(mount.uri, ufs::UnderStoreOptions::FromConfig(config_.ufs, mount.options.ufs_options));
  if (!store.ok()) return store.status().WithContext("mount " + mount.path);
  state->ufs = std::make_unique<ufs::CountingStore>(std::move(store).value());
  state->view = std::make_unique<PendingStore>(state->ufs.get());
  cache::PageStore* pages = pages_.get();
  MountState* raw = state.get();
  // A stat miss is one round trip that also brings the file's first page (UnderStore::
  // StatWithHead): opening a small file on a far store then costs one request, not HEAD + GET.
  auto stat_with_first_page = [pages, raw](const std::string& key) -> Result<ufs::ObjectInfo> {
    const uint64_t ps = pages->page_size();
    std::unique_ptr<cache::PageBuffer> page;
    auto take = [&](uint64_t size) {
      if (!page) page = cache::PageBuffers::Global().Take(static_cast<size_t>(std::clamp<uint64_t>(size, 1, ps)));
    };
    // Received straight into a page of the body's size (plain http), else copied into one.
    ufs::ReceiveTarget in_place([&](uint64_t body_left) -> std::pair<char*, size_t> {
      take(body_left);
      return {page->data() + page->size(), page->capacity() - page->size()};
    });
    auto info = raw->view->StatWithHead(key, ps, [&](std::string_view chunk) {
      take(ps);
      page->Append(chunk.substr(0, std::min(chunk.size(), page->capacity() - page->size())));
      return Status::Ok();
    });
    if (info.ok() && !info->is_dir && page && info->size > 0 && page->size() == std::min(ps, info->size)) {
      cache::PageData data = std::move(page);
      // A small file's page copied into a whole-page buffer (https) would hold it all.
      if (data->capacity() > 2 * data->size()) data = cache::PageBuffers::Global().Copy(data->view());
      pages->Put(cache::PageKey{raw->IdOf(*info), 0}, std::move(data));
    }
    return info;
  };
  cache::MetadataCacheOptions meta_options;
  meta_options.ttl = mount.options.metadata_ttl;
  meta_options.max_bytes = config_.worker.metadata_memory;
  if (!config_.worker.disks.empty()) {
    // One index per mount and set of options (a changed mount starts a new one).
    meta_options.index_dir = config_.worker.disks[0].dir + "/metadata/" + StableHash(state->fingerprint);
  }
  state->meta = std::make_unique<cache::MetadataCache>(
      state->view.get(), meta_options, [pages, raw](const ufs::ObjectInfo& old) { pages->EraseFile(raw->IdOf(old)); },
      stat_with_first_page);
  cache::MissPathOptions mo;
  mo.ufs_max_concurrency = mount.options.ufs_max_concurrency;
  mo.ufs_rate_limit = mount.options.ufs_rate_limit;
  if (router_) {  // the mount's limits hold for the whole cluster: each worker takes its share
    const int members = std::max<int>(1, static_cast<int>(router_->All().size()));
    mo.ufs_max_concurrency = std::max(1, mo.ufs_max_concurrency / members);
    mo.ufs_rate_limit /= static_cast<uint64_t>(members);
  }
  state->reader = std::make_unique<cache::CachedReader>(pages_.get(), state->view.get(), mo);
  return state;
}

Result<std::pair<std::shared_ptr<Worker::MountState>, std::string>> Worker::Resolve(const std::string& path) {
  std::string version = cluster_->MountsVersion();  // a stat(2): not under the lock every request takes
  std::lock_guard<std::mutex> lock(mu_);
  if (version != mounts_version_) {
    SLUICE_ASSIGN_OR_RETURN(table_, cluster_->LoadMounts());
    std::map<std::string, std::shared_ptr<MountState>> next;
    for (const auto& m : table_.mounts()) {
      auto old = states_.find(m.path);
      if (old != states_.end() && old->second->fingerprint == Fingerprint(m)) {
        next[m.path] = old->second;
        continue;
      }
      auto state = StateFor(m);
      if (!state.ok()) {
        SLUICE_LOG_ERROR("{}", state.status().message());
        continue;
      }
      SLUICE_LOG_INFO("mounted {}", m.Describe());
      next[m.path] = std::move(state).value();
    }
    states_ = std::move(next);
    mounts_version_ = version;
  }
  SLUICE_ASSIGN_OR_RETURN(cluster::Resolved r, table_.Resolve(path));
  auto it = states_.find(r.mount->path);
  if (it == states_.end()) {
    return Status(StatusCode::kUnavailable, "mount " + r.mount->path + " (" + r.mount->uri +
                                                ") could not be opened; see the worker log");
  }
  return std::make_pair(it->second, r.key);
}

std::optional<std::vector<std::string>> Worker::MountsBelow(const std::string& path) {
  auto normalized = NormalizePath(path);
  if (!normalized.ok()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> names;
  for (const auto& m : table_.mounts()) {
    if (m.path == *normalized || !PathIsUnder(m.path, *normalized)) continue;
    std::string rest = m.path.substr(*normalized == "/" ? 1 : normalized->size() + 1);
    std::string name = rest.substr(0, rest.find('/'));
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  if (names.empty()) return std::nullopt;
  std::sort(names.begin(), names.end());
  return names;
}

// "/big.bin/" names a directory; a file found under that name is not one (ENOTDIR).
static Status FileNamedAsDirectory(const std::string& path, const ufs::ObjectInfo& info) {
  if (info.is_dir || path.size() < 2 || path.back() != '/') return Status::Ok();
  return NotFound(path + ": " + path.substr(0, path.size() - 1) + " is a file, not a directory");
}

Result<Entry> Worker::Stat(const std::string& path) {
  auto found = Resolve(path);
  if (!found.ok() && found.status().code() == StatusCode::kNotFound && MountsBelow(path)) {
    return Entry{*NormalizePath(path), true, 0, 0, ""};  // a directory that only holds mount points
  }
  SLUICE_ASSIGN_OR_RETURN(auto resolved, std::move(found));
  auto& [state, key] = resolved;
  auto info = state->meta->Stat(key);
  if (!info.ok() && key.empty() && info.status().code() == StatusCode::kNotFound) {
    return Entry{state->mount.path, true, 0, 0, ""};  // an empty prefix: the mount root is still there
  }
  if (!info.ok()) return info.status().WithContext(state->Name());
  SLUICE_RETURN_IF_ERROR(FileNamedAsDirectory(path, *info));
  return state->ToEntry(*info);
}

std::optional<Result<Entry>> Worker::TryStat(const std::string& path) {
  auto found = Resolve(path);
  if (!found.ok()) return std::nullopt;  // Stat() says why, or finds mount points below
  auto& [state, key] = *found;
  auto info = state->meta->Peek(key);
  if (!info) return std::nullopt;
  if (!info->ok()) return Result<Entry>(info->status().WithContext(state->Name()));
  if (Status st = FileNamedAsDirectory(path, **info); !st.ok()) return Result<Entry>(st);
  return Result<Entry>(state->ToEntry(**info));
}

Result<std::vector<Entry>> Worker::List(const std::string& path, const std::string& start_after, size_t limit,
                                        bool* more) {
  bool more_below = false;
  SLUICE_ASSIGN_OR_RETURN(auto entries, ListMount(path, start_after, limit, &more_below));
  if (more) *more = more_below;
  // Mount points nested below the path show in its listing, as directories, each in the page
  // its name falls in.
  if (auto names = MountsBelow(path)) {
    const std::string dir = *NormalizePath(path);
    const std::string last = more_below && !entries.empty() ? BaseName(entries.back().path) : "";
    for (const auto& n : *names) {
      if (n <= start_after && !start_after.empty()) continue;
      if (more_below && n > last) continue;  // a later page's
      std::string child = JoinPath(dir, n);
      bool listed = std::any_of(entries.begin(), entries.end(), [&](const Entry& e) { return e.path == child; });
      if (!listed) entries.push_back(Entry{child, true, 0, 0, ""});
    }
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.path < b.path; });
  }
  return entries;
}

Result<std::vector<Entry>> Worker::ListMount(const std::string& path, const std::string& start_after, size_t limit,
                                             bool* more) {
  auto found = Resolve(path);
  if (!found.ok() && found.status().code() == StatusCode::kNotFound && MountsBelow(path)) {
    return std::vector<Entry>{};  // only mount points lie below: List adds them
  }
  SLUICE_ASSIGN_OR_RETURN(auto resolved, std::move(found));
  auto& [state, key] = resolved;
  auto page = state->meta->ListPage(key, start_after, limit == 0 ? SIZE_MAX : limit);
  if (!page.ok() && key.empty() && page.status().code() == StatusCode::kNotFound) {
    return std::vector<Entry>{};  // a mount's root is a directory, empty when its prefix is
  }
  if (!page.ok()) return page.status().WithContext(state->Name());
  *more = page->more;
  std::vector<Entry> out;
  out.reserve(page->entries.size());
  for (const auto& info : page->entries) out.push_back(state->ToEntry(info));
  return out;
}

Result<Worker::ResolvedFile> Worker::ResolveFile(const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(auto resolved, Resolve(path));
  auto& [state, key] = resolved;
  auto info = state->meta->Stat(key);
  if (!info.ok()) return info.status().WithContext(state->Name());
  if (info->is_dir) return InvalidArgument(path + " is a directory");
  SLUICE_RETURN_IF_ERROR(FileNamedAsDirectory(path, *info));
  return ResolvedFile{state, key, *info};
}

Result<uint64_t> Worker::Read(const std::string& path, uint64_t offset, uint64_t length, const ufs::ByteSink& sink,
                             bool disk_only) {
  SLUICE_ASSIGN_OR_RETURN(ResolvedFile file, ResolveFile(path));
  const auto& state = file.state;
  uint64_t delivered = 0;
  ufs::ByteSink counted = [&](std::string_view chunk) {
    delivered += chunk.size();
    return sink(chunk);
  };
  auto n = state->reader->Read(state->FileOf(file.info), offset, length, counted, !disk_only);
  if (!n.ok() && n.status().code() == StatusCode::kStale) {
    // The file changed under a cached stat: learn the new version (its old pages are freed).
    // Bytes already sent cannot be taken back, so the read is redone only if none went out.
    (void)Sync(path);
    if (delivered == 0) {
      auto fresh = state->meta->Stat(file.key);
      if (!fresh.ok()) return fresh.status().WithContext(state->Name());
      n = state->reader->Read(state->FileOf(*fresh), offset, length, counted, !disk_only);
    }
  }
  if (!n.ok()) return n.status().WithContext("reading " + path + " from " + state->Name());
  bytes_served_ += *n;
  return n;
}

Result<rpc::LocateResponse> Worker::Locate(const std::string& path, uint64_t offset, uint64_t length, bool prefetch,
                                           uint64_t prefetch_from) {
  SLUICE_ASSIGN_OR_RETURN(ResolvedFile file, ResolveFile(path));
  const auto& state = file.state;
  const ufs::ObjectInfo& info = file.info;
  rpc::LocateResponse out;
  Entry e = state->ToEntry(info);
  out.mutable_info()->set_path(e.path);
  out.mutable_info()->set_size(e.size);
  out.mutable_info()->set_mtime_ns(e.mtime_ns);
  out.mutable_info()->set_version(e.version);
  const uint64_t ps = pages_->page_size();
  out.set_page_size(ps);
  if (offset >= info.size || length == 0) return out;
  const uint64_t last = (std::min(info.size, offset + std::min(length, info.size - offset)) - 1) / ps;
  const cache::FileId id = state->IdOf(info);
  uint64_t missing_from = UINT64_MAX;  // first missing page at or after prefetch_from
  for (uint64_t i = offset / ps; i <= last; ++i) {
    auto loc = pages_->Locate(cache::PageKey{id, i});
    if (!loc && i * ps >= prefetch_from && missing_from == UINT64_MAX) missing_from = i;
    if (loc) {
      auto* ref = out.add_pages();
      ref->set_index(i);
      ref->set_file(loc->path);
      ref->set_length(loc->length);
      ref->set_seed(loc->seed);
      ++located_pages_;
      located_bytes_ += loc->length;
    }
  }
  // Short-circuit readers take cached pages from page files: read-ahead for them skips memory.
  if (prefetch && missing_from != UINT64_MAX) QueuePrefetch(state, info, missing_from, last, /*memory=*/false);
  return out;
}

void Worker::QueuePrefetch(const std::shared_ptr<MountState>& state, const ufs::ObjectInfo& info, uint64_t first,
                           uint64_t last, bool memory) {
  // Whole groups of 8 pages (the groups readers claim too), so the under-store sees a few
  // large ranged GETs in parallel: a window sliding one page per read queues nothing until it
  // covers a new group. The file's last group may be short.
  constexpr uint64_t kGroup = 8;
  const uint64_t ps = pages_->page_size();
  const uint64_t last_page = info.size == 0 ? 0 : (info.size - 1) / ps;
  last = std::min(last, last_page);
  if (last != last_page) {
    if (last + 1 < kGroup) return;
    last = (last + 1) / kGroup * kGroup - 1;
  }
  first = first / kGroup * kGroup;
  const cache::FileId id = state->IdOf(info);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (prefetched_until_.size() > 4096) prefetched_until_.clear();
    uint64_t& until = prefetched_until_[{id.lo, id.hi}];
    if (until > first && until <= last + 1) first = until;
    if (first > last) return;
    until = last + 1;
  }
  const cache::CachedFile file = state->FileOf(info);
  const uint64_t chunk = kGroup * ps, end = std::min(info.size, (last + 1) * ps);
  for (uint64_t from = first * ps; from < end; from += chunk) {
    prefetcher_->Submit([state = state, file, from, len = std::min(chunk, end - from), memory] {
      (void)state->reader->Prefetch(file, from, len, memory);
    });
  }
}

Result<uint64_t> Worker::ReadPages(const std::string& path, const std::string& version, uint64_t offset,
                                   uint64_t length, uint64_t prefetch_to, const cache::CachedReader::PageSink& sink) {
  SLUICE_ASSIGN_OR_RETURN(ResolvedFile file, ResolveFile(path));
  const auto& state = file.state;
  const ufs::ObjectInfo& info = file.info;
  if (info.Version() != version) return Status(StatusCode::kStale, path + " changed");
  const uint64_t ps = pages_->page_size();
  const uint64_t end = std::min(info.size, offset + length);
  if (prefetch_to > end) {
    QueuePrefetch(state, info, end / ps, (std::min(prefetch_to, info.size) - 1) / ps, /*memory=*/true);
  }
  // A sequential reader's miss fetches the next 7 pages in the same GET: the kernel asks for
  // the pages one by one (all at once), and 8 MiB GETs cost the under-store far less.
  auto n = state->reader->ReadPages(state->FileOf(info), offset, length, sink, /*memory=*/true,
                                    prefetch_to > end ? 7 : 0);
  if (!n.ok()) return n.status().WithContext("reading " + path + " from " + state->Name());
  bytes_served_ += *n;
  return n;
}

Result<uint64_t> Worker::Sync(const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(auto resolved, Resolve(path));
  auto& [state, key] = resolved;
  auto dropped = state->meta->Invalidate(key);
  uint64_t changed = 0;
  for (const auto& old : dropped.files) {
    auto fresh = state->view->Stat(old.path);
    if (!fresh.ok() || fresh->Version() != old.Version()) {
      pages_->EraseFile(state->IdOf(old));
      ++changed;
    }
  }
  return changed;
}

void Worker::set_sync_listener(std::function<void(const std::string& path)> listener) {
  std::lock_guard<std::mutex> lock(mu_);
  sync_listener_ = std::move(listener);
}

void Worker::set_metrics_source(std::function<std::string()> source) {
  std::lock_guard<std::mutex> lock(mu_);
  metrics_source_ = std::move(source);
}

Result<std::vector<std::pair<std::shared_ptr<Worker::MountState>, ufs::ObjectInfo>>> Worker::FilesBelow(
    const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(auto resolved, Resolve(path));
  auto& [state, key] = resolved;
  auto info = state->meta->Stat(key);
  if (!info.ok()) return info.status().WithContext(state->Name());
  std::vector<std::pair<std::shared_ptr<MountState>, ufs::ObjectInfo>> out;
  if (!info->is_dir) {
    out.emplace_back(state, *info);
    return out;
  }
  auto all = state->view->ListAll(key, true);
  if (!all.ok()) return all.status().WithContext(state->Name());
  // What was just listed answers lookups of these files (a reader beside a preload) and
  // frees the pages of those that changed.
  state->meta->AddListed(*all);
  for (auto& f : *all) out.emplace_back(state, std::move(f));
  return out;
}

Result<CacheUsage> Worker::Free(const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(auto files, FilesBelow(path));
  CacheUsage usage;
  for (const auto& [state, info] : files) {
    usage.cached_bytes += state->reader->CachedBytes(state->FileOf(info));
    pages_->EraseFile(state->IdOf(info));
    ++usage.files;
    usage.bytes += info.size;
  }
  return usage;
}

Result<CacheUsage> Worker::CheckCached(const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(auto files, FilesBelow(path));
  CacheUsage usage;
  for (const auto& [state, info] : files) {
    ++usage.files;
    usage.bytes += info.size;
    usage.cached_bytes += state->reader->CachedBytes(state->FileOf(info));
  }
  return usage;
}

Result<std::string> Worker::StartLoad(const std::string& path, int replicas) {
  if (path.empty()) return InvalidArgument("a load needs a path (\"/\" loads every mount)");
  SLUICE_ASSIGN_OR_RETURN(std::string normalized, NormalizePath(path));
  SLUICE_RETURN_IF_ERROR(Resolve(normalized).status());  // fail now on a path outside every mount
  return jobs_->Start(normalized, [this, normalized, replicas]() -> Result<std::vector<LoadItem>> {
    SLUICE_ASSIGN_OR_RETURN(auto files, FilesBelow(normalized));
    std::vector<LoadItem> items;
    for (auto& [state, info] : files) {
      if (router_) {  // each piece on its owners
        auto cached = std::make_shared<std::atomic<uint64_t>>(0);
        items.push_back(LoadItem{state->NsPath(info.path), info.size,
                                 [this, state = state, info = info, cached, replicas](uint64_t offset, uint64_t length) {
                                   const int copies = replicas > 0 ? replicas : state->mount.options.replicas;
                                   return LoadOnOwners(state, info, offset, length, copies, cached.get());
                                 },
                                 [cached] { return cached->load(); }, /*remote=*/true});
        continue;
      }
      cache::CachedFile file = state->FileOf(info);
      items.push_back(LoadItem{state->NsPath(info.path), info.size,
                               // Its pages reach the disk tier like any read's: once reads go
                               // quiet, or as memory evicts them. Writing them now would take
                               // CPU from the training job a preload runs beside.
                               [state = state, file](uint64_t offset, uint64_t length) {
                                 // A reader's lookup of this file may be fetching its first
                                 // page right now: wait for it rather than fetch it twice.
                                 if (offset == 0) (void)state->meta->Stat(file.path);
                                 return state->reader->Load(file, offset, length);
                               },
                               [state = state, file] { return state->reader->CachedBytes(file); }});
    }
    return items;
  });
}

Result<rpc::JobStatus> Worker::JobStatus(const std::string& job_id) { return jobs_->Status(job_id); }
Status Worker::CancelJob(const std::string& job_id) { return jobs_->Cancel(job_id); }

rpc::ReportResponse Worker::Report() {
  rpc::ReportResponse r;
  r.set_worker_id(id_);
  r.set_address(config_.worker.host + ":" + std::to_string(rpc_port()));
  r.set_capacity(Info().capacity);
  r.set_zone(config_.worker.zone);
  auto stats = pages_->Stats();
  for (const auto& t : stats.tiers) {
    auto* tier = r.add_tiers();
    tier->set_name(t.name);
    tier->set_quota(t.quota);
    tier->set_bytes(t.bytes);
    tier->set_pages(t.pages);
    tier->set_unwritten_bytes(t.unwritten_bytes);
  }
  r.set_corrupt_pages(stats.corrupt_pages);
  r.set_bytes_served(bytes_served_ + located_bytes_);  // short-circuit pages count as served
  r.set_page_hits(located_pages_);
  for (auto& job : jobs_->List()) *r.add_jobs() = std::move(job);
  r.set_client_fallback_reads(client_fallback_reads_);
  if (rpc_) r.set_rpc_requests(rpc_->Stats().requests);
  r.set_uptime_s(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count()));
  (void)Resolve("/");  // refresh the mount table; a missing root mount is fine here
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& event : syncs_) *r.add_syncs() = event;
  for (const auto& [path, state] : states_) {
    auto* m = r.add_mounts();
    m->set_path(path);
    m->set_uri(state->mount.uri);
    const auto& c = state->ufs->counters();
    m->set_ufs_requests(c.stats + c.lists + c.reads + c.writes);
    m->set_ufs_bytes_read(c.bytes_read);
    m->set_ufs_errors(c.errors);
    auto meta = state->meta->Stats();
    m->set_metadata_bytes(meta.bytes);
    m->set_metadata_entries(meta.entries);
    m->set_metadata_listed_entries(meta.listed_entries);
    m->set_metadata_index_directories(meta.index_directories);
    m->set_metadata_index_bytes(meta.index_disk_bytes);
    m->set_metadata_hits(meta.hits + meta.stale_hits);
    m->set_metadata_misses(meta.misses);
    auto reads = state->reader->Stats();
    r.set_page_hits(r.page_hits() + reads.page_hits);
    r.set_page_misses(r.page_misses() + reads.page_misses);
    auto [files, bytes] = state->view->PendingBelow("");
    r.set_writeback_files(r.writeback_files() + files);
    r.set_writeback_bytes(r.writeback_bytes() + bytes);
  }
  std::lock_guard<std::mutex> uploads(uploads_mu_);
  r.set_writeback_failures(upload_failures_);
  r.set_writeback_uploaded(uploads_done_);
  r.set_writeback_last_error(last_upload_error_);
  return r;
}

}  // namespace sluice::worker
