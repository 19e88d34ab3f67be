// A far, unreliable store: `sluice local --mountpoint` over Ceph RGW behind the fault proxy
// (tests/fixtures/fault_proxy.cc), read through the FUSE mount as a training job would. What a
// user would observe: the requests each cold file costs (one round trip; no HEAD for a listed
// file), lookups in one directory that overlap in time, every byte exact under a SlowDown
// storm and mid-body resets (a load job's counts too), a warm cache that serves through an
// outage and does not revalidate file by file after the TTL, and a preload a reader shares
// fetches with. One RGW for the binary: a single ctest test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <dirent.h>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <tuple>

#include "support/test_support.h"
#include "ufs/under_store.h"

namespace sluice::fuse {
namespace {

using namespace std::chrono_literals;
using testing::FaultProxy;
using testing::IsMounted;
using testing::ReadFile;
using testing::RgwServer;
using testing::RunCommand;
using testing::Subprocess;
using testing::TempDir;
using testing::TestBytes;
using testing::WriteFile;

constexpr char kBucket[] = "far-test";
RgwServer* Rgw() { return testing::RgwEnvironment::server(); }

class FarStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "needs /dev/fuse (root)";
    ASSERT_NE(Rgw(), nullptr);
    // Each test its own prefix in the bucket, its own proxy, home, cache and mount point.
    prefix_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ufs::UnderStoreOptions uo;
    uo.options = {{"endpoint", Rgw()->endpoint()}, {"access_key", Rgw()->access_key()},
                  {"secret_key", Rgw()->secret_key()}};
    store_ = *ufs::OpenUnderStore(std::string("s3://") + kBucket + "/" + prefix_, uo);
    auto proxy = FaultProxy::Start(Rgw()->endpoint());
    ASSERT_TRUE(proxy.ok()) << proxy.status().ToString();
    proxy_ = std::move(proxy).value();
    mnt_ = dir_.path() + "/mnt";
    std::filesystem::create_directories(mnt_);
    env_ = {{"SLUICE_HOME", dir_.path() + "/home"},
            {"AWS_ACCESS_KEY_ID", Rgw()->access_key()},
            {"AWS_SECRET_ACCESS_KEY", Rgw()->secret_key()}};
  }
  void TearDown() override {
    if (local_) local_->Stop(SIGTERM);
    if (IsMounted(mnt_)) RunCommand({"fusermount3", "-u", mnt_}, nullptr);
  }

  // Writes `count` files of `size` bytes as DIR/f<i> to the store; returns their contents.
  std::vector<std::string> Put(const std::string& dir, int count, size_t size) {
    std::vector<std::string> data(static_cast<size_t>(count));
    std::vector<std::thread> threads;
    std::atomic<int> next{0};
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        for (int i = next++; i < count; i = next++) {
          data[static_cast<size_t>(i)] = TestBytes(size, static_cast<uint64_t>(i) * 7919 + size);
          EXPECT_TRUE(store_->Write(dir + "/f" + std::to_string(i), data[static_cast<size_t>(i)]).ok());
        }
      });
    }
    for (auto& t : threads) t.join();
    return data;
  }

  // `sluice local` over the prefix, through the proxy, mounted at mnt_; `yaml`: a config file's text.
  void StartLocal(const std::string& yaml = "", std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{SLUICE_BINARY, "local", "--ufs", std::string("s3://") + kBucket + "/" + prefix_,
                                  "-o", "endpoint=" + proxy_->url(), "--rpc-port", "0", "--http-port", "0",
                                  "--cache-dir", dir_.path() + "/cache", "--cache-size", "1GiB",
                                  "--memory-size", "256MiB", "--mountpoint", mnt_};
    if (!yaml.empty()) {
      WriteFile(dir_.path() + "/sluice.yaml", yaml);
      argv.insert(argv.end(), {"--config", dir_.path() + "/sluice.yaml"});
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = Subprocess::Start(argv, env_, dir_.path() + "/local.log");
    ASSERT_TRUE(p.ok());
    local_ = std::move(p).value();
    ASSERT_TRUE(testing::WaitFor([&] { return IsMounted(mnt_); }, 30s)) << ReadFile(dir_.path() + "/local.log");
    ASSERT_TRUE(proxy_->ResetStats().ok());  // what starting cost is not the test's
  }

  int Sluice(const std::vector<std::string>& args, std::string* out) {
    std::vector<std::string> argv{SLUICE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, out, env_);
  }

  std::map<std::string, uint64_t> Stats() { return *proxy_->Stats(); }

  // Reads DIR/f<i> for every i in `which` through the mount with `threads` threads, by name;
  // expects each to equal data[i].
  void ReadByName(const std::string& dir, const std::vector<std::string>& data, int threads) {
    std::atomic<size_t> next{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (size_t i = next++; i < data.size(); i = next++) {
          std::string path = mnt_ + "/" + dir + "/f" + std::to_string(i);
          EXPECT_TRUE(ReadFile(path) == data[i]) << path;
        }
      });
    }
    for (auto& t : pool) t.join();
  }

  TempDir dir_;
  std::string prefix_, mnt_;
  std::unique_ptr<ufs::UnderStore> store_;
  std::unique_ptr<FaultProxy> proxy_;
  std::map<std::string, std::string> env_;
  std::unique_ptr<Subprocess> local_;
};

