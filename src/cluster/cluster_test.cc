// Mount table rules, placement, and the cluster stores (a directory; a real etcd).
#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <thread>

#include "cluster/cluster_store.h"
#include "cluster/placement.h"
#include "support/test_support.h"

namespace sluice::cluster {
namespace {

WorkerInfo Worker(const std::string& id, int port, int64_t pid = 0) {
  WorkerInfo w;
  w.id = id;
  w.rpc_port = port;
  w.http_port = port + 1;
  w.pid = pid;
  return w;
}

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
  ASSERT_TRUE(store->RegisterWorker(Worker("w1", 1000, ::getpid())).ok());
  ASSERT_TRUE(store->RegisterWorker(Worker("w2", 2000, 999999999)).ok());  // no such process
  auto workers = *store->Workers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].id, "w1");
  EXPECT_EQ(workers[0].rpc_port, 1000);
  ASSERT_TRUE(store->UnregisterWorker("w1").ok());
  EXPECT_TRUE(store->Workers()->empty());
}

// Keys whose owner set (top `replicas`) differs between two member lists.
double MovedFraction(const std::vector<std::string>& before, const std::vector<std::string>& after, size_t replicas,
                     int keys) {
  int moved = 0;
  for (int k = 0; k < keys; ++k) {
    const std::string key = "/data/train/" + std::to_string(k) + ".jpg";
    std::set<std::string> a, b;
    for (size_t i : RankOwners(before, key, replicas)) a.insert(before[i]);
    for (size_t i : RankOwners(after, key, replicas)) b.insert(after[i]);
    moved += a != b;
  }
  return static_cast<double>(moved) / keys;
}

TEST(PlacementTest, AJoinOrALeaveMovesOnlyItsShareOfKeys) {
  const std::vector<std::string> three{"10.0.0.11:7000", "10.0.0.12:7000", "10.0.0.13:7000"};
  std::vector<std::string> four = three;
  four.push_back("10.0.0.14:7000");
  constexpr int kKeys = 20000;
  // One replica: a fourth worker takes a quarter of the keys; the ideal is exactly that.
  EXPECT_LE(MovedFraction(three, four, 1, kKeys), 1.2 * (1.0 / 4));
  EXPECT_GE(MovedFraction(three, four, 1, kKeys), 0.8 * (1.0 / 4));  // and it does take its share
  // Leaving: only the keys the leaver held (a quarter of four) change owner.
  EXPECT_LE(MovedFraction(four, three, 1, kKeys), 1.2 * (1.0 / 4));
  // Two replicas over four: the leaver held a copy of half the keys.
  EXPECT_LE(MovedFraction(four, three, 2, kKeys), 1.2 * (2.0 / 4));
  // A key moves only to or from the worker that changed.
  for (int k = 0; k < 2000; ++k) {
    const std::string key = "/k" + std::to_string(k);
    const auto a = RankOwners(three, key, 1), b = RankOwners(four, key, 1);
    if (three[a[0]] != four[b[0]]) {
      EXPECT_EQ(four[b[0]], "10.0.0.14:7000");
    }
  }
}

TEST(PlacementTest, LargeFilesArePlacedSpanBySpan) {
  EXPECT_EQ(PlacementKey("/d/small", 0, 1000, 64 << 20), "/d/small");
  EXPECT_EQ(PlacementKey("/d/big", 0, 200ull << 20, 64 << 20), "/d/big#0");
  EXPECT_EQ(PlacementKey("/d/big", 130ull << 20, 200ull << 20, 64 << 20), "/d/big#2");
  const std::vector<std::string> ids{"a", "b", "c", "d"};
  std::set<size_t> owners;  // a 4 GiB shard spreads over every worker
  for (uint64_t off = 0; off < (4ull << 30); off += 64 << 20) {
    owners.insert(RankOwners(ids, PlacementKey("/d/shard", off, 4ull << 30, 64 << 20), 1)[0]);
  }
  EXPECT_EQ(owners.size(), ids.size());
  EXPECT_EQ(RankOwners(ids, "x", 9).size(), ids.size());
}

TEST(StaticClusterTest, ListedWorkersAreTheMembers) {
  testing::TempDir dir;
  auto store = WithStaticWorkers(*OpenFileClusterStore(dir.path()), {"10.0.0.2:29990", "10.0.0.1:7000"});
  ASSERT_TRUE(store->UpdateMounts([](MountTable* t) { return t->Add(Mount("/d", "file:///d")); }).ok());
  EXPECT_EQ(store->LoadMounts()->mounts().size(), 1u);
  ASSERT_TRUE(store->RegisterWorker(Worker("other", 1, ::getpid())).ok());  // not a member
  auto workers = *store->Workers();
  ASSERT_EQ(workers.size(), 2u);
  EXPECT_EQ(workers[0].id, "10.0.0.1:7000");
  EXPECT_EQ(workers[0].host, "10.0.0.1");
  EXPECT_EQ(workers[0].rpc_port, 7000);
  EXPECT_EQ(workers[1].Endpoint(), "10.0.0.2:29990");
}

// A real etcd (tests/fixtures/etcd.sh) on ports of this test's own, stopped by pid.
class EtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = testing::UnusedPort();
    std::string out;
    ASSERT_EQ(Etcd("start", std::to_string(port_)), 0) << out;
  }
  void TearDown() override { (void)Etcd("stop"); }
  int Etcd(const std::string& cmd, const std::string& port = "") {
    std::vector<std::string> argv{"bash", SLUICE_FIXTURES_DIR "/etcd.sh", cmd, dir_.path() + "/etcd"};
    if (!port.empty()) argv.push_back(port);
    std::string out;
    int rc = testing::RunCommand(argv, &out, {{"WATCH_PID", std::to_string(::getpid())}});
    if (rc != 0) ADD_FAILURE() << out;
    return rc;
  }
  std::unique_ptr<ClusterStore> Open(std::chrono::nanoseconds ttl = std::chrono::seconds(2)) {
    auto store = OpenEtcdClusterStore({"127.0.0.1:" + std::to_string(port_)}, ttl);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  static bool Has(ClusterStore& s, const std::string& id) {
    auto w = s.Workers();
    return w.ok() && std::any_of(w->begin(), w->end(), [&](const WorkerInfo& i) { return i.id == id; });
  }

  testing::TempDir dir_;
  int port_ = 0;
};

