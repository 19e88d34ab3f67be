// YAML (de)serialization of the mount table and worker registrations.
#include "cluster/cluster_yaml.h"

#include <yaml-cpp/yaml.h>

namespace sluice::cluster {

std::string MountTableToYaml(const MountTable& table) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "mounts" << YAML::Value << YAML::BeginSeq;
  for (const auto& m : table.mounts()) {
    out << YAML::BeginMap << YAML::Key << "path" << YAML::Value << m.path << YAML::Key << "uri" << YAML::Value << m.uri
        << YAML::Key << "write_mode" << YAML::Value << WriteModeName(m.options.write_mode) << YAML::Key
        << "metadata_ttl_ms" << YAML::Value
        << std::chrono::duration_cast<std::chrono::milliseconds>(m.options.metadata_ttl).count() << YAML::Key
        << "replicas" << YAML::Value << m.options.replicas << YAML::Key << "ufs_max_concurrency" << YAML::Value
        << m.options.ufs_max_concurrency << YAML::Key << "ufs_rate_limit" << YAML::Value << m.options.ufs_rate_limit
        << YAML::Key << "options" << YAML::Value << YAML::BeginMap;
    for (const auto& [k, v] : m.options.ufs_options) out << YAML::Key << k << YAML::Value << v;
    out << YAML::EndMap << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

Result<MountTable> MountTableFromYaml(const std::string& text, const std::string& where) {
  std::vector<MountPoint> mounts;
  if (text.empty()) return MountTable();
  try {
    YAML::Node root = YAML::Load(text);
    for (const auto& n : root["mounts"]) {
      MountPoint m;
      m.path = n["path"].as<std::string>();
      m.uri = n["uri"].as<std::string>();
      if (n["write_mode"]) {
        auto mode = ParseWriteMode(n["write_mode"].as<std::string>());
        if (!mode.ok()) return Corruption(where + ": mount " + m.path + ": " + mode.status().message());
        m.options.write_mode = *mode;
      } else if (!n["read_only"].as<bool>(true)) {  // written before write modes
        m.options.write_mode = WriteMode::kThrough;
      }
      m.options.metadata_ttl = std::chrono::milliseconds(n["metadata_ttl_ms"].as<int64_t>(60000));
      m.options.replicas = n["replicas"].as<int>(1);
      m.options.ufs_max_concurrency = n["ufs_max_concurrency"].as<int>(64);
      m.options.ufs_rate_limit = n["ufs_rate_limit"].as<uint64_t>(0);
      for (const auto& kv : n["options"]) {
        m.options.ufs_options.emplace_back(kv.first.as<std::string>(), kv.second.as<std::string>());
      }
      mounts.push_back(std::move(m));
    }
  } catch (const YAML::Exception& e) {
    return Corruption(where + " is damaged: " + e.what());
  }
  return MountTable(std::move(mounts));
}

std::string WorkerToYaml(const WorkerInfo& w) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "id" << YAML::Value << w.id << YAML::Key << "host" << YAML::Value << w.host
      << YAML::Key << "rpc_port" << YAML::Value << w.rpc_port << YAML::Key << "http_port" << YAML::Value << w.http_port
      << YAML::Key << "pid" << YAML::Value << w.pid << YAML::Key << "capacity" << YAML::Value << w.capacity
      << YAML::Key << "zone" << YAML::Value << w.zone << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

Result<WorkerInfo> WorkerFromYaml(const std::string& text) {
  try {
    YAML::Node n = YAML::Load(text);
    WorkerInfo w;
    w.id = n["id"].as<std::string>();
    w.host = n["host"].as<std::string>();
    w.rpc_port = n["rpc_port"].as<int>();
    w.http_port = n["http_port"].as<int>();
    w.pid = n["pid"].as<int64_t>(0);
    w.capacity = n["capacity"].as<uint64_t>(0);
    w.zone = n["zone"].as<std::string>("");
    return w;
  } catch (const YAML::Exception& e) {
    return Corruption(std::string("not a worker registration: ") + e.what());
  }
}

}  // namespace sluice::cluster
