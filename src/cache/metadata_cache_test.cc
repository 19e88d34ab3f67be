// MetadataCache against a real directory behind a counting store.
#include "cache/metadata_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>

#include "support/test_support.h"
#include "ufs/counting_store.h"

namespace sluice::cache {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;
using testing::WriteFile;

class MetadataCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_.path() + "/d/a", "1");
    WriteFile(dir_.path() + "/d/b", "22");
    ufs_ = std::make_unique<ufs::CountingStore>(*ufs::OpenUnderStore("file://" + dir_.path(), {}));
  }
  TempDir dir_;
  std::unique_ptr<ufs::CountingStore> ufs_;
};

TEST_F(MetadataCacheTest, CachesStatListAndNegativeEntries) {
  MetadataCache cache(ufs_.get(), {60s, 1000});
  EXPECT_EQ(cache.Stat("d/a")->size, 1u);
  EXPECT_EQ(cache.Stat("d/a")->size, 1u);
  EXPECT_EQ(ufs_->counters().stats.load(), 1u);
  EXPECT_EQ(cache.Stat("d/nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(cache.Stat("d/nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ufs_->counters().stats.load(), 2u);
  auto listing = cache.List("d");
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing->size(), 2u);
  ASSERT_TRUE(cache.List("d").ok());
  EXPECT_EQ(ufs_->counters().lists.load(), 1u);
  EXPECT_EQ(cache.Stat("d/b")->size, 2u);  // answered by the listing
  EXPECT_EQ(ufs_->counters().stats.load(), 2u);
}

TEST_F(MetadataCacheTest, ExpiryRevalidatesAndReportsVersionChanges) {
  std::mutex mu;
  std::vector<ufs::ObjectInfo> changed;
  MetadataCache cache(ufs_.get(), {50ms, 1000}, [&](const ufs::ObjectInfo& old) {
    std::lock_guard<std::mutex> lock(mu);
    changed.push_back(old);
  });
  auto first = *cache.Stat("d/a");
  WriteFile(dir_.path() + "/d/a", "a longer content");
  EXPECT_EQ(cache.Stat("d/a")->size, 1u);  // still within the TTL
  ASSERT_TRUE(testing::WaitFor([&] { return cache.Stat("d/a")->size == 16u; }, 2s));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0].Version(), first.Version());
  EXPECT_EQ(cache.Stats().version_changes, 1u);
}

TEST_F(MetadataCacheTest, ExpiredEntriesAreServedWhileOneListRevalidatesTheirDirectory) {
  for (int i = 0; i < 20; ++i) WriteFile(dir_.path() + "/d/f" + std::to_string(i), std::string(i, 'x'));
  MetadataCache cache(ufs_.get(), {100ms, 1000});
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(cache.Stat("d/f" + std::to_string(i)).ok());
  const uint64_t stats_before = ufs_->counters().stats;
  ASSERT_TRUE(testing::WaitFor([&] { return cache.Stats().stale_hits > 0 || !cache.Stat("d/f0").ok(); }, 2s));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(cache.Stat("d/f" + std::to_string(i))->size, static_cast<uint64_t>(i));
  ASSERT_TRUE(testing::WaitFor([&] { return cache.Stats().revalidations >= 1; }, 2s));
  EXPECT_EQ(ufs_->counters().stats.load(), stats_before) << "no stat per expired entry";
  EXPECT_LE(ufs_->counters().lists.load(), 2u);
  // A file gone from the store is gone after the revalidation.
  std::filesystem::remove(dir_.path() + "/d/f3");
  ASSERT_TRUE(testing::WaitFor([&] {
    return cache.Stat("d/f3").status().code() == StatusCode::kNotFound;
  }, 5s));
}

// Stat takes `delay` and counts the calls in flight at once.
class SlowStore final : public ufs::UnderStoreWrapper {
 public:
  using UnderStoreWrapper::UnderStoreWrapper;
  Result<ufs::ObjectInfo> Stat(std::string_view path) override {
    int now = ++in_flight;
    int seen = max_in_flight.load();
    while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
    }
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the request's round trip
    --in_flight;
    return UnderStoreWrapper::Stat(path);
  }
  std::atomic<int> in_flight{0}, max_in_flight{0}, calls{0};
};

TEST_F(MetadataCacheTest, MissesOfOneKeyShareARequestAndOfManyKeysRunInParallel) {
  for (int i = 0; i < 8; ++i) WriteFile(dir_.path() + "/d/g" + std::to_string(i), "g");
  SlowStore store(*ufs::OpenUnderStore("file://" + dir_.path(), {}));
  MetadataCache cache(&store, {60s, 1000});
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) threads.emplace_back([&] { EXPECT_EQ(cache.Stat("d/a")->size, 1u); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(store.calls.load(), 1);
  EXPECT_EQ(cache.Stats().shared_misses, 7u);
  threads.clear();
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] { EXPECT_TRUE(cache.Stat("d/g" + std::to_string(i)).ok()); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(store.calls.load(), 9);
  EXPECT_GE(store.max_in_flight.load(), 4) << "misses of different keys ran one at a time";
}

TEST_F(MetadataCacheTest, InvalidateDropsThePathAndBelow) {
  MetadataCache cache(ufs_.get(), {60s, 1000});
  ASSERT_TRUE(cache.List("d").ok());
  ASSERT_TRUE(cache.Stat("d").ok());
  WriteFile(dir_.path() + "/d/c", "333");
  EXPECT_EQ(cache.List("d")->size(), 2u);
  auto dropped = cache.Invalidate("d");
  EXPECT_EQ(dropped.entries, 4u);  // the listing, d, d/a, d/b
  ASSERT_EQ(dropped.files.size(), 2u);
  EXPECT_EQ(dropped.files[0].path, "d/a");
  EXPECT_EQ(cache.List("d")->size(), 3u);
  EXPECT_EQ(cache.Invalidate("zzz").entries, 0u);
}

TEST_F(MetadataCacheTest, BoundedEntries) {
  MetadataCache cache(ufs_.get(), {60s, 10});
  for (int i = 0; i < 50; ++i) (void)cache.Stat("missing" + std::to_string(i));
  EXPECT_EQ(cache.Stats().entries, 10u);
}

// Stat fails with a retryable error while `down` is set.
class DownStore final : public ufs::UnderStoreWrapper {
 public:
  using UnderStoreWrapper::UnderStoreWrapper;
  Result<ufs::ObjectInfo> Stat(std::string_view path) override {
    if (down) return Status(StatusCode::kUnavailable, "down (injected)", true);
    return UnderStoreWrapper::Stat(path);
  }
  bool down = true;
};

TEST_F(MetadataCacheTest, TransientErrorsAreNotCached) {
  DownStore store(*ufs::OpenUnderStore("file://" + dir_.path(), {}));
  MetadataCache cache(&store, {60s, 10});
  EXPECT_EQ(cache.Stat("d/a").status().code(), StatusCode::kUnavailable);
  store.down = false;
  EXPECT_EQ(cache.Stat("d/a")->size, 1u);
}

}  // namespace
}  // namespace sluice::cache
