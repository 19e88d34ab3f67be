// Tests of ListingCache: which names a page answers for (both ways), pages of a later pass
// replacing overlapping ones, the TTL, the memory bound and Drop.
#include "client/listing_cache.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <thread>

namespace sluice::client {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;

FileInfo File(const std::string& path, uint64_t size = 10) {
  return FileInfo{path, false, size, 1700000000000000000, "mtime:1700000000000000000:size:" + std::to_string(size)};
}

// Names dir/f000 .. dir/f(n-1), zero-padded.
std::vector<FileInfo> Files(const std::string& dir, int from, int to) {
  std::vector<FileInfo> out;
  char name[16];
  for (int i = from; i < to; ++i) {
    std::snprintf(name, sizeof name, "f%03d", i);
    out.push_back(File(dir + "/" + name, static_cast<uint64_t>(i)));
  }
  return out;
}

// "hit": the entry; "absent": a covering page lacks it; "unknown": no page covers it.
std::string Ask(ListingCache& cache, const std::string& path) {
  auto r = cache.Lookup(path);
  if (!r) return "unknown";
  if (!r->ok()) return r->status().code() == StatusCode::kNotFound ? "absent" : r->status().ToString();
  return "hit " + std::to_string((*r)->size);
}

TEST(ListingCacheTest, APageAnswersForTheNamesItCoversOnly) {
  ListingCache cache(1 << 20, hours(1));
  cache.AddPage("/d", "f009", Files("/d", 10, 20), true);  // covers (f009, f019]
  EXPECT_EQ(Ask(cache, "/d/f010"), "hit 10");
  EXPECT_EQ(Ask(cache, "/d/f019"), "hit 19");
  EXPECT_EQ(Ask(cache, "/d/f015x"), "absent");
  EXPECT_EQ(Ask(cache, "/d/f009"), "unknown");  // the cursor itself: before the page
  EXPECT_EQ(Ask(cache, "/d/f020"), "unknown");  // after its last entry, and more follow
  EXPECT_EQ(Ask(cache, "/e/f010"), "unknown");

  cache.AddPage("/d/", "f019", Files("/d", 20, 25), false);  // the last page: to the end
  EXPECT_EQ(Ask(cache, "/d/f024"), "hit 24");
  EXPECT_EQ(Ask(cache, "/d/zzz"), "absent");
  EXPECT_EQ(Ask(cache, "/d/f009"), "unknown");
  EXPECT_EQ(cache.GetStats().pages, 2u);
}

TEST(ListingCacheTest, KeepsTheVersionsAndKindsItWasGiven) {
  ListingCache cache(1 << 20, hours(1));
  FileInfo s3 = File("/b/obj", 5);
  s3.version = "etag:abc123";
  FileInfo local = File("/b/plain", 6);
  local.version += ":ino=77,ctime=12";
  FileInfo dir{"/b/sub", true, 0, 0, ""};
  cache.AddPage("/b", "", {s3, local, dir}, false);
  for (const FileInfo& want : {s3, local, dir}) {
    auto got = cache.Lookup(want.path);
    ASSERT_TRUE(got && got->ok()) << want.path;
    EXPECT_EQ((*got)->path, want.path);
    EXPECT_EQ((*got)->is_dir, want.is_dir);
    EXPECT_EQ((*got)->size, want.size);
    EXPECT_EQ((*got)->mtime_ns, want.mtime_ns);
    EXPECT_EQ((*got)->version, want.version);
  }
  // The root's children are keyed by "/".
  cache.AddPage("/", "", {FileInfo{"/b", true, 0, 0, ""}}, false);
  EXPECT_EQ(Ask(cache, "/b"), "hit 0");
  EXPECT_EQ(Ask(cache, "/"), "unknown");
}

TEST(ListingCacheTest, AVersionOfAnotherFormKeepsThePageOut) {
  ListingCache cache(1 << 20, hours(1));
  FileInfo odd = File("/d/x");
  odd.version = "something-else";
  cache.AddPage("/d", "", {File("/d/a"), odd}, false);
  EXPECT_EQ(Ask(cache, "/d/a"), "unknown");
}

TEST(ListingCacheTest, ALaterPassReplacesOverlappingPages) {
  ListingCache cache(1 << 20, hours(1));
  cache.AddPage("/d", "", Files("/d", 0, 10), true);
  cache.AddPage("/d", "f009", Files("/d", 10, 20), false);
  // The directory changed: f005 is gone, and a new pass pages at other boundaries.
  std::vector<FileInfo> now = Files("/d", 0, 5);
  auto rest = Files("/d", 6, 15);
  now.insert(now.end(), rest.begin(), rest.end());
  cache.AddPage("/d", "", now, true);  // covers (.., f014]: replaces both old pages
  EXPECT_EQ(Ask(cache, "/d/f005"), "absent");
  EXPECT_EQ(Ask(cache, "/d/f014"), "hit 14");
  EXPECT_EQ(Ask(cache, "/d/f016"), "unknown");  // the old last page went with the overlap
  EXPECT_EQ(cache.GetStats().pages, 1u);
}

TEST(ListingCacheTest, PagesExpireAfterTheTtl) {
  ListingCache cache(1 << 20, milliseconds(30));
  cache.AddPage("/d", "", Files("/d", 0, 3), false);
  EXPECT_EQ(Ask(cache, "/d/f001"), "hit 1");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (Ask(cache, "/d/f001") != "unknown" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(Ask(cache, "/d/f001"), "unknown");
  EXPECT_EQ(cache.GetStats().pages, 0u);
}

TEST(ListingCacheTest, StaysWithinItsMemoryBoundDroppingTheLeastRecentPages) {
  const uint64_t bound = 64 << 10;
  ListingCache cache(bound, hours(1));
  for (int d = 0; d < 200; ++d) {
    cache.AddPage("/dir" + std::to_string(d), "", Files("/dir" + std::to_string(d), 0, 20), false);
    Ask(cache, "/dir0/f001");  // kept recent
    EXPECT_LE(cache.GetStats().bytes, bound);
  }
  EXPECT_EQ(Ask(cache, "/dir0/f001"), "hit 1");
  EXPECT_EQ(Ask(cache, "/dir199/f001"), "hit 1");
  EXPECT_EQ(Ask(cache, "/dir1/f001"), "unknown");
  EXPECT_LT(cache.GetStats().pages, 200u);
  // A page larger than the whole bound is not kept.
  ListingCache tiny(100, hours(1));
  tiny.AddPage("/d", "", Files("/d", 0, 50), false);
  EXPECT_EQ(tiny.GetStats().pages, 0u);
}

TEST(ListingCacheTest, DropForgetsAPathAndEverythingBelow) {
  ListingCache cache(1 << 20, hours(1));
  cache.AddPage("/", "", {FileInfo{"/a", true, 0, 0, ""}, FileInfo{"/ab", true, 0, 0, ""}}, false);
  cache.AddPage("/a", "", Files("/a", 0, 3), false);
  cache.AddPage("/a/sub", "", Files("/a/sub", 0, 3), false);
  cache.AddPage("/ab", "", Files("/ab", 0, 3), false);
  cache.Drop("/a");
  EXPECT_EQ(Ask(cache, "/a"), "unknown");
  EXPECT_EQ(Ask(cache, "/a/f000"), "unknown");
  EXPECT_EQ(Ask(cache, "/a/sub/f000"), "unknown");
  EXPECT_EQ(Ask(cache, "/ab/f000"), "hit 0");
  cache.Drop("/");
  EXPECT_EQ(cache.GetStats().pages, 0u);
  EXPECT_EQ(cache.GetStats().bytes, 0u);
}

TEST(ListingCacheTest, OffWhenTheBoundOrTheTtlIsZero) {
  for (auto [bytes, ttl] : {std::pair<uint64_t, milliseconds>{0, milliseconds(1000)}, {1 << 20, milliseconds(0)}}) {
    ListingCache cache(bytes, ttl);
    cache.AddPage("/d", "", Files("/d", 0, 3), false);
    EXPECT_EQ(Ask(cache, "/d/f001"), "unknown");
  }
}

}  // namespace
}  // namespace sluice::client
