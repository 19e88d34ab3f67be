// Config, cluster store, secret and worker discovery for the CLI.
#include "cli/context.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

namespace sluice::cli {

int Fail(const Status& st) {
  std::cerr << "sluice: " << st.message() << "\n";
  return st.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

Result<Context> LoadContext(const std::string& config_file) {
  Context ctx;
  std::string file = config_file;
  if (file.empty() && std::getenv("SLUICE_CONFIG")) file = std::getenv("SLUICE_CONFIG");
  if (!file.empty()) {
    SLUICE_ASSIGN_OR_RETURN(ctx.config, LoadConfigFile(file));
    ctx.config_source = file;
  }
  ctx.cluster_dir = ctx.config.cluster.dir.empty() ? cluster::DefaultClusterDir() : ctx.config.cluster.dir;
  auto etcd = ctx.config.cluster.EtcdEndpoints();
  if (!etcd.empty()) {
    SLUICE_ASSIGN_OR_RETURN(ctx.store, cluster::OpenEtcdClusterStore(etcd, ctx.config.cluster.lease_ttl));
  } else {
    SLUICE_ASSIGN_OR_RETURN(ctx.store, cluster::OpenFileClusterStore(ctx.cluster_dir));
    if (!ctx.config.cluster.workers.empty()) {
      ctx.store = cluster::WithStaticWorkers(std::move(ctx.store), ctx.config.cluster.workers);
    }
  }
  return ctx;
}

Result<std::string> ClusterSecret(const Context& ctx, bool create) {
  if (!ctx.config.cluster.secret.empty()) return ctx.config.cluster.secret;
  const bool given = !ctx.config.cluster.secret_file.empty();
  std::string path = given ? ctx.config.cluster.secret_file : ctx.cluster_dir + "/secret";
  if (given || ctx.store->Describe().rfind("etcd", 0) == 0) {  // a shared secret is given, never made here
    std::ifstream in(path);
    std::string secret;
    if (in && std::getline(in, secret) && !secret.empty()) return secret;
    return Status(StatusCode::kPermissionDenied,
                  "cannot read the cluster secret " + path +
                      (given ? "" : " (a cluster on etcd needs cluster.secret or cluster.secret_file in the config)"));
  }
  std::ifstream in(path);
  std::string secret;
  if (in && std::getline(in, secret) && !secret.empty()) return secret;
  if (!create) {
    return Status(StatusCode::kPermissionDenied, "cannot read the cluster secret " + path +
                                                     " (run as the user that started the worker, or set cluster.secret)");
  }
  std::random_device rd;
  std::ostringstream hex;
  for (int i = 0; i < 4; ++i) hex << std::hex << std::uniform_int_distribution<uint64_t>()(rd);
  secret = hex.str();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ClusterSecret(ctx, false);  // another process made it first
  std::string line = secret + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!ok) return IoError("cannot write " + path);
  return secret;
}

Result<std::unique_ptr<client::FileSystem>> ConnectToWorker(const Context& ctx,
                                                            std::chrono::nanoseconds listing_ttl) {
  SLUICE_ASSIGN_OR_RETURN(auto workers, ctx.store->Workers());
  if (workers.empty() && !ctx.config.cluster.EtcdEndpoints().empty()) {
    return Status(StatusCode::kUnavailable, "no sluice worker is registered in " + ctx.store->Describe() +
                                                " (start `sluice worker --config FILE` on the cluster's machines)");
  }
  if (workers.empty()) {
    return Status(StatusCode::kUnavailable, "no running sluice worker found in " + ctx.cluster_dir +
                                                " (the cluster directory: $SLUICE_HOME, default /var/lib/sluice; "
                                                "start a worker with `sluice local --ufs URI`, set SLUICE_HOME to "
                                                "the directory a running one uses, or point --config / "
                                                "SLUICE_CONFIG at the cluster's config)");
  }
  SLUICE_ASSIGN_OR_RETURN(std::string secret, ClusterSecret(ctx, false));
  return ClientFor(ctx, workers[0], secret, nullptr, nullptr, listing_ttl);
}

std::unique_ptr<client::FileSystem> ClientFor(const Context& ctx, const cluster::WorkerInfo& info,
                                              const std::string& secret, rpc::Handler in_process,
                                              client::InProcessPages pages, std::chrono::nanoseconds listing_ttl) {
  client::ClientOptions o;
  o.worker.in_process = std::move(in_process);
  o.in_process_pages = std::move(pages);
  o.worker.host = info.host;
  o.worker.port = info.rpc_port;
  o.worker.secret = secret;
  o.cluster = ctx.store.get();
  o.ufs = ctx.config.ufs;
  o.fallback_to_ufs = ctx.config.client.fallback_to_ufs;
  o.short_circuit = ctx.config.client.short_circuit;
  o.readahead_per_handle = ctx.config.client.readahead_per_handle;
  o.readahead_total = ctx.config.client.readahead_total;
  o.listing_ttl = listing_ttl;
  o.listing_memory = ctx.config.client.metadata_memory;
  // A cluster on etcd: requests go to the workers placement names (a mount in a worker's own
  // process keeps calling that worker).
  o.cluster_routing = ctx.config.cluster.Distributed() && !o.worker.in_process;
  o.placement_span = ctx.config.cluster.placement_span;
  return std::make_unique<client::FileSystem>(o);
}

}  // namespace sluice::cli
