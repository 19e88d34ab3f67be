// libfuse3 low-level callbacks over client::FileSystem.
#define FUSE_USE_VERSION 312
#include "fuse/fuse_mount.h"

#include <dirent.h>
#include <fcntl.h>
#include <fuse3/fuse_lowlevel.h>
#include <linux/fuse.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/logging.h"
#include "common/path.h"

namespace sluice::fuse {

int ErrnoFor(const Status& st) {
  switch (st.code()) {
    case StatusCode::kOk: return 0;
    case StatusCode::kNotFound: return ENOENT;
    case StatusCode::kInvalidArgument:
      return st.message().find("is a directory") != std::string::npos ? EISDIR : EINVAL;
    case StatusCode::kPermissionDenied: return EACCES;
    case StatusCode::kAlreadyExists: return EEXIST;
    case StatusCode::kNotSupported:
      return st.message().find("different mounts") != std::string::npos ? EXDEV : EROFS;
    case StatusCode::kNotEmpty: return ENOTEMPTY;
    case StatusCode::kOutOfRange: return EINVAL;
    case StatusCode::kTimeout: return ETIMEDOUT;
    case StatusCode::kUnavailable:
    case StatusCode::kIoError:
    case StatusCode::kResourceExhausted:
      return st.message().find("disk is full") != std::string::npos ? ENOSPC : EIO;
    case StatusCode::kCorruption:
    case StatusCode::kStale:
    case StatusCode::kInternal:
      return EIO;
  }
  return EIO;
}

namespace {

constexpr const char* kCachedXattr = "user.sluice.cached";
constexpr int kReadaheadKiB = 16384;
// The largest read libfuse asks for (its default max_write), and a pipe that holds such a
// reply whole: splicing one needs the pipe to take header + data in one go.
constexpr int kMaxReadBytes = 1 << 20;
constexpr int kSplicePipeBytes = 2 << 20;
constexpr const char* kVersionXattr = "user.sluice.version";
// FUSE_DIRECT_IO_ALLOW_MMAP (kernel 6.6): shared mmap of files opened with direct I/O.
constexpr uint64_t kDirectIoAllowMmap = 1ull << 36;
// A direct-I/O handle whose reads averaged less than this (over at least kSmallReadsSeen
// reads) marks its file for the page cache: the kernel's read-ahead serves small reads better
// than one FUSE round trip each.
constexpr uint64_t kSmallReadBytes = 128 << 10;
constexpr uint64_t kSmallReadsSeen = 16;
constexpr size_t kSmallReadsRemembered = 10000;

// Whether `dir` appears as a mount point in /proc/self/mountinfo.
bool IsMountPoint(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root MOUNTPOINT ...
    size_t p = 0;
    for (int field = 0; field < 4 && p != std::string::npos; ++field) p = line.find(' ', p + 1);
    if (p == std::string::npos) continue;
    size_t end = line.find(' ', p + 1);
    if (line.substr(p + 1, end - p - 1) == dir) return true;
  }
  return false;
}

Status CheckMountPoint(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOTCONN) {
      return InvalidArgument(dir + " is a dead FUSE mount (\"Transport endpoint is not connected\"); clear it with "
                             "`fusermount3 -u " + dir + "` and try again");
    }
    return InvalidArgument("mount point " + dir + ": " + std::strerror(errno) + " (create the directory first)");
  }
  if (!S_ISDIR(st.st_mode)) return InvalidArgument("mount point " + dir + " is not a directory");
  if (IsMountPoint(dir)) {
    return InvalidArgument(dir + " is already a mount point (unmount it first with `fusermount3 -u " + dir + "`)");
  }
  DIR* d = ::opendir(dir.c_str());
  if (!d) return InvalidArgument("mount point " + dir + ": " + std::strerror(errno));
  bool empty = true;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) empty = false;
  }
  ::closedir(d);
  if (!empty) return InvalidArgument("mount point " + dir + " is not empty; mounting would hide its files");
  return Status::Ok();
}

class LowLevelMount final : public FuseMount {
 public:
  LowLevelMount(std::string mountpoint, client::FileSystem* fs, FuseOptions options)
      : mountpoint_(std::move(mountpoint)), fs_(fs), options_(options) {
    nodes_[FUSE_ROOT_ID] = Node{"/", 1, ""};
    by_path_["/"] = FUSE_ROOT_ID;
  }
  ~LowLevelMount() override { Unmount(); }

  Status Start() {
    static const fuse_lowlevel_ops ops = MakeOps();
    std::vector<std::string> argv_storage{"sluice", "-o", "fsname=sluice,subtype=sluice,default_permissions"};
    if (options_.allow_other) argv_storage.back() += ",allow_other";
    std::vector<char*> argv;
    for (auto& a : argv_storage) argv.push_back(a.data());
    fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
    session_ = fuse_session_new(&args, &ops, sizeof(ops), this);
    fuse_opt_free_args(&args);
    if (!session_) return Internal("fuse_session_new failed");
    if (fuse_session_mount(session_, mountpoint_.c_str()) != 0) {
      fuse_session_destroy(session_);
      session_ = nullptr;
      return Status(StatusCode::kPermissionDenied, "cannot mount FUSE at " + mountpoint_ +
                                                       " (is /dev/fuse available, and are you root?)");
    }
    // Our own /dev/fuse read and write calls, only to amend the INIT reply (see WriteReply);
    // splice_send keeps spliced replies (libfuse splices only through it once hooks are set).
    fuse_custom_io io{};
    io.read = ReadRequest;
    io.writev = WriteReply;
    io.splice_send = SpliceSend;
    if (fuse_session_custom_io(session_, &io, fuse_session_fd(session_)) != 0) {
      SLUICE_LOG_WARN("cannot hook the FUSE connection of {}: large files go through the page cache", mountpoint_);
    }
    device_ = MountDevice();
    RaiseKernelReadahead();
    splice_ = PipesCanHoldAReply();
    loop_ = std::thread([this] {
      fuse_loop_config* cfg = fuse_loop_cfg_create();
      fuse_loop_cfg_set_max_threads(cfg, static_cast<unsigned>(options_.max_threads));
      fuse_session_loop_mt(session_, cfg);
      fuse_loop_cfg_destroy(cfg);
      {
        std::lock_guard<std::mutex> lock(loop_mu_);
        loop_ended_ = true;
        loop_cv_.notify_all();
      }
      if (!unmount_requested_ && options_.on_external_unmount) {
        SLUICE_LOG_INFO("{} was unmounted from outside", mountpoint_);
        options_.on_external_unmount();
      }
    });
    return Status::Ok();
  }

