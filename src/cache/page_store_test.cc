// PageStore: tiers, quotas, policies, checksums, restart and a full disk.
#include "cache/page_store.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cache/page_file.h"
#include "support/test_support.h"

namespace sluice::cache {
namespace {

using testing::TempDir;
using testing::TestBytes;

constexpr uint64_t kPage = 4096;

PageData Bytes(uint64_t seed, size_t n = kPage) { return PageBuffers::Global().Copy(TestBytes(n, seed)); }
PageKey Key(uint64_t index, const std::string& file = "f") { return PageKey{FileId::For("file:///d", file, "v1"), index}; }

std::vector<std::string> PageFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path().string());
  }
  return out;
}

TEST(PageKeyTest, FileIdDependsOnEveryPart) {
  FileId a = FileId::For("s3://b", "k", "etag:1");
  EXPECT_EQ(a, FileId::For("s3://b", "k", "etag:1"));
  EXPECT_FALSE(a == FileId::For("s3://b", "k", "etag:2"));
  EXPECT_FALSE(a == FileId::For("s3://b", "k2", "etag:1"));
  EXPECT_FALSE(FileId::For("ab", "c", "v") == FileId::For("a", "bc", "v"));
  FileId back;
  ASSERT_TRUE(FileId::ParseHex(a.Hex(), &back));
  EXPECT_EQ(back, a);
  EXPECT_FALSE(FileId::ParseHex("xyz", &back));
}

TEST(PageStoreTest, MemoryTierEvictsLeastRecentlyUsed) {
  auto store = *PageStore::Open({kPage, 3 * kPage, {}, "lru"});
  for (uint64_t i = 0; i < 3; ++i) store->Put(Key(i), Bytes(i));
  ASSERT_NE(store->Get(Key(0)), nullptr);  // 0 is now the most recent
  store->Put(Key(3), Bytes(3));            // evicts 1
  EXPECT_EQ(*store->Get(Key(0)), *Bytes(0));
  EXPECT_EQ(store->Get(Key(1)), nullptr);
  EXPECT_NE(store->Get(Key(2)), nullptr);
  EXPECT_NE(store->Get(Key(3)), nullptr);
  auto stats = store->Stats();
  EXPECT_EQ(stats.tiers[0].bytes, 3 * kPage);
  EXPECT_EQ(stats.evictions, 1u);
  EXPECT_EQ(stats.misses, 1u);
}

TEST(PageStoreTest, StablePolicyRefusesOnceFull) {
  auto store = *PageStore::Open({kPage, 2 * kPage, {}, "stable"});
  for (uint64_t i = 0; i < 4; ++i) store->Put(Key(i), Bytes(i));
  EXPECT_NE(store->Get(Key(0)), nullptr);
  EXPECT_NE(store->Get(Key(1)), nullptr);
  EXPECT_EQ(store->Get(Key(2)), nullptr);
  EXPECT_EQ(store->Stats().refused, 2u);
  EXPECT_EQ(PageStore::Open({kPage, kPage, {}, "random"}).status().code(), StatusCode::kInvalidArgument);
}

// Epoch-style sequential scans of a dataset twice the cache: LRU always evicts the page that
// is needed next, the stable policy keeps serving half of the reads.
TEST(PageStoreTest, StablePolicyKeepsHittingOnCyclicScans) {
  auto hit_ratio = [](const std::string& policy) {
    auto store = *PageStore::Open({kPage, 100 * kPage, {}, policy});
    uint64_t hits = 0, reads = 0;
    for (int epoch = 0; epoch < 4; ++epoch) {
      for (uint64_t i = 0; i < 200; ++i) {
        bool hit = store->Get(Key(i)) != nullptr;
        if (!hit) store->Put(Key(i), Bytes(i));
        if (epoch > 0) hits += hit, ++reads;
      }
    }
    return static_cast<double>(hits) / static_cast<double>(reads);
  };
  EXPECT_EQ(hit_ratio("lru"), 0.0);
  EXPECT_NEAR(hit_ratio("stable"), 0.5, 0.01);
}

