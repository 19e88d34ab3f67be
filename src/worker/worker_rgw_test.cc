// The worker over a real Ceph RGW (SigV4-checking S3): cold concurrent readers cost one
// under-store read per byte, and an S3 endpoint that goes down leaves cached data readable
// while cold reads fail naming the mount. One RGW for the binary: a single ctest test.
#include <gtest/gtest.h>

#include <thread>

#include "client/file_system.h"
#include "support/test_support.h"
#include "worker/worker.h"

namespace sluice::worker {
namespace {

using namespace std::chrono_literals;
using testing::FaultProxy;
using testing::RgwServer;
using testing::TempDir;
using testing::TestBytes;

RgwServer* Rgw() { return testing::RgwEnvironment::server(); }

class WorkerRgwTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(Rgw(), nullptr);
    proxy_ = *FaultProxy::Start(Rgw()->endpoint());
    data_ = TestBytes(64 << 20, 64);
    ufs::UnderStoreOptions uo;
    uo.options = Creds(Rgw()->endpoint());
    auto s3 = *ufs::OpenUnderStore("s3://worker-test", uo);
    ASSERT_TRUE(s3->Write("shard.bin", data_).ok());
    store_ = *cluster::OpenFileClusterStore(dir_.path() + "/cluster");
    cluster::MountPoint m{"/s3", "s3://worker-test", {}};
    m.options.ufs_options = Creds(proxy_->url());
    ASSERT_TRUE(store_->UpdateMounts([&](cluster::MountTable* t) { return t->Add(m); }).ok());
    Config c;
    c.cluster.secret = "x";
    c.worker.rpc_port = 0;
    c.worker.http_port = 0;
    c.worker.memory_quota = 128 << 20;
    c.worker.disks = {{dir_.path() + "/cache", 1ull << 30}};
    c.ufs.max_attempts = 2;
    c.ufs.retry_base_delay = 10ms;
    c.ufs.connect_timeout = 1s;
    worker_ = *Worker::Start(c, store_.get(), "w");
    client::ClientOptions o;
    o.worker.port = worker_->rpc_port();
    o.worker.secret = "x";
    fs_ = std::make_unique<client::FileSystem>(o);
  }

  std::vector<std::pair<std::string, std::string>> Creds(const std::string& endpoint) {
    return {{"endpoint", endpoint}, {"access_key", Rgw()->access_key()}, {"secret_key", Rgw()->secret_key()}};
  }

  TempDir dir_;
  std::string data_;
  std::unique_ptr<FaultProxy> proxy_;
  std::unique_ptr<cluster::ClusterStore> store_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<client::FileSystem> fs_;
};

TEST_F(WorkerRgwTest, ThirtyTwoColdReadersOfOneObjectReadItOnce) {
  std::vector<std::thread> readers;
  std::atomic<int> wrong{0};
  for (int i = 0; i < 32; ++i) {
    readers.emplace_back([&] {
      std::string got;
      auto n = fs_->Read("/s3/shard.bin", 0, data_.size(), [&](std::string_view c) {
        got.append(c);
        return Status::Ok();
      });
      if (!n.ok() || got != data_) ++wrong;
    });
  }
  for (auto& r : readers) r.join();
  EXPECT_EQ(wrong, 0);
  auto report = *fs_->Report();
  uint64_t ufs_bytes = report.mounts(0).ufs_bytes_read();
  std::printf("32 cold readers of 64 MiB: under-store bytes = %.3f x the object\n",
              static_cast<double>(ufs_bytes) / static_cast<double>(data_.size()));
  EXPECT_LE(ufs_bytes, data_.size() * 105 / 100);
}

TEST_F(WorkerRgwTest, S3DownKeepsServingCachedData) {
  std::string head;
  ASSERT_TRUE(fs_->Read("/s3/shard.bin", 0, 4 << 20, [&](std::string_view c) {
    head.append(c);
    return Status::Ok();
  }).ok());
  proxy_.reset();  // the endpoint the mount uses is gone
  std::string again;
  ASSERT_TRUE(fs_->Read("/s3/shard.bin", 0, 4 << 20, [&](std::string_view c) {
    again.append(c);
    return Status::Ok();
  }).ok());
  EXPECT_TRUE(again == data_.substr(0, 4 << 20));
  auto cold = fs_->Read("/s3/shard.bin", 32 << 20, 10, [](std::string_view) { return Status::Ok(); });
  ASSERT_FALSE(cold.ok());
  EXPECT_EQ(cold.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(cold.status().message().find("mount /s3 (s3://worker-test)"), std::string::npos) << cold.status().message();
}

}  // namespace
}  // namespace sluice::worker

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new sluice::testing::RgwEnvironment({"worker-test"}));
  return RUN_ALL_TESTS();
}
