// ClusterStore: where cluster state lives — the mount table, the registered workers and job
// records. The file implementation keeps it in a directory ($SLUICE_HOME, default
// /var/lib/sluice): mounts.yaml (mode 0600: it holds credentials), workers/<id>.yaml and
// records/<kind>/<id>, updated under an flock so concurrent CLIs and workers never lose a
// change; its workers are the processes of one host. The etcd implementation
// (etcd_cluster_store.cc) is how a cluster spans machines. Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/mount_table.h"
#include "common/status.h"

namespace sluice::cluster {

struct WorkerInfo {
  std::string id;
  std::string host = "127.0.0.1";
  int rpc_port = 0;
  int http_port = 0;
  int64_t pid = 0;
  uint64_t capacity = 0;  // bytes of cache (memory and disk tiers)
  std::string zone;

  std::string Endpoint() const { return host + ":" + std::to_string(rpc_port); }
};

class ClusterStore {
 public:
  ClusterStore() = default;
  ClusterStore(const ClusterStore&) = delete;
  ClusterStore& operator=(const ClusterStore&) = delete;
  virtual ~ClusterStore() = default;

  virtual Result<MountTable> LoadMounts() = 0;
  // Loads the table, applies `change`, and saves it, all under one exclusive lock.
  virtual Status UpdateMounts(const std::function<Status(MountTable*)>& change) = 0;
  // A value that changes whenever the mount table does; cheap enough to call per request.
  virtual std::string MountsVersion() = 0;

  virtual Status RegisterWorker(const WorkerInfo& worker) = 0;
  virtual Status UnregisterWorker(const std::string& id) = 0;
  // Registered workers whose process is alive (file store) or whose lease holds (etcd), by id.
  virtual Result<std::vector<WorkerInfo>> Workers() = 0;
  // A number that changes when the members or mounts change (a watch saw it); 0 when the
  // store cannot tell, and callers look again now and then.
  virtual uint64_t Generation() { return 0; }

  // Small records (job state) that outlive the process that wrote them.
  virtual Status PutRecord(const std::string& kind, const std::string& id, const std::string& text) = 0;
  virtual Result<std::string> GetRecord(const std::string& kind, const std::string& id) = 0;
  virtual Result<std::vector<std::string>> ListRecords(const std::string& kind) = 0;

  virtual std::string Describe() const = 0;
};

// $SLUICE_HOME, else /var/lib/sluice.
std::string DefaultClusterDir();

// Opens (creating) the file-based store in `dir`.
Result<std::unique_ptr<ClusterStore>> OpenFileClusterStore(const std::string& dir);

// `base` (mounts, records) with a fixed membership: the workers at `endpoints` ("host:port",
// their RPC addresses, which are also their ids), whether they run or not (clients route
// around the ones that do not answer).
std::unique_ptr<ClusterStore> WithStaticWorkers(std::unique_ptr<ClusterStore> base, std::vector<std::string> endpoints);

// Connects to etcd at `endpoints` ("host:port"); a registered worker drops out `lease_ttl`
// after it stops renewing.
Result<std::unique_ptr<ClusterStore>> OpenEtcdClusterStore(const std::vector<std::string>& endpoints,
                                                          std::chrono::nanoseconds lease_ttl);

}  // namespace sluice::cluster
