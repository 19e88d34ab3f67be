// Daemons (local, worker) and the client commands that talk to them.
#include "cli/cluster_commands.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>

#include "cli/context.h"
#include "cli/store_options.h"
#include "common/logging.h"
#include "common/path.h"
#include "common/quote.h"
#include "common/unique_fd.h"
#include "common/units.h"
#include "cli/gateway_setup.h"
#include "fuse/fuse_mount.h"
#include "ufs/under_store.h"
#include "worker/http_endpoint.h"
#include "worker/jobs.h"
#include "worker/worker.h"

namespace sluice::cli {
namespace {

constexpr int kDefaultGatewayPort = 29992;  // `sluice gateway` without --port or gateway.port

struct Flags {
  std::string config_file;
  std::string path, path2, uri, job;
  std::vector<std::string> options;
  bool read_only = true, long_format = false, progress = false, wait = false, recursive = false, xattrs = false;
  std::string write_mode, metadata_ttl, cache_dir, cache_size, cache_policy = "lru";
  std::optional<std::string> memory_size, rpc_port, http_port, s3_port;  // as given; checked as the config's keys
  int replicas = 1;
  uint64_t offset = 0, length = UINT64_MAX / 2;
};

// Blocks until SIGINT or SIGTERM.
void WaitForSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
}

// Blocks SIGINT and SIGTERM in every thread started from here on, so WaitForSignal gets them.
void BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// FUSE options from the configuration; the attribute timeout is the root mount's metadata TTL.
fuse::FuseOptions MountOptions(Context& ctx) {
  fuse::FuseOptions o;
  auto table = ctx.store->LoadMounts();
  if (table.ok()) {
    auto root = table->Resolve("/");
    if (root.ok()) o.attr_timeout = root->mount->options.metadata_ttl;
  }
  o.direct_io_min_size = ctx.config.client.direct_io_min_size;
  o.xattrs = ctx.config.client.xattrs;
  return o;
}

// The memory tier is reserved at start (prefilled): a quota beyond the machine's memory cannot be.
Status CheckMemoryTierFits(const Config& config) {
  const uint64_t ram =
      static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  if (ram > 0 && config.worker.memory_quota > ram) {
    return InvalidArgument("the memory tier (" + FormatSize(config.worker.memory_quota) +
                           ", --memory-size or worker.memory_quota) is larger than this machine's memory (" +
                           FormatSize(ram) + ")");
  }
  return Status::Ok();
}

// Serves a worker until a signal: registered in the cluster store meanwhile, and mounted
// with FUSE at `mountpoint` when one is given.
int Serve(Context& ctx, const std::string& banner, const std::string& mountpoint = "") {
  BlockStopSignals();
  if (!ctx.config.log.file.empty() && LogFile().empty()) {  // --log-file wins over the config
    auto level = spdlog::level::to_string_view(spdlog::default_logger()->level());
    Status st = InitLogging(std::string(level.data(), level.size()), ctx.config.log.file);
    if (!st.ok())
      return Fail(st.WithContext(ctx.config_source.empty() ? "log.file" : ctx.config_source + ": log.file"));
  }
  if (Status st = CheckMemoryTierFits(ctx.config); !st.ok()) return Fail(st);

  auto secret = ClusterSecret(ctx, true);
  if (!secret.ok()) return Fail(secret.status());
  ctx.config.cluster.secret = *secret;
  std::string id = ctx.config.worker.id;
  if (id.empty() && ctx.config.cluster.Distributed() && ctx.config.worker.rpc_port > 0) {
    id = ctx.config.worker.host + ":" + std::to_string(ctx.config.worker.rpc_port);  // the same after a restart
  }
  if (id.empty()) id = "worker-" + std::to_string(::getpid());
  auto worker = worker::Worker::Start(ctx.config, ctx.store.get(), id);
  if (!worker.ok()) return Fail(worker.status());
  Status st = ctx.store->RegisterWorker((*worker)->Info());
  if (!st.ok()) return Fail(st);
  std::unique_ptr<client::FileSystem> client;
  std::unique_ptr<fuse::FuseMount> mount;
  StartedGateway gateway;
  const bool serve_gateway = ctx.config.gateway.port >= 0;
  if (!mountpoint.empty() || serve_gateway) {
    // The mount and the gateway live in the worker's process: they call it directly, not over TCP.
    worker::Worker* w = worker->get();
    client = ClientFor(ctx, w->Info(), *secret,
                       [w](const rpc::Request& req, rpc::Responder& out) { w->HandleRpc(req, out); },
                       [w](const std::string& path, const std::string& version, uint64_t offset, uint64_t length,
                           uint64_t prefetch_to, const client::PageSink& sink) {
                         return w->ReadPages(path, version, offset, length, prefetch_to, sink);
                       });
  }
  if (serve_gateway) {
    auto g = StartGateway(ctx, client.get());
    if (!g.ok()) {
      (void)ctx.store->UnregisterWorker(id);
      return Fail(g.status());
    }
    gateway = std::move(g).value();
    (*worker)->set_metrics_source(gateway.gateway->MetricsSource());
  }
  if (!mountpoint.empty()) {
    auto m = fuse::FuseMount::Mount(mountpoint, client.get(), MountOptions(ctx));
    if (!m.ok()) {
      (void)ctx.store->UnregisterWorker(id);
      return Fail(m.status());
    }
    mount = std::move(m).value();
    // `sluice fs sync` reaches the kernel's caches of this mount too.
    (*worker)->set_sync_listener([m = mount.get()](const std::string& path) { m->Invalidate(path); });
  }
  std::printf("%s\nworker %s: RPC %s:%d, metrics http://%s:%d/metrics, %s\n", banner.c_str(),
              id.c_str(), ctx.config.worker.host.c_str(), (*worker)->rpc_port(), ctx.config.worker.host.c_str(),
              (*worker)->http_port(), ctx.store->Describe().c_str());
  if (gateway.gateway) std::printf("%s\n", gateway.banner.c_str());
  if (mount) std::printf("mounted at %s; stop with Ctrl-C or SIGTERM\n", mount->mountpoint().c_str());
  std::fflush(stdout);
  WaitForSignal();
  if (mount) mount->Unmount();
  gateway.gateway.reset();  // before the worker it reads from
  std::printf("stopping worker %s\n", id.c_str());
  (void)ctx.store->UnregisterWorker(id);
  worker->reset();
  return 0;
}

// Whether a mount's root answers with its settings; a writable mount may start empty (the
// first stage creates what the next one reads): on file:// its directory is made.
Status CheckMountRoot(ufs::UnderStore& store, const cluster::MountOptions& options) {
  auto root = store.Stat("");
  if (root.ok() || root.status().code() != StatusCode::kNotFound || options.read_only()) return root.status();
  (void)store.Mkdir("");
  root = store.Stat("");
  return root.ok() || root.status().code() == StatusCode::kNotFound ? Status::Ok() : root.status();
}

int Local(Flags& f) {
  auto ctx = LoadContext(f.config_file);
  if (!ctx.ok()) return Fail(ctx.status());
  Config& c = ctx->config;
  // The flags that stand for config keys get the config's checks, and errors name the flag.
  std::map<std::string, std::string> by_flag;  // config key -> the flag that set it
  for (const auto& [value, key, flag] : {std::tuple{&f.rpc_port, "worker.rpc_port", "--rpc-port"},
                                         std::tuple{&f.http_port, "worker.http_port", "--http-port"},
                                         std::tuple{&f.s3_port, "gateway.port", "--s3-port"},
                                         std::tuple{&f.memory_size, "worker.memory_quota", "--memory-size"}}) {
    if (!*value) continue;
    Status st = SetConfigValue(&c, key, **value, flag);
    if (!st.ok()) return Fail(st);
    by_flag[key] = flag;
  }
  if (c.worker.disks.empty() || !f.cache_dir.empty() || !f.cache_size.empty()) {
    // --cache-dir and --cache-size each replace only what they name of a configured disk.
    uint64_t size = c.worker.disks.empty() ? (8ull << 30) : c.worker.disks[0].quota;
    if (!f.cache_size.empty()) {
      auto v = ParseSize(f.cache_size);
      if (!v.ok()) return Fail(v.status().WithContext("--cache-size"));
      size = *v;
      by_flag["worker.disks[0].quota"] = "--cache-size";
    }
    std::string dir = c.worker.disks.empty() ? ctx->cluster_dir + "/cache" : c.worker.disks[0].dir;
    if (!f.cache_dir.empty()) dir = f.cache_dir;
    const uint64_t reserve = c.worker.disks.empty() ? DiskTierConfig{}.reserve : c.worker.disks[0].reserve;
    c.worker.disks = {{dir, size, reserve}};
  }
  c.worker.cache_policy = f.cache_policy;
  if (f.xattrs) c.client.xattrs = true;
  if (Status st = ValidateConfig(c, ctx->config_source, by_flag); !st.ok()) return Fail(st);
  if (Status st = CheckMemoryTierFits(c); !st.ok()) return Fail(st);  // before the mount table changes
  cluster::MountPoint root{"/", f.uri, {}};
  std::unique_ptr<ufs::UnderStore> store;
  if (!f.uri.empty()) {
    auto options = ParseStoreOptions(f.options);
    if (!options.ok()) return Fail(options.status());
    for (const auto& warning : options->warnings) std::fprintf(stderr, "%s\n", warning.c_str());
    for (const auto& [key, value] : options->options) {
      Status st = cluster::ApplyMountOption(key, value, &root.options);
      if (!st.ok()) return Fail(st);
    }
    // The URI and the store options are checked before the mount table changes: a typo
    // stops here (exit 2), not as a mount whose every request fails.
    ufs::UnderStoreOptions uo = ufs::UnderStoreOptions::FromConfig(c.ufs, root.options.ufs_options);
    uo.max_attempts = std::min<int>(uo.max_attempts, 2);
    auto opened = ufs::OpenUnderStore(root.uri, uo);
    if (!opened.ok()) return Fail(InvalidArgument("cannot serve " + root.uri + ": " + opened.status().message()));
    store = std::move(opened).value();
  }
  // One `sluice local` per SLUICE_HOME: a second one would rewrite the first one's mounts.
  auto running = ctx->store->Workers();
  if (running.ok() && !running->empty()) {
    const auto& w = running->front();
    return Fail(InvalidArgument("another sluice worker (" + w.id + ", pid " + std::to_string(w.pid) + ", RPC " + w.host +
                                ":" + std::to_string(w.rpc_port) + ") already serves " + ctx->cluster_dir +
                                "; stop it first, or give this one its own SLUICE_HOME"));
  }
  if (store) {
    // The store must answer with these settings (endpoint, credentials, bucket) before
    // anything says "serving".
    Status root_st = CheckMountRoot(*store, root.options);
    if (!root_st.ok()) return Fail(InvalidArgument("cannot serve " + root.uri + ": " + root_st.message()));
    Status st = ctx->store->UpdateMounts([&](cluster::MountTable* t) {
      (void)t->Remove("/");
      return t->Add(root);
    });
    if (!st.ok()) return Fail(st);
  }
  auto mounts = ctx->store->LoadMounts();
  if (!mounts.ok()) return Fail(mounts.status());
  if (mounts->mounts().empty()) {
    return Fail(InvalidArgument("nothing to serve: give --ufs URI (e.g. --ufs s3://bucket/prefix or --ufs file:///data)"));
  }
  std::string banner = "sluice local: serving";
  for (const auto& m : mounts->mounts()) banner += "\n  " + m.Describe();
  banner += "\ncache: " + FormatSize(c.worker.memory_quota) + " memory + " + FormatSize(c.worker.disks[0].quota) +
            " in " + c.worker.disks[0].dir + "; try `sluice fs ls /` in another shell";
  return Serve(*ctx, banner, f.path2);
}

int FuseCmd(Flags& f) {
  auto ctx = LoadContext(f.config_file);
  if (!ctx.ok()) return Fail(ctx.status());
  BlockStopSignals();
  fuse::FuseOptions o = MountOptions(*ctx);
  for (const auto& opt : f.options) {
    if (opt == "allow_other") {
      o.allow_other = true;
    } else if (opt.rfind("attr_timeout=", 0) == 0) {
      auto d = ParseDuration(opt.substr(13));
      if (!d.ok()) return Fail(d.status().WithContext("-o attr_timeout"));
      o.attr_timeout = *d;
    } else if (opt.rfind("direct_io_min_size=", 0) == 0) {
      auto size = ParseSize(opt.substr(19));
      if (!size.ok()) return Fail(size.status().WithContext("-o direct_io_min_size"));
      o.direct_io_min_size = *size;
    } else if (opt == "xattrs") {
      o.xattrs = true;
    } else {
      return Fail(InvalidArgument("unknown FUSE option '" + opt +
                                  "' (known: allow_other, attr_timeout=DUR, direct_io_min_size=SIZE, xattrs)"));
    }
  }
  // Names the mount listed are looked up in this process for as long as the kernel would
  // keep them had it asked (it does not for most entries `find` or `ls` read).
  auto fs = ConnectToWorker(*ctx, o.attr_timeout);
  if (!fs.ok()) return Fail(fs.status());
  // `fusermount3 -u` ends this command as Ctrl-C would.
  o.on_external_unmount = [] { ::kill(::getpid(), SIGTERM); };
  auto mount = fuse::FuseMount::Mount(f.path, fs->get(), o);
  if (!mount.ok()) return Fail(mount.status());
  std::printf("mounted at %s; stop with Ctrl-C, SIGTERM or `fusermount3 -u %s`\n",
              (*mount)->mountpoint().c_str(), (*mount)->mountpoint().c_str());
  std::fflush(stdout);
  // `sluice fs sync PATH` reaches this mount within a second: the worker's report lists the
  // latest syncs, and the kernel forgets what it cached of their paths.
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;
  std::thread follow([&] {
    uint64_t seen = 0;
    if (auto r = (*fs)->Report(); r.ok() && r->syncs_size() > 0) seen = r->syncs(r->syncs_size() - 1).seq();
    std::unique_lock<std::mutex> lock(stop_mu);
    while (!stop_cv.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; })) {
      lock.unlock();
      auto r = (*fs)->Report();
      if (r.ok() && r->syncs_size() > 0) {
        // Missed more than the worker keeps (or it restarted): forget everything.
        if (r->syncs(0).seq() > seen + 1 || r->syncs(r->syncs_size() - 1).seq() < seen) (*mount)->Invalidate("/");
        for (const auto& event : r->syncs()) {
          if (event.seq() > seen) (*mount)->Invalidate(event.path());
        }
        seen = r->syncs(r->syncs_size() - 1).seq();
      }
      lock.lock();
    }
  });
  WaitForSignal();
  {
    std::lock_guard<std::mutex> lock(stop_mu);
    stopping = true;
  }
  stop_cv.notify_all();
  follow.join();
  (*mount)->Unmount();
  return 0;
}

