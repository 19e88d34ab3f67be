// file:// under-store: a local or NFS directory, read with pread so a range never reads the
// whole file; writes go to a temporary file renamed into place, so readers never see half a file.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/unique_fd.h"
#include "ufs/stores.h"

namespace sluice::ufs {
namespace {

constexpr size_t kReadChunk = 1 << 20;

Status ErrnoStatus(int err, const std::string& what) {
  std::string msg = what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return NotFound(msg);
    case EACCES:
    case EPERM:
      return Status(StatusCode::kPermissionDenied, msg);
    case ENOSPC:
    case EDQUOT:
      return Status(StatusCode::kResourceExhausted, msg);
    case ENAMETOOLONG:
      return InvalidArgument(msg);
    case EISDIR:
      return InvalidArgument(msg + " (it is a directory)");
    default:
      return IoError(msg);
  }
}

ObjectInfo InfoFromStat(const std::string& key, const struct stat& st) {
  ObjectInfo info;
  info.path = key;
  info.is_dir = S_ISDIR(st.st_mode);
  info.size = info.is_dir ? 0 : static_cast<uint64_t>(st.st_size);
  info.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return info;
}

class LocalStore final : public UnderStore {
 public:
  explicit LocalStore(std::string root) : root_(std::move(root)) {}

  std::string Uri() const override { return "file://" + root_; }

  Result<ObjectInfo> Stat(std::string_view path) override {
    SLUICE_ASSIGN_OR_RETURN(std::string key, NormalizeKey(path));
    struct stat st;
    if (::stat(FullPath(key).c_str(), &st) != 0) return ErrnoStatus(errno, Describe(key));
    return InfoFromStat(key, st);
  }

  Result<ListPage> List(std::string_view dir, const ListOptions& options) override {
    SLUICE_ASSIGN_OR_RETURN(std::string key, NormalizeKey(dir));
    std::vector<ObjectInfo> all;
    SLUICE_RETURN_IF_ERROR(Walk(key, options.recursive, &all));
    return PageOf(std::move(all), options);
  }

  Result<uint64_t> Read(std::string_view path, uint64_t offset, uint64_t length, const ByteSink& sink) override {
    return ReadChecked(path, offset, length, "", sink);
  }

  Result<uint64_t> ReadVersion(std::string_view path, uint64_t offset, uint64_t length, std::string_view version,
                               const ByteSink& sink) override {
    return ReadChecked(path, offset, length, version, sink);
  }

  // Reads, checking the open file's mtime and size against `version` (when given) before
  // the first byte goes out.
  Result<uint64_t> ReadChecked(std::string_view path, uint64_t offset, uint64_t length, std::string_view version,
                               const ByteSink& sink) {
    SLUICE_ASSIGN_OR_RETURN(std::string key, NormalizeKey(path));
    UniqueFd fd(::open(FullPath(key).c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return ErrnoStatus(errno, Describe(key));
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, Describe(key));
    if (S_ISDIR(st.st_mode)) return InvalidArgument(Describe(key) + " is a directory");
    if (!version.empty()) {
      std::string now = InfoFromStat(key, st).Version();
      if (now != version) {
        return Status(StatusCode::kStale, Describe(key) + " changed in the under-store (now " + now + ", expected " +
                                              std::string(version) + ")");
      }
    }
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (offset >= size || length == 0) return uint64_t{0};
    uint64_t end = std::min(size, offset + std::min(length, size - offset));
    std::string buf(std::min<uint64_t>(kReadChunk, end - offset), '\0');
    uint64_t pos = offset;
    while (pos < end) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - pos));
      ssize_t n = ::pread(fd.get(), buf.data(), want, static_cast<off_t>(pos));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, Describe(key));
      }
      if (n == 0) break;  // the file shrank under us
      SLUICE_RETURN_IF_ERROR(sink(std::string_view(buf.data(), static_cast<size_t>(n))));
      pos += static_cast<uint64_t>(n);
    }
    return pos - offset;
  }

  Status Write(std::string_view path, std::string_view data) override {
    SLUICE_ASSIGN_OR_RETURN(std::string key, NormalizeKey(path));
    if (key.empty()) return InvalidArgument("cannot write to the root of " + Uri());
    std::string full = FullPath(key);
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(full).parent_path(), ec);
    if (ec) return ErrnoStatus(ec.value(), Describe(key));
    std::string tmp = full + ".sluice-tmp-" + std::to_string(::getpid()) + "-" + std::to_string(Counter());
    {
      UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (fd.get() < 0) return ErrnoStatus(errno, Describe(key));
      size_t done = 0;
      while (done < data.size()) {
        ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
        if (n < 0) {
          if (errno == EINTR) continue;
          int err = errno;
          ::unlink(tmp.c_str());
          return ErrnoStatus(err, Describe(key));
        }
        done += static_cast<size_t>(n);
      }
    }
    if (::rename(tmp.c_str(), full.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoStatus(err, Describe(key));
    }
    return Status::Ok();
  }

  Status Delete(std::string_view path) override {
    SLUICE_ASSIGN_OR_RETURN(std::string key, NormalizeKey(path));
    if (key.empty()) return InvalidArgument("cannot delete the root of " + Uri());
    std::string full = FullPath(key);
    if (::unlink(full.c_str()) == 0) return Status::Ok();
    if ((errno == EISDIR || errno == EPERM) && ::rmdir(full.c_str()) == 0) return Status::Ok();
    return ErrnoStatus(errno, Describe(key));
  }

  Status Mkdir(std::string_view path) override {
    SLUICE_ASSIGN_OR_RETURN(std::string key, NormalizeKey(path));
    std::error_code ec;
    std::filesystem::create_directories(FullPath(key), ec);
    if (ec) return ErrnoStatus(ec.value(), Describe(key));
    return Status::Ok();
  }

 private:
  std::string FullPath(const std::string& key) const {
    if (key.empty()) return root_;
    return root_ == "/" ? "/" + key : root_ + "/" + key;
  }
  std::string Describe(const std::string& key) const { return "file://" + FullPath(key); }

  static uint64_t Counter() {
    static std::atomic<uint64_t> n{0};
    return n++;
  }

  // Collects the entries below `key` (one level, or all levels when recursive).
  Status Walk(const std::string& key, bool recursive, std::vector<ObjectInfo>* out) const {
    std::string full = FullPath(key);
    DIR* d = ::opendir(full.c_str());
    if (!d) return ErrnoStatus(errno, Describe(key));
    std::vector<std::string> subdirs;
    Status status;
    while (dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name == "." || name == ".." || name.find(".sluice-tmp-") != std::string_view::npos) continue;
      std::string child = key.empty() ? std::string(name) : key + "/" + std::string(name);
      struct stat st;
      if (::fstatat(::dirfd(d), e->d_name, &st, 0) != 0) continue;  // vanished meanwhile, or a dangling link
      ObjectInfo info = InfoFromStat(child, st);
      if (info.is_dir && recursive) {
        subdirs.push_back(child);
      } else {
        out->push_back(std::move(info));
      }
    }
    ::closedir(d);
    for (const auto& sub : subdirs) SLUICE_RETURN_IF_ERROR(Walk(sub, true, out));
    return status;
  }

  const std::string root_;
};

}  // namespace

Result<std::unique_ptr<UnderStore>> NewLocalStore(std::string_view root) {
  std::string dir(root);
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return ErrnoStatus(errno, "file://" + dir);
  if (!S_ISDIR(st.st_mode)) return InvalidArgument("file://" + dir + " is not a directory");
  return std::unique_ptr<UnderStore>(std::make_unique<LocalStore>(dir));
}

}  // namespace sluice::ufs
