// The miss path against a real local directory behind a counting under-store: one fetch per
// page however many readers, coalesced runs, the throttle, and faults that must not poison
// the cache.
#include "cache/cached_reader.h"

#include <gtest/gtest.h>

#include <thread>

#include "cache/page_file.h"
#include "support/test_support.h"
#include "ufs/counting_store.h"

namespace sluice::cache {
namespace {

using testing::TempDir;
using testing::TestBytes;
using testing::WriteFile;

constexpr uint64_t kPage = 64 << 10;

// Fails every read while `fail` is set, to play an under-store that is down.
class FlakyStore final : public ufs::UnderStoreWrapper {
 public:
  using UnderStoreWrapper::UnderStoreWrapper;
  Result<uint64_t> ReadVersion(std::string_view path, uint64_t offset, uint64_t length, std::string_view version,
                               const ufs::ByteSink& sink) override {
    if (fail) return Status(StatusCode::kUnavailable, "under-store down (injected)", true);
    return UnderStoreWrapper::ReadVersion(path, offset, length, version, sink);
  }
  std::atomic<bool> fail{false};
};

class CachedReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = TestBytes(40 * kPage + 123, 9);
    WriteFile(dir_.path() + "/ufs/file.bin", data_);
    auto local = ufs::OpenUnderStore("file://" + dir_.path() + "/ufs", {});
    ASSERT_TRUE(local.ok());
    auto flaky = std::make_unique<FlakyStore>(std::move(local).value());
    flaky_ = flaky.get();
    ufs_ = std::make_unique<ufs::CountingStore>(std::move(flaky));
    store_ = *PageStore::Open({kPage, 1ull << 30, {{dir_.path() + "/cache", 1ull << 30, /*reserve=*/0}}, "lru"});
    auto info = *ufs_->Stat("file.bin");
    file_ = CachedFile{"file.bin", info.size, FileId::For(ufs_->Uri(), "file.bin", info.Version()), info.Version()};
  }

  CachedReader Reader(MissPathOptions o = {}) { return CachedReader(store_.get(), ufs_.get(), o); }

  TempDir dir_;
  std::string data_;
  FlakyStore* flaky_ = nullptr;
  std::unique_ptr<ufs::CountingStore> ufs_;
  std::unique_ptr<PageStore> store_;
  CachedFile file_;
};

TEST_F(CachedReaderTest, ReadsAnyRangeAndCachesIt) {
  auto reader = Reader();
  for (auto [off, len] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, 1}, {kPage - 1, 2}, {kPage, kPage}, {3 * kPage + 5, 7 * kPage}, {40 * kPage, 1000}, {0, 1 << 30}}) {
    std::string got;
    auto n = reader.Read(file_, off, len, [&](std::string_view c) {
      got.append(c);
      return Status::Ok();
    });
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_TRUE(got == data_.substr(off, len)) << off << "+" << len;
  }
  EXPECT_EQ(ufs_->counters().bytes_read.load(), data_.size());  // every byte fetched exactly once
  EXPECT_EQ(reader.CachedBytes(file_), data_.size());
  EXPECT_EQ(*reader.Read(file_, data_.size(), 10, [](std::string_view) { return Status::Ok(); }), 0u);
}

TEST_F(CachedReaderTest, RecordsOfDiskPagesAreReadWithoutTheirWholePages) {
  store_ = *PageStore::Open({kPage, 0, {{dir_.path() + "/cache2", 1ull << 30, /*reserve=*/0}}, "lru"});  // disk only
  auto reader = Reader();
  ASSERT_TRUE(reader.Load(file_, 0, data_.size()).ok());
  store_->Flush();
  for (auto [off, len] : std::vector<std::pair<uint64_t, uint64_t>>{
           {5, 1000}, {kPage - 10, 20}, {3 * kPage + 40000, 20000}, {7 * kPage + 1, 3}}) {
    std::vector<std::pair<PageData, size_t>> parts;
    std::string got;
    auto n = reader.ReadPages(file_, off, len, [&](const PageData& page, size_t from, size_t n) {
      got.append(page->view().substr(from, n));
      parts.emplace_back(page, n);
      return Status::Ok();
    });
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_TRUE(got == data_.substr(off, len)) << off << "+" << len;
    for (const auto& [page, n] : parts) EXPECT_EQ(page->size(), kPageChunkBytes) << "more than a chunk for " << off;
  }
  EXPECT_EQ(ufs_->counters().bytes_read.load(), data_.size());  // all from the cache
}

TEST_F(CachedReaderTest, CoalescesSequentialMisses) {
  auto reader = Reader({8 * kPage, 4, 0});
  ASSERT_TRUE(reader.Load(file_, 0, data_.size()).ok());
  EXPECT_EQ(ufs_->counters().reads.load(), 6u);  // 41 pages in runs of at most 8
  EXPECT_EQ(*reader.Load(file_, 0, data_.size()), 0u);  // all cached now
}

