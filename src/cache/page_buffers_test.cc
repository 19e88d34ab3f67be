// The page buffer pool: buffers come back when their last reference goes and are reused as
// they are, capacities waste little, and buffers in use and idle stay within the bound.
#include "cache/page_buffers.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

namespace sluice::cache {
namespace {

constexpr size_t kMiB = 1 << 20;

TEST(PageBuffersTest, SharedBuffersComeBackAndAreReused) {
  PageBuffers pool(8 * kMiB);
  auto buffer = pool.Take(kMiB);
  EXPECT_TRUE(buffer->empty());
  EXPECT_EQ(buffer->capacity(), kMiB);
  EXPECT_EQ(buffer->Append("page bytes"), 10u);
  const char* address = buffer->data();
  PageData shared = std::move(buffer);
  auto copy = shared;
  EXPECT_EQ(*copy, "page bytes");
  shared.reset();
  copy.reset();  // the last reference: back to the pool
  auto again = pool.Take(kMiB);
  EXPECT_EQ(again->data(), address);
  EXPECT_TRUE(again->empty());
}

TEST(PageBuffersTest, NewBuffersAreResidentBeforeTheyAreFilled) {
  // Populated when mapped: filling a fresh 1 MiB buffer takes no page fault per 4 KiB.
  PageBuffers pool(4 << 20);
  auto b = pool.Take(1 << 20);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident(b->capacity() / page);
  ASSERT_EQ(::mincore(b->data(), b->capacity(), resident.data()), 0);
  for (size_t i = 0; i < resident.size(); ++i) ASSERT_TRUE(resident[i] & 1) << "page " << i << " not resident";
}

TEST(PageBuffersTest, BytesAlreadyInPlaceAreKeptAndOverlappingOnesMoved) {
  PageBuffers pool(8 << 20);
  auto buffer = pool.Take(1 << 20);
  buffer->Append("head");
  std::memcpy(buffer->data() + 4, "-tail", 5);  // received in place (ufs::ReceiveTarget)
  EXPECT_EQ(buffer->Append(std::string_view(buffer->data() + 4, 5)), 5u);
  EXPECT_EQ(buffer->view(), "head-tail");
  std::memcpy(buffer->data() + 9, "skip+more", 9);  // received in place, its first 5 bytes dropped
  buffer->Append(std::string_view(buffer->data() + 14, 4));
  EXPECT_EQ(buffer->view(), "head-tailmore");
}

TEST(PageBuffersTest, PrefillPopulatesIdleBuffersUpToTheAmountAndTheBound) {
  PageBuffers pool(6 << 20);
  std::atomic<bool> stop{true};
  pool.Prefill(1 << 20, 4 << 20, stop);
  EXPECT_EQ(pool.idle_bytes(), 0u);  // stopped before it began
  stop = false;
  pool.Prefill(1 << 20, 4 << 20, stop);
  EXPECT_EQ(pool.idle_bytes(), size_t{4} << 20);
  EXPECT_EQ(pool.in_use_bytes(), 0u);
  auto buffer = pool.Take(1 << 20);  // one of them, already resident
  EXPECT_EQ(pool.idle_bytes(), size_t{3} << 20);
  unsigned char resident = 0;
  ASSERT_EQ(::mincore(buffer->data(), 4096, &resident), 0);
  EXPECT_TRUE(resident & 1);
  pool.Prefill(1 << 20, 64 << 20, stop);  // the bound wins
  EXPECT_EQ(pool.idle_bytes() + pool.in_use_bytes(), size_t{6} << 20);
}

TEST(PageBuffersTest, SmallBuffersAreCarvedFromAPrefilledPage) {
  PageBuffers pool(4 << 20);
  std::atomic<bool> stop{false};
  pool.Prefill(1 << 20, 2 << 20, stop);
  auto first = pool.Take(100 << 10);  // 112 KiB: nine of them fit in one prefilled MiB
  EXPECT_EQ(first->capacity(), size_t{112} << 10);
  EXPECT_EQ(pool.idle_bytes(), (size_t{1} << 20) + 8 * (size_t{112} << 10));
  std::vector<std::unique_ptr<PageBuffer>> more;
  for (int i = 0; i < 8; ++i) more.push_back(pool.Take(100 << 10));
  for (const auto& b : more) {  // the siblings, from the same prefilled (written) memory
    EXPECT_GE(b->data(), first->data() - 8 * (112 << 10));
    EXPECT_LT(b->data(), first->data() + (1 << 20));
  }
  EXPECT_EQ(pool.idle_bytes(), size_t{1} << 20);  // the other page, untouched
  std::string bytes(100 << 10, 'y');
  EXPECT_EQ(more.back()->Append(bytes), bytes.size());
  EXPECT_EQ(more.back()->view(), bytes);
}

TEST(PageBuffersTest, CapacityIsNeverExceededNorWastedMuch) {
  PageBuffers pool(8 * kMiB);
  auto small = pool.Take(10 << 10);   // from malloc, exact
  EXPECT_EQ(small->capacity(), size_t{10} << 10);
  auto file = pool.Take(100 << 10);   // pooled: 112 KiB
  EXPECT_EQ(file->capacity(), size_t{112} << 10);
  auto odd = pool.Take(600 << 10);    // 640 KiB
  EXPECT_EQ(odd->capacity(), size_t{640} << 10);
  auto page = pool.Take(kMiB);
  EXPECT_EQ(page->capacity(), kMiB);
  auto big = pool.Take(5 * kMiB + 1);  // 6 MiB
  EXPECT_EQ(big->capacity(), 6 * kMiB);
  std::string bytes(small->capacity() + 7, 'x');
  EXPECT_EQ(small->Append(bytes), small->capacity());  // what fits, no more
  EXPECT_EQ(small->size(), small->capacity());
  big->Resize(7 * kMiB);
  EXPECT_EQ(big->size(), 6 * kMiB);  // never past the capacity
  EXPECT_EQ(*pool.Copy("abc"), "abc");
}

TEST(PageBuffersTest, BuffersInUseAndIdleStayWithinTheBound) {
  PageBuffers pool(2 * kMiB);
  std::vector<std::unique_ptr<PageBuffer>> held;
  for (int i = 0; i < 4; ++i) held.push_back(pool.Take(kMiB));  // in use: never refused
  EXPECT_EQ(pool.in_use_bytes(), 4 * kMiB);
  EXPECT_EQ(pool.idle_bytes(), 0u);
  held.clear();
  EXPECT_EQ(pool.in_use_bytes(), 0u);
  EXPECT_EQ(pool.idle_bytes(), 2 * kMiB);  // two kept, two unmapped
  pool.set_max_pooled_bytes(kMiB);
  EXPECT_EQ(pool.idle_bytes(), kMiB);
  auto again = pool.Take(kMiB);
  EXPECT_EQ(pool.idle_bytes(), 0u);
  again->Resize(kMiB);
  again->data()[kMiB - 1] = 'z';  // writable to its end
  again.reset();
  EXPECT_EQ(pool.idle_bytes(), kMiB);
  // A buffer of another size: the idle one is unmapped to make room, not kept beside it.
  auto other = pool.Take(640 << 10);
  EXPECT_EQ(pool.idle_bytes(), 0u);
  EXPECT_EQ(pool.in_use_bytes(), size_t{640 << 10});
}

}  // namespace
}  // namespace sluice::cache