// A gateway of its own, a client of the running workers (as `sluice fuse` is), with its
// metrics on --http-port when given.
int GatewayCmd(Flags& f) {
  auto ctx = LoadContext(f.config_file);
  if (!ctx.ok()) return Fail(ctx.status());
  if (f.s3_port) {
    if (Status st = SetConfigValue(&ctx->config, "gateway.port", *f.s3_port, "--port"); !st.ok()) return Fail(st);
  }
  if (ctx->config.gateway.port < 0) ctx->config.gateway.port = kDefaultGatewayPort;
  BlockStopSignals();
  auto fs = ConnectToWorker(*ctx);
  if (!fs.ok()) return Fail(fs.status());
  auto g = StartGateway(*ctx, fs->get());
  if (!g.ok()) return Fail(g.status());
  std::unique_ptr<worker::HttpEndpoint> metrics;
  if (f.http_port) {
    worker::HttpEndpointOptions ho;
    ho.host = ctx->config.worker.host;
    auto port = ParseSize(*f.http_port);  // a plain number
    if (!port.ok() || *port > 65535) return Fail(InvalidArgument("--http-port: '" + *f.http_port + "' is not a port 0..65535"));
    ho.port = static_cast<int>(*port);
    auto source = g->gateway->MetricsSource();
    auto started = worker::HttpEndpoint::Start(ho, [source](const std::string& target, std::string* type) -> Result<std::string> {
      if (target != "/metrics") return Status(StatusCode::kNotFound, "only /metrics is served here");
      *type = "text/plain; version=0.0.4";
      return source();
    });
    if (!started.ok()) return Fail(started.status());
    metrics = std::move(started).value();
  }
  std::printf("%s\n", g->banner.c_str());
  if (metrics) std::printf("metrics http://%s:%d/metrics\n", ctx->config.worker.host.c_str(), metrics->port());
  std::printf("stop with Ctrl-C or SIGTERM\n");
  std::fflush(stdout);
  WaitForSignal();
  metrics.reset();
  g->gateway.reset();
  return 0;
}

