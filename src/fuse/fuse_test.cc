// The FUSE mount for real (root): `sluice local --mountpoint` as a process, read with plain
// POSIX calls and compared byte for byte with the under-store; errno for missing files,
// writes and paths outside every mount; xattrs; clean unmounts; a worker killed under a live
// `sluice fuse` mount.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <dirent.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "support/test_support.h"

namespace sluice::fuse {
namespace {

using namespace std::chrono_literals;
using testing::IsMounted;
using testing::ReadFile;
using testing::RunCommand;
using testing::Subprocess;
using testing::TempDir;
using testing::TestBytes;
using testing::WriteFile;

constexpr size_t kPage = 1 << 20;

bool KernelAtLeast(int major, int minor) {
  utsname u{};
  int ma = 0, mi = 0;
  if (::uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

// Pages of `path` in the kernel's page cache (cachestat, Linux 6.5); -1 where unknown.
int64_t CachedPages(const std::string& path) {
  struct {
    uint64_t off, len;
  } range{0, 0};  // 0 length: to the end
  struct {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
  } stat{};
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return -1;
  constexpr long kCachestat = 451;
  long rc = ::syscall(kCachestat, fd, &range, &stat, 0);
  ::close(fd);
  return rc == 0 ? static_cast<int64_t>(stat.nr_cache) : -1;
}

// The whole file, read `chunk` bytes at a time (ReadFile reads 8 KiB at a time).
std::string ReadInChunks(const std::string& path, size_t chunk) {
  std::string out, buf(chunk, '\0');
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return out;
  for (ssize_t n; (n = ::read(fd, buf.data(), buf.size())) > 0;) out.append(buf.data(), static_cast<size_t>(n));
  ::close(fd);
  return out;
}

// The names in a directory of the mount.
std::set<std::string> Names(const std::string& dir) {
  std::set<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') out.insert(e->d_name);
  }
  ::closedir(d);
  return out;
}

class FuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "needs /dev/fuse (root)";
    ufs_ = dir_.path() + "/ufs";
    mnt_ = dir_.path() + "/mnt";
    std::filesystem::create_directories(mnt_);
    for (size_t size : {size_t{0}, size_t{1}, kPage, kPage + 1, 3 * kPage + 5}) {
      WriteFile(ufs_ + "/sizes/f" + std::to_string(size), TestBytes(size, size));
    }
    WriteFile(ufs_ + "/names/with space ünïcødé 文件.txt", "unicode");
    env_ = {{"SLUICE_HOME", dir_.path() + "/home"}};
  }
  void TearDown() override {
    if (local_) local_->Stop(SIGTERM);
    if (IsMounted(mnt_)) RunCommand({"fusermount3", "-u", mnt_}, nullptr);
  }

  int Run(const std::vector<std::string>& args, std::string* out) {
    std::vector<std::string> argv{SLUICE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, out, env_);
  }

  // Starts `sluice [GLOBAL] local` with EXTRA args (and --mountpoint unless `mount` is false).
  void StartLocal(std::vector<std::string> extra, bool mount = true, std::vector<std::string> global = {}) {
    std::vector<std::string> argv{SLUICE_BINARY};
    argv.insert(argv.end(), global.begin(), global.end());
    argv.insert(argv.end(), {"local", "--rpc-port", "0", "--http-port", "0", "--cache-dir", dir_.path() + "/cache",
                             "--cache-size", "1GiB"});
    if (mount) argv.insert(argv.end(), {"--mountpoint", mnt_});
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = Subprocess::Start(argv, env_, dir_.path() + "/local.log");
    ASSERT_TRUE(p.ok());
    local_ = std::move(p).value();
    std::string out;
    ASSERT_TRUE(testing::WaitFor([&] { return Run({"report"}, &out) == 0 && (!mount || IsMounted(mnt_)); }, 20s))
        << ReadFile(dir_.path() + "/local.log");
  }

  // Writes `data` to `path` with open(O_CREAT|O_TRUNC), write and close, each checked.
  static void WriteFileThrough(const std::string& path, const std::string& data) {
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size())) << std::strerror(errno);
    ASSERT_EQ(::close(fd), 0) << path << ": " << std::strerror(errno);
  }

  TempDir dir_;
  std::string ufs_, mnt_;
  std::map<std::string, std::string> env_;
  std::unique_ptr<Subprocess> local_;
};

