// MetadataCache against a real directory behind a counting store.
#include "cache/metadata_cache.h"

#include <gtest/gtest.h>

#include <filesystem>
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
  std::vector<ufs::ObjectInfo> changed;
  MetadataCache cache(ufs_.get(), {50ms, 1000}, [&](const ufs::ObjectInfo& old) { changed.push_back(old); });
  auto first = *cache.Stat("d/a");
  WriteFile(dir_.path() + "/d/a", "a longer content");
  EXPECT_EQ(cache.Stat("d/a")->size, 1u);  // still within the TTL
  ASSERT_TRUE(testing::WaitFor([&] { return cache.Stat("d/a")->size == 16u; }, 2s));
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0].Version(), first.Version());
  EXPECT_EQ(cache.Stats().version_changes, 1u);
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