TEST_F(FarStoreTest, LocalRefusesAStoreItCannotServeWithTheReason) {
  auto local = [&](std::vector<std::string> args, std::map<std::string, std::string> env) {
    std::vector<std::string> argv{SLUICE_BINARY, "local", "--rpc-port", "0", "--http-port", "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    env["SLUICE_HOME"] = dir_.path() + "/refused-home";
    env["AWS_EC2_METADATA_DISABLED"] = "true";
    std::string out;
    int rc = RunCommand(argv, &out, env);
    return std::make_pair(rc, out);
  };
  const std::string endpoint = "endpoint=" + Rgw()->endpoint();
  auto [rc, out] = local({"--ufs", std::string("s3://") + kBucket, "-o", endpoint, "-o",
                          "access_key=" + Rgw()->access_key(), "-o", "secret_key=wrong"}, {});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("the secret key does not match"), std::string::npos) << out;
  std::tie(rc, out) = local({"--ufs", "s3://no-such-bucket", "-o", endpoint}, env_);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("bucket 'no-such-bucket' does not exist"), std::string::npos) << out;
  std::tie(rc, out) = local({"--ufs", std::string("s3://") + kBucket, "-o", endpoint},
                            {{"AWS_SHARED_CREDENTIALS_FILE", dir_.path() + "/none"},
                             {"AWS_CONFIG_FILE", dir_.path() + "/none"}});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("no credentials found: tried"), std::string::npos) << out;
  EXPECT_EQ(out.find("serving"), std::string::npos) << out;
  // The secret from a file, where `ps` does not show it: a wrong one is refused as wrong (the
  // file was read), the right one passes authentication and reaches the bucket check.
  WriteFile(dir_.path() + "/wrong-secret", "wrong\n");
  WriteFile(dir_.path() + "/secret", Rgw()->secret_key() + "\n");
  for (const char* file : {"/wrong-secret", "/secret"}) ::chmod((dir_.path() + file).c_str(), 0600);
  const std::string access_key = "access_key=" + Rgw()->access_key();
  std::tie(rc, out) = local({"--ufs", std::string("s3://") + kBucket, "-o", endpoint, "-o", access_key, "-o",
                             "secret_key_file=" + dir_.path() + "/wrong-secret"},
                            {});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("the secret key does not match"), std::string::npos) << out;
  std::tie(rc, out) = local({"--ufs", "s3://no-such-bucket", "-o", endpoint, "-o", access_key, "-o",
                             "secret_key_file=" + dir_.path() + "/secret"},
                            {});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("bucket 'no-such-bucket' does not exist"), std::string::npos) << out;
  EXPECT_EQ(out.find("warning"), std::string::npos) << out;
  rc = RunCommand({SLUICE_BINARY, "ufs", "ls", "-o", endpoint, "-o", access_key, "-o",
                   "secret_key_file=" + dir_.path() + "/secret", std::string("s3://") + kBucket + "/"},
                  &out, {{"AWS_EC2_METADATA_DISABLED", "true"}});
  EXPECT_EQ(rc, 0) << out;
}

