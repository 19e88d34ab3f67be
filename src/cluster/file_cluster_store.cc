// The file-based ClusterStore: YAML files in a directory, guarded by flock.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cluster/cluster_store.h"
#include "cluster/cluster_yaml.h"

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
    std::error_code ec;
    std::filesystem::create_directories(dir_ + "/workers", ec);
    return WriteAtomically(dir_ + "/workers/" + w.id + ".yaml", WorkerToYaml(w), 0644);
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
      auto w = WorkerFromYaml(ReadText(e.path().string()));
      if (!w.ok()) continue;  // being rewritten, or garbage: not a worker
      // A worker that died without unregistering leaves its file: skip it.
      if (w->pid > 0 && ::kill(static_cast<pid_t>(w->pid), 0) != 0 && errno == ESRCH) continue;
      out.push_back(std::move(*w));
    }
    std::sort(out.begin(), out.end(), [](const WorkerInfo& a, const WorkerInfo& b) { return a.id < b.id; });
    return out;
  }

  Status PutRecord(const std::string& kind, const std::string& id, const std::string& text) override {
    std::error_code ec;
    std::filesystem::create_directories(dir_ + "/records/" + kind, ec);
    return WriteAtomically(dir_ + "/records/" + kind + "/" + id, text, 0600);
  }

  Result<std::string> GetRecord(const std::string& kind, const std::string& id) override {
    const std::string path = dir_ + "/records/" + kind + "/" + id;
    if (::access(path.c_str(), F_OK) != 0) return NotFound("no " + kind + " " + id + " in " + dir_);
    return ReadText(path);
  }

  Result<std::vector<std::string>> ListRecords(const std::string& kind) override {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/records/" + kind, ec)) {
      if (e.path().string().find(".tmp.") == std::string::npos) out.push_back(ReadText(e.path().string()));
    }
    return out;
  }

 private:
  std::string MountsPath() const { return dir_ + "/mounts.yaml"; }

  Result<MountTable> LoadLocked() { return MountTableFromYaml(ReadText(MountsPath()), MountsPath()); }

  Status SaveLocked(const MountTable& table) { return WriteAtomically(MountsPath(), MountTableToYaml(table), 0600); }

  const std::string dir_;
};

// The file store's mounts and records, with the workers a config lists.
class StaticWorkersStore final : public ClusterStore {
 public:
  StaticWorkersStore(std::unique_ptr<ClusterStore> base, std::vector<std::string> endpoints)
      : base_(std::move(base)), endpoints_(std::move(endpoints)) {}

  std::string Describe() const override { return base_->Describe() + " with " + std::to_string(endpoints_.size()) + " listed workers"; }
  Result<MountTable> LoadMounts() override { return base_->LoadMounts(); }
  Status UpdateMounts(const std::function<Status(MountTable*)>& change) override { return base_->UpdateMounts(change); }
  std::string MountsVersion() override { return base_->MountsVersion(); }
  Status RegisterWorker(const WorkerInfo&) override { return Status::Ok(); }
  Status UnregisterWorker(const std::string&) override { return Status::Ok(); }
  Result<std::vector<WorkerInfo>> Workers() override {
    std::vector<WorkerInfo> out;
    for (const auto& e : endpoints_) {
      WorkerInfo w;
      w.id = e;
      const size_t colon = e.rfind(':');
      w.host = e.substr(0, colon);
      w.rpc_port = std::atoi(e.c_str() + colon + 1);
      out.push_back(std::move(w));
    }
    std::sort(out.begin(), out.end(), [](const WorkerInfo& a, const WorkerInfo& b) { return a.id < b.id; });
    return out;
  }
  Status PutRecord(const std::string& kind, const std::string& id, const std::string& text) override {
    return base_->PutRecord(kind, id, text);
  }
  Result<std::string> GetRecord(const std::string& kind, const std::string& id) override { return base_->GetRecord(kind, id); }
  Result<std::vector<std::string>> ListRecords(const std::string& kind) override { return base_->ListRecords(kind); }

 private:
  const std::unique_ptr<ClusterStore> base_;
  const std::vector<std::string> endpoints_;
};

}  // namespace

std::unique_ptr<ClusterStore> WithStaticWorkers(std::unique_ptr<ClusterStore> base, std::vector<std::string> endpoints) {
  return std::make_unique<StaticWorkersStore>(std::move(base), std::move(endpoints));
}

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