  // The mount's device number ("0:55"), from mountinfo: a stat() of the mount point would ask
  // this very daemon, whose loop has not started yet.
  std::string MountDevice() const {
    std::ifstream in("/proc/self/mountinfo");
    std::string line, device;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string id, parent, dev, root, point;
      fields >> id >> parent >> dev >> root >> point;
      if (point == mountpoint_) device = dev;  // the last match is the newest mount
    }
    return device;
  }

  // The kernel proposes a 128 KiB read-ahead window for FUSE; sequential training reads want
  // far more in flight. The window lives in the mount's backing-device info in sysfs (root).
  void RaiseKernelReadahead() {
    if (device_.empty()) return;
    std::string path = "/sys/class/bdi/" + device_ + "/read_ahead_kb";
    std::ofstream out(path);
    out << kReadaheadKiB << "\n";
    if (!out) SLUICE_LOG_DEBUG("cannot raise read-ahead in {}", path);
  }

  // Cached pages are spliced from their page files into the kernel when a pipe can hold a
  // whole reply. Pipes beyond fs.pipe-max-size (1 MiB by default) need CAP_SYS_RESOURCE, which
  // containers often drop; as root we raise the limit to 2 MiB instead (it only bounds what
  // one process may ask for). Without either, replies are copied: slower, still correct.
  static bool PipesCanHoldAReply() {
    auto try_pipe = [] {
      int fds[2];
      if (::pipe2(fds, O_CLOEXEC) != 0) return false;
      bool ok = ::fcntl(fds[0], F_SETPIPE_SZ, kSplicePipeBytes) >= kMaxReadBytes + 8 * 4096;
      ::close(fds[0]);
      ::close(fds[1]);
      return ok;
    };
    if (try_pipe()) return true;
    std::ofstream("/proc/sys/fs/pipe-max-size") << kSplicePipeBytes << "\n";
    if (try_pipe()) {
      SLUICE_LOG_INFO("raised fs.pipe-max-size to {} so FUSE replies can be spliced", kSplicePipeBytes);
      return true;
    }
    SLUICE_LOG_INFO("FUSE replies are copied, not spliced: pipes cannot grow to {} bytes (fs.pipe-max-size)",
                    kSplicePipeBytes);
    return false;
  }

  void Unmount() override {
    unmount_requested_ = true;
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (!session_) return;
    fuse_session_exit(session_);
    // Detaches the mount; once no file under it is open the kernel ends the connection, and
    // the loop's /dev/fuse reads fail. A file still open keeps it alive (and served) for a
    // grace period; then the connection is aborted, and that file's reads fail with ENOTCONN.
    fuse_session_unmount(session_);
    std::unique_lock<std::mutex> wait(loop_mu_);
    if (!loop_cv_.wait_for(wait, options_.unmount_grace, [this] { return loop_ended_; })) {
      SLUICE_LOG_WARN("files are still open under {}: ending their FUSE connection", mountpoint_);
      if (!AbortConnection()) {
        SLUICE_LOG_WARN("cannot abort the FUSE connection of {}; waiting for its files to close", mountpoint_);
      }
    }
    wait.unlock();
    if (loop_.joinable()) loop_.join();
    {
      std::lock_guard<std::mutex> files(mu_);
      open_files_.clear();  // their releases will never come
    }
    fuse_session_destroy(session_);
    session_ = nullptr;
    SLUICE_LOG_INFO("unmounted {}", mountpoint_);
  }

  const std::string& mountpoint() const override { return mountpoint_; }

  void Invalidate(const std::string& path) override {
    fs_->DropListed(path);
    std::vector<fuse_ino_t> below;
    fuse_ino_t parent = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [ino, node] : nodes_) {
        if (node.path == path || PathIsUnder(node.path, path)) below.push_back(ino);
      }
      auto it = path == "/" ? by_path_.end() : by_path_.find(ParentPath(path));
      if (it != by_path_.end()) parent = it->second;
    }
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (!session_) return;
    for (fuse_ino_t ino : below) fuse_lowlevel_notify_inval_inode(session_, ino, 0, 0);
    if (parent != 0) {
      const std::string name = BaseName(path);
      fuse_lowlevel_notify_inval_entry(session_, parent, name.c_str(), name.size());
    }
  }

 private:
  // Aborts the mount's connection through the fuse control file system (mounted here if it
  // is not yet: root only), which fails every pending and later request.
  bool AbortConnection() {
    size_t colon = device_.find(':');
    if (colon == std::string::npos) return false;
    const std::string dir = "/sys/fs/fuse/connections", abort = dir + "/" + device_.substr(colon + 1) + "/abort";
    if (::access(abort.c_str(), W_OK) != 0) ::mount("fusectl", dir.c_str(), "fusectl", 0, nullptr);
    std::ofstream out(abort);
    out << "1\n";
    return static_cast<bool>(out.flush());
  }

  struct Node {
    std::string path;
    uint64_t nlookup = 0;
    std::string version;  // of the last open, to tell the kernel when its cached pages are stale
  };

  // An open file. Reads of a direct-I/O handle are counted, to tell small readers apart.
  struct OpenFile {
    std::unique_ptr<client::File> file;      // opened for reading
    std::unique_ptr<client::Writer> writer;  // opened for writing (on a mount that takes writes)
    bool direct_io = false;
    std::atomic<uint64_t> reads{0}, bytes{0};
  };

  // --- direct I/O for large files ------------------------------------------------------
  // A large file read sequentially in big pieces is faster with FOPEN_DIRECT_IO: each read
  // is one copy from the worker's page into the reader's buffer, where the page cache costs
  // a copy into it, a copy out, and its upkeep (measured on 2 cores: cold 256 MiB ~7% more
  // throughput, warm ~40%). Shared mmap of such files (numpy memmaps, safetensors) needs
  // FUSE_DIRECT_IO_ALLOW_MMAP, which libfuse 3.14 cannot ask for: these hooks on the
  // connection note whether the kernel offers it in INIT and add it to libfuse's reply.
  // Without it, every file goes through the page cache.
  static ssize_t ReadRequest(int fd, void* buf, size_t len, void* userdata) {
    ssize_t n = ::read(fd, buf, len);
    auto* self = static_cast<LowLevelMount*>(userdata);
    constexpr size_t kInitIn = sizeof(fuse_in_header) + offsetof(fuse_init_in, flags2) + sizeof(uint32_t);
    if (n >= static_cast<ssize_t>(kInitIn) && !self->init_seen_.load(std::memory_order_acquire)) {
      fuse_in_header in;
      fuse_init_in init;
      std::memcpy(&in, buf, sizeof(in));
      if (in.opcode == FUSE_INIT) {
        std::memset(&init, 0, sizeof(init));
        const size_t body = std::min(static_cast<size_t>(n) - sizeof(in), sizeof(init));
        std::memcpy(&init, static_cast<char*>(buf) + sizeof(in), body);
        uint64_t flags = init.flags;
        if (init.flags & FUSE_INIT_EXT) flags |= static_cast<uint64_t>(init.flags2) << 32;
        self->init_unique_ = in.unique;
        self->kernel_allows_mmap_ = (flags & kDirectIoAllowMmap) != 0;
        self->kernel_offers_parallel_dirops_ = (flags & FUSE_PARALLEL_DIROPS) != 0;
        self->init_seen_.store(true, std::memory_order_release);
      }
    }
    return n;
  }

  static ssize_t WriteReply(int fd, iovec* iov, int count, void* userdata) {
    auto* self = static_cast<LowLevelMount*>(userdata);
    constexpr size_t kInitOut = offsetof(fuse_init_out, flags2) + sizeof(uint32_t);
    if (self->init_seen_.load(std::memory_order_acquire) && !self->init_answered_.load() && count >= 2 &&
        iov[0].iov_len >= sizeof(fuse_out_header) && iov[1].iov_len >= kInitOut) {
      fuse_out_header out;
      std::memcpy(&out, iov[0].iov_base, sizeof(out));
      if (out.unique == self->init_unique_) {
        self->init_answered_ = true;
        auto* init = static_cast<fuse_init_out*>(iov[1].iov_base);
        // Lookups and readdirs of one directory must run in parallel: on a far store each is a
        // round trip, and a loader opens many files of one directory at once. libfuse 3.14
        // leaves the flag out of its answer although the kernel offers it and its own default
        // is on (measured: 16 lookups in one directory took 16 round trips); our handlers are
        // thread-safe, so it is set here.
        if (out.error == 0 && self->kernel_offers_parallel_dirops_) init->flags |= FUSE_PARALLEL_DIROPS;
        if (out.error == 0 && self->kernel_allows_mmap_ && (init->flags & FUSE_INIT_EXT)) {
          init->flags2 |= static_cast<uint32_t>(kDirectIoAllowMmap >> 32);
          self->direct_io_ = true;
        } else {
          SLUICE_LOG_INFO("the kernel cannot map files opened with direct I/O (needs Linux 6.6): every file "
                          "of {} goes through the page cache", self->mountpoint_);
        }
      }
    }
    return ::writev(fd, iov, count);
  }

  static ssize_t SpliceSend(int fdin, off_t* offin, int fdout, off_t* offout, size_t len, unsigned flags, void*) {
    return ::splice(fdin, offin, fdout, offout, len, flags);
  }

  static LowLevelMount* Self(fuse_req_t req) { return static_cast<LowLevelMount*>(fuse_req_userdata(req)); }

  std::string PathOf(fuse_ino_t ino) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = nodes_.find(ino);
    return it == nodes_.end() ? std::string() : it->second.path;
  }

  fuse_ino_t Remember(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_path_.find(path);
    fuse_ino_t ino;
    if (it != by_path_.end()) {
      ino = it->second;
    } else {
      ino = next_ino_++;
      by_path_[path] = ino;
      nodes_[ino] = Node{path, 0, ""};
    }
    ++nodes_[ino].nlookup;
    return ino;
  }

  void Forget(fuse_ino_t ino, uint64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = nodes_.find(ino);
    if (it == nodes_.end() || ino == FUSE_ROOT_ID) return;
    it->second.nlookup -= std::min(n, it->second.nlookup);
    if (it->second.nlookup == 0) {
      by_path_.erase(it->second.path);
      nodes_.erase(it);
    }
  }

  struct stat Attr(fuse_ino_t ino, const client::FileInfo& info) const {
    struct stat st {};
    st.st_ino = ino;
    // Writable-looking: whether a mount takes writes is the worker's to say (EROFS otherwise).
    st.st_mode = info.is_dir ? (S_IFDIR | 0755) : (S_IFREG | 0644);
    st.st_nlink = info.is_dir ? 2 : 1;
    st.st_size = static_cast<off_t>(info.size);
    st.st_blocks = static_cast<blkcnt_t>((info.size + 511) / 512);
    st.st_blksize = 1 << 20;
    st.st_mtim.tv_sec = static_cast<time_t>(info.mtime_ns / 1000000000);
    st.st_mtim.tv_nsec = static_cast<long>(info.mtime_ns % 1000000000);
    if (info.mtime_ns == 0) st.st_mtim = mounted_at_;  // S3 "directories" have no time of their own
    st.st_ctim = st.st_mtim;
    st.st_atim = st.st_mtim;
    return st;
  }

  double Timeout() const { return std::chrono::duration<double>(options_.attr_timeout).count(); }

  fuse_entry_param Entry(fuse_ino_t ino, const client::FileInfo& info) const {
    fuse_entry_param e{};
    e.ino = ino;
    e.attr = Attr(ino, info);
    e.attr_timeout = Timeout();
    e.entry_timeout = Timeout();
    return e;
  }

  // A failure the reader sees only as an errno is logged with its reason (at most a line per
  // 10 s: a misconfigured store fails every file).
  static void ReplyError(fuse_req_t req, const Status& st, const char* op, const std::string& path) {
    int err = ErrnoFor(st);
    static LogLimiter limiter;
    uint64_t held_back = 0;
    if ((err == EIO || err == EACCES || err == EPERM || err == EROFS || err == ENOSPC) && limiter.Allow(&held_back)) {
      SLUICE_LOG_WARN("{} {}: {} ({} such failures not logged since the last line)", op, path, st.ToString(),
                      held_back);
    }
    fuse_reply_err(req, err);
  }

  static void ReadOnly(fuse_req_t req, const char* op, const std::string& what) {
    SLUICE_LOG_WARN("refused {} {}: the mount is read-only", op, what);
    fuse_reply_err(req, EROFS);
  }

  // --- callbacks -----------------------------------------------------------------------
  static void OnLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    auto* self = Self(req);
    if (std::strlen(name) > kMaxNameBytes) return (void)fuse_reply_err(req, ENAMETOOLONG);
    std::string path = JoinPath(self->PathOf(parent), name);
    auto info = self->fs_->Stat(path);
    if (!info.ok()) {
      if (info.status().code() == StatusCode::kNotFound) {
        fuse_entry_param e{};  // a negative entry, cached by the kernel for the TTL
        e.entry_timeout = self->Timeout();
        return (void)fuse_reply_entry(req, &e);
      }
      return ReplyError(req, info.status(), "lookup", path);
    }
    fuse_ino_t ino = self->Remember(path);
    fuse_entry_param e = self->Entry(ino, *info);
    fuse_reply_entry(req, &e);
  }

  static void OnForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    Self(req)->Forget(ino, nlookup);
    fuse_reply_none(req);
  }

  static void OnForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
    for (size_t i = 0; i < count; ++i) Self(req)->Forget(forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
  }

  static void OnGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    auto* self = Self(req);
    std::string path = self->PathOf(ino);
    if (auto* open = self->WriterOf(fi) ? self->WriterOf(fi) : self->WriterOf(path)) {
      struct stat st = self->Attr(ino, client::FileInfo{path, false, open->writer->size(), 0, ""});
      return (void)fuse_reply_attr(req, &st, 0);
    }
    auto info = self->fs_->Stat(path);
    if (!info.ok()) return ReplyError(req, info.status(), "getattr", path);
    struct stat st = self->Attr(ino, *info);
    fuse_reply_attr(req, &st, self->Timeout());
  }

  // An open directory: the page of its listing being read, fetched from the worker by cursor
  // as readdir moves on (a directory of a million entries is never held whole here).
  struct DirHandle {
    std::mutex mu;
    std::string path;
    std::vector<client::FileInfo> entries;  // GUARDED_BY(mu): entry `first + i` of the listing
    size_t first = 0;                       // GUARDED_BY(mu)
    bool more = true;                       // GUARDED_BY(mu): entries follow `entries`

    // Makes `entries` hold listing entry `index`, if the listing has one.
    Status Reach(client::FileSystem* fs, size_t index) {
      if (index < first) {  // rewound: from the start again
        entries.clear();
        first = 0;
        more = true;
      }
      while (index >= first + entries.size() && more) {
        std::string cursor = entries.empty() ? "" : BaseName(entries.back().path);
        auto page = fs->ListPage(path, cursor, client::kListPageEntries, &more);
        if (!page.ok()) return page.status();
        first += entries.size();
        entries = std::move(page).value();
        if (entries.empty()) more = false;
      }
      return Status::Ok();
    }
  };

  static void OnOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    auto* self = Self(req);
    auto handle = std::make_unique<DirHandle>();
    handle->path = self->PathOf(ino);
    if (Status st = handle->Reach(self->fs_, 0); !st.ok()) return ReplyError(req, st, "opendir", handle->path);
    fi->fh = reinterpret_cast<uint64_t>(handle.release());
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
  }

  static void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi, bool plus) {
    auto* self = Self(req);
    auto* handle = reinterpret_cast<DirHandle*>(fi->fh);
    std::unique_ptr<char[]> buf(new char[size]);  // not zeroed: only `used` bytes go out
    size_t used = 0;
    Status failed;
    std::string path;
    {
      // Unlocked before the reply: once the reader has it, it may close the directory, and
      // the release (another thread) frees the handle.
      std::lock_guard<std::mutex> lock(handle->mu);
      // Offsets: 1 = ".", 2 = "..", 3 + i = entry i.
      for (off_t i = off;; ++i) {
        if (i >= 2) {
          const auto index = static_cast<size_t>(i - 2);
          if (Status st = handle->Reach(self->fs_, index); !st.ok()) {
            if (used == 0) failed = st;  // else what fits is answered; the error comes next time
            path = handle->path;
            break;
          }
          if (index >= handle->first + handle->entries.size()) break;  // the end
        }
        std::string name;
        struct stat st {};
        fuse_entry_param e{};
        if (i < 2) {
          name = i == 0 ? "." : "..";
          st.st_ino = ino;
          st.st_mode = S_IFDIR;
          e.attr = st;
        } else {
          const auto& entry = handle->entries[static_cast<size_t>(i - 2) - handle->first];
          name = BaseName(entry.path);
          if (plus) {
            e = self->Entry(self->Remember(entry.path), entry);
            st = e.attr;
          } else {
            // readdir's d_ino is informational (lookup assigns the real inode), but it must not
            // be 0: readers skip such entries as deleted.
            st.st_ino = std::hash<std::string>()(entry.path) | 1;
            st.st_mode = entry.is_dir ? S_IFDIR : S_IFREG;
          }
        }
        size_t need = plus ? fuse_add_direntry_plus(req, buf.get() + used, size - used, name.c_str(), &e, i + 1)
                           : fuse_add_direntry(req, buf.get() + used, size - used, name.c_str(), &st, i + 1);
        if (need > size - used) {
          if (plus && i >= 2) self->Forget(e.ino, 1);  // not returned after all
          break;
        }
        used += need;
      }
    }
    if (!failed.ok()) return ReplyError(req, failed, "readdir", path);
    fuse_reply_buf(req, buf.get(), used);
  }

  static void OnReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    ReadDir(req, ino, size, off, fi, false);
  }
  static void OnReaddirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    ReadDir(req, ino, size, off, fi, true);
  }

  static void OnReleasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    std::unique_ptr<DirHandle>(reinterpret_cast<DirHandle*>(fi->fh));
    fuse_reply_err(req, 0);
  }

  static void OnOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    auto* self = Self(req);
    std::string path = self->PathOf(ino);
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
      auto writer = self->fs_->OpenForWrite(path, (fi->flags & O_TRUNC) != 0);
      if (!writer.ok()) return ReplyError(req, writer.status(), "open for writing", path);
      return self->ReplyOpenForWrite(req, fi, std::move(writer).value(), nullptr);
    }
    auto file = self->fs_->Open(path);
    if (!file.ok()) return ReplyError(req, file.status(), "open", path);
    {
      // Keep the kernel's cached pages only while the content is the one they came from.
      std::lock_guard<std::mutex> lock(self->mu_);
      auto& node = self->nodes_[ino];
      fi->keep_cache = node.version == (*file)->info().version ? 1 : 0;
      node.version = (*file)->info().version;
      const uint64_t min_size = self->options_.direct_io_min_size;
      auto open = std::make_unique<OpenFile>();
      open->direct_io = self->direct_io_ && min_size > 0 && (*file)->info().size >= min_size &&
                        self->small_reads_.count((*file)->info().path) == 0;
      open->file = std::move(file).value();
      fi->direct_io = open->direct_io ? 1 : 0;
      fi->fh = reinterpret_cast<uint64_t>(open.get());
      self->open_files_.emplace(fi->fh, std::move(open));
    }
    fuse_reply_open(req, fi);
  }

  // The file open for writing under `fi` (getattr and setattr may come with a directory's
  // handle, or a reader's), or null.
  OpenFile* WriterOf(const fuse_file_info* fi) {
    if (!fi) return nullptr;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = open_files_.find(fi->fh);
    return it != open_files_.end() && it->second->writer ? it->second.get() : nullptr;
  }

  // A file open for writing at `path` (its size is the writer's until it is closed), or null.
  OpenFile* WriterOf(const std::string& path) {
    if (writers_open_.load(std::memory_order_relaxed) == 0) return nullptr;  // readers pay nothing
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [fh, open] : open_files_) {
      if (open->writer && open->writer->path() == path) return open.get();
    }
    return nullptr;
  }

  // Answers an open (or, with `entry`, a create) that got a writer. Writes bypass the page
  // cache: the worker stages them, and the kernel must not serve this handle stale pages.
  void ReplyOpenForWrite(fuse_req_t req, fuse_file_info* fi, std::unique_ptr<client::Writer> writer,
                         const fuse_entry_param* entry) {
    auto open = std::make_unique<OpenFile>();
    open->writer = std::move(writer);
    fi->direct_io = 1;
    fi->keep_cache = 0;
    fi->fh = reinterpret_cast<uint64_t>(open.get());
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_files_.emplace(fi->fh, std::move(open));
      ++writers_open_;
    }
    if (entry) {
      fuse_reply_create(req, entry, fi);
    } else {
      fuse_reply_open(req, fi);
    }
  }

  static void OnRead(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
    auto* open = reinterpret_cast<OpenFile*>(fi->fh);
    client::File* file = open->file.get();
    if (!file) {
      SLUICE_LOG_WARN("read of {}: it is open for writing, and sluice reads a file once it is closed",
                      open->writer->path());
      return (void)fuse_reply_err(req, EBADF);
    }
    if (open->direct_io) {
      open->reads.fetch_add(1, std::memory_order_relaxed);
      open->bytes.fetch_add(size, std::memory_order_relaxed);
    }
    thread_local std::vector<char> buf;
    if (buf.size() < size) buf.resize(size);
    std::vector<client::ReadSpan> spans;
    auto n = file->ReadAt(static_cast<uint64_t>(off), size, buf.data(), &spans, Self(req)->splice_);
    if (!n.ok()) return ReplyError(req, n.status(), "read", file->info().path);
    if (spans.empty()) {
      fuse_reply_buf(req, buf.data(), *n);
      return;
    }
    ReplySpans(req, spans, buf.data());
  }

  // Answers a read from its spans (ReadAt): pages of this process's worker go to the kernel
  // straight from where they lie, page files by splice, the rest from `buf`.
  static void ReplySpans(fuse_req_t req, const std::vector<client::ReadSpan>& spans, char* buf) {
    bool files = false;
    for (const auto& s : spans) files = files || s.fd.valid();
    if (!files) {
      std::vector<iovec> iov(spans.size());
      size_t at = 0;
      for (size_t i = 0; i < spans.size(); ++i) {
        char* base = spans[i].page ? const_cast<char*>(spans[i].page->data()) + spans[i].offset : buf + at;
        iov[i] = iovec{base, spans[i].length};
        at += spans[i].length;
      }
      fuse_reply_iov(req, iov.data(), static_cast<int>(iov.size()));
      return;
    }
    std::vector<char> storage(sizeof(fuse_bufvec) + (spans.size() - 1) * sizeof(fuse_buf));
    auto* vec = new (storage.data()) fuse_bufvec{};
    vec->count = spans.size();
    size_t at = 0;
    for (size_t i = 0; i < spans.size(); ++i) {
      fuse_buf& b = vec->buf[i];
      b = fuse_buf{};
      b.size = spans[i].length;
      if (spans[i].fd.valid()) {
        b.flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
        b.fd = spans[i].fd.get();
        b.pos = static_cast<off_t>(spans[i].offset);
      } else if (spans[i].page) {
        b.mem = const_cast<char*>(spans[i].page->data()) + spans[i].offset;
      } else {
        b.mem = buf + at;
      }
      at += spans[i].length;
    }
    fuse_reply_data(req, vec, FUSE_BUF_SPLICE_MOVE);
  }

  static void OnRelease(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    std::unique_ptr<OpenFile> open;  // closed once the lock is dropped
    {
      auto* self = Self(req);
      std::lock_guard<std::mutex> lock(self->mu_);
      auto it = self->open_files_.find(fi->fh);
      if (it != self->open_files_.end()) {
        open = std::move(it->second);
        self->open_files_.erase(it);
        if (open->writer) --self->writers_open_;
      }
      if (open && open->file) {
        const uint64_t reads = open->reads.load(), bytes = open->bytes.load();
        if (open->direct_io && reads >= kSmallReadsSeen && bytes / reads < kSmallReadBytes) {
          if (self->small_reads_.size() >= kSmallReadsRemembered) self->small_reads_.clear();
          self->small_reads_.insert(open->file->info().path);
          SLUICE_LOG_INFO("{} was read {} bytes at a time: later opens of it go through the page cache",
                          open->file->info().path, bytes / reads);
        }
      }
    }
    // Flush committed what was written; a commit failure after it (a write between the two)
    // can only be logged.
    if (open && open->writer) {
      auto closed = open->writer->Close();
      if (!closed.ok()) SLUICE_LOG_WARN("close of {}: {}", open->writer->path(), closed.status().ToString());
    }
    fuse_reply_err(req, 0);
  }

  // close(2) and fsync(2) of a file open for writing return once the under-store holds it.
  // On a write-back mount close(2) returns once the file is on the cache disk, fsync(2) once
  // it is in the under-store too.
  static void Commit(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, const char* op, bool durable) {
    auto* open = reinterpret_cast<OpenFile*>(fi->fh);
    if (!open->writer) return (void)fuse_reply_err(req, 0);
    auto info = open->writer->Commit(durable);
    if (!info.ok()) return ReplyError(req, info.status(), op, open->writer->path());
    auto* self = Self(req);
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      auto node = self->nodes_.find(ino);
      if (node != self->nodes_.end()) node->second.version = info->version;
    }
    fuse_reply_err(req, 0);
  }
  static void OnFlush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) { Commit(req, ino, fi, "close", false); }
  static void OnFsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info* fi) { Commit(req, ino, fi, "fsync", true); }

  static void OnStatfs(fuse_req_t req, fuse_ino_t) {
    auto* self = Self(req);
    struct statvfs st {};
    st.f_bsize = st.f_frsize = 4096;
    st.f_namemax = kMaxNameBytes;
    auto report = self->fs_->Report();
    if (report.ok()) {
      uint64_t quota = 0, used = 0;
      for (const auto& t : report->tiers()) {
        if (t.name() == "memory") continue;  // capacity is what the disks hold
        quota += t.quota();
        used += t.bytes();
      }
      st.f_blocks = quota / st.f_frsize;
      st.f_bfree = st.f_bavail = (quota - std::min(quota, used)) / st.f_frsize;
    }
    fuse_reply_statfs(req, &st);
  }

  static void OnGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
    auto* self = Self(req);
    // ENOSYS: the kernel stops asking (and answers EOPNOTSUPP itself) for the mount's lifetime.
    if (!self->options_.xattrs) return (void)fuse_reply_err(req, ENOSYS);
    std::string path = self->PathOf(ino);
    std::string value;
    if (std::strcmp(name, kCachedXattr) == 0) {
      auto r = self->fs_->CheckCached(path);
      if (!r.ok()) return ReplyError(req, r.status(), "getxattr", path);
      value = std::to_string(r->cached_bytes()) + "/" + std::to_string(r->bytes());
    } else if (std::strcmp(name, kVersionXattr) == 0) {
      auto info = self->fs_->Stat(path);
      if (!info.ok()) return ReplyError(req, info.status(), "getxattr", path);
      value = info->version;
    } else {
      return (void)fuse_reply_err(req, ENODATA);
    }
    if (size == 0) return (void)fuse_reply_xattr(req, value.size());
    if (size < value.size()) return (void)fuse_reply_err(req, ERANGE);
    fuse_reply_buf(req, value.data(), value.size());
  }

  static void OnListxattr(fuse_req_t req, fuse_ino_t, size_t size) {
    if (!Self(req)->options_.xattrs) return (void)fuse_reply_err(req, ENOSYS);
    std::string names = std::string(kCachedXattr) + '\0' + kVersionXattr + '\0';
    if (size == 0) return (void)fuse_reply_xattr(req, names.size());
    if (size < names.size()) return (void)fuse_reply_err(req, ERANGE);
    fuse_reply_buf(req, names.data(), names.size());
  }

  // Whether a write is allowed is told when it is tried (EROFS on a read-only mount).
  static void OnAccess(fuse_req_t req, fuse_ino_t, int) { fuse_reply_err(req, 0); }

  // Replies with the entry of `path`, just made.
  void ReplyNewEntry(fuse_req_t req, const std::string& path, const char* op) {
    auto info = fs_->Stat(path);
    if (!info.ok()) return ReplyError(req, info.status(), op, path);
    fuse_entry_param e = Entry(Remember(path), *info);
    fuse_reply_entry(req, &e);
  }

  // The namespace changes, on mounts that take writes.
  static void OnMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t) {
    auto* self = Self(req);
    std::string path = JoinPath(self->PathOf(parent), name);
    Status st = self->fs_->Mkdir(path);
    if (!st.ok()) return ReplyError(req, st, "mkdir", path);
    self->ReplyNewEntry(req, path, "mkdir");
  }
  static void OnMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t) {
    auto* self = Self(req);
    std::string path = JoinPath(self->PathOf(parent), name);
    if (!S_ISREG(mode)) return ReadOnly(req, "mknod of a special file", path);
    auto writer = self->fs_->OpenForWrite(path, true);
    if (!writer.ok()) return ReplyError(req, writer.status(), "mknod", path);
    auto made = (*writer)->Close();
    if (!made.ok()) return ReplyError(req, made.status(), "mknod", path);
    self->ReplyNewEntry(req, path, "mknod");
  }
  static void OnCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t, fuse_file_info* fi) {
    auto* self = Self(req);
    std::string path = JoinPath(self->PathOf(parent), name);
    if (std::strlen(name) > kMaxNameBytes) return (void)fuse_reply_err(req, ENAMETOOLONG);
    auto writer = self->fs_->OpenForWrite(path, true);
    if (!writer.ok()) return ReplyError(req, writer.status(), "create", path);
    client::FileInfo info{path, false, 0, 0, ""};
    struct timespec now;
    ::clock_gettime(CLOCK_REALTIME, &now);
    info.mtime_ns = static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
    // Not cached by the kernel: the size and version come with the close.
    fuse_entry_param e = self->Entry(self->Remember(path), info);
    e.attr_timeout = 0;
    e.entry_timeout = 0;
    self->ReplyOpenForWrite(req, fi, std::move(writer).value(), &e);
  }
  static void OnUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    auto* self = Self(req);
    std::string path = JoinPath(self->PathOf(parent), name);
    Status st = self->fs_->Remove(path, false);
    if (!st.ok()) return ReplyError(req, st, "unlink", path);
    fuse_reply_err(req, 0);
  }
  static void OnRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    auto* self = Self(req);
    std::string path = JoinPath(self->PathOf(parent), name);
    Status st = self->fs_->Remove(path, true);
    if (!st.ok()) return ReplyError(req, st, "rmdir", path);
    fuse_reply_err(req, 0);
  }
  static void OnSymlink(fuse_req_t req, const char*, fuse_ino_t parent, const char* name) {
    ReadOnly(req, "symlink", JoinPath(Self(req)->PathOf(parent), name));
  }
  static void OnRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
                       const char* new_name, unsigned flags) {
    auto* self = Self(req);
    std::string from = JoinPath(self->PathOf(parent), name), to = JoinPath(self->PathOf(new_parent), new_name);
    if (flags) return (void)fuse_reply_err(req, EINVAL);  // RENAME_NOREPLACE, RENAME_EXCHANGE
    Status st = self->fs_->Rename(from, to);
    if (!st.ok()) return ReplyError(req, st, "rename", from);
    {
      // The kernel moves the inode it has to the new name: so does the table.
      std::lock_guard<std::mutex> lock(self->mu_);
      auto moved = self->by_path_.find(from);
      if (moved != self->by_path_.end()) {
        const fuse_ino_t ino = moved->second;
        self->by_path_.erase(moved);
        auto replaced = self->by_path_.find(to);
        if (replaced != self->by_path_.end()) self->nodes_[replaced->second].path = "";
        self->by_path_[to] = ino;
        self->nodes_[ino].path = to;
      }
    }
    fuse_reply_err(req, 0);
  }
  static void OnLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t, const char*) {
    ReadOnly(req, "link", Self(req)->PathOf(ino));
  }
  // Sizes change (truncate); modes, owners and times are not kept, and are accepted as such.
  static void OnSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
    auto* self = Self(req);
    std::string path = self->PathOf(ino);
    OpenFile* open = self->WriterOf(fi);
    if (to_set & FUSE_SET_ATTR_SIZE) {
      const uint64_t size = static_cast<uint64_t>(attr->st_size);
      if (open) {
        Status st = open->writer->Truncate(size);
        if (!st.ok()) return ReplyError(req, st, "truncate", path);
      } else {
        auto writer = self->fs_->OpenForWrite(path, size == 0);
        if (!writer.ok()) return ReplyError(req, writer.status(), "truncate", path);
        Status st = size == 0 ? Status::Ok() : (*writer)->Truncate(size);
        auto closed = st.ok() ? (*writer)->Close() : Result<client::FileInfo>(st);
        if (!closed.ok()) return ReplyError(req, closed.status(), "truncate", path);
      }
    }
    client::FileInfo info{path, false, 0, 0, ""};
    if (open) {
      info.size = open->writer->size();
    } else {
      auto stat = self->fs_->Stat(path);
      if (!stat.ok()) return ReplyError(req, stat.status(), "setattr", path);
      info = *stat;
    }
    struct stat st = self->Attr(ino, info);
    fuse_reply_attr(req, &st, open ? 0 : self->Timeout());
  }
  static void OnWrite(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t off, fuse_file_info* fi) {
    auto* open = reinterpret_cast<OpenFile*>(fi->fh);
    if (!open->writer) return (void)fuse_reply_err(req, EBADF);
    Status st = open->writer->Write(static_cast<uint64_t>(off), std::string_view(data, size));
    if (!st.ok()) return ReplyError(req, st, "write", open->writer->path());
    fuse_reply_write(req, size);
  }
  static void OnSetxattr(fuse_req_t req, fuse_ino_t ino, const char*, const char*, size_t, int) {
    ReadOnly(req, "setxattr", Self(req)->PathOf(ino));
  }
  static void OnRemovexattr(fuse_req_t req, fuse_ino_t ino, const char*) {
    ReadOnly(req, "removexattr", Self(req)->PathOf(ino));
  }

  static void OnInit(void* self, fuse_conn_info* conn) {
    conn->max_readahead = UINT32_MAX;  // the kernel caps it at what it allows
    conn->max_background = 64;
    conn->congestion_threshold = 48;
    conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
    conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;  // open(O_TRUNC) comes as one request, not a setattr first
    conn->max_write = 1 << 20;  // 1 MiB per WRITE request, as torch.save's writes come
    auto* mount = static_cast<LowLevelMount*>(self);
    mount->splice_ = mount->splice_ && (conn->capable & FUSE_CAP_SPLICE_WRITE);
    if (mount->splice_) conn->want |= FUSE_CAP_SPLICE_WRITE;
  }

  static fuse_lowlevel_ops MakeOps() {
    fuse_lowlevel_ops ops{};
    ops.init = OnInit;
    ops.lookup = OnLookup;
    ops.forget = OnForget;
    ops.forget_multi = OnForgetMulti;
    ops.getattr = OnGetattr;
    ops.opendir = OnOpendir;
    ops.readdir = OnReaddir;
    ops.readdirplus = OnReaddirplus;
    ops.releasedir = OnReleasedir;
    ops.open = OnOpen;
    ops.read = OnRead;
    ops.release = OnRelease;
    ops.statfs = OnStatfs;
    ops.getxattr = OnGetxattr;
    ops.listxattr = OnListxattr;
    ops.access = OnAccess;
    ops.mkdir = OnMkdir;
    ops.mknod = OnMknod;
    ops.create = OnCreate;
    ops.unlink = OnUnlink;
    ops.rmdir = OnRmdir;
    ops.symlink = OnSymlink;
    ops.rename = OnRename;
    ops.link = OnLink;
    ops.setattr = OnSetattr;
    ops.write = OnWrite;
    ops.flush = OnFlush;
    ops.fsync = OnFsync;
    ops.setxattr = OnSetxattr;
    ops.removexattr = OnRemovexattr;
    return ops;
  }

  const std::string mountpoint_;
  client::FileSystem* const fs_;
  const FuseOptions options_;
  std::mutex mu_;
  std::unordered_map<fuse_ino_t, Node> nodes_;          // GUARDED_BY(mu_)
  std::unordered_map<std::string, fuse_ino_t> by_path_;  // GUARDED_BY(mu_)
  // Open files by handle: those whose release never came (an aborted connection) close with
  // the mount.
  std::unordered_map<uint64_t, std::unique_ptr<OpenFile>> open_files_;  // GUARDED_BY(mu_)
  std::atomic<uint64_t> writers_open_{0};  // of open_files_, those open for writing
  fuse_ino_t next_ino_ = FUSE_ROOT_ID + 1;               // GUARDED_BY(mu_)
  // Paths read in small pieces through direct I/O (by path: the kernel forgets inodes).
  std::unordered_set<std::string> small_reads_;  // GUARDED_BY(mu_)
  std::mutex stop_mu_;
  std::atomic<bool> unmount_requested_{false};
  const timespec mounted_at_ = [] {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    return now;
  }();
  fuse_session* session_ = nullptr;
  bool splice_ = false;  // set before the loop starts
  // The INIT exchange (ReadRequest, WriteReply): written by the thread that handles INIT,
  // before any other request arrives.
  std::atomic<bool> init_seen_{false}, init_answered_{false};
  uint64_t init_unique_ = 0;
  bool kernel_allows_mmap_ = false;
  bool kernel_offers_parallel_dirops_ = false;
  std::atomic<bool> direct_io_{false};  // large files are opened with direct I/O
  std::thread loop_;
  std::string device_;  // "major:minor" of the mount, from mountinfo
  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool loop_ended_ = false;  // GUARDED_BY(loop_mu_)
};

}  // namespace

Result<std::unique_ptr<FuseMount>> FuseMount::Mount(const std::string& mountpoint, client::FileSystem* fs,
                                                   FuseOptions options) {
  std::error_code ec;
  std::string dir = std::filesystem::absolute(mountpoint, ec).lexically_normal().string();
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  SLUICE_RETURN_IF_ERROR(CheckMountPoint(dir));
  auto mount = std::make_unique<LowLevelMount>(dir, fs, options);
  SLUICE_RETURN_IF_ERROR(mount->Start());
  return std::unique_ptr<FuseMount>(std::move(mount));
}

}  // namespace sluice::fuse
