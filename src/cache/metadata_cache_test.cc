// MetadataCache against a real directory behind a counting store.
#include "cache/metadata_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "cache/packed_listing.h"

#include "support/test_support.h"
#include "ufs/counting_store.h"

namespace sluice::cache {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;
using testing::WriteFile;

MetadataCacheOptions Ttl(std::chrono::nanoseconds ttl) {
  MetadataCacheOptions options;
  options.ttl = ttl;
  return options;
}

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
  MetadataCache cache(ufs_.get(), Ttl(60s));
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
  MetadataCache cache(ufs_.get(), Ttl(50ms), [&](const ufs::ObjectInfo& old) {
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
  MetadataCache cache(ufs_.get(), Ttl(100ms));
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
  MetadataCache cache(&store, Ttl(60s));
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
  MetadataCache cache(ufs_.get(), Ttl(60s));
  ASSERT_TRUE(cache.List("d").ok());
  ASSERT_TRUE(cache.Stat("d").ok());
  WriteFile(dir_.path() + "/d/c", "333");
  EXPECT_EQ(cache.List("d")->size(), 2u);
  auto dropped = cache.Invalidate("d");
  EXPECT_EQ(dropped.entries, 2u);  // the listing and the stat of d
  ASSERT_EQ(dropped.files.size(), 2u);
  EXPECT_EQ(dropped.files[0].path, "d/a");
  EXPECT_EQ(cache.List("d")->size(), 3u);
  EXPECT_EQ(cache.Invalidate("zzz").entries, 0u);
}

TEST_F(MetadataCacheTest, MemoryIsBoundedInBytes) {
  MetadataCacheOptions options;
  options.max_bytes = 16 << 10;
  MetadataCache cache(ufs_.get(), options);
  for (int i = 0; i < 500; ++i) (void)cache.Stat("missing" + std::to_string(i));
  EXPECT_LE(cache.Stats().bytes, options.max_bytes);
  EXPECT_LT(cache.Stats().entries, 100u);
}

TEST_F(MetadataCacheTest, AListedEntryCostsLessThan150Bytes) {
  for (int i = 0; i < 10000; ++i) WriteFile(dir_.path() + "/big/image_" + std::to_string(i) + ".jpg", "");
  MetadataCache cache(ufs_.get(), Ttl(60s));
  ASSERT_EQ(cache.List("big")->size(), 10000u);
  const auto stats = cache.Stats();
  EXPECT_EQ(stats.listed_entries, 10000u);
  EXPECT_LE(stats.bytes / stats.listed_entries, 150u) << stats.bytes << " bytes for 10,000 entries";
  // The listing answers every stat, by name, without a request.
  for (int i = 0; i < 10000; i += 97) ASSERT_TRUE(cache.Stat("big/image_" + std::to_string(i) + ".jpg").ok());
  EXPECT_EQ(ufs_->counters().stats.load(), 0u);
}

// Pages of `limit` entries after a cursor cover a listing exactly once, in order, at and
// around page boundaries.
TEST_F(MetadataCacheTest, PagesCoverAListingExactlyOnce) {
  MetadataCache cache(ufs_.get(), Ttl(60s));
  for (int n : {999, 1000, 1001, 4999, 5000, 5001}) {
    const std::string dir = "n" + std::to_string(n);
    for (int i = 0; i < n; ++i) WriteFile(dir_.path() + "/" + dir + "/" + std::to_string(i), "");
    std::set<std::string> seen;
    std::string cursor, last;
    for (bool more = true; more;) {
      auto page = cache.ListPage(dir, cursor, 1000);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      for (const auto& e : page->entries) {
        EXPECT_GT(e.path, last);
        last = e.path;
        EXPECT_TRUE(seen.insert(e.path).second) << e.path;
      }
      more = page->more;
      if (!page->entries.empty()) cursor = page->entries.back().path.substr(dir.size() + 1);
    }
    EXPECT_EQ(seen.size(), static_cast<size_t>(n));
  }
  EXPECT_EQ(ufs_->counters().lists.load(), 6u) << "each directory listed once, then paged from the cache";
  // No limit: the whole directory, fetched or cached.
  for (int round = 0; round < 2; ++round) {
    auto whole = cache.ListPage("n999", "", SIZE_MAX);
    ASSERT_TRUE(whole.ok());
    EXPECT_EQ(whole->entries.size(), 999u);
    EXPECT_FALSE(whole->more);
    auto rest = cache.ListPage("n999", "997", SIZE_MAX);  // names "0" ... "998", by string
    ASSERT_TRUE(rest.ok());
    ASSERT_EQ(rest->entries.size(), 1u);
    EXPECT_EQ(rest->entries[0].path, "n999/998");
    (void)cache.Invalidate("n999");
  }
}

// A directory that changes between two pages of one pass: what was there throughout comes
// exactly once; the next pass sees the change.
TEST_F(MetadataCacheTest, ADirectoryChangingWhileListedLosesAndRepeatsNothing) {
  for (int i = 0; i < 3000; ++i) WriteFile(dir_.path() + "/c/" + std::to_string(10000 + i), "");
  MetadataCache cache(ufs_.get(), Ttl(60s));
  auto first = cache.ListPage("c", "", 1000);
  ASSERT_TRUE(first.ok());
  std::set<std::string> seen;
  for (const auto& e : first->entries) seen.insert(e.path);
  // Changes on both sides of the cursor, then the cache learns them.
  std::filesystem::remove(dir_.path() + "/c/10000");
  std::filesystem::remove(dir_.path() + "/c/12999");
  WriteFile(dir_.path() + "/c/00001", "");
  WriteFile(dir_.path() + "/c/99999", "");
  (void)cache.Invalidate("c");
  std::string cursor = first->entries.back().path.substr(2);
  for (bool more = true; more;) {
    auto page = cache.ListPage("c", cursor, 1000);
    ASSERT_TRUE(page.ok());
    for (const auto& e : page->entries) EXPECT_TRUE(seen.insert(e.path).second) << "repeated: " << e.path;
    more = page->more;
    if (!page->entries.empty()) cursor = page->entries.back().path.substr(2);
  }
  for (int i = 10001; i < 12999; ++i) EXPECT_TRUE(seen.count("c/" + std::to_string(i))) << "lost: " << i;
  EXPECT_TRUE(seen.count("c/99999"));
  auto next = cache.List("c");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->size(), 3000u);
  EXPECT_EQ(next->front().path, "c/00001");
  EXPECT_EQ(next->back().path, "c/99999");
}

// Lists in pages of `page_size` in S3's order (a directory as "name/"), one page at a time;
// pages after the first wait until `open` is set.
class PagedStore final : public ufs::UnderStoreWrapper {
 public:
  PagedStore(std::unique_ptr<ufs::UnderStore> base, size_t page_size)
      : UnderStoreWrapper(std::move(base)), page_size_(page_size) {}
  Result<ufs::ListPage> List(std::string_view dir, const ufs::ListOptions& options) override {
    auto all = base().ListAll(dir, options.recursive);
    if (!all.ok()) return all.status();
    auto key = [](const ufs::ObjectInfo& e) {
      return e.path.substr(e.path.rfind('/') + 1) + (e.is_dir ? "/" : "");
    };
    std::sort(all->begin(), all->end(), [&](const auto& a, const auto& b) { return key(a) < key(b); });
    const size_t from = options.continuation.empty() ? 0 : std::stoul(options.continuation);
    if (from > 0) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return open; });
    }
    ++pages;
    ufs::ListPage page;
    const size_t to = std::min(all->size(), from + page_size_);
    page.entries.assign(all->begin() + static_cast<std::ptrdiff_t>(from), all->begin() + static_cast<std::ptrdiff_t>(to));
    if (to < all->size()) page.next_token = std::to_string(to);
    return page;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu);
    open = true;
    cv.notify_all();
  }
  std::atomic<int> pages{0};

 private:
  const size_t page_size_;
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
};