TEST_F(FarStoreTest, AColdFileCostsOneRoundTripByNameAndNoHeadWhenListed) {
  auto by_name = Put("byname", 60, 20 << 10);
  auto listed = Put("listed", 60, 20 << 10);
  StartLocal();
  // By name, as a loader with a manifest reads: one GET per file, which also answers the
  // lookup; the directory's own lookup costs a GET (no such object) and a LIST.
  ReadByName("byname", by_name, 8);
  auto s = Stats();
  EXPECT_EQ(s["HEAD"], 0u);
  EXPECT_LE(s["GET"], 60u + 1) << "a request per file at most, and one for the directory";
  EXPECT_LE(s["LIST"], 2u);
  // After a listing, each file costs its GET alone: the LIST gave size, ETag and mtime.
  ASSERT_TRUE(proxy_->ResetStats().ok());
  size_t entries = 0;
  DIR* d = ::opendir((mnt_ + "/listed").c_str());
  ASSERT_NE(d, nullptr);
  while (dirent* e = ::readdir(d)) entries += e->d_name[0] != '.';
  ::closedir(d);
  EXPECT_EQ(entries, 60u);
  ReadByName("listed", listed, 8);
  s = Stats();
  EXPECT_EQ(s["HEAD"], 0u);
  EXPECT_LE(s["LIST"], 2u);
  EXPECT_LE(s["GET"], 60u + 1);
}

TEST_F(FarStoreTest, LookupsInOneDirectoryOverlapInTime) {
  auto data = Put("d", 16, 1000);
  StartLocal();
  ASSERT_TRUE(proxy_->Set("latency_ms=300").ok());
  struct stat st;
  ASSERT_EQ(::stat((mnt_ + "/d").c_str(), &st), 0);  // the directory itself, first
  ASSERT_TRUE(proxy_->ResetStats().ok());
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  std::atomic<int> found{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      struct stat fst;
      if (::stat((mnt_ + "/d/f" + std::to_string(i)).c_str(), &fst) == 0 && fst.st_size == 1000) ++found;
    });
  }
  for (auto& t : threads) t.join();
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(found, 16);
  // One after another they would take 16 x 300 ms.
  EXPECT_LT(elapsed, 2400ms) << "lookups of one directory ran one at a time";
  EXPECT_GE(Stats()["in_flight_max"], 8u);
}

TEST_F(FarStoreTest, EveryByteExactUnderASlowDownStormAndResets) {
  auto files = Put("cold", 80, 40 << 10);
  auto big = Put("big", 1, 6 << 20);
  auto preload = Put("preload", 80, 40 << 10);
  // Enough attempts that a request meets the storm's 30% SlowDowns ten times in a row only
  // once in 10^5 runs or so.
  StartLocal("ufs:\n  max_attempts: 20\n  retry_base_delay: 2ms\n  retry_max_delay: 50ms\n");
  ASSERT_TRUE(proxy_->Set("error_rate=0.3&error=slowdown&reset_rate=0.05").ok());
  std::thread big_reader([&] { EXPECT_TRUE(ReadFile(mnt_ + "/big/f0") == big[0]); });
  ReadByName("cold", files, 8);
  big_reader.join();
  std::string out;
  ASSERT_EQ(Sluice({"load", "/preload", "--wait"}, &out), 0) << out;
  EXPECT_NE(out.find(": 80 files, 3.12 MiB (3.12 MiB fetched from the under-store)"), std::string::npos) << out;
  auto s = Stats();
  EXPECT_GT(s["errors"], 20u);
  EXPECT_GT(s["resets"], 0u);
  // The storm over, everything is in the cache: exact, and read without the store.
  ASSERT_TRUE(proxy_->Set("error_rate=0&reset_rate=0").ok());
  ASSERT_TRUE(proxy_->ResetStats().ok());
  ReadByName("preload", preload, 4);
  EXPECT_EQ(Stats()["GET"], 0u);
}