TEST(PageStoreTest, DiskTierSurvivesRestart) {
  TempDir dir;
  PageStoreOptions opts{kPage, 2 * kPage, {{dir.path(), 100 * kPage, /*reserve=*/0}}, "lru"};
  {
    auto store = *PageStore::Open(opts);
    for (uint64_t i = 0; i < 10; ++i) store->Put(Key(i), Bytes(i, kPage - i));  // lengths vary
  }
  auto store = *PageStore::Open(opts);
  auto stats = store->Stats();
  EXPECT_EQ(stats.tiers[1].pages, 10u);
  for (uint64_t i = 0; i < 10; ++i) {
    auto got = store->Get(Key(i));
    ASSERT_NE(got, nullptr) << i;
    EXPECT_EQ(*got, *Bytes(i, kPage - i));
  }
  EXPECT_EQ(store->Stats().hits_disk, 10u);  // memory starts empty after a restart
}

TEST(PageStoreTest, DiskQuotaEvicts) {
  TempDir dir;
  auto store = *PageStore::Open({kPage, kPage, {{dir.path(), 5 * kPage, /*reserve=*/0}}, "lru"});
  for (uint64_t i = 0; i < 8; ++i) store->Put(Key(i), Bytes(i));
  store->Flush();
  auto stats = store->Stats();
  EXPECT_EQ(stats.tiers[1].pages, 5u);
  EXPECT_LE(stats.tiers[1].bytes, 5 * kPage);
  EXPECT_EQ(PageFiles(dir.path()).size(), 5u);
}

TEST(PageStoreTest, ConcurrentPutsOfOnePageCountItOnce) {
  TempDir dir;
  // No queue: every Put writes in place, so the writers race inside the disk tier.
  auto store =
      *PageStore::Open({kPage, 0, {{dir.path(), 100 * kPage, /*reserve=*/0}}, "lru", /*max_pending_write_bytes=*/0});
  std::vector<std::thread> writers;
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&] {
      for (int i = 0; i < 50; ++i) store->Put(Key(7), Bytes(7));
    });
  }
  for (auto& w : writers) w.join();
  auto stats = store->Stats();
  EXPECT_EQ(stats.tiers[1].pages, 1u);
  EXPECT_EQ(stats.tiers[1].bytes, kPage);  // quota charged once
  EXPECT_EQ(*store->Get(Key(7)), *Bytes(7));
}

TEST(PageStoreTest, CorruptOrTruncatedPagesAreDroppedNeverServed) {
  TempDir dir;
  // No memory tier: every read hits disk.
  PageStoreOptions opts{kPage, 0, {{dir.path(), 100 * kPage, /*reserve=*/0}}, "lru"};
  {
    auto store = *PageStore::Open(opts);
    store->Put(Key(0), Bytes(0));
    store->Put(Key(1), Bytes(1));
    store->Put(Key(2), Bytes(2));
  }
  auto files = PageFiles(dir.path());
  ASSERT_EQ(files.size(), 3u);
  auto path_of = [&](uint64_t index) {
    std::string needle = Key(index).file.Hex() + "-" + std::to_string(index) + "-";
    for (const auto& f : files) {
      if (f.find(needle) != std::string::npos) return f;
    }
    return std::string();
  };
  {  // flip one bit in the middle of page 0
    std::fstream f(path_of(0), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(1000);
    char c;
    f.get(c);
    f.seekp(1000);
    f.put(static_cast<char>(c ^ 0x10));
  }
  std::filesystem::resize_file(path_of(1), 100);  // truncate page 1
  auto store = *PageStore::Open(opts);
  EXPECT_EQ(store->Get(Key(0)), nullptr);
  EXPECT_EQ(store->Get(Key(1)), nullptr);
  EXPECT_EQ(*store->Get(Key(2)), *Bytes(2));
  EXPECT_EQ(store->Stats().corrupt_pages, 2u);
  EXPECT_EQ(PageFiles(dir.path()).size(), 1u);  // the bad files are gone
  store->Put(Key(0), Bytes(0));                 // and can be cached again
  EXPECT_EQ(*store->Get(Key(0)), *Bytes(0));
}

// A page of several 32 KiB chunks, the last one short.
constexpr uint64_t kChunkedPage = 7 * kPageChunkBytes + 123;

void FlipByte(const std::string& path, uint64_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  char c;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(at));
  f.put(static_cast<char>(c ^ 0x10));
}