int WorkerCmd(Flags& f) {
  auto ctx = LoadContext(f.config_file);
  if (!ctx.ok()) return Fail(ctx.status());
  return Serve(*ctx, "sluice worker");
}

int MountAdd(Flags& f) {
  auto ctx = LoadContext(f.config_file);
  if (!ctx.ok()) return Fail(ctx.status());
  cluster::MountPoint m{f.path, f.uri, {}};
  if (!f.read_only) m.options.write_mode = cluster::WriteMode::kThrough;
  if (!f.write_mode.empty()) {
    auto mode = cluster::ParseWriteMode(f.write_mode);
    if (!mode.ok()) return Fail(mode.status().WithContext("--write-mode"));
    m.options.write_mode = *mode;
  }
  m.options.replicas = f.replicas;
  if (!f.metadata_ttl.empty()) {
    auto ttl = ParseDuration(f.metadata_ttl);
    if (!ttl.ok()) return Fail(ttl.status().WithContext("--metadata-ttl"));
    m.options.metadata_ttl = *ttl;
  }
  auto options = ParseStoreOptions(f.options);
  if (!options.ok()) return Fail(options.status());
  for (const auto& warning : options->warnings) std::fprintf(stderr, "%s\n", warning.c_str());
  for (const auto& [key, value] : options->options) {
    Status st = cluster::ApplyMountOption(key, value, &m.options);
    if (!st.ok()) return Fail(st);
  }
  // Check the store answers with these settings before anyone depends on the mount.
  ufs::UnderStoreOptions uo;
  uo.options = m.options.ufs_options;
  uo.max_attempts = 2;
  auto store = ufs::OpenUnderStore(m.uri, uo);
  if (!store.ok()) return Fail(store.status());
  Status root = CheckMountRoot(**store, m.options);
  if (!root.ok()) return Fail(root.WithContext("cannot mount " + m.uri));
  Status st = ctx->store->UpdateMounts([&](cluster::MountTable* t) { return t->Add(m); });
  if (!st.ok()) return Fail(st);
  auto table = ctx->store->LoadMounts();
  auto r = table->Resolve(f.path);
  std::printf("mounted %s\n", r.ok() ? r->mount->Describe().c_str() : f.path.c_str());
  return 0;
}

int MountList(Flags& f) {
  auto ctx = LoadContext(f.config_file);
  if (!ctx.ok()) return Fail(ctx.status());
  auto table = ctx->store->LoadMounts();
  if (!table.ok()) return Fail(table.status());
  for (const auto& m : table->mounts()) std::printf("%s\n", m.Describe().c_str());
  return 0;
}

