// Mount table rules and the file cluster store.
#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/stat.h>

#include <thread>

#include "cluster/cluster_store.h"
#include "support/test_support.h"

namespace sluice::cluster {
namespace {

MountPoint Mount(const std::string& path, const std::string& uri, bool read_only = true) {
  MountPoint m{path, uri, {}};
  m.options.write_mode = read_only ? WriteMode::kReadOnly : WriteMode::kThrough;
  return m;
}

TEST(MountTableTest, LongestPrefixWins) {
  MountTable t;
  ASSERT_TRUE(t.Add(Mount("/", "file:///root", false)).ok());
  ASSERT_TRUE(t.Add(Mount("/imagenet", "s3://b/in")).ok());
  auto r = t.Resolve("/imagenet/train/x.jpg");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->mount->uri, "s3://b/in");
  EXPECT_EQ(r->key, "train/x.jpg");
  EXPECT_EQ(t.Resolve("/imagenet")->key, "");
  EXPECT_EQ(t.Resolve("/imagenetx/a")->mount->uri, "file:///root");
  EXPECT_EQ(t.Resolve("/other/a")->key, "other/a");
  EXPECT_EQ(t.Resolve("/../etc").status().code(), StatusCode::kInvalidArgument);
}

TEST(MountTableTest, RejectsDuplicatesShadowingAndOutsidePaths) {
  MountTable t;
  ASSERT_TRUE(t.Add(Mount("/data", "s3://b/p")).ok());
  EXPECT_EQ(t.Add(Mount("/data/", "s3://b/q")).code(), StatusCode::kAlreadyExists);
  auto nested = t.Add(Mount("/data/sub", "file:///x"));
  EXPECT_EQ(nested.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(nested.message().find("read-only mount /data"), std::string::npos) << nested.message();
  EXPECT_EQ(t.Add(Mount("/x", "not a uri")).code(), StatusCode::kInvalidArgument);
  auto outside = t.Resolve("/elsewhere/f");
  EXPECT_EQ(outside.status().code(), StatusCode::kNotFound);
  EXPECT_NE(outside.status().message().find("/elsewhere/f is outside every mount"), std::string::npos);
  EXPECT_EQ(t.Remove("/nope").code(), StatusCode::kNotFound);
  EXPECT_TRUE(t.Remove("/data").ok());
}

TEST(MountTableTest, DescribeMasksCredentials) {
  MountPoint m = Mount("/d", "s3://b");
  ASSERT_TRUE(ApplyMountOption("secret_key", "SuperSecret123", &m.options).ok());
  ASSERT_TRUE(ApplyMountOption("access_key", "AKIAEXAMPLEKEY", &m.options).ok());
  ASSERT_TRUE(ApplyMountOption("endpoint", "http://127.0.0.1:9000", &m.options).ok());
  ASSERT_TRUE(ApplyMountOption("metadata_ttl", "30s", &m.options).ok());
  std::string d = m.Describe();
  EXPECT_EQ(d.find("SuperSecret123"), std::string::npos) << d;
  EXPECT_EQ(d.find("AKIAEXAMPLEKEY"), std::string::npos) << d;
  EXPECT_NE(d.find("AKIA****"), std::string::npos) << d;
  EXPECT_NE(d.find("endpoint=http://127.0.0.1:9000"), std::string::npos) << d;
  EXPECT_NE(d.find("metadata ttl 30.00s"), std::string::npos) << d;
  EXPECT_EQ(ApplyMountOption("replicas", "0", &m.options).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyMountOption("read_only", "maybe", &m.options).code(), StatusCode::kInvalidArgument);
}

TEST(MountTableTest, WriteModesParseAndPersist) {
  MountPoint m = Mount("/out", "file:///out");
  EXPECT_TRUE(m.options.read_only());
  ASSERT_TRUE(ApplyMountOption("write_mode", "through", &m.options).ok());
  EXPECT_EQ(m.options.write_mode, WriteMode::kThrough);
  EXPECT_NE(m.Describe().find("writes through"), std::string::npos) << m.Describe();
  Status bad = ApplyMountOption("write_mode", "sometimes", &m.options);
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("sometimes"), std::string::npos) << bad.ToString();
  ASSERT_TRUE(ApplyMountOption("read_only", "true", &m.options).ok());
  EXPECT_TRUE(m.options.read_only());
  ASSERT_TRUE(ApplyMountOption("read_only", "false", &m.options).ok());  // the older spelling
  EXPECT_EQ(m.options.write_mode, WriteMode::kThrough);

  testing::TempDir dir;
  auto store = *OpenFileClusterStore(dir.path());
  ASSERT_TRUE(store->UpdateMounts([&](MountTable* t) { return t->Add(m); }).ok());
  EXPECT_EQ(store->LoadMounts()->mounts()[0].options.write_mode, WriteMode::kThrough);
}

TEST(FileClusterStoreTest, MountsPersistAndConcurrentUpdatesAreNotLost) {
  testing::TempDir dir;
  auto store = *OpenFileClusterStore(dir.path());
  std::string v0 = store->MountsVersion();
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto other = *OpenFileClusterStore(dir.path());  // as separate CLIs would
      MountPoint m = Mount("/m" + std::to_string(i), "file:///d" + std::to_string(i));
      m.options.ufs_options = {{"secret_key", "s" + std::to_string(i)}};
      EXPECT_TRUE(other->UpdateMounts([&](MountTable* t) { return t->Add(m); }).ok());
    });
  }
  for (auto& t : threads) t.join();
  auto table = *store->LoadMounts();
  ASSERT_EQ(table.mounts().size(), 8u);
  EXPECT_EQ(table.mounts()[3].options.ufs_options[0].second, "s3");
  EXPECT_NE(store->MountsVersion(), v0);
  struct stat st;
  ASSERT_EQ(::stat((dir.path() + "/mounts.yaml").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // it holds credentials
  auto failed = store->UpdateMounts([](MountTable* t) { return t->Add(Mount("/m1", "file:///x")); });
  EXPECT_EQ(failed.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store->LoadMounts()->mounts().size(), 8u);
}

TEST(FileClusterStoreTest, WorkersRegisterAndDeadOnesVanish) {
  testing::TempDir dir;
  auto store = *OpenFileClusterStore(dir.path());
  ASSERT_TRUE(store->RegisterWorker({"w1", "127.0.0.1", 1000, 1001, ::getpid()}).ok());
  ASSERT_TRUE(store->RegisterWorker({"w2", "127.0.0.1", 2000, 2001, 999999999}).ok());  // no such process
  auto workers = *store->Workers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].id, "w1");
  EXPECT_EQ(workers[0].rpc_port, 1000);
  ASSERT_TRUE(store->UnregisterWorker("w1").ok());
  EXPECT_TRUE(store->Workers()->empty());
}

}  // namespace
}  // namespace sluice::cluster