TEST(PageFileTest, RangesVerifyOnlyTheChunksTheyCover) {
  TempDir dir;
  const std::string data = TestBytes(kChunkedPage, 5), path = dir.path() + "/page";
  testing::WriteFile(path, EncodePageHeader(42, data) + data);
  auto range = [&](uint64_t from, uint64_t n) -> Result<std::string> {
    std::string out(n, '\0');
    SLUICE_RETURN_IF_ERROR(ReadPageRangeInto(path, kChunkedPage, 42, from, n, out.data()));
    return out;
  };
  const uint64_t c = kPageChunkBytes;
  for (auto [from, n] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, 1}, {0, c}, {c - 1, 2}, {c, 2 * c}, {3 * c + 7, 114660}, {kChunkedPage - 1, 1}, {0, kChunkedPage}, {kChunkedPage, 0}}) {
    auto got = range(from, n);
    ASSERT_TRUE(got.ok()) << from << "+" << n << ": " << got.status().ToString();
    EXPECT_TRUE(*got == data.substr(from, n)) << from << "+" << n;
  }
  EXPECT_EQ(range(kChunkedPage - 1, 2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadPageRangeInto(path, kChunkedPage, 43, 0, 1, nullptr).code(), StatusCode::kCorruption);  // other key

  FlipByte(path, PageHeaderBytes(kChunkedPage) + 3 * c + 5);  // in chunk 3
  EXPECT_TRUE(*range(0, 3 * c) == data.substr(0, 3 * c));     // chunks 0-2 are still good
  EXPECT_TRUE(*range(4 * c, c) == data.substr(4 * c, c));
  EXPECT_EQ(range(3 * c + 100, 1).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(range(2 * c, 2 * c).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ReadPageFile(path, kChunkedPage, 42).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(OpenVerifiedPageFile(path, kChunkedPage, 42).status().code(), StatusCode::kCorruption);

  // A page file an older sluice wrote (format 1: one 24-byte header, one checksum) is not
  // found, not corrupt.
  struct {
    uint32_t magic = 0x47504c53, format = 1;
    uint64_t length = kChunkedPage, checksum = 0;
  } v1;
  testing::WriteFile(path, std::string(reinterpret_cast<const char*>(&v1), sizeof(v1)) + data);
  EXPECT_EQ(ReadPageFile(path, kChunkedPage, 42).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(range(0, 1).status().code(), StatusCode::kNotFound);
  std::string same_size = EncodePageHeader(42, data) + data;  // a format of the same header size
  same_size[4] = 1;
  testing::WriteFile(path, same_size);
  EXPECT_EQ(ReadPageFile(path, kChunkedPage, 42).status().code(), StatusCode::kNotFound);
}

TEST(PageStoreTest, PartOfADiskPageIsReadAloneAndNotPromoted) {
  TempDir dir;
  auto store =
      *PageStore::Open({kChunkedPage, 4 * kChunkedPage, {{dir.path(), 100 * kChunkedPage, /*reserve=*/0}}, "lru"});
  const std::string data = TestBytes(kChunkedPage, 8);
  store->Put(Key(0), PageBuffers::Global().Copy(data), /*memory=*/false);
  store->Flush();
  PageSlice part = store->GetRange(Key(0), 100000, 114660);  // chunks 3-6 of 8
  ASSERT_TRUE(part);
  EXPECT_EQ(part.offset, 3 * kPageChunkBytes);
  EXPECT_EQ(part.data->size(), 4 * kPageChunkBytes);
  EXPECT_TRUE(*part.data == std::string_view(data).substr(part.offset, part.data->size()));
  auto stats = store->Stats();
  EXPECT_EQ(stats.hits_disk, 1u);
  EXPECT_EQ(stats.tiers[0].pages, 0u);  // not promoted

  PageSlice whole = store->GetRange(Key(0), 0, kChunkedPage);  // all of it: read whole, promoted
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole.offset, 0u);
  EXPECT_TRUE(*whole.data == data);
  EXPECT_EQ(store->Stats().tiers[0].pages, 1u);
  PageSlice again = store->GetRange(Key(0), 5, 10);  // from memory: the whole page
  EXPECT_EQ(again.offset, 0u);
  EXPECT_EQ(again.data, whole.data);
  EXPECT_EQ(store->Stats().hits_memory, 1u);

  // A bad chunk is caught by a part read that covers it: the page is dropped, not served.
  auto files = PageFiles(dir.path());
  ASSERT_EQ(files.size(), 1u);
  store->Put(Key(1), PageBuffers::Global().Copy(data), /*memory=*/false);
  store->Flush();
  files = PageFiles(dir.path());
  std::string page1;
  for (const auto& f : files) {
    if (f.find(Key(1).file.Hex() + "-1-") != std::string::npos) page1 = f;
  }
  ASSERT_FALSE(page1.empty());
  FlipByte(page1, PageHeaderBytes(kChunkedPage) + 6 * kPageChunkBytes + 1);
  EXPECT_TRUE(store->GetRange(Key(1), 0, 1000));  // chunk 0 is good
  EXPECT_FALSE(store->GetRange(Key(1), 6 * kPageChunkBytes, 10));
  EXPECT_EQ(store->Stats().corrupt_pages, 1u);
  EXPECT_FALSE(store->Contains(Key(1)));
}

TEST(PageStoreTest, EraseFileDropsEveryTier) {
  TempDir dir;
  auto store = *PageStore::Open({kPage, 10 * kPage, {{dir.path(), 100 * kPage, /*reserve=*/0}}, "lru"});
  for (uint64_t i = 0; i < 3; ++i) {
    store->Put(Key(i, "old"), Bytes(i));
    store->Put(Key(i, "other"), Bytes(i));
  }
  store->Flush();
  EXPECT_EQ(store->EraseFile(Key(0, "old").file), 6u);  // 3 in memory + 3 on disk
  EXPECT_FALSE(store->Contains(Key(1, "old")));
  EXPECT_TRUE(store->Contains(Key(1, "other")));
  EXPECT_EQ(PageFiles(dir.path()).size(), 3u);
}

// Pages put in memory reach the disk once puts go quiet, not while a scan runs.
TEST(PageStoreTest, DiskWritesWaitUntilPutsGoQuiet) {
  TempDir dir;
  PageStoreOptions opts{kPage, 100 * kPage, {{dir.path(), 100 * kPage, /*reserve=*/0}}, "lru"};
  opts.disk_write_delay = std::chrono::milliseconds(300);
  auto store = *PageStore::Open(opts);
  auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < 5; ++i) store->Put(Key(i), Bytes(i));
  EXPECT_TRUE(PageFiles(dir.path()).empty());
  EXPECT_EQ(store->Stats().tiers[0].unwritten_bytes, 5 * kPage);
  ASSERT_TRUE(testing::WaitFor([&] { return PageFiles(dir.path()).size() == 5; }, std::chrono::seconds(10)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, opts.disk_write_delay);
  store->Flush();  // the last write may still be finishing
  auto stats = store->Stats();
  EXPECT_EQ(stats.tiers[1].pages, 5u);
  EXPECT_EQ(stats.tiers[0].unwritten_bytes, 0u);
}

// Memory evicting a page that never reached the disk writes it on its way out; erasing a
// file drops its unwritten pages without writing them.
TEST(PageStoreTest, EvictedUnwrittenPagesGoToDiskErasedOnesDoNot) {
  TempDir dir;
  PageStoreOptions opts{kPage, 2 * kPage, {{dir.path(), 100 * kPage, /*reserve=*/0}}, "lru"};
  opts.disk_write_delay = std::chrono::hours(1);
  auto store = *PageStore::Open(opts);
  for (uint64_t i = 0; i < 5; ++i) store->Put(Key(i), Bytes(i));
  ASSERT_TRUE(testing::WaitFor([&] { return PageFiles(dir.path()).size() == 3; }, std::chrono::seconds(10)));
  EXPECT_EQ(*store->Get(Key(0)), *Bytes(0));  // from disk
  EXPECT_EQ(store->Stats().hits_disk, 1u);
  store->Put(Key(0, "doomed"), Bytes(7));
  store->EraseFile(Key(0, "doomed").file);
  store->Flush();
  EXPECT_EQ(PageFiles(dir.path()).size(), 5u);  // pages 0-4, never the erased one
}

// A real full file system: a 1 MiB tmpfs. Pages that do not fit stay uncached; nothing fails.
TEST(PageStoreTest, FullDiskDegradesToUncached) {
  TempDir dir;
  if (::mount("tmpfs", dir.path().c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  }
  {
    auto store = *PageStore::Open({kPage, 4 * kPage, {{dir.path(), 1000 * kPage, /*reserve=*/0}}, "lru"});
    for (uint64_t i = 0; i < 400; ++i) store->Put(Key(i), Bytes(i));
    store->Flush();
    auto stats = store->Stats();
    EXPECT_GT(stats.disk_write_errors, 0u);
    EXPECT_GT(stats.tiers[1].pages, 100u);
    EXPECT_LT(stats.tiers[1].pages, 400u);
    EXPECT_EQ(*store->Get(Key(0)), *Bytes(0));      // what fit is served
    EXPECT_EQ(*store->Get(Key(399)), *Bytes(399));  // the newest pages are still in memory
  }
  ::umount(dir.path().c_str());
}

// A disk tier that cannot hold one page is refused; one whose file system is no larger than its
// reserve is accepted (the file system may grow) with a warning that it will cache nothing.
TEST(PageStoreTest, DiskTiersThatCanCacheNothingAreRefusedOrWarnedAbout) {
  TempDir dir;
  auto small = PageStore::Open({1 << 20, 1 << 20, {{dir.path() + "/small", 512 << 10, 0}}, "lru"});
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(small.status().message().find("the disk cache in " + dir.path() +
                                          "/small (512.0 KiB) cannot hold one "
                                          "page (1.00 MiB)"),
            std::string::npos)
      << small.status().message();

  std::ostringstream log;
  auto previous = spdlog::default_logger();
  auto capture = std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  capture->set_pattern("%l %v");
  spdlog::set_default_logger(capture);
  const uint64_t huge = 1ull << 60;  // larger than any file system here
  auto store = PageStore::Open(
      {kPage, kPage, {{dir.path() + "/a", 100 * kPage, 0}, {dir.path() + "/b", 100 * kPage, huge}}, "lru"});
  spdlog::set_default_logger(previous);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const std::string text = log.str();
  EXPECT_EQ(text.find(dir.path() + "/a "), std::string::npos) << text;  // reserve 0: room for pages
  EXPECT_NE(text.find("warning disk cache " + dir.path() + "/b will cache nothing: its file system holds "),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("and 1024.0 PiB of it is kept free"), std::string::npos) << text;
  // And it does cache nothing: a page written to it is refused.
  for (uint64_t i = 0; i < 50; ++i) (*store)->Put(Key(i), Bytes(i));
  (*store)->Flush();
  EXPECT_EQ((*store)->Stats().tiers[2].pages, 0u);
  EXPECT_GT((*store)->Stats().tiers[1].pages, 0u);
}

}  // namespace
}  // namespace sluice::cache