int MountRemove(Flags& f) {
  auto ctx = LoadContext(f.config_file);
  if (!ctx.ok()) return Fail(ctx.status());
  std::string removed;
  Status st = ctx->store->UpdateMounts([&](cluster::MountTable* t) {
    auto r = t->Resolve(f.path);
    if (r.ok() && r->mount->path == *NormalizePath(f.path)) removed = r->mount->Describe();
    return t->Remove(f.path);
  });
  if (!st.ok()) return Fail(st);
  std::printf("removed %s\n", removed.empty() ? f.path.c_str() : removed.c_str());
  auto workers = ctx->store->Workers();
  if (workers.ok() && !workers->empty()) {
    std::printf("the running worker %s no longer serves it%s\n", workers->front().id.c_str(),
                *NormalizePath(f.path) == "/" ? "; nothing is mounted at / now" : "");
  }
  return 0;
}

// Runs `fn` with a client of the running worker.
int WithClient(const Flags& f, const std::function<int(client::FileSystem&)>& fn) {
  auto ctx = LoadContext(f.config_file);
  if (!ctx.ok()) return Fail(ctx.status());
  auto fs = ConnectToWorker(*ctx);
  if (!fs.ok()) return Fail(fs.status());
  return fn(**fs);
}

int Ls(const Flags& f) {
  return WithClient(f, [&](client::FileSystem& fs) {
    auto info = fs.Stat(f.path);
    if (!info.ok()) return Fail(info.status());
    auto print = [&](const client::FileInfo& e) {
      // A name may hold a newline or a terminal escape: quoted, it prints as one harmless line.
      std::string name = ShellEscape(info->is_dir ? BaseName(e.path) : e.path);
      if (e.is_dir) name += "/";
      if (f.long_format) {
        std::printf("%12s  %s  %s\n", e.is_dir ? "DIR" : std::to_string(e.size).c_str(), FormatTime(e.mtime_ns).c_str(),
                    name.c_str());
      } else {
        std::printf("%s\n", name.c_str());
      }
    };
    if (!info->is_dir) {
      print(*info);
      return 0;
    }
    // A page at a time, printed as it comes: a directory of millions starts at once and is
    // never held whole.
    std::string cursor;
    for (bool more = true; more;) {
      auto page = fs.ListPage(f.path, cursor, client::kListPageEntries, &more);
      if (!page.ok()) return Fail(page.status());
      if (page->empty()) break;
      for (const auto& e : *page) print(e);
      cursor = BaseName(page->back().path);
    }
    return 0;
  });
}

int Stat(const Flags& f) {
  return WithClient(f, [&](client::FileSystem& fs) {
    auto info = fs.Stat(f.path);
    if (!info.ok()) return Fail(info.status());
    std::printf("path:     %s\ntype:     %s\n", info->path.c_str(), info->is_dir ? "directory" : "file");
    if (!info->is_dir) {
      std::printf("size:     %llu (%s)\nmodified: %s UTC\nversion:  %s\n", static_cast<unsigned long long>(info->size),
                  FormatSize(info->size).c_str(), FormatTime(info->mtime_ns).c_str(), info->version.c_str());
    }
    return 0;
  });
}

int Cat(const Flags& f) {
  return WithClient(f, [&](client::FileSystem& fs) {
    auto n = fs.Read(f.path, f.offset, f.length, [](std::string_view chunk) {
      if (std::fwrite(chunk.data(), 1, chunk.size(), stdout) != chunk.size()) return IoError("cannot write to stdout");
      return Status::Ok();
    });
    std::fflush(stdout);
    return n.ok() ? 0 : Fail(n.status());
  });
}

// Every file below `path` (or the file itself), walking directories through the worker.
Result<std::vector<client::FileInfo>> FilesBelow(client::FileSystem& fs, const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(client::FileInfo info, fs.Stat(path));
  if (!info.is_dir) return std::vector<client::FileInfo>{info};
  std::vector<client::FileInfo> files;
  std::vector<std::string> dirs{info.path};
  while (!dirs.empty()) {
    std::string dir = dirs.back();
    dirs.pop_back();
    SLUICE_ASSIGN_OR_RETURN(auto entries, fs.List(dir));
    for (auto& e : entries) {
      if (e.is_dir) dirs.push_back(e.path);
      else files.push_back(std::move(e));
    }
  }
  return files;
}

// Copies one file of the namespace to a local path.
Status CopyOut(client::FileSystem& fs, const std::string& path, const std::string& dest, uint64_t* bytes) {
  std::ofstream out(dest, std::ios::binary | std::ios::trunc);
  if (!out) return IoError("cannot write " + dest);
  auto n = fs.Read(path, 0, UINT64_MAX / 2, [&](std::string_view chunk) {
    out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    return out ? Status::Ok() : IoError("cannot write " + dest);
  });
  if (!n.ok()) return n.status();
  *bytes += *n;
  return Status::Ok();
}

int Cp(const Flags& f) {
  return WithClient(f, [&](client::FileSystem& fs) {
    auto t0 = std::chrono::steady_clock::now();
    auto info = fs.Stat(f.path);
    if (!info.ok()) return Fail(info.status());
    uint64_t bytes = 0;
    size_t count = 0;
    if (!info->is_dir) {
      Status st = CopyOut(fs, f.path, f.path2, &bytes);
      if (!st.ok()) return Fail(st);
      count = 1;
    } else {
      if (!f.recursive) return Fail(InvalidArgument(f.path + " is a directory (copy a tree with -R)"));
      auto files = FilesBelow(fs, f.path);
      if (!files.ok()) return Fail(files.status());
      for (const auto& file : *files) {
        std::filesystem::path dest = std::filesystem::path(f.path2) / file.path.substr(info->path.size() + 1);
        std::error_code ec;
        std::filesystem::create_directories(dest.parent_path(), ec);
        Status st = CopyOut(fs, file.path, dest.string(), &bytes);
        if (!st.ok()) return Fail(st);
        ++count;
      }
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "copied %s to %s: %zu file%s, %s in %.2fs (%.1f MiB/s)\n", f.path.c_str(), f.path2.c_str(),
                 count, count == 1 ? "" : "s", FormatSize(bytes).c_str(), secs,
                 static_cast<double>(bytes) / (1 << 20) / std::max(secs, 1e-9));
    return 0;
  });
}

// Writes local file `from` to namespace path `to`, 8 MiB at a time; adds its size to *bytes.
Status CopyIn(client::FileSystem& fs, const std::string& from, const std::string& to, uint64_t* bytes) {
  UniqueFd fd(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return IoError("cannot read " + from + ": " + std::strerror(errno));
  SLUICE_ASSIGN_OR_RETURN(auto writer, fs.OpenForWrite(to, true));
  std::string buf(8 << 20, '\0');
  uint64_t offset = 0;
  while (true) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("cannot read " + from + ": " + std::strerror(errno));
    if (n == 0) break;
    SLUICE_RETURN_IF_ERROR(writer->Write(offset, std::string_view(buf.data(), static_cast<size_t>(n))));
    offset += static_cast<uint64_t>(n);
  }
  SLUICE_RETURN_IF_ERROR(writer->Close().status());
  *bytes += offset;
  return Status::Ok();
}

