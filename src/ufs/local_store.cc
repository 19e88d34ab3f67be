// file:// under-store: a local or NFS directory, read with pread so a range never reads the
// whole file; writes go to a temporary file renamed into place, so readers never see half a file.
// Every path is resolved beneath a descriptor of the root (openat2(2) with RESOLVE_BENEATH, or
// a walk one component at a time where the kernel has no openat2), so a symbolic link that
// leads outside the root is refused, never followed.
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <optional>
#include <utility>

#include "common/logging.h"
#include "common/unique_fd.h"
#include "ufs/stores.h"

namespace sluice::ufs {
namespace {

constexpr size_t kReadChunk = 1 << 20;
constexpr int kMaxLinks = 40;  // as the kernel's limit on links followed in one path walk

enum class FollowSymlinks { kInside, kNever };

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

// "a/b/c" -> {"a/b", "c"}; "c" -> {"", "c"}.
std::pair<std::string, std::string> SplitKey(const std::string& key) {
  const size_t slash = key.rfind('/');
  if (slash == std::string::npos) return {"", key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

int64_t Nanos(const struct timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec; }

// The version covers the inode and ctime besides mtime and size: a writer can set the mtime
// back (utimensat) after rewriting a file in place, but not the ctime, and a file renamed
// over the old one has another inode.
ObjectInfo InfoFromStat(const std::string& key, const struct stat& st) {
  ObjectInfo info;
  info.path = key;
  info.is_dir = S_ISDIR(st.st_mode);
  info.size = info.is_dir ? 0 : static_cast<uint64_t>(st.st_size);
  info.mtime_ns = Nanos(st.st_mtim);
  if (!info.is_dir) {
    info.identity = "ino:" + std::to_string(st.st_ino) + ":ctime:" + std::to_string(Nanos(st.st_ctim));
  }
  return info;
}

// True when two stats of one open file name the same content (what InfoFromStat's version holds).
bool SameContent(const struct stat& a, const struct stat& b) {
  return a.st_ino == b.st_ino && a.st_size == b.st_size && Nanos(a.st_mtim) == Nanos(b.st_mtim) &&
         Nanos(a.st_ctim) == Nanos(b.st_ctim);
}

// The components of a relative path or link target, without empty and "." ones.
std::vector<std::string> Components(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view part = path.substr(0, slash);
    if (!part.empty() && part != ".") out.emplace_back(part);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

std::string Join(const std::string& dir, std::string_view name) {
  return dir.empty() ? std::string(name) : dir + "/" + std::string(name);
}

long OpenAt2(int dirfd, const char* path, int flags, uint64_t resolve) {
  struct open_how how;
  std::memset(&how, 0, sizeof how);
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = resolve;
  return ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

Result<FollowSymlinks> ParseFollowSymlinks(const std::string& uri, const UnderStoreOptions& options) {
  FollowSymlinks follow = FollowSymlinks::kInside;
  for (const auto& [key, value] : options.options) {
    if (key != "follow_symlinks") {
      return InvalidArgument("unknown option '" + key + "' for " + uri +
                             " (a file:// store takes one option: follow_symlinks=inside|never)");
    }
    if (value == "inside") {
      follow = FollowSymlinks::kInside;
    } else if (value == "never") {
      follow = FollowSymlinks::kNever;
    } else {
      return InvalidArgument("follow_symlinks=" + value + " for " + uri +
                             " is not a choice: use inside (follow symbolic links that stay beneath the root; the "
                             "default) or never (refuse every symbolic link)");
    }
  }
  return follow;
}

class LocalStore final : public UnderStore {
 public:
  // `root_fd`: an O_PATH descriptor of `root`; `real_root`: `root` with its links resolved.
  LocalStore(std::string root, std::string real_root, UniqueFd root_fd, FollowSymlinks follow, bool use_openat2)
      : root_(std::move(root)),
        real_root_(std::move(real_root)),
        root_fd_(std::move(root_fd)),
        follow_(follow),
        use_openat2_(use_openat2) {}

  std::string Uri() const override { return "file://" + root_; }

  Result<ObjectInfo> Stat(std::string_view path) override {
    SLUICE_ASSIGN_OR_RETURN(std::string key, NormalizeKey(path));
    SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, Open(key, O_PATH));
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, Describe(key));
    return InfoFromStat(key, st);
  }

  Result<ListPage> List(std::string_view dir, const ListOptions& options) override {
    SLUICE_ASSIGN_OR_RETURN(std::string key, NormalizeKey(dir));
    std::vector<ObjectInfo> all;
    std::vector<std::pair<dev_t, ino_t>> ancestors;
    SLUICE_RETURN_IF_ERROR(Walk(key, options.recursive, &all, &ancestors));
    return PageOf(std::move(all), options);
  }

  Result<uint64_t> Read(std::string_view path, uint64_t offset, uint64_t length, const ByteSink& sink) override {
    return ReadChecked(path, offset, length, "", sink);
  }

  Result<uint64_t> ReadVersion(std::string_view path, uint64_t offset, uint64_t length, std::string_view version,
                               const ByteSink& sink) override {
    return ReadChecked(path, offset, length, version, sink);
  }

  // Reads; with a `version`, checks the open file against it before the first byte goes out,
  // and again after each pread, before its bytes go out: a file rewritten in place while it
  // is read changes its ctime, so no byte of the new content is handed out as the old one.
  Result<uint64_t> ReadChecked(std::string_view path, uint64_t offset, uint64_t length, std::string_view version,
                               const ByteSink& sink) {
    SLUICE_ASSIGN_OR_RETURN(std::string key, NormalizeKey(path));
    SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, Open(key, O_RDONLY));
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, Describe(key));
    if (S_ISDIR(st.st_mode)) return InvalidArgument(Describe(key) + " is a directory");
    const bool pinned = !version.empty();
    if (pinned) {
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
      if (pinned) {
        struct stat after;
        if (::fstat(fd.get(), &after) != 0) return ErrnoStatus(errno, Describe(key));
        if (!SameContent(st, after)) {
          return Status(StatusCode::kStale, Describe(key) + " changed in the under-store while it was read (now " +
                                                InfoFromStat(key, after).Version() + ", expected " +
                                                std::string(version) + ")");
        }
      }
      if (n == 0) break;  // the file shrank under us
      SLUICE_RETURN_IF_ERROR(sink(std::string_view(buf.data(), static_cast<size_t>(n))));
      pos += static_cast<uint64_t>(n);
    }
    return pos - offset;
  }

  Status Write(std::string_view path, std::string_view data) override {
    SLUICE_ASSIGN_OR_RETURN(auto upload, StartUpload(path, std::max<uint64_t>(1, data.size())));
    if (!data.empty()) SLUICE_RETURN_IF_ERROR(upload->PutPart(0, data));
    return upload->Finish(data.empty() ? 0 : 1).status();
  }

  // A temporary file beside the target (hidden from listings), renamed over it by Finish.
  class LocalUpload final : public Upload {
   public:
    LocalUpload(UniqueFd dir, UniqueFd fd, std::string tmp, std::string name, std::string described,
                uint64_t part_size)
        : dir_(std::move(dir)), fd_(std::move(fd)), tmp_(std::move(tmp)), name_(std::move(name)),
          described_(std::move(described)), part_size_(part_size) {}
    ~LocalUpload() override {
      if (!finished_) ::unlinkat(dir_.get(), tmp_.c_str(), 0);
    }
    Status PutPart(uint64_t index, std::string_view data) override {
      uint64_t at = index * part_size_;
      for (size_t done = 0; done < data.size();) {
        ssize_t n = ::pwrite(fd_.get(), data.data() + done, data.size() - done, static_cast<off_t>(at + done));
        if (n < 0) {
          if (errno == EINTR) continue;
          return ErrnoStatus(errno, described_);
        }
        done += static_cast<size_t>(n);
      }
      return Status::Ok();
    }
    Result<std::string> Finish(uint64_t parts) override {
      struct stat st;
      if (::fstat(fd_.get(), &st) != 0) return ErrnoStatus(errno, described_);
      // Parts past the last one named are not part of the file.
      if (parts == 0 && ::ftruncate(fd_.get(), 0) != 0) return ErrnoStatus(errno, described_);
      if (parts && static_cast<uint64_t>(st.st_size) > parts * part_size_ &&
          ::ftruncate(fd_.get(), static_cast<off_t>(parts * part_size_)) != 0) {
        return ErrnoStatus(errno, described_);
      }
      // A link at the target itself is replaced by the file, not written through.
      if (::renameat(dir_.get(), tmp_.c_str(), dir_.get(), name_.c_str()) != 0) return ErrnoStatus(errno, described_);
      finished_ = true;
      return std::string();
    }

   private:
    const UniqueFd dir_, fd_;
    const std::string tmp_, name_, described_;
    const uint64_t part_size_;
    bool finished_ = false;
  };

  Result<std::unique_ptr<Upload>> StartUpload(std::string_view path, uint64_t part_size) override {
    SLUICE_ASSIGN_OR_RETURN(std::string key, NormalizeKey(path));
    if (key.empty()) return InvalidArgument("cannot write to the root of " + Uri());
    const auto [parent, name] = SplitKey(key);
    SLUICE_ASSIGN_OR_RETURN(UniqueFd dir, MakeDirs(parent));
    const std::string tmp = name + ".sluice-tmp-" + std::to_string(::getpid()) + "-" + std::to_string(Counter());
    // O_EXCL|O_NOFOLLOW: a link planted under the temporary name is not written through.
    UniqueFd fd(::openat(dir.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (fd.get() < 0) return ErrnoStatus(errno, Describe(key));
    return std::unique_ptr<Upload>(
        std::make_unique<LocalUpload>(std::move(dir), std::move(fd), tmp, name, Describe(key), part_size));
  }

  Status Rename(std::string_view from, std::string_view to) override {
    SLUICE_ASSIGN_OR_RETURN(std::string src, NormalizeKey(from));
    SLUICE_ASSIGN_OR_RETURN(std::string dst, NormalizeKey(to));
    if (src.empty() || dst.empty()) return InvalidArgument("cannot rename the root of " + Uri());
    const auto [src_parent, src_name] = SplitKey(src);
    const auto [dst_parent, dst_name] = SplitKey(dst);
    SLUICE_ASSIGN_OR_RETURN(UniqueFd src_dir, Open(src_parent, O_PATH | O_DIRECTORY));
    SLUICE_ASSIGN_OR_RETURN(UniqueFd dst_dir, MakeDirs(dst_parent));
    if (::renameat(src_dir.get(), src_name.c_str(), dst_dir.get(), dst_name.c_str()) != 0) {
      return ErrnoStatus(errno, Describe(src) + " -> " + Describe(dst));
    }
    return Status::Ok();
  }

  Status Delete(std::string_view path) override {
    SLUICE_ASSIGN_OR_RETURN(std::string key, NormalizeKey(path));
    if (key.empty()) return InvalidArgument("cannot delete the root of " + Uri());
    const auto [parent, name] = SplitKey(key);
    SLUICE_ASSIGN_OR_RETURN(UniqueFd dir, Open(parent, O_PATH | O_DIRECTORY));
    if (::unlinkat(dir.get(), name.c_str(), 0) == 0) return Status::Ok();  // a link: the link itself
    if ((errno == EISDIR || errno == EPERM) && ::unlinkat(dir.get(), name.c_str(), AT_REMOVEDIR) == 0) {
      return Status::Ok();
    }
    return ErrnoStatus(errno, Describe(key));
  }

  Status Mkdir(std::string_view path) override {
    SLUICE_ASSIGN_OR_RETURN(std::string key, NormalizeKey(path));
    return MakeDirs(key).status();
  }

 private:
  std::string FullPath(const std::string& key) const {
    if (key.empty()) return root_;
    return root_ == "/" ? "/" + key : root_ + "/" + key;
  }
  std::string Describe(const std::string& key) const { return "file://" + FullPath(key); }

  // `link` (a prefix of `key`, or `key`) is a symbolic link whose target lies outside the root.
  Status LeadsOutside(const std::string& key, const std::string& link) const {
    std::string msg = Describe(link) + " is a symbolic link that leads outside the store's root (" + Uri() + ")";
    if (link != key) msg = "cannot reach " + Describe(key) + ": " + msg;
    return Status(StatusCode::kPermissionDenied, msg);
  }

  // `link` (a prefix of `key`, or `key`) is a symbolic link, and the store follows none.
  Status NotFollowed(const std::string& key, const std::string& link) const {
    std::string msg = Describe(link) + " is a symbolic link, and " + Uri() +
                      " follows none (it is mounted with follow_symlinks=never)";
    if (link != key) msg = "cannot reach " + Describe(key) + ": " + msg;
    return Status(StatusCode::kPermissionDenied, msg);
  }

  static uint64_t Counter() {
    static std::atomic<uint64_t> n{0};
    return n++;
  }

  // Opens `key` ("" for the root) beneath the root with open(2) `flags`, following links only
  // where they stay beneath it (never, with follow_symlinks=never). The common case is one
  // openat2 call. EXDEV (a link leads out, or is absolute), ELOOP (a link where none is
  // followed) and EAGAIN (a rename raced with "..") go on to the walk, which names the link,
  // and follows absolute links that point back beneath the root.
  Result<UniqueFd> Open(const std::string& key, int flags) const {
    if (use_openat2_.load(std::memory_order_relaxed)) {
      const uint64_t resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
                               (follow_ == FollowSymlinks::kNever ? RESOLVE_NO_SYMLINKS : 0);
      for (int attempt = 0;; ++attempt) {
        long fd = OpenAt2(root_fd_.get(), key.empty() ? "." : key.c_str(), flags, resolve);
        if (fd >= 0) return UniqueFd(static_cast<int>(fd));
        const int err = errno;
        if (err == EINTR || (err == EAGAIN && attempt < 2)) continue;
        if (err == ENOSYS) {
          use_openat2_.store(false, std::memory_order_relaxed);
          break;
        }
        if (err == EXDEV || err == ELOOP || err == EAGAIN) break;
        return ErrnoStatus(err, Describe(key));
      }
    }
    return OpenByWalk(key, flags);
  }

  // Open() one component at a time with O_NOFOLLOW, reading each link and going on from its
  // target, through descriptors only: a rename meanwhile cannot lead the walk outside.
  Result<UniqueFd> OpenByWalk(const std::string& key, int flags) const {
    struct Part {
      std::string name;
      bool given;  // a component of `key`, not of a link's target
    };
    std::deque<Part> todo;
    for (auto& name : Components(key)) todo.push_back({std::move(name), true});
    std::vector<UniqueFd> dirs;  // the directories walked into below the root, innermost last
    std::string given;           // the part of `key` walked so far: the link that errors name
    int links = 0;
    auto current = [&] { return dirs.empty() ? root_fd_.get() : dirs.back().get(); };
    while (!todo.empty()) {
      Part part = std::move(todo.front());
      todo.pop_front();
      if (part.name == "..") {
        if (dirs.empty()) return LeadsOutside(key, given);
        dirs.pop_back();
        continue;
      }
      if (part.given) given = Join(given, part.name);
      UniqueFd fd(::openat(current(), part.name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) return ErrnoStatus(errno, Describe(key));
      struct stat st;
      if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, Describe(key));
      if (S_ISLNK(st.st_mode)) {
        if (follow_ == FollowSymlinks::kNever) return NotFollowed(key, given);
        if (++links > kMaxLinks) return ErrnoStatus(ELOOP, Describe(key));
        SLUICE_ASSIGN_OR_RETURN(std::string target, ReadLink(fd.get(), Describe(given)));
        std::string_view rest = target;
        if (!target.empty() && target.front() == '/') {
          std::optional<size_t> inside = BelowRoot(target);
          if (!inside) return LeadsOutside(key, given);
          rest.remove_prefix(*inside);
          dirs.clear();
        }
        std::vector<std::string> parts = Components(rest);
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.push_front({std::move(*it), false});
        continue;
      }
      if (todo.empty()) {
        if (flags & O_PATH) {
          if ((flags & O_DIRECTORY) && !S_ISDIR(st.st_mode)) return ErrnoStatus(ENOTDIR, Describe(key));
          return fd;
        }
        UniqueFd out(::openat(current(), part.name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC));
        if (!out.valid()) return ErrnoStatus(errno, Describe(key));
        return out;
      }
      if (!S_ISDIR(st.st_mode)) return ErrnoStatus(ENOTDIR, Describe(key));
      dirs.push_back(std::move(fd));
    }
    // The path ends in a directory walked into: the root, or one reached by ".." or a link.
    UniqueFd out(::openat(current(), ".", flags | O_CLOEXEC));
    if (!out.valid()) return ErrnoStatus(errno, Describe(key));
    return out;
  }

  // The target of the link open (O_PATH) as `fd`.
  static Result<std::string> ReadLink(int fd, const std::string& what) {
    std::string target(256, '\0');
    while (true) {
      ssize_t n = ::readlinkat(fd, "", target.data(), target.size());
      if (n < 0) return ErrnoStatus(errno, what);
      if (static_cast<size_t>(n) < target.size()) {
        target.resize(static_cast<size_t>(n));
        return target;
      }
      if (target.size() > PATH_MAX) return ErrnoStatus(ENAMETOOLONG, what);
      target.resize(target.size() * 2);
    }
  }

  // Where the part of absolute link target `target` below the root begins, when it names the
  // root or a path below it (spelled as given, or with the root's own links resolved).
  std::optional<size_t> BelowRoot(std::string_view target) const {
    for (const std::string* root : {&root_, &real_root_}) {
      if (*root == "/") return size_t{0};
      if (target.substr(0, root->size()) == *root && (target.size() == root->size() || target[root->size()] == '/')) {
        return root->size();
      }
    }
    return std::nullopt;
  }

  // Opens directory `key` (O_PATH), creating it and its missing parents beneath the root.
  Result<UniqueFd> MakeDirs(const std::string& key) const {
    auto dir = Open(key, O_PATH | O_DIRECTORY);
    if (dir.ok() || dir.status().code() != StatusCode::kNotFound) return dir;
    // One level at a time, each resolved beneath the root again: a link met on the way is
    // followed only as far as a read would follow it.
    SLUICE_ASSIGN_OR_RETURN(UniqueFd parent, Open("", O_PATH | O_DIRECTORY));
    std::string prefix;
    for (const std::string& name : Components(key)) {
      prefix = Join(prefix, name);
      if (::mkdirat(parent.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoStatus(errno, Describe(prefix));
      }
      SLUICE_ASSIGN_OR_RETURN(parent, Open(prefix, O_PATH | O_DIRECTORY));
    }
    return parent;
  }

  // A link listings leave out: logged once per store, at debug, as there may be many.
  void LeftOut(const Status& why) const {
    if (!logged_left_out_.exchange(true, std::memory_order_relaxed)) {
      SLUICE_LOG_DEBUG("{}; listings leave it out (and every other such link of {}; logged once)", why.message(),
                       Uri());
    }
  }

  // Collects the entries below `key` (one level, or all levels when recursive). A link is
  // listed as what it leads to when Open() would follow it, else left out. `ancestors`: the
  // directories being walked, so a link to one of them does not loop.
  Status Walk(const std::string& key, bool recursive, std::vector<ObjectInfo>* out,
              std::vector<std::pair<dev_t, ino_t>>* ancestors) const {
    SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, Open(key, O_RDONLY | O_DIRECTORY));
    struct stat self;
    if (::fstat(fd.get(), &self) != 0) return ErrnoStatus(errno, Describe(key));
    int owned = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0);  // fdopendir takes the descriptor over
    DIR* d = owned < 0 ? nullptr : ::fdopendir(owned);
    if (!d) {
      int err = errno;
      if (owned >= 0) ::close(owned);
      return ErrnoStatus(err, Describe(key));
    }
    ancestors->emplace_back(self.st_dev, self.st_ino);
    std::vector<std::string> subdirs;
    while (dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name == "." || name == ".." || name.find(".sluice-tmp-") != std::string_view::npos) continue;
      std::string child = Join(key, name);
      struct stat st;
      if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // vanished meanwhile
      if (S_ISLNK(st.st_mode)) {
        if (follow_ == FollowSymlinks::kNever) {
          LeftOut(NotFollowed(child, child));
          continue;
        }
        auto target = Open(child, O_PATH);
        if (!target.ok()) {
          LeftOut(target.status());  // leads outside, dangles, or loops
          continue;
        }
        if (::fstat(target->get(), &st) != 0) continue;
        if (S_ISDIR(st.st_mode) && recursive &&
            std::find(ancestors->begin(), ancestors->end(), std::make_pair(st.st_dev, st.st_ino)) !=
                ancestors->end()) {
          SLUICE_LOG_DEBUG("{} is a symbolic link to a directory that holds it; a recursive listing does not follow it",
                           Describe(child));
          continue;
        }
      }
      ObjectInfo info = InfoFromStat(child, st);
      if (info.is_dir && recursive) {
        subdirs.push_back(child);
      } else {
        out->push_back(std::move(info));
      }
    }
    ::closedir(d);
    for (const auto& sub : subdirs) SLUICE_RETURN_IF_ERROR(Walk(sub, true, out, ancestors));
    ancestors->pop_back();
    return Status::Ok();
  }

  const std::string root_;
  const std::string real_root_;
  const UniqueFd root_fd_;  // O_PATH|O_DIRECTORY: every path is resolved beneath it
  const FollowSymlinks follow_;
  mutable std::atomic<bool> use_openat2_;
  mutable std::atomic<bool> logged_left_out_{false};
};

}  // namespace

Result<std::unique_ptr<UnderStore>> NewLocalStore(std::string_view root, const UnderStoreOptions& options,
                                                  bool use_openat2) {
  std::string dir(root);
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  SLUICE_ASSIGN_OR_RETURN(FollowSymlinks follow, ParseFollowSymlinks("file://" + dir, options));
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return ErrnoStatus(errno, "file://" + dir);
  if (!S_ISDIR(st.st_mode)) return InvalidArgument("file://" + dir + " is not a directory");
  UniqueFd fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, "file://" + dir);
  std::string real = dir;
  if (char* resolved = ::realpath(dir.c_str(), nullptr)) {
    real = resolved;
    std::free(resolved);
  }
  if (use_openat2) {
    // Where openat2 is missing, or a seccomp filter refuses it, paths are walked instead.
    long probe = OpenAt2(fd.get(), ".", O_PATH | O_DIRECTORY, RESOLVE_BENEATH);
    if (probe >= 0) {
      ::close(static_cast<int>(probe));
    } else {
      SLUICE_LOG_DEBUG("file://{}: openat2 is not available ({}); paths are resolved one component at a time", dir,
                       std::strerror(errno));
      use_openat2 = false;
    }
  }
  return std::unique_ptr<UnderStore>(
      std::make_unique<LocalStore>(std::move(dir), std::move(real), std::move(fd), follow, use_openat2));
}

}  // namespace sluice::ufs