TEST_F(EtcdTest, MountTableChangesAreSeenByEveryProcess) {
  auto a = Open(), b = Open();
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(a->LoadMounts()->mounts().empty());
  const std::string v0 = b->MountsVersion();
  ASSERT_TRUE(a->UpdateMounts([](MountTable* t) { return t->Add(Mount("/data", "s3://bucket/p")); }).ok());
  // b learns it from its watch.
  ASSERT_TRUE(testing::WaitFor([&] { return b->MountsVersion() != v0; }, std::chrono::seconds(5)));
  auto table = b->LoadMounts();
  ASSERT_TRUE(table.ok());
  ASSERT_EQ(table->mounts().size(), 1u);
  EXPECT_EQ(table->mounts()[0].uri, "s3://bucket/p");
  // Concurrent updates: none is lost (compare-and-swap on the key's revision).
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto& s = i % 2 ? a : b;
      for (int j = 0; j < 5; ++j) {
        std::string path = "/m" + std::to_string(i) + "_" + std::to_string(j);
        EXPECT_TRUE(s->UpdateMounts([&](MountTable* t) { return t->Add(Mount(path, "file:///x")); }).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(a->LoadMounts()->mounts().size(), 21u);
  EXPECT_EQ(a->UpdateMounts([](MountTable* t) { return t->Add(Mount("/data", "file:///y")); }).code(),
            StatusCode::kAlreadyExists);
}

TEST_F(EtcdTest, WorkersLiveByTheirLease) {
  auto watcher = Open();
  {
    auto w1 = Open(), w2 = Open();
    WorkerInfo info = Worker("10.1.1.1:7000", 7000);
    info.capacity = 1 << 30;
    info.zone = "rack1";
    ASSERT_TRUE(w1->RegisterWorker(info).ok());
    ASSERT_TRUE(w2->RegisterWorker(Worker("10.1.1.2:7000", 7000)).ok());
    ASSERT_TRUE(testing::WaitFor([&] { return Has(*watcher, "10.1.1.1:7000") && Has(*watcher, "10.1.1.2:7000"); },
                                 std::chrono::seconds(5)));
    auto workers = *watcher->Workers();
    EXPECT_EQ(workers[0].zone, "rack1");
    EXPECT_EQ(workers[0].capacity, 1u << 30);
    // Renewed: still there well past the TTL.
    std::this_thread::sleep_for(std::chrono::milliseconds(3500));  // the lease TTL is 2 s
    EXPECT_TRUE(Has(*watcher, "10.1.1.1:7000"));
    // A clean stop deregisters at once.
    ASSERT_TRUE(w2->UnregisterWorker("10.1.1.2:7000").ok());
    EXPECT_TRUE(testing::WaitFor([&] { return !Has(*watcher, "10.1.1.2:7000"); }, std::chrono::seconds(2)));
    // w1's store goes away without unregistering (a crash): its lease expires.
  }
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(testing::WaitFor([&] { return !Has(*watcher, "10.1.1.1:7000"); }, std::chrono::seconds(10)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));  // within about the TTL
}

TEST_F(EtcdTest, ViewSurvivesAnEtcdOutageAndRegistrationsComeBack) {
  auto worker = Open(), client = Open();
  ASSERT_TRUE(worker->RegisterWorker(Worker("w1", 7000)).ok());
  ASSERT_TRUE(worker->UpdateMounts([](MountTable* t) { return t->Add(Mount("/data", "file:///d")); }).ok());
  ASSERT_TRUE(testing::WaitFor([&] { return Has(*client, "w1"); }, std::chrono::seconds(5)));
  ASSERT_EQ(Etcd("stop"), 0);
  // The last view serves meanwhile.
  EXPECT_TRUE(Has(*client, "w1"));
  EXPECT_EQ(client->LoadMounts()->mounts().size(), 1u);
  EXPECT_FALSE(client->UpdateMounts([](MountTable*) { return Status::Ok(); }).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // past the lease's TTL
  ASSERT_EQ(Etcd("restart"), 0);
  // The worker renews (or registers again under a new lease) and everyone sees it.
  EXPECT_TRUE(testing::WaitFor([&] { return Has(*client, "w1"); }, std::chrono::seconds(10)));
  auto fresh = Open();
  EXPECT_TRUE(testing::WaitFor([&] { return Has(*fresh, "w1"); }, std::chrono::seconds(10)));
  EXPECT_EQ(fresh->LoadMounts()->mounts().size(), 1u);
}

TEST_F(EtcdTest, RecordsAndAWrongAddress) {
  auto store = Open();
  ASSERT_TRUE(store->PutRecord("jobs", "load-1@w", "state: done\n").ok());
  EXPECT_EQ(*store->GetRecord("jobs", "load-1@w"), "state: done\n");
  EXPECT_EQ(store->GetRecord("jobs", "nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->ListRecords("jobs")->size(), 1u);
  auto bad = OpenEtcdClusterStore({"127.0.0.1:1"}, std::chrono::seconds(2));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("cannot reach etcd at 127.0.0.1:1"), std::string::npos) << bad.status().ToString();
}

}  // namespace
}  // namespace sluice::cluster