// Copies a local file (or with -R a directory) into the namespace, through the cache.
int Put(const Flags& f) {
  return WithClient(f, [&](client::FileSystem& fs) {
    auto t0 = std::chrono::steady_clock::now();
    std::error_code ec;
    uint64_t bytes = 0;
    size_t count = 0;
    if (!std::filesystem::is_directory(f.path, ec)) {
      Status st = CopyIn(fs, f.path, f.path2, &bytes);
      if (!st.ok()) return Fail(st);
      count = 1;
    } else {
      if (!f.recursive) return Fail(InvalidArgument(f.path + " is a directory (copy a tree with -R)"));
      for (auto it = std::filesystem::recursive_directory_iterator(f.path, ec);
           !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        if (!it->is_regular_file()) continue;
        const std::string rel = std::filesystem::relative(it->path(), f.path).string();
        Status st = CopyIn(fs, it->path().string(), JoinPath(f.path2, rel), &bytes);
        if (!st.ok()) return Fail(st);
        ++count;
      }
      if (ec) return Fail(IoError("cannot read " + f.path + ": " + ec.message()));
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "copied %s to %s: %zu file%s, %s in %.2fs (%.1f MiB/s)\n", f.path.c_str(), f.path2.c_str(),
                 count, count == 1 ? "" : "s", FormatSize(bytes).c_str(), secs,
                 static_cast<double>(bytes) / (1 << 20) / std::max(secs, 1e-9));
    return 0;
  });
}

// Reads every file below PATH through the cache with N readers; reports the throughput.
int ReadAll(const Flags& f, int threads) {
  return WithClient(f, [&](client::FileSystem& fs) {
    auto files = FilesBelow(fs, f.path);
    if (!files.ok()) return Fail(files.status());
    auto before = fs.Report();
    auto t0 = std::chrono::steady_clock::now();
    std::atomic<size_t> next{0};
    std::atomic<uint64_t> bytes{0};
    std::mutex mu;
    Status first_error;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (size_t i = next++; i < files->size(); i = next++) {
          auto n = fs.Read((*files)[i].path, 0, (*files)[i].size + 1, [](std::string_view) { return Status::Ok(); });
          if (n.ok()) {
            bytes += *n;
          } else {
            std::lock_guard<std::mutex> lock(mu);
            if (first_error.ok()) first_error = n.status();
          }
        }
      });
    }
    for (auto& t : pool) t.join();
    if (!first_error.ok()) return Fail(first_error);
    double secs = std::max(1e-9, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    auto after = fs.Report();
    std::string hits;
    if (before.ok() && after.ok()) {
      uint64_t h = after->page_hits() - before->page_hits(), m = after->page_misses() - before->page_misses();
      uint64_t ufs = 0;
      for (int i = 0; i < after->mounts_size(); ++i) {
        ufs += after->mounts(i).ufs_bytes_read() - (i < before->mounts_size() ? before->mounts(i).ufs_bytes_read() : 0);
      }
      char buf[160];
      std::snprintf(buf, sizeof(buf), "; page hit ratio %.1f%%, %s from the under-store",
                    h + m ? 100.0 * static_cast<double>(h) / static_cast<double>(h + m) : 0.0, FormatSize(ufs).c_str());
      hits = buf;
    }
    std::printf("read %zu files, %s in %.2fs: %.1f MiB/s, %.0f files/s%s\n", files->size(),
                FormatSize(bytes).c_str(), secs, static_cast<double>(bytes) / (1 << 20) / secs,
                static_cast<double>(files->size()) / secs, hits.c_str());
    return 0;
  });
}

int SyncCmd(const Flags& f) {
  return WithClient(f, [&](client::FileSystem& fs) {
    auto changed = fs.Sync(f.path);
    if (!changed.ok()) return Fail(changed.status());
    std::printf("synced %s: cached metadata dropped; %llu changed file(s) freed from the cache\n", f.path.c_str(),
                static_cast<unsigned long long>(*changed));
    return 0;
  });
}

int CheckCached(const Flags& f) {
  return WithClient(f, [&](client::FileSystem& fs) {
    auto r = fs.CheckCached(f.path);
    if (!r.ok()) return Fail(r.status());
    double pct = r->bytes() ? 100.0 * static_cast<double>(r->cached_bytes()) / static_cast<double>(r->bytes()) : 100.0;
    std::printf("%s: %llu files, %s of %s cached (%.1f%%)%s\n", f.path.c_str(),
                static_cast<unsigned long long>(r->files()), FormatSize(r->cached_bytes()).c_str(),
                FormatSize(r->bytes()).c_str(), pct, fs.router() ? ", counting each worker's copy" : "");
    return 0;
  });
}

int Free(const Flags& f) {
  return WithClient(f, [&](client::FileSystem& fs) {
    auto r = fs.Free(f.path);
    if (!r.ok()) return Fail(r.status());
    std::printf("freed %s: %llu files, %s released from the cache\n", f.path.c_str(),
                static_cast<unsigned long long>(r->files()), FormatSize(r->cached_bytes()).c_str());
    return 0;
  });
}

std::string ProgressLine(const rpc::JobStatus& s) {
  double rate = s.elapsed_s() > 0 ? static_cast<double>(s.bytes_done()) / s.elapsed_s() : 0;
  double frac = s.bytes_total() ? static_cast<double>(s.bytes_done()) / static_cast<double>(s.bytes_total()) : 0;
  int bar = static_cast<int>(frac * 30);
  std::string line = "[" + std::string(static_cast<size_t>(bar), '#') + std::string(static_cast<size_t>(30 - bar), '-') + "] ";
  char buf[256];
  std::string eta = "-";
  if (rate > 0 && s.listing_done() && s.elapsed_s() >= 1 && s.bytes_done() > 0) {  // else no estimate yet
    eta = FormatDuration(std::chrono::nanoseconds(
        static_cast<int64_t>(1e9 * static_cast<double>(s.bytes_total() - s.bytes_done()) / rate)));
  }
  std::snprintf(buf, sizeof(buf), "%llu/%llu%s files, %s/%s, %s/s, ETA %s",
                static_cast<unsigned long long>(s.files_done()), static_cast<unsigned long long>(s.files_total()),
                s.listing_done() ? "" : "+", FormatSize(s.bytes_done()).c_str(), FormatSize(s.bytes_total()).c_str(),
                FormatSize(static_cast<uint64_t>(rate)).c_str(), eta.c_str());
  return line + buf;
}