TEST_F(FuseTest, ReadsEdgeSizesAndAwkwardNames) {
  StartLocal({"--ufs", "file://" + ufs_});
  for (size_t size : {size_t{0}, size_t{1}, kPage, kPage + 1, 3 * kPage + 5}) {
    std::string name = "/sizes/f" + std::to_string(size);
    struct stat st;
    ASSERT_EQ(::stat((mnt_ + name).c_str(), &st), 0) << name;
    EXPECT_EQ(static_cast<size_t>(st.st_size), size);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_TRUE(ReadFile(mnt_ + name) == ReadFile(ufs_ + name)) << name;
  }
  EXPECT_EQ(ReadFile(mnt_ + "/names/with space ünïcødé 文件.txt"), "unicode");
  // A read in the middle, across a page boundary.
  int fd = ::open((mnt_ + "/sizes/f" + std::to_string(3 * kPage + 5)).c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string buf(100, '\0');
  ASSERT_EQ(::pread(fd, buf.data(), buf.size(), kPage - 50), 100);
  ::close(fd);
  EXPECT_EQ(buf, TestBytes(3 * kPage + 5, 3 * kPage + 5).substr(kPage - 50, 100));
  // Without --xattrs the kernel answers getxattr itself (`ls -l` asks two per file).
  char value[64];
  EXPECT_EQ(::getxattr((mnt_ + "/sizes/f1").c_str(), "user.sluice.cached", value, sizeof(value)), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
}

TEST_F(FuseTest, LargeFilesBypassThePageCacheUntilReadInSmallPieces) {
  if (CachedPages(ufs_ + "/sizes/f1") < 0) GTEST_SKIP() << "needs cachestat (Linux 6.5)";
  // Direct I/O needs the kernel to map such files too (FUSE_DIRECT_IO_ALLOW_MMAP, Linux 6.6).
  const bool direct = KernelAtLeast(6, 6);
  WriteFile(dir_.path() + "/sluice.yaml", "client:\n  direct_io_min_size: 1MiB\n");
  StartLocal({"--ufs", "file://" + ufs_, "--config", dir_.path() + "/sluice.yaml"}, true, {"--log-level", "info"});
  const std::string big = mnt_ + "/sizes/f" + std::to_string(3 * kPage + 5), small = mnt_ + "/sizes/f1";
  const std::string want = ReadFile(ufs_ + "/sizes/f" + std::to_string(3 * kPage + 5));
  EXPECT_TRUE(ReadInChunks(big, kPage) == want);
  EXPECT_EQ(CachedPages(big) == 0, direct) << CachedPages(big);  // read past the page cache
  EXPECT_EQ(ReadFile(small), ReadFile(ufs_ + "/sizes/f1"));
  EXPECT_GT(CachedPages(small), 0);  // below the size: the page cache as usual
  // Shared mappings work (numpy memmaps, safetensors).
  int fd = ::open(big.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void* map = ::mmap(nullptr, want.size(), PROT_READ, MAP_SHARED, fd, 0);
  EXPECT_NE(map, MAP_FAILED) << std::strerror(errno);
  if (map != MAP_FAILED) {
    EXPECT_EQ(std::memcmp(map, want.data(), want.size()), 0);
    ::munmap(map, want.size());
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);  // what the mapping brought in
  ::close(fd);
  EXPECT_EQ(CachedPages(big) == 0, direct) << CachedPages(big);
  const std::string switched = "later opens of it go through the page cache";
  EXPECT_EQ(ReadFile(dir_.path() + "/local.log").find(switched), std::string::npos);
  // Read 4 KiB at a time: the next open goes through the page cache and its read-ahead.
  fd = ::open(big.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string piece(4096, '\0');
  for (size_t off = 0; off < 32 * piece.size(); off += piece.size()) {
    ASSERT_EQ(::pread(fd, piece.data(), piece.size(), static_cast<off_t>(off)), 4096);
    ASSERT_TRUE(piece == want.substr(off, piece.size())) << off;
  }
  ::close(fd);
  if (direct) {
    ASSERT_TRUE(testing::WaitFor([&] {  // the release reaches the mount after close() returns
      return ReadFile(dir_.path() + "/local.log").find(switched) != std::string::npos;
    }, 10s)) << ReadFile(dir_.path() + "/local.log");
  }
  EXPECT_TRUE(ReadInChunks(big, kPage) == want);
  EXPECT_GT(CachedPages(big), 0);
}

TEST_F(FuseTest, ListsTenThousandEntries) {
  for (int i = 0; i < 10000; ++i) WriteFile(ufs_ + "/many/f" + std::to_string(i), "");
  StartLocal({"--ufs", "file://" + ufs_});
  size_t count = 0;
  DIR* d = ::opendir((mnt_ + "/many").c_str());
  ASSERT_NE(d, nullptr);
  while (dirent* e = ::readdir(d)) count += e->d_name[0] != '.';
  ::closedir(d);
  EXPECT_EQ(count, 10000u);
  struct stat st;
  EXPECT_EQ(::stat((mnt_ + "/many/f9999").c_str(), &st), 0);
}

// Listing through the mount costs the same per entry at 200,000 entries as at 20,000 (a
// listing paged by re-walking the directory made it quadratic: 95 s for 200,000).
TEST_F(FuseTest, ListingsTakeTimeLinearInTheDirectorySize) {
  const std::vector<std::pair<std::string, int>> dirs = {{"small", 20000}, {"large", 200000}};
  for (const auto& [name, n] : dirs) {
    ASSERT_TRUE(std::filesystem::create_directories(ufs_ + "/" + name));
    for (int i = 0; i < n; ++i) {
      int fd = ::open((ufs_ + "/" + name + "/f" + std::to_string(i)).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      ASSERT_GE(fd, 0);
      ::close(fd);
    }
  }
  StartLocal({"--ufs", "file://" + ufs_});
  std::map<std::string, double> seconds_per_entry;
  for (const auto& [name, n] : dirs) {
    auto start = std::chrono::steady_clock::now();
    std::set<std::string> seen;
    size_t count = 0;
    DIR* d = ::opendir((mnt_ + "/" + name).c_str());
    ASSERT_NE(d, nullptr);
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      ++count;
      seen.insert(e->d_name);
    }
    ::closedir(d);
    seconds_per_entry[name] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / n;
    EXPECT_EQ(count, static_cast<size_t>(n)) << name;
    EXPECT_EQ(seen.size(), static_cast<size_t>(n)) << name << ": names listed twice";
  }
  EXPECT_LE(seconds_per_entry["large"], 2 * seconds_per_entry["small"])
      << "per entry: " << seconds_per_entry["small"] * 1e6 << " us at 20,000, " << seconds_per_entry["large"] * 1e6
      << " us at 200,000";
}

// Listings that cross the client's page (kListPageEntries) come whole and once, through the
// mount and `sluice fs ls`; a restarted worker answers them from its metadata index on disk.
TEST_F(FuseTest, ListingsAtPageBoundariesAndAfterARestart) {
  const std::vector<int> sizes = {4999, 5000, 5001, 10001};
  for (int n : sizes) {
    const std::string dir = ufs_ + "/b" + std::to_string(n);
    std::filesystem::create_directories(dir);
    for (int i = 0; i < n; ++i) ::close(::open((dir + "/f" + std::to_string(i)).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  }
  StartLocal({"--ufs", "file://" + ufs_});
  std::string out;
  auto check = [&] {
    EXPECT_EQ(Names(mnt_).size(), sizes.size() + 2);  // with sizes/ and names/
    for (int n : sizes) {
      const std::string dir = "/b" + std::to_string(n);
      EXPECT_EQ(Names(mnt_ + dir).size(), static_cast<size_t>(n)) << dir;
      ASSERT_EQ(Run({"fs", "ls", dir}, &out), 0) << out;
      std::set<std::string> lines;
      std::istringstream in(out);
      for (std::string line; std::getline(in, line);) EXPECT_TRUE(lines.insert(line).second) << "twice: " << line;
      EXPECT_EQ(lines.size(), static_cast<size_t>(n)) << dir;
    }
  };
  auto store_requests = [&] {
    EXPECT_EQ(Run({"report"}, &out), 0) << out;
    std::smatch m;
    EXPECT_TRUE(std::regex_search(out, m, std::regex("([0-9]+) requests"))) << out;
    return m.empty() ? -1 : std::stoi(m[1]);
  };
  check();
  EXPECT_GE(store_requests(), 5);  // the listings
  local_->Stop(SIGTERM);
  local_.reset();
  ASSERT_TRUE(testing::WaitFor([&] { return !IsMounted(mnt_); }, 10s));
  StartLocal({"--ufs", "file://" + ufs_});
  check();
  EXPECT_LE(store_requests(), 1) << "a restarted worker listed again";  // the root's stat
}

TEST_F(FuseTest, ConcurrentReadersOfOneFile) {
  StartLocal({"--ufs", "file://" + ufs_});
  std::string want = ReadFile(ufs_ + "/sizes/f" + std::to_string(3 * kPage + 5));
  std::atomic<int> wrong{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 8; ++i) {
    readers.emplace_back([&] {
      if (ReadFile(mnt_ + "/sizes/f" + std::to_string(3 * kPage + 5)) != want) ++wrong;
    });
  }
  for (auto& r : readers) r.join();
  EXPECT_EQ(wrong, 0);
}

// A training loop's checkpoint and a stage hand-off through a mount that writes through: what
// close() returned for is in the under-store, and read back from the cache.
TEST_F(FuseTest, WritesThroughTheMountReachTheStoreAtClose) {
  StartLocal({"--ufs", "file://" + ufs_, "-o", "write_mode=through"});
  const std::string ckpt = TestBytes((20 << 20) + 4097, 11);  // 20 MiB: a multipart upload
  {
    std::ofstream out(mnt_ + "/ckpt/epoch-1.pt", std::ios::binary);
    EXPECT_FALSE(out);  // no such directory yet
  }
  ASSERT_EQ(::mkdir((mnt_ + "/ckpt").c_str(), 0755), 0) << std::strerror(errno);
  int fd = ::open((mnt_ + "/ckpt/epoch-1.pt").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  for (size_t at = 0; at < ckpt.size(); at += 1 << 20) {  // 1 MiB writes, as torch.save
    const size_t n = std::min<size_t>(1 << 20, ckpt.size() - at);
    ASSERT_EQ(::write(fd, ckpt.data() + at, n), static_cast<ssize_t>(n)) << std::strerror(errno);
  }
  struct stat st;
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(static_cast<size_t>(st.st_size), ckpt.size());  // the size as written, before close
  ASSERT_EQ(::fsync(fd), 0) << std::strerror(errno);
  ASSERT_EQ(::close(fd), 0) << std::strerror(errno);
  EXPECT_EQ(ReadFile(ufs_ + "/ckpt/epoch-1.pt"), ckpt);
  ASSERT_EQ(::stat((mnt_ + "/ckpt/epoch-1.pt").c_str(), &st), 0);
  EXPECT_EQ(static_cast<size_t>(st.st_size), ckpt.size());
  EXPECT_EQ(ReadFile(mnt_ + "/ckpt/epoch-1.pt"), ckpt);
  std::string out;
  ASSERT_EQ(Run({"report"}, &out), 0);
  EXPECT_NE(out.find("0 B read"), std::string::npos) << out;  // restored from the cache

  // Overwrite in place with O_TRUNC, append, truncate, rename, unlink, rmdir.
  WriteFileThrough(mnt_ + "/ckpt/latest", "v1");
  WriteFileThrough(mnt_ + "/ckpt/latest", "version 2");
  EXPECT_EQ(ReadFile(ufs_ + "/ckpt/latest"), "version 2");
  EXPECT_EQ(ReadFile(mnt_ + "/ckpt/latest"), "version 2");
  fd = ::open((mnt_ + "/ckpt/latest").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::write(fd, "+", 1), 1);
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(ReadFile(ufs_ + "/ckpt/latest"), "version 2+");
  ASSERT_EQ(::truncate((mnt_ + "/ckpt/latest").c_str(), 7), 0) << std::strerror(errno);
  EXPECT_EQ(ReadFile(ufs_ + "/ckpt/latest"), "version");
  ASSERT_EQ(::rename((mnt_ + "/ckpt/epoch-1.pt").c_str(), (mnt_ + "/ckpt/best.pt").c_str()), 0) << std::strerror(errno);
  EXPECT_FALSE(std::filesystem::exists(ufs_ + "/ckpt/epoch-1.pt"));
  EXPECT_EQ(ReadFile(mnt_ + "/ckpt/best.pt"), ckpt);
  EXPECT_EQ(::rmdir((mnt_ + "/ckpt").c_str()), -1);
  EXPECT_EQ(errno, ENOTEMPTY);
  ASSERT_EQ(::unlink((mnt_ + "/ckpt/best.pt").c_str()), 0) << std::strerror(errno);
  ASSERT_EQ(::unlink((mnt_ + "/ckpt/latest").c_str()), 0) << std::strerror(errno);
  EXPECT_EQ(::stat((mnt_ + "/ckpt/best.pt").c_str(), &st), -1);
  EXPECT_EQ(errno, ENOENT);
  ASSERT_EQ(::rmdir((mnt_ + "/ckpt").c_str()), 0) << std::strerror(errno);
  EXPECT_FALSE(std::filesystem::exists(ufs_ + "/ckpt"));
}

TEST_F(FuseTest, ErrnoForMissingWritesAndOutsideMounts) {
  std::string out;
  ASSERT_EQ(Run({"mount", "add", "/data", "file://" + ufs_}, &out), 0) << out;
  StartLocal({});
  EXPECT_EQ(ReadFile(mnt_ + "/data/sizes/f1"), ReadFile(ufs_ + "/sizes/f1"));
  struct stat st;
  ASSERT_EQ(::stat(mnt_.c_str(), &st), 0);  // "/" only holds the /data mount point
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  errno = 0;
  EXPECT_EQ(::open((mnt_ + "/data/missing").c_str(), O_RDONLY), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(::stat((mnt_ + "/elsewhere/x").c_str(), &st), -1);  // outside every mount
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(::open((mnt_ + "/data/sizes/f1").c_str(), O_WRONLY), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::open((mnt_ + "/data/new").c_str(), O_CREAT | O_WRONLY, 0644), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::mkdir((mnt_ + "/data/d").c_str(), 0755), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::unlink((mnt_ + "/data/sizes/f1").c_str()), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::open((mnt_ + "/data/" + std::string(300, 'n')).c_str(), O_RDONLY), -1);
  EXPECT_EQ(errno, ENAMETOOLONG);
  EXPECT_NE(ReadFile(dir_.path() + "/local.log").find("is read-only"), std::string::npos);
}

TEST_F(FuseTest, CacheStateInXattrsAndStatfs) {
  StartLocal({"--ufs", "file://" + ufs_, "--xattrs"});
  std::string path = mnt_ + "/sizes/f" + std::to_string(kPage + 1);
  char value[64];
  ssize_t n = ::getxattr(path.c_str(), "user.sluice.cached", value, sizeof(value));
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(value, static_cast<size_t>(n)), "0/" + std::to_string(kPage + 1));
  (void)ReadFile(path);
  n = ::getxattr(path.c_str(), "user.sluice.cached", value, sizeof(value));
  EXPECT_EQ(std::string(value, static_cast<size_t>(n)), std::to_string(kPage + 1) + "/" + std::to_string(kPage + 1));
  char names[128];
  n = ::listxattr(path.c_str(), names, sizeof(names));
  EXPECT_EQ(std::string(names, static_cast<size_t>(n)), std::string("user.sluice.cached\0user.sluice.version\0", 39));
  EXPECT_EQ(::getxattr(path.c_str(), "user.other", value, sizeof(value)), -1);
  EXPECT_EQ(errno, ENODATA);
  struct statvfs vfs;
  ASSERT_EQ(::statvfs(mnt_.c_str(), &vfs), 0);
  EXPECT_EQ(static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize, 1ull << 30);  // the disk cache quota
}

TEST_F(FuseTest, UnmountsCleanlyAndRefusesBadMountPoints) {
  StartLocal({"--ufs", "file://" + ufs_});
  std::string out;
  // Already mounted.
  EXPECT_EQ(Run({"fuse", mnt_}, &out), 2);
  EXPECT_NE(out.find("is already a mount point"), std::string::npos) << out;
  // Not empty.
  std::filesystem::create_directories(dir_.path() + "/full");
  WriteFile(dir_.path() + "/full/keep.txt", "x");
  EXPECT_EQ(Run({"fuse", dir_.path() + "/full"}, &out), 2);
  EXPECT_NE(out.find("is not empty"), std::string::npos) << out;
  EXPECT_EQ(Run({"fuse", dir_.path() + "/absent"}, &out), 2);
  EXPECT_NE(out.find("create the directory first"), std::string::npos) << out;
  EXPECT_EQ(Run({"fuse", dir_.path() + "/full", "-o", "direct_io_min_size=lots"}, &out), 2);
  EXPECT_NE(out.find("-o direct_io_min_size"), std::string::npos) << out;
  // SIGTERM: unmounted, exit 0.
  int status = local_->Stop(SIGTERM);
  local_.reset();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_FALSE(IsMounted(mnt_));
}

TEST_F(FuseTest, CorruptCachedPagesAreNeverServed) {
  std::string name = "/sizes/f" + std::to_string(3 * kPage + 5);
  StartLocal({"--ufs", "file://" + ufs_});
  ASSERT_TRUE(ReadFile(mnt_ + name) == ReadFile(ufs_ + name));  // cached now
  local_->Stop(SIGTERM);  // the restart empties the memory tier: the next reads go to page files
  local_.reset();
  size_t damaged = 0;
  ASSERT_TRUE(testing::WaitFor([&] { return !IsMounted(mnt_); }, 10s));
  for (auto& e : std::filesystem::recursive_directory_iterator(dir_.path() + "/cache/pages")) {
    if (!e.is_regular_file() || e.file_size() < kPage) continue;
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);
    f.put('\x7f');
    ++damaged;
  }
  ASSERT_GE(damaged, 3u);
  StartLocal({"--ufs", "file://" + ufs_});
  EXPECT_TRUE(ReadFile(mnt_ + name) == ReadFile(ufs_ + name));
  EXPECT_TRUE(ReadFile(mnt_ + name) == ReadFile(ufs_ + name));  // and again, from the refetched pages
}

TEST_F(FuseTest, RecordsOfDiskTierPagesAreReadWithoutPromotingThem) {
  std::string name = "/sizes/f" + std::to_string(3 * kPage + 5);
  const std::string want = ReadFile(ufs_ + name);
  StartLocal({"--ufs", "file://" + ufs_});
  ASSERT_TRUE(ReadFile(mnt_ + name) == want);
  local_->Stop(SIGTERM);  // writes the pages to disk; the restart empties the memory tier
  local_.reset();
  ASSERT_TRUE(testing::WaitFor([&] { return !IsMounted(mnt_); }, 10s));
  StartLocal({"--ufs", "file://" + ufs_});
  int fd = ::open((mnt_ + name).c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM), 0);  // no kernel read-ahead: small reads
  for (uint64_t off : {kPage + 1000, uint64_t{5}, 2 * kPage + 500000, 3 * kPage - 200}) {
    std::string record(100, '\0');
    EXPECT_EQ(::pread(fd, record.data(), record.size(), static_cast<off_t>(off)), 100) << off;
    EXPECT_TRUE(record == want.substr(off, 100)) << off;
  }
  ::close(fd);  // before any assertion can end the test: an open file keeps the mount busy
  std::string out;
  ASSERT_EQ(Run({"report"}, &out), 0);
  EXPECT_NE(out.find(", 0 pages"), std::string::npos) << out;  // the memory tier took none of them
  EXPECT_NE(out.find("0 corrupt pages"), std::string::npos) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(requests,\s+0 B read)"))) << out;  // all from the disk tier
}

TEST_F(FuseTest, SigtermWithAFileStillOpenEndsAfterTheGracePeriod) {
  StartLocal({"--ufs", "file://" + ufs_});
  std::string name = "/sizes/f" + std::to_string(kPage + 1);
  int fd = ::open((mnt_ + name).c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char byte = 0;
  EXPECT_EQ(::pread(fd, &byte, 1, 0), 1);
  auto t0 = std::chrono::steady_clock::now();
  ::kill(local_->pid(), SIGTERM);  // the open file keeps the mount busy: a plain unmount would wait for it
  int status = 0;
  bool exited = local_->WaitExit(60s, &status);
  auto took = std::chrono::steady_clock::now() - t0;
  ::close(fd);
  ASSERT_TRUE(exited) << ReadFile(dir_.path() + "/local.log");
  local_.reset();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_LT(took, 30s);  // the grace period, or less when the kernel ends the connection itself
  EXPECT_FALSE(IsMounted(mnt_));
}

TEST_F(FuseTest, FusermountUnmountWorks) {
  StartLocal({"--ufs", "file://" + ufs_});
  std::string out;
  ASSERT_EQ(RunCommand({"fusermount3", "-u", mnt_}, &out), 0) << out;
  EXPECT_FALSE(IsMounted(mnt_));
}

TEST_F(FuseTest, TheMountFollowsSyncAndNestedMountsAndDirectoriesHaveATime) {
  StartLocal({"--ufs", "file://" + ufs_});
  EXPECT_EQ(Names(mnt_ + "/sizes").count("new-object"), 0u);  // the kernel keeps this listing
  WriteFile(ufs_ + "/sizes/new-object", "new");
  std::string out;
  ASSERT_EQ(Run({"fs", "sync", "/sizes"}, &out), 0) << out;
  EXPECT_EQ(Names(mnt_ + "/sizes").count("new-object"), 1u) << "the mount lags `fs sync`";
  EXPECT_EQ(ReadFile(mnt_ + "/sizes/new-object"), "new");
  struct stat st;
  ASSERT_EQ(::stat((mnt_ + "/sizes").c_str(), &st), 0);
  EXPECT_GT(st.st_mtime, 1600000000) << "a directory dated 1970";
  WriteFile(dir_.path() + "/other/o.txt", "o");
  ASSERT_EQ(Run({"mount", "add", "/nested", "file://" + dir_.path() + "/other"}, &out), 0) << out;
  ASSERT_EQ(Run({"fs", "sync", "/"}, &out), 0) << out;
  EXPECT_EQ(Names(mnt_).count("nested"), 1u);
  EXPECT_EQ(ReadFile(mnt_ + "/nested/o.txt"), "o");
  ASSERT_EQ(Run({"fs", "ls", "/"}, &out), 0) << out;
  EXPECT_NE(out.find("nested"), std::string::npos) << out;
}

TEST_F(FuseTest, SluiceFuseFollowsSyncAndEndsOnFusermount) {
  StartLocal({"--ufs", "file://" + ufs_}, /*mount=*/false);
  auto fuse = Subprocess::Start({SLUICE_BINARY, "fuse", mnt_}, env_, dir_.path() + "/fuse.log");
  ASSERT_TRUE(fuse.ok());
  ASSERT_TRUE(testing::WaitFor([&] { return IsMounted(mnt_); }, 20s)) << ReadFile(dir_.path() + "/fuse.log");
  EXPECT_EQ(ReadFile(mnt_ + "/sizes/f1"), ReadFile(ufs_ + "/sizes/f1"));
  // A separate `sluice fuse` follows `fs sync` too (within a second: it watches the worker).
  EXPECT_EQ(Names(mnt_ + "/sizes").count("late"), 0u);
  WriteFile(ufs_ + "/sizes/late", "late");
  std::string out;
  ASSERT_EQ(Run({"fs", "sync", "/sizes"}, &out), 0) << out;
  EXPECT_TRUE(testing::WaitFor([&] { return Names(mnt_ + "/sizes").count("late") == 1; }, 10s));
  ASSERT_EQ(RunCommand({"fusermount3", "-u", mnt_}, nullptr), 0);
  int status = 0;
  EXPECT_TRUE((*fuse)->WaitExit(10s, &status)) << "sluice fuse still runs after fusermount3 -u";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_F(FuseTest, SluiceFuseAnswersLookupsOfListedNamesItself) {
  // More names than the kernel's first readdirplus buffer holds: it looks most of them up.
  const int kFiles = 2000;
  auto name = [](int i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "n%04d", i);
    return std::string(buf);
  };
  std::filesystem::create_directories(ufs_ + "/many");
  for (int i = 0; i < kFiles; ++i) WriteFile(ufs_ + "/many/" + name(i), std::string(static_cast<size_t>(i % 7), 'x'));
  StartLocal({"--ufs", "file://" + ufs_}, /*mount=*/false);
  auto fuse = Subprocess::Start({SLUICE_BINARY, "fuse", mnt_}, env_, dir_.path() + "/fuse.log");
  ASSERT_TRUE(fuse.ok());
  ASSERT_TRUE(testing::WaitFor([&] { return IsMounted(mnt_); }, 20s)) << ReadFile(dir_.path() + "/fuse.log");
  auto rpc_requests = [&] {
    std::string out;
    EXPECT_EQ(Run({"report"}, &out), 0) << out;
    const size_t at = out.find(" RPC requests served");
    if (at == std::string::npos || at == 0) return 0ull;
    const size_t from = out.rfind(' ', at - 1);
    return std::stoull(out.substr(from + 1, at - from - 1));
  };
  ASSERT_EQ(Names(mnt_ + "/many").size(), static_cast<size_t>(kFiles));
  const uint64_t before = rpc_requests();
  struct stat st;
  for (int i = 0; i < kFiles; ++i) {
    ASSERT_EQ(::stat((mnt_ + "/many/" + name(i)).c_str(), &st), 0) << name(i);
    EXPECT_EQ(st.st_size, i % 7);
    errno = 0;
    EXPECT_NE(::stat((mnt_ + "/many/" + name(i) + "-absent").c_str(), &st), 0);
    EXPECT_EQ(errno, ENOENT);
  }
  // A few: `report` itself and the mount's once-a-second look for syncs.
  EXPECT_LT(rpc_requests() - before, 50u) << "lookups of names just listed went to the worker";
  // A sync reaches what the mount listed: a deleted file is gone, a new one is there.
  ASSERT_EQ(::unlink((ufs_ + "/many/" + name(1)).c_str()), 0);
  WriteFile(ufs_ + "/many/late", "late");
  std::string out;
  ASSERT_EQ(Run({"fs", "sync", "/many"}, &out), 0) << out;
  EXPECT_TRUE(testing::WaitFor([&] {
    return ::stat((mnt_ + "/many/" + name(1)).c_str(), &st) != 0 && ::stat((mnt_ + "/many/late").c_str(), &st) == 0;
  }, 10s));
  ASSERT_EQ(RunCommand({"fusermount3", "-u", mnt_}, nullptr), 0);
  EXPECT_TRUE((*fuse)->WaitExit(10s, nullptr));
}

TEST_F(FuseTest, WorkerKilledUnderALiveMountKeepsReadsGoing) {
  StartLocal({"--ufs", "file://" + ufs_}, /*mount=*/false);
  auto fuse = Subprocess::Start({SLUICE_BINARY, "fuse", mnt_}, env_, dir_.path() + "/fuse.log");
  ASSERT_TRUE(fuse.ok());
  ASSERT_TRUE(testing::WaitFor([&] { return IsMounted(mnt_); }, 10s)) << ReadFile(dir_.path() + "/fuse.log");
  std::string name = "/sizes/f" + std::to_string(3 * kPage + 5);
  EXPECT_TRUE(ReadFile(mnt_ + name) == ReadFile(ufs_ + name));
  // Cached now: page-sized reads past the kernel's page cache (O_DIRECT) come spliced from the
  // worker's page files.
  std::string out;
  ASSERT_TRUE(testing::WaitFor([&] {
    return Run({"fs", "check-cached", name}, &out) == 0 && out.find("(100.0%)") != std::string::npos;
  }, 10s)) << out;
  int fd = ::open((mnt_ + name).c_str(), O_RDONLY | O_DIRECT);
  ASSERT_GE(fd, 0);
  void* aligned = nullptr;
  ASSERT_EQ(::posix_memalign(&aligned, 4096, kPage), 0);
  std::string direct;
  for (ssize_t n; (n = ::read(fd, aligned, kPage)) > 0;) direct.append(static_cast<char*>(aligned), n);
  ::free(aligned);
  ::close(fd);
  EXPECT_TRUE(direct == ReadFile(ufs_ + name));
  local_->Stop(SIGKILL);
  local_.reset();
  // The mount reads the under-store directly now.
  EXPECT_TRUE(ReadFile(mnt_ + "/sizes/f" + std::to_string(kPage + 1)) == ReadFile(ufs_ + "/sizes/f" + std::to_string(kPage + 1)));
  (*fuse)->Stop(SIGTERM);
  EXPECT_FALSE(IsMounted(mnt_));
}

}  // namespace
}  // namespace sluice::fuse
