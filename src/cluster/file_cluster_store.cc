// The file-based ClusterStore: YAML files in a directory, guarded by flock.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cluster/cluster_store.h"

namespace sluice::cluster {
namespace {

// An exclusive flock on DIR/lock for the life of the object.
class DirLock {
 public:
  explicit DirLock(const std::string& dir) {
    fd_ = ::open((dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

Status WriteAtomically(const std::string& path, const std::string& text, mode_t mode) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return IoError("cannot write " + tmp + ": " + std::strerror(errno));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return IoError("cannot write " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class FileClusterStore final : public ClusterStore {
 public:
  explicit FileClusterStore(std::string dir) : dir_(std::move(dir)) {}

  std::string Describe() const override { return "file cluster store " + dir_; }

  Result<MountTable> LoadMounts() override {
    DirLock lock(dir_);
    return LoadLocked();
  }

  Status UpdateMounts(const std::function<Status(MountTable*)>& change) override {
    DirLock lock(dir_);
    if (!lock.ok()) return IoError("cannot lock " + dir_ + "/lock: " + std::strerror(errno));
    SLUICE_ASSIGN_OR_RETURN(MountTable table, LoadLocked());
    SLUICE_RETURN_IF_ERROR(change(&table));
    return SaveLocked(table);
  }

  std::string MountsVersion() override {
    struct stat st;
    if (::stat(MountsPath().c_str(), &st) != 0) return "none";
    return std::to_string(st.st_ino) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_size);
  }

  Status RegisterWorker(const WorkerInfo& w) override {
    YAML::Emitter out;
    out << YAML::BeginMap << YAML::Key << "id" << YAML::Value << w.id << YAML::Key << "host" << YAML::Value << w.host
        << YAML::Key << "rpc_port" << YAML::Value << w.rpc_port << YAML::Key << "http_port" << YAML::Value
        << w.http_port << YAML::Key << "pid" << YAML::Value << w.pid << YAML::EndMap;
    std::error_code ec;
    std::filesystem::create_directories(dir_ + "/workers", ec);
    return WriteAtomically(dir_ + "/workers/" + w.id + ".yaml", std::string(out.c_str()) + "\n", 0644);
  }

  Status UnregisterWorker(const std::string& id) override {
    if (::unlink((dir_ + "/workers/" + id + ".yaml").c_str()) != 0 && errno != ENOENT) {
      return IoError("cannot unregister worker " + id + ": " + std::strerror(errno));
    }
    return Status::Ok();
  }

  Result<std::vector<WorkerInfo>> Workers() override {
    std::vector<WorkerInfo> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/workers", ec)) {
      if (e.path().extension() != ".yaml") continue;
      try {
        YAML::Node n = YAML::LoadFile(e.path().string());
        WorkerInfo w;
        w.id = n["id"].as<std::string>();
        w.host = n["host"].as<std::string>();
        w.rpc_port = n["rpc_port"].as<int>();
        w.http_port = n["http_port"].as<int>();
        w.pid = n["pid"].as<int64_t>();
        // A worker that died without unregistering leaves its file: skip it.
        if (w.pid > 0 && ::kill(static_cast<pid_t>(w.pid), 0) != 0 && errno == ESRCH) continue;
        out.push_back(std::move(w));
      } catch (const YAML::Exception&) {
        continue;  // being rewritten, or garbage: not a worker
      }
    }
    std::sort(out.begin(), out.end(), [](const WorkerInfo& a, const WorkerInfo& b) { return a.id < b.id; });
    return out;
  }

 private:
  std::string MountsPath() const { return dir_ + "/mounts.yaml"; }

  Result<MountTable> LoadLocked() {
    std::string text = ReadText(MountsPath());
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
          if (!mode.ok()) return Corruption(MountsPath() + ": mount " + m.path + ": " + mode.status().message());
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
      return Corruption(MountsPath() + " is damaged: " + e.what());
    }
    return MountTable(std::move(mounts));
  }

  Status SaveLocked(const MountTable& table) {
    YAML::Emitter out;
    out << YAML::BeginMap << YAML::Key << "mounts" << YAML::Value << YAML::BeginSeq;
    for (const auto& m : table.mounts()) {
      out << YAML::BeginMap << YAML::Key << "path" << YAML::Value << m.path << YAML::Key << "uri" << YAML::Value
          << m.uri << YAML::Key << "write_mode" << YAML::Value << WriteModeName(m.options.write_mode) << YAML::Key
          << "metadata_ttl_ms" << YAML::Value
          << std::chrono::duration_cast<std::chrono::milliseconds>(m.options.metadata_ttl).count() << YAML::Key
          << "replicas" << YAML::Value << m.options.replicas << YAML::Key << "ufs_max_concurrency" << YAML::Value
          << m.options.ufs_max_concurrency << YAML::Key << "ufs_rate_limit" << YAML::Value
          << m.options.ufs_rate_limit << YAML::Key << "options" << YAML::Value << YAML::BeginMap;
      for (const auto& [k, v] : m.options.ufs_options) out << YAML::Key << k << YAML::Value << v;
      out << YAML::EndMap << YAML::EndMap;
    }
    out << YAML::EndSeq << YAML::EndMap;
    return WriteAtomically(MountsPath(), std::string(out.c_str()) + "\n", 0600);
  }

  const std::string dir_;
};

}  // namespace

std::string DefaultClusterDir() {
  const char* home = std::getenv("SLUICE_HOME");
  return home && *home ? home : "/var/lib/sluice";
}

Result<std::unique_ptr<ClusterStore>> OpenFileClusterStore(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir + "/workers", ec);
  if (ec) return IoError("cannot create cluster directory " + dir + ": " + ec.message());
  return std::unique_ptr<ClusterStore>(std::make_unique<FileClusterStore>(dir));
}

}  // namespace sluice::cluster