// A job is queued, running, or ended (done, failed, cancelled).
bool JobEnded(const rpc::JobStatus& s) { return s.state() != "running" && s.state() != "queued"; }

int PrintFinal(const rpc::JobStatus& s) {
  std::printf("load %s %s: %llu files, %s (%s fetched from the under-store) in %.2fs\n", s.job_id().c_str(),
              s.state().c_str(), static_cast<unsigned long long>(s.files_done()), FormatSize(s.bytes_done()).c_str(),
              FormatSize(s.bytes_fetched()).c_str(), s.elapsed_s());
  for (const auto& failure : s.failures()) std::printf("  failed: %s\n", failure.c_str());
  return s.state() == "done" ? 0 : 1;
}

int Load(const Flags& f) {
  return WithClient(f, [&](client::FileSystem& fs) {
    auto id = fs.Load(f.path, f.replicas > 1 ? f.replicas : 0);
    if (!id.ok()) return Fail(id.status());
    if (f.replicas > 1 && !fs.router()) {  // one node holds one copy of each page; say so rather than pretend
      std::fprintf(stderr, "note: --replicas %d, but this cluster has one worker: each file is cached once\n",
                   f.replicas);
    }
    if (!f.wait && !f.progress) {
      std::printf("%s\n", id->c_str());
      return 0;
    }
    bool tty = ::isatty(STDERR_FILENO);
    while (true) {
      auto s = fs.JobStatus(*id);
      if (!s.ok()) return Fail(s.status());
      bool finished = JobEnded(*s);
      if (f.progress) {
        std::fprintf(stderr, tty ? "\r%s\033[K" : "%s\n", ProgressLine(*s).c_str());
        if (finished && tty) std::fprintf(stderr, "\n");
      }
      if (finished) return PrintFinal(*s);
      std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 200 : 1000));
    }
  });
}

int LoadStatus(const Flags& f, bool cancel) {
  return WithClient(f, [&](client::FileSystem& fs) {
    if (!cancel && f.job.empty()) {  // every job the workers keep
      for (const auto& report : fs.ReportAll()) {
        if (report.status().code() != 0) {
          if (!fs.router()) return Fail(rpc::FromProto(report.status()));
          std::printf("worker %s: %s\n", report.worker_id().c_str(), report.status().message().c_str());
          continue;
        }
        if (report.jobs().empty()) std::printf("no load jobs on worker %s\n", report.worker_id().c_str());
        for (const auto& j : report.jobs()) {
          if (!JobEnded(j)) {
            std::printf("load %s %s: %s\n", j.job_id().c_str(), j.state().c_str(), ProgressLine(j).c_str());
          } else {
            PrintFinal(j);
          }
        }
      }
      return 0;
    }
    auto s = cancel ? fs.CancelJob(f.job) : fs.JobStatus(f.job);
    if (!s.ok()) return Fail(s.status());
    if (!JobEnded(*s)) {
      std::printf("load %s %s: %s\n", s->job_id().c_str(), s->state().c_str(), ProgressLine(*s).c_str());
      return 0;
    }
    if (cancel && s->state() != "cancelled") std::printf("load %s had already ended:\n", s->job_id().c_str());
    PrintFinal(*s);
    return 0;
  });
}

void PrintWorkerReport(const rpc::ReportResponse* r) {
  std::printf("worker %s, up %s, %llu RPC requests served\n", r->worker_id().c_str(),
              FormatDuration(std::chrono::seconds(r->uptime_s())).c_str(),
              static_cast<unsigned long long>(r->rpc_requests()));
  std::printf("cache tiers:\n");
  for (const auto& t : r->tiers()) {
    double pct = t.quota() ? 100.0 * static_cast<double>(t.bytes()) / static_cast<double>(t.quota()) : 0;
    std::printf("  %-40s %10s of %10s (%5.1f%%), %llu pages", t.name().c_str(), FormatSize(t.bytes()).c_str(),
                FormatSize(t.quota()).c_str(), pct, static_cast<unsigned long long>(t.pages()));
    if (t.unwritten_bytes() > 0) std::printf(", %s not on disk yet", FormatSize(t.unwritten_bytes()).c_str());
    std::printf("\n");
  }
  uint64_t reads = r->page_hits() + r->page_misses();
  std::printf("page hit ratio: %.1f%% (%llu hits, %llu misses), %llu corrupt pages dropped, %s served\n",
              reads ? 100.0 * static_cast<double>(r->page_hits()) / static_cast<double>(reads) : 0.0,
              static_cast<unsigned long long>(r->page_hits()), static_cast<unsigned long long>(r->page_misses()),
              static_cast<unsigned long long>(r->corrupt_pages()), FormatSize(r->bytes_served()).c_str());
  std::printf("under-store traffic:\n");
  for (const auto& m : r->mounts()) {
    std::printf("  %-12s %-40s %8llu requests, %10s read, %llu errors\n", m.path().c_str(), m.uri().c_str(),
                static_cast<unsigned long long>(m.ufs_requests()), FormatSize(m.ufs_bytes_read()).c_str(),
                static_cast<unsigned long long>(m.ufs_errors()));
  }
  std::printf("metadata:\n");
  for (const auto& m : r->mounts()) {
    std::printf("  %-12s %10s in memory (%llu listed entries), %llu listings on disk (%s)\n", m.path().c_str(),
                FormatSize(m.metadata_bytes()).c_str(), static_cast<unsigned long long>(m.metadata_listed_entries()),
                static_cast<unsigned long long>(m.metadata_index_directories()),
                FormatSize(m.metadata_index_bytes()).c_str());
  }
  if (r->writeback_files() > 0 || r->writeback_uploaded() > 0 || r->writeback_failures() > 0) {
    std::printf("write-back: %llu files (%s) waiting for the under-store, %llu uploaded, %llu failed attempts%s%s\n",
                static_cast<unsigned long long>(r->writeback_files()), FormatSize(r->writeback_bytes()).c_str(),
                static_cast<unsigned long long>(r->writeback_uploaded()),
                static_cast<unsigned long long>(r->writeback_failures()),
                r->writeback_last_error().empty() ? "" : "; last: ", r->writeback_last_error().c_str());
  }
  if (r->client_fallback_reads() > 0) {
    std::printf("reads clients made straight from the under-store while this worker was unreachable: %llu\n",
                static_cast<unsigned long long>(r->client_fallback_reads()));
  }
}

