// ClusterStore: where cluster state lives — the mount table and the registered workers.
// The file implementation keeps it in a directory ($SLUICE_HOME, default /var/lib/sluice):
// mounts.yaml (mode 0600: it holds credentials) and workers/<id>.yaml, updated under an
// flock so concurrent CLIs and workers never lose a change. Thread-safe.
#pragma once

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
  // Registered workers whose process is alive.
  virtual Result<std::vector<WorkerInfo>> Workers() = 0;

  virtual std::string Describe() const = 0;
};

// $SLUICE_HOME, else /var/lib/sluice.
std::string DefaultClusterDir();

// Opens (creating) the file-based store in `dir`.
Result<std::unique_ptr<ClusterStore>> OpenFileClusterStore(const std::string& dir);

}  // namespace sluice::cluster
