// The page buffer pool: buffers come back when their last reference goes, are reused as
// they are, and no more than the bound wait idle.
#include "cache/page_buffers.h"

#include <gtest/gtest.h>

namespace sluice::cache {
namespace {

TEST(PageBuffersTest, SharedBuffersComeBackAndAreReused) {
  PageBuffers pool(2);
  auto buffer = pool.Take(1 << 20);
  EXPECT_TRUE(buffer->empty());
  EXPECT_GE(buffer->capacity(), size_t{1} << 20);
  buffer->append("page bytes");
  const std::string* address = buffer.get();
  auto shared = pool.Share(std::move(buffer));
  auto copy = shared;
  EXPECT_EQ(*copy, "page bytes");
  shared.reset();
  copy.reset();  // the last reference: back to the pool
  auto again = pool.Take(1 << 20);
  EXPECT_EQ(again.get(), address);
  EXPECT_TRUE(again->empty());
}

TEST(PageBuffersTest, IdleBuffersAreBounded) {
  PageBuffers pool(1);
  auto a = pool.Share(pool.Take(16));
  auto b = pool.Share(pool.Take(16));
  const std::string* first = a.get();
  a.reset();  // kept
  b.reset();  // the pool is full: freed
  EXPECT_EQ(pool.Take(16).get(), first);
  EXPECT_NE(pool.Take(16).get(), nullptr);  // a fresh one
}

}  // namespace
}  // namespace sluice::cache