// The first page of a directory not cached is served once the store's first page is in,
// not after the whole listing; entries that a later store page can still sort before (a
// directory "b", listed as "b/" after "b.txt") wait for it; every entry comes once.
TEST_F(MetadataCacheTest, AListingIsServedAsTheStorePagesArrive) {
  for (int i = 0; i < 250; ++i) WriteFile(dir_.path() + "/p/x" + std::to_string(1000 + i), "");
  // Store order: ... "b-1", "b.txt", "b/", ... — the page boundary (5) falls after "b.txt".
  for (const char* name : {"a1", "a2", "a3", "b-1", "b.txt", "b/inner", "c"}) WriteFile(dir_.path() + "/p/" + name, "");
  PagedStore store(*ufs::OpenUnderStore("file://" + dir_.path(), {}), 5);
  MetadataCache cache(&store, Ttl(60s));
  auto first = std::async(std::launch::async, [&] { return cache.ListPage("p", "", 3); });
  ASSERT_EQ(first.wait_for(10s), std::future_status::ready) << "the first page waited for the whole listing";
  auto page = first.get();
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entries.size(), 3u);
  EXPECT_EQ(page->entries[0].path, "p/a1");
  EXPECT_TRUE(page->more);
  EXPECT_EQ(store.pages.load(), 1);
  // "b-1" and "b.txt" came in the first store page, but "b" sorts before them and comes later.
  auto second = std::async(std::launch::async, [&] { return cache.ListPage("p", "a3", 2); });
  EXPECT_EQ(second.wait_for(200ms), std::future_status::timeout) << "served names a later page sorts before";
  store.Open();
  ASSERT_EQ(second.wait_for(10s), std::future_status::ready);
  auto next = second.get();
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->entries.size(), 2u);
  EXPECT_EQ(next->entries[0].path, "p/b");
  EXPECT_TRUE(next->entries[0].is_dir);
  EXPECT_EQ(next->entries[1].path, "p/b-1");
  // The rest, by cursor, each name once and in order.
  std::vector<std::string> names = {"p/a1", "p/a2", "p/a3", "p/b", "p/b-1"};
  std::string cursor = "b-1";
  for (bool more = true; more;) {
    auto rest = cache.ListPage("p", cursor, 7);
    ASSERT_TRUE(rest.ok());
    for (const auto& e : rest->entries) names.push_back(e.path);
    more = rest->more;
    if (!rest->entries.empty()) cursor = rest->entries.back().path.substr(2);
  }
  EXPECT_EQ(names.size(), 257u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
  EXPECT_EQ(cache.List("p")->size(), 257u);
  EXPECT_EQ(store.pages.load(), 52) << "the directory was listed more than once";
}

