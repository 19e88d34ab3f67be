// What every cluster-facing command needs: the configuration (--config or SLUICE_CONFIG),
// the cluster store it names, the cluster secret, and a client connected to a running
// worker found through that store. Errors are written for the person at the terminal.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "client/file_system.h"
#include "cluster/cluster_store.h"
#include "common/config.h"

namespace sluice::cli {

struct Context {
  Config config;
  std::string config_source;  // the config file read, or "" for the built-in defaults
  std::string cluster_dir;
  std::unique_ptr<cluster::ClusterStore> store;
};

// Loads the config (`config_file`, else $SLUICE_CONFIG, else defaults) and opens its store.
Result<Context> LoadContext(const std::string& config_file);

// The cluster secret: cluster.secret from the config, else DIR/secret (created, mode 0600,
// with a random value when `create` is set).
Result<std::string> ClusterSecret(const Context& ctx, bool create);

// A client of the first live worker registered in the store; with `listing_ttl`, one that
// answers stats from the directory pages it listed (client::ListingCache) for that long.
Result<std::unique_ptr<client::FileSystem>> ConnectToWorker(const Context& ctx,
                                                            std::chrono::nanoseconds listing_ttl = {});

// A client of the worker at `info`, with the config's client settings; with `in_process`
// (and `pages`), one that calls a worker in this process instead.
std::unique_ptr<client::FileSystem> ClientFor(const Context& ctx, const cluster::WorkerInfo& info,
                                              const std::string& secret, rpc::Handler in_process = nullptr,
                                              client::InProcessPages pages = nullptr,
                                              std::chrono::nanoseconds listing_ttl = {});

// Prints "sluice: MESSAGE" to stderr and returns the exit code for `st` (2 for bad input).
int Fail(const Status& st);

}  // namespace sluice::cli
