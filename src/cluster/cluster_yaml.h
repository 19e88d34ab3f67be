// The text forms of cluster state, shared by the file and etcd stores: the mount table and a
// worker's registration, as YAML.
#pragma once

#include <string>

#include "cluster/cluster_store.h"
#include "cluster/mount_table.h"
#include "common/status.h"

namespace sluice::cluster {

std::string MountTableToYaml(const MountTable& table);
// `where` names the source in errors (a file, an etcd key). Empty text is an empty table.
Result<MountTable> MountTableFromYaml(const std::string& text, const std::string& where);

std::string WorkerToYaml(const WorkerInfo& worker);
Result<WorkerInfo> WorkerFromYaml(const std::string& text);

}  // namespace sluice::cluster