int Report(const Flags& f) {
  return WithClient(f, [&](client::FileSystem& fs) {
    if (!fs.router()) {
      auto r = fs.Report();
      if (!r.ok()) return Fail(r.status());
      PrintWorkerReport(&*r);
      return 0;
    }
    auto all = fs.ReportAll();
    std::printf("cluster: %zu workers in %s\n", all.size(), fs.options().cluster->Describe().c_str());
    std::printf("  %-24s %-22s %-6s %-8s %10s %10s %6s %12s\n", "WORKER", "ADDRESS", "ZONE", "STATE", "CAPACITY", "CACHED",
                "HITS", "STORE READ");
    for (const auto& r : all) {
      const bool up = r.status().code() == 0;
      uint64_t cached = 0, memory = 0, store_read = 0;  // the memory tier holds pages of the disk tiers
      for (const auto& t : r.tiers()) (t.name() == "memory" ? memory : cached) += t.bytes();
      if (cached == 0) cached = memory;
      for (const auto& m : r.mounts()) store_read += m.ufs_bytes_read();
      const uint64_t reads = r.page_hits() + r.page_misses();
      std::printf("  %-24s %-22s %-6s %-8s %10s %10s %5.1f%% %12s\n", r.worker_id().c_str(), r.address().c_str(),
                  r.zone().empty() ? "-" : r.zone().c_str(), up ? "up" : "down", FormatSize(r.capacity()).c_str(),
                  FormatSize(cached).c_str(),
                  reads ? 100.0 * static_cast<double>(r.page_hits()) / static_cast<double>(reads) : 0.0,
                  FormatSize(store_read).c_str());
      if (!up) std::printf("    %s\n", r.status().message().c_str());
    }
    for (const auto& r : all) {
      if (r.status().code() != 0) continue;
      std::printf("\n");
      PrintWorkerReport(&r);
    }
    return 0;
  });
}

}  // namespace