TEST_F(FarStoreTest, AnOutageLeavesTheWarmCacheReadable) {
  auto warm = Put("warm", 20, 30 << 10);
  auto cold = Put("cold", 1, 30 << 10);
  StartLocal("ufs:\n  max_attempts: 3\n  retry_base_delay: 50ms\n  connect_timeout: 1s\n  request_timeout: 2s\n");
  ReadByName("warm", warm, 4);
  ASSERT_TRUE(proxy_->Set("outage=1").ok());
  ReadByName("warm", warm, 4);
  std::string out;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_NE(Sluice({"fs", "cat", "/cold/f0"}, &out), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 15s);
  EXPECT_NE(out.find("mount / (s3://far-test/"), std::string::npos) << out;
  ASSERT_TRUE(proxy_->Set("outage=0").ok());
  EXPECT_TRUE(ReadFile(mnt_ + "/cold/f0") == cold[0]);
}

// Writes through to a store that throttles and then goes away: under SlowDown the retries get
// every byte there; during an outage close() fails with EIO, the log names the cause, and
// nothing half-written is visible; once the store is back, the same write succeeds.
TEST_F(FarStoreTest, WritesThroughAThrottlingStoreArriveAndAnOutageFailsTheClose) {
  StartLocal("ufs:\n  max_attempts: 20\n  retry_base_delay: 2ms\n  retry_max_delay: 50ms\n  "
             "multipart_part_size: 5MiB\n",
             {"-o", "write_mode=through"});
  auto write = [&](const std::string& name, const std::string& data) {
    int fd = ::open((mnt_ + "/" + name).c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) return errno;
    for (size_t at = 0; at < data.size(); at += 1 << 20) {
      const size_t n = std::min<size_t>(1 << 20, data.size() - at);
      if (::write(fd, data.data() + at, n) != static_cast<ssize_t>(n)) {
        int err = errno;
        ::close(fd);
        return err;
      }
    }
    return ::close(fd) == 0 ? 0 : errno;
  };
  const std::string big = TestBytes((12 << 20) + 5, 3);  // three parts of 5 MiB
  ASSERT_TRUE(proxy_->Set("error_rate=0.3&error=slowdown").ok());
  ASSERT_EQ(write("throttled.bin", big), 0);
  ASSERT_TRUE(proxy_->Set("error_rate=0").ok());
  EXPECT_TRUE(*store_->ReadToString("throttled.bin", 0, big.size()) == big);
  EXPECT_GT(Stats()["errors"], 0u);

  // The store goes away after the file was opened: the writes are staged, the close fails.
  int fd = ::open((mnt_ + "/lost.bin").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::write(fd, big.data(), 1 << 20), 1 << 20);
  ASSERT_TRUE(proxy_->Set("outage=1").ok());
  ASSERT_EQ(::write(fd, big.data() + (1 << 20), big.size() - (1 << 20)), static_cast<ssize_t>(big.size() - (1 << 20)));
  EXPECT_EQ(::close(fd), -1);
  EXPECT_EQ(errno, EIO);
  ASSERT_TRUE(proxy_->Set("outage=0").ok());
  EXPECT_EQ(store_->Stat("lost.bin").status().code(), StatusCode::kNotFound);  // nothing half-visible
  EXPECT_NE(ReadFile(dir_.path() + "/local.log").find("could not write /lost.bin"), std::string::npos)
      << ReadFile(dir_.path() + "/local.log");
  ASSERT_EQ(write("lost.bin", big), 0);
  EXPECT_TRUE(*store_->ReadToString("lost.bin", 0, big.size()) == big);
  EXPECT_TRUE(ReadFile(mnt_ + "/lost.bin") == big);
}