TEST_F(CachedReaderTest, PrefetchFillsTheDiskTierOnlyAndSkipsWhatIsCached) {
  auto reader = Reader();
  ASSERT_TRUE(reader.Read(file_, 0, kPage, [](std::string_view) { return Status::Ok(); }).ok());
  EXPECT_EQ(*reader.Prefetch(file_, 0, 10 * kPage, /*memory=*/false), 9 * kPage);  // page 0 was cached already
  store_->Flush();
  auto stats = store_->Stats();
  EXPECT_EQ(stats.tiers[0].pages, 1u);   // memory: only the page a reader asked for
  EXPECT_EQ(stats.tiers[1].pages, 10u);  // disk: all of them
  EXPECT_EQ(*reader.Prefetch(file_, 0, 10 * kPage, /*memory=*/false), 0u);
  std::string got;
  ASSERT_TRUE(reader.Read(file_, 0, 10 * kPage, [&](std::string_view c) {
    got.append(c);
    return Status::Ok();
  }).ok());
  EXPECT_EQ(got, data_.substr(0, 10 * kPage));
  EXPECT_EQ(ufs_->counters().bytes_read.load(), 10 * kPage);
}

TEST_F(CachedReaderTest, SharedPagesAndFetchingAhead) {
  auto reader = Reader();
  std::string got;
  auto n = reader.ReadPages(file_, kPage + 10, kPage, [&](const PageData& page, size_t from, size_t len) {
    got.append(*page, from, len);
    return Status::Ok();
  }, /*memory=*/true, /*ahead_pages=*/3);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, kPage);
  EXPECT_EQ(got, data_.substr(kPage + 10, kPage));  // only the range is handed out
  EXPECT_EQ(ufs_->counters().reads.load(), 1u);     // the whole group of 4 (pages 0..3) in one read
  EXPECT_EQ(ufs_->counters().bytes_read.load(), 4 * kPage);
  EXPECT_EQ(*reader.Load(file_, 0, 4 * kPage), 0u);  // all cached
}

TEST_F(CachedReaderTest, ConcurrentColdReadersFetchEachPageOnce) {
  auto reader = Reader();
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 32; ++t) {
    threads.emplace_back([&, t] {
      std::string got;
      uint64_t off = (t % 4) * kPage / 3;
      auto n = reader.Read(file_, off, data_.size(), [&](std::string_view c) {
        got.append(c);
        return Status::Ok();
      });
      if (!n.ok() || got != data_.substr(off)) ++wrong;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(ufs_->counters().bytes_read.load(), data_.size());
  EXPECT_GT(reader.Stats().shared_waits, 0u);
}

TEST_F(CachedReaderTest, UnderStoreDownKeepsServingCachedPages) {
  auto reader = Reader();
  ASSERT_TRUE(reader.Load(file_, 0, 10 * kPage).ok());
  flaky_->fail = true;
  std::string got;
  auto cached = reader.Read(file_, 0, 10 * kPage, [&](std::string_view c) {
    got.append(c);
    return Status::Ok();
  });
  ASSERT_TRUE(cached.ok());
  EXPECT_TRUE(got == data_.substr(0, 10 * kPage));
  auto uncached = reader.Read(file_, 20 * kPage, 10, [](std::string_view) { return Status::Ok(); });
  EXPECT_EQ(uncached.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(uncached.status().message().find("under-store down"), std::string::npos);
  flaky_->fail = false;  // a failed fetch leaves nothing behind: the next read works
  got.clear();
  ASSERT_TRUE(reader.Read(file_, 20 * kPage, 10, [&](std::string_view c) {
    got.append(c);
    return Status::Ok();
  }).ok());
  EXPECT_EQ(got, data_.substr(20 * kPage, 10));
}

TEST_F(CachedReaderTest, ShrunkFileIsAnErrorNotShortData) {
  auto reader = Reader();
  WriteFile(dir_.path() + "/ufs/file.bin", data_.substr(0, 5 * kPage));  // changed behind our back
  auto n = reader.Read(file_, 0, data_.size(), [](std::string_view) { return Status::Ok(); });
  EXPECT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kStale);
  EXPECT_NE(n.status().message().find("changed in the under-store"), std::string::npos) << n.status().message();
}

// A preload fetches in runs of at most 8 pages (a reader beside it waits for less), and
// leaves pages that are already cached alone: none is read back from disk.
TEST_F(CachedReaderTest, LoadFetchesInShortRunsAndSkipsCachedPages) {
  auto reader = Reader();
  ASSERT_EQ(*reader.Load(file_, 0, 17 * kPage), 17 * kPage);
  EXPECT_EQ(reader.Stats().ufs_reads, 3u);  // 8 + 8 + 1 pages
  store_->Flush();
  auto reopened =
      *PageStore::Open({kPage, 0, {{dir_.path() + "/cache", 1ull << 30, /*reserve=*/0}}, "lru"});  // no memory tier
  CachedReader again(reopened.get(), ufs_.get(), {});
  ASSERT_EQ(*again.Load(file_, 0, 20 * kPage), 3 * kPage);  // only the 3 pages not cached yet
  auto stats = reopened->Stats();
  EXPECT_EQ(stats.hits_disk, 0u);
  EXPECT_EQ(stats.hits_memory, 0u);
  EXPECT_EQ(again.Stats().ufs_reads, 1u);
}

TEST_F(CachedReaderTest, RateLimitBoundsUnderStoreBandwidth) {
  auto reader = Reader({kPage, 4, 4 * kPage * 4});  // 4 pages' worth per 0.25 s
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(reader.Load(file_, 0, 8 * kPage).ok());
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(elapsed, std::chrono::milliseconds(400));  // 8 pages at 16 pages/s, less the first burst
}

}  // namespace
}  // namespace sluice::cache