void AddClusterCommands(CLI::App& app, CommandResult* result) {
  auto f = std::make_shared<Flags>();
  auto config = [f](CLI::App* cmd) {
    cmd->add_option("--config", f->config_file, "YAML config file (default: $SLUICE_CONFIG, else built-in defaults)");
  };
  auto run = [result](CLI::App* cmd, std::function<int()> fn) { cmd->callback([result, fn] { result->exit_code = fn(); }); };

  auto* local = app.add_subcommand("local", "Run a single-node sluice (worker and cache) over an under-store");
  local->add_option("--ufs", f->uri, "Under-store to serve at the namespace root: s3://bucket/prefix, file:///dir, "
                                     "http(s)://host/path");
  local->add_option("-o,--option", f->options,
                    std::string("Mount option KEY=VALUE for --ufs (endpoint, region, access_key, secret_key_file, "
                                "metadata_ttl, ufs_rate_limit...); ") +
                        kSecretOptionsHelp);
  local->add_option("--cache-dir", f->cache_dir, "Disk cache directory (default: CLUSTER_DIR/cache)");
  local->add_option("--cache-size", f->cache_size, "Disk cache quota, e.g. 20GiB (default 8GiB)");
  local
      ->add_option("--memory-size", f->memory_size,
                   "Memory cache quota, e.g. 2GiB (default 1GiB; at least one page, at most the machine's memory)")
      ->type_name("SIZE");
  local->add_option("--cache-policy", f->cache_policy, "lru, or stable for epoch scans of data larger than the cache")
      ->check(CLI::IsMember({"lru", "stable"}));
  local->add_option("--rpc-port", f->rpc_port, "RPC port, 0..65535 (0: any free port; default 29990)")
      ->type_name("PORT");
  local->add_option("--http-port", f->http_port, "HTTP port for /metrics, 0..65535 (0: any free port; default 29991)")
      ->type_name("PORT");
  local->add_option("--s3-port", f->s3_port,
                    "Also serve the namespace over S3 on this port, 0..65535 (0: any free port; "
                    "default: no S3 gateway; keys: gateway.credentials, else $SLUICE_GATEWAY_ACCESS_KEY and "
                    "$SLUICE_GATEWAY_SECRET_KEY, else a pair made once and kept in CLUSTER_DIR/gateway-credentials)")
      ->type_name("PORT");
  local->add_option("--mountpoint", f->path2, "Also mount the namespace here with FUSE (an empty directory)");
  local->add_flag("--xattrs", f->xattrs,
                  "Give the mount's files the extended attributes user.sluice.cached and user.sluice.version "
                  "(config client.xattrs; off by default: each getxattr is then a round trip, two per file in `ls -l`)");
  config(local);
  run(local, [f] { return Local(*f); });

  auto* fuse_cmd = app.add_subcommand("fuse", "Mount the namespace of a running worker at MOUNTPOINT (read-only)");
  fuse_cmd->add_option("MOUNTPOINT", f->path, "An empty directory")->required();
  fuse_cmd->add_option("-o", f->options, "allow_other, attr_timeout=DUR, direct_io_min_size=SIZE (0: never), xattrs (user.sluice.cached and "
                       "user.sluice.version on each file; costs `ls -l` two round trips per file)")
      ->delimiter(',');
  config(fuse_cmd);
  run(fuse_cmd, [f] { return FuseCmd(*f); });

  auto* gateway_cmd = app.add_subcommand("gateway", "Serve the namespace of a running worker over S3 (read-only)");
  gateway_cmd
      ->add_option("--port", f->s3_port,
                   "S3 port, 0..65535 (0: any free port; default gateway.port, else " +
                       std::to_string(kDefaultGatewayPort) + ")")
      ->type_name("PORT");
  gateway_cmd->add_option("--http-port", f->http_port, "Also serve the gateway's /metrics on this port")
      ->type_name("PORT");
  config(gateway_cmd);
  run(gateway_cmd, [f] { return GatewayCmd(*f); });

  auto* worker = app.add_subcommand("worker", "Run a cache worker as configured in --config");
  config(worker);
  run(worker, [f] { return WorkerCmd(*f); });

  auto* mount = app.add_subcommand("mount", "Manage the mount table (namespace path -> under-store)");
  mount->require_subcommand(1);
  auto* add = mount->add_subcommand("add", "Mount an under-store at a namespace path");
  add->add_option("NSPATH", f->path, "Namespace path, e.g. /imagenet")->required();
  add->add_option("URI", f->uri, "s3://bucket/prefix, file:///dir or http(s)://host/path")->required();
  add->add_flag("--read-only,!--read-write", f->read_only, "Refuse writes (default); --read-write: --write-mode through");
  add->add_option("--write-mode", f->write_mode,
                  "read-only (default); through: close() and fsync() return once the file is in the under-store; "
                  "async: close() returns once it is on the cache disk, the upload follows (fsync waits for it)");
  add->add_option("--metadata-ttl", f->metadata_ttl, "How long listings and stats are trusted, e.g. 30s (default 60s)");
  add->add_option("--replicas", f->replicas, "Cached copies across workers")->check(CLI::Range(1, 16));
  add->add_option("--option,-o", f->options,
                  std::string("KEY=VALUE: endpoint, region, path_style, access_key, secret_key_file, secret_key, "
                              "session_token_file, session_token, ca_bundle, ufs_max_concurrency, ufs_rate_limit; ") +
                      kSecretOptionsHelp);
  config(add);
  run(add, [f] { return MountAdd(*f); });
  auto* list = mount->add_subcommand("list", "Show the mounts (credentials masked)");
  config(list);
  run(list, [f] { return MountList(*f); });
  auto* remove = mount->add_subcommand("remove", "Unmount a namespace path");
  remove->add_option("NSPATH", f->path, "Namespace path")->required();
  config(remove);
  run(remove, [f] { return MountRemove(*f); });

  auto* fs = app.add_subcommand("fs", "Read (and on writable mounts, write) the namespace through the cache");
  fs->require_subcommand(1);
  auto path_cmd = [&](const char* name, const char* help, std::function<int()> fn) {
    auto* cmd = fs->add_subcommand(name, help);
    cmd->add_option("PATH", f->path, "Namespace path, e.g. /train/0001.tar")->required();
    config(cmd);
    run(cmd, std::move(fn));
    return cmd;
  };
  path_cmd("ls", "List a directory", [f] { return Ls(*f); })->add_flag("-l,--long", f->long_format, "Sizes and times");
  path_cmd("stat", "Show a file's size, time and version", [f] { return Stat(*f); });
  auto* cat = path_cmd("cat", "Write a file (or a range) to stdout", [f] { return Cat(*f); });
  cat->add_option("--offset", f->offset, "First byte");
  cat->add_option("--length", f->length, "Number of bytes");
  auto* cp = path_cmd("cp", "Copy a file (or with -R a directory) out of the namespace to a local path",
                      [f] { return Cp(*f); });
  cp->add_option("DEST", f->path2, "Local file (or with -R, directory) to write")->required();
  cp->add_flag("-R,--recursive", f->recursive, "Copy a directory and everything below it");
  auto* put = fs->add_subcommand("put", "Copy a local file (or with -R a directory) into the namespace, on a mount "
                                     "that takes writes (`mount add --write-mode through`)");
  put->add_option("LOCAL", f->path, "Local file (or with -R, directory) to read")->required();
  put->add_option("PATH", f->path2, "Namespace path to write, e.g. /out/model.pt")->required();
  put->add_flag("-R,--recursive", f->recursive, "Copy a directory and everything below it");
  config(put);
  run(put, [f] { return Put(*f); });
  auto* rm = path_cmd("rm", "Remove a file (or with -d an empty directory) on a mount that takes writes", [f] {
    return WithClient(*f, [&](client::FileSystem& fs) {
      Status st = fs.Remove(f->path, f->recursive);
      return st.ok() ? 0 : Fail(st);
    });
  });
  rm->add_flag("-d,--dir", f->recursive, "Remove an empty directory");
  path_cmd("flush", "Wait until the files written below PATH on write-back (async) mounts are in the under-store",
           [f] {
             return WithClient(*f, [&](client::FileSystem& fs) {
               Status st = fs.Flush(f->path);
               return st.ok() ? 0 : Fail(st);
             });
           });
  path_cmd("mkdir", "Make a directory on a mount that takes writes", [f] {
    return WithClient(*f, [&](client::FileSystem& fs) {
      Status st = fs.Mkdir(f->path);
      return st.ok() ? 0 : Fail(st);
    });
  });
  auto* mv = path_cmd("mv", "Rename a file within a mount that takes writes (copy and delete on S3)", [f] {
    return WithClient(*f, [&](client::FileSystem& fs) {
      Status st = fs.Rename(f->path, f->path2);
      return st.ok() ? 0 : Fail(st);
    });
  });
  mv->add_option("DEST", f->path2, "New namespace path")->required();
  path_cmd("sync", "Forget cached metadata below PATH; changed files lose their cached pages",
           [f] { return SyncCmd(*f); });
  path_cmd("check-cached", "Show how much of PATH is cached", [f] { return CheckCached(*f); });
  auto threads = std::make_shared<int>(8);
  path_cmd("read", "Read every file below PATH through the cache and report speed and hit ratio",
           [f, threads] { return ReadAll(*f, *threads); })
      ->add_option("-j,--threads", *threads, "Parallel readers")
      ->check(CLI::Range(1, 256));

  auto* load = app.add_subcommand("load", "Preload PATH into the cache (or: load status|cancel JOB)");
  load->add_option("PATH", f->path, "Namespace path to preload");
  load->add_flag("--wait", f->wait, "Wait until the job ends");
  load->add_flag("--progress", f->progress, "Show a progress bar while waiting");
  load->add_option("--replicas", f->replicas, "Cached copies across workers")->check(CLI::Range(1, 16));
  config(load);
  auto* status = load->add_subcommand("status", "Show a load job's progress (without JOB: every job kept)");
  status->add_option("JOB", f->job, "Job id printed by `sluice load`");
  config(status);
  run(status, [f] { return LoadStatus(*f, false); });
  auto* load_list = load->add_subcommand("list", "Show every load job the worker keeps: queued, running, and the last " +
                                                std::to_string(worker::JobManager::kMaxFinishedJobs) + " ended");
  config(load_list);
  run(load_list, [f] {
    Flags every = *f;
    every.job.clear();
    return LoadStatus(every, false);
  });
  auto* cancel = load->add_subcommand("cancel", "Cancel a load job");
  cancel->add_option("JOB", f->job, "Job id")->required();
  config(cancel);
  run(cancel, [f] { return LoadStatus(*f, true); });
  load->callback([f, result, load] {
    if (load->get_subcommands().empty()) {
      if (f->path.empty()) {
        result->exit_code = Fail(InvalidArgument("load needs a PATH (or: load status JOB, load cancel JOB)"));
        return;
      }
      result->exit_code = Load(*f);
    }
  });

  auto* free = app.add_subcommand("free", "Drop PATH's pages from the cache");
  free->add_option("PATH", f->path, "Namespace path")->required();
  config(free);
  run(free, [f] { return Free(*f); });

  auto* report = app.add_subcommand("report", "Show cache capacity, usage, hit ratio and under-store traffic");
  config(report);
  run(report, [f] { return Report(*f); });
}

}  // namespace sluice::cli