// Over its memory bound the cache reads listings back from the index on disk, and a new cache
// on the same index (a restarted worker) answers from it without listing again.
TEST_F(MetadataCacheTest, ListingsSpillToTheIndexAndSurviveARestart) {
  for (int d = 0; d < 40; ++d) {
    for (int i = 0; i < 100; ++i) WriteFile(dir_.path() + "/s/d" + std::to_string(d) + "/f" + std::to_string(i), "x");
  }
  MetadataCacheOptions options;
  options.max_bytes = 64 << 10;  // about 5 of the 40 listings
  options.index_dir = dir_.path() + "/index";
  {
    MetadataCache cache(ufs_.get(), options);
    for (int d = 0; d < 40; ++d) ASSERT_EQ(cache.List("s/d" + std::to_string(d))->size(), 100u);
    EXPECT_LE(cache.Stats().bytes, options.max_bytes);
    for (int d = 0; d < 40; ++d) EXPECT_EQ(cache.Stat("s/d" + std::to_string(d) + "/f7")->size, 1u);
    EXPECT_GT(cache.Stats().index_reads, 30u);
  }
  EXPECT_EQ(ufs_->counters().lists.load(), 40u);
  EXPECT_EQ(ufs_->counters().stats.load(), 0u);
  {
    MetadataCache restarted(ufs_.get(), options);
    for (int d = 0; d < 40; ++d) {
      EXPECT_EQ(restarted.Stat("s/d" + std::to_string(d) + "/f99")->size, 1u);
      EXPECT_EQ(restarted.List("s/d" + std::to_string(d))->size(), 100u);
    }
    EXPECT_EQ(ufs_->counters().lists.load(), 40u) << "the restarted cache listed again";
    EXPECT_EQ(ufs_->counters().stats.load(), 0u);
    // `sluice fs sync` of a directory drops it from disk too.
    (void)restarted.Invalidate("s/d3");
    // The index is one process's: another one opening it is refused (and it stays intact).
    EXPECT_FALSE(MetadataIndex::Open(options.index_dir).ok());
  }
  MetadataCache again(ufs_.get(), options);
  ASSERT_TRUE(again.List("s/d3").ok());
  EXPECT_EQ(ufs_->counters().lists.load(), 41u);
}

TEST_F(MetadataCacheTest, ACorruptListingOnDiskIsListedAgain) {
  MetadataCacheOptions options;
  options.index_dir = dir_.path() + "/index";
  {
    MetadataCache cache(ufs_.get(), options);
    ASSERT_TRUE(cache.List("d").ok());
  }
  {
    auto index = MetadataIndex::Open(options.index_dir);
    ASSERT_TRUE(index.ok());
    ASSERT_TRUE((*index)->Put("d", "SLP1 and then garbage").ok());
  }
  MetadataCache cache(ufs_.get(), options);
  auto listing = cache.List("d");
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing->size(), 2u);
  EXPECT_EQ(ufs_->counters().lists.load(), 2u);
  EXPECT_FALSE(PackedListing::Open("SLP1 and then garbage").ok());
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
  MetadataCache cache(&store, Ttl(60s));
  EXPECT_EQ(cache.Stat("d/a").status().code(), StatusCode::kUnavailable);
  store.down = false;
  EXPECT_EQ(cache.Stat("d/a")->size, 1u);
}

}  // namespace
}  // namespace sluice::cache