// Write-back while the store is down: close() returns, the file reads back through the mount,
// flush says what waits and why; the worker is killed (SIGKILL) and started again, and once
// the store is back the journal's file arrives whole.
TEST_F(FarStoreTest, WriteBackSurvivesAnOutageAndAKilledWorker) {
  const std::string yaml = "ufs:\n  max_attempts: 2\n  retry_base_delay: 2ms\n  connect_timeout: 1s\n"
                           "  request_timeout: 2s\nrpc:\n  io_timeout: 3s\n";
  StartLocal(yaml, {"-o", "write_mode=async"});
  const std::string data = TestBytes((7 << 20) + 3, 5);
  WriteFile(mnt_ + "/warmup.txt", "up");
  std::string out;
  ASSERT_EQ(Sluice({"fs", "flush", "/warmup.txt"}, &out), 0) << out;
  for (const auto& e : std::filesystem::directory_iterator(mnt_)) (void)e;  // the root's listing, while the store answers
  ASSERT_TRUE(proxy_->Set("outage=1").ok());
  int fd = ::open((mnt_ + "/ckpt.pt").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno) << ReadFile(dir_.path() + "/local.log");
  ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ASSERT_EQ(::close(fd), 0) << std::strerror(errno);
  EXPECT_TRUE(ReadFile(mnt_ + "/ckpt.pt") == data);
  EXPECT_NE(Sluice({"fs", "flush", "/ckpt.pt"}, &out), 0);
  EXPECT_NE(out.find("still wait"), std::string::npos) << out;
  ASSERT_EQ(Sluice({"report"}, &out), 0);
  EXPECT_NE(out.find("write-back: 1 files"), std::string::npos) << out;

  local_->Stop(SIGKILL);
  local_.reset();
  RunCommand({"fusermount3", "-u", mnt_}, nullptr);
  ASSERT_TRUE(testing::WaitFor([&] { return !IsMounted(mnt_); }, 10s));
  ASSERT_TRUE(proxy_->Set("outage=0").ok());
  StartLocal(yaml, {"-o", "write_mode=async"});
  ASSERT_EQ(Sluice({"fs", "flush", "/"}, &out), 0) << out << ReadFile(dir_.path() + "/local.log");
  EXPECT_TRUE(*store_->ReadToString("ckpt.pt", 0, data.size() + 1) == data);
  EXPECT_TRUE(ReadFile(mnt_ + "/ckpt.pt") == data);
}

TEST_F(FarStoreTest, AWarmEpochAfterTheTtlCostsOneListNotAHeadPerFile) {
  auto data = Put("d", 50, 10 << 10);
  StartLocal("", {"-o", "metadata_ttl=2s"});
  ReadByName("d", data, 8);
  // Let the metadata TTL (and the kernel's copy of it) run out: time itself is the condition.
  std::this_thread::sleep_for(2500ms);
  ASSERT_TRUE(proxy_->ResetStats().ok());
  ReadByName("d", data, 8);
  ASSERT_TRUE(testing::WaitFor([&] { return Stats()["LIST"] >= 1; }, 10s)) << "no background revalidation";
  auto s = Stats();
  EXPECT_EQ(s["HEAD"], 0u);
  EXPECT_EQ(s["GET"], 0u);
  EXPECT_LE(s["LIST"], 3u) << "the directory and its parent, once each (one more if the epoch outlasts the TTL)";
  // A file rewritten in the store is seen after the next revalidation.
  std::string next = TestBytes(12 << 10, 99);
  ASSERT_TRUE(store_->Write("d/f3", next).ok());
  EXPECT_TRUE(testing::WaitFor([&] { return ReadFile(mnt_ + "/d/f3") == next; }, 20s));
}

TEST_F(FarStoreTest, AReaderBesideAPreloadSharesItsFetches) {
  auto data = Put("d", 100, 30 << 10);
  StartLocal();
  ASSERT_TRUE(proxy_->Set("latency_ms=50").ok());
  std::string out;
  int job_exit = -1;
  std::thread job([&] { job_exit = Sluice({"load", "/d", "--wait"}, &out); });
  ReadByName("d", data, 16);
  job.join();
  EXPECT_EQ(job_exit, 0) << out;
  EXPECT_NE(out.find(": 100 files, 2.93 MiB"), std::string::npos) << out;
  auto s = Stats();
  // Each file fetched once, by the job or by the reader; the job's listing answered lookups.
  EXPECT_LE(s["GET"], 100u + 2);
  EXPECT_EQ(s["HEAD"], 0u);
}

}  // namespace
}  // namespace sluice::fuse

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new sluice::testing::RgwEnvironment({"far-test"}));
  return RUN_ALL_TESTS();
}
