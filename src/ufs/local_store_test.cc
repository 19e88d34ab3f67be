// The file:// store against real directories.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/test_support.h"
#include "ufs/stores.h"

namespace sluice::ufs {
namespace {

using testing::ReadFile;
using testing::TempDir;
using testing::TestBytes;
using testing::WriteFile;

class LocalStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = OpenUnderStore("file://" + dir_.path(), {});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  TempDir dir_;
  std::unique_ptr<UnderStore> store_;
};

TEST_F(LocalStoreTest, StatReadAndRanges) {
  std::string data = TestBytes((1 << 20) + 1, 7);
  WriteFile(dir_.path() + "/d/big.bin", data);
  auto info = store_->Stat("d/big.bin");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, data.size());
  EXPECT_FALSE(info->is_dir);
  EXPECT_GT(info->mtime_ns, 0);
  EXPECT_NE(info->Version(), "");
  EXPECT_TRUE(store_->Stat("/d")->is_dir);
  EXPECT_TRUE(store_->Stat("")->is_dir);

  for (uint64_t off : {uint64_t{0}, uint64_t{1}, uint64_t{(1 << 20) - 1}, uint64_t{1 << 20}}) {
    for (uint64_t len : {uint64_t{1}, uint64_t{2}, uint64_t{1 << 20}, uint64_t{3 << 20}}) {
      auto got = store_->ReadToString("d/big.bin", off, len);
      ASSERT_TRUE(got.ok());
      EXPECT_EQ(*got, data.substr(off, len)) << off << "+" << len;
    }
  }
  EXPECT_EQ(*store_->ReadToString("d/big.bin", data.size(), 10), "");
  EXPECT_EQ(*store_->ReadToString("d/big.bin", data.size() + 100, 10), "");
  EXPECT_EQ(*store_->ReadToString("d/big.bin", 5, 0), "");
}

TEST_F(LocalStoreTest, MissingAndBadPaths) {
  auto st = store_->Stat("nope.txt");
  EXPECT_EQ(st.status().code(), StatusCode::kNotFound);
  EXPECT_NE(st.status().message().find(dir_.path() + "/nope.txt"), std::string::npos) << st.status().message();
  EXPECT_EQ(store_->ReadToString("nope.txt", 0, 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->List("nope", {}).status().code(), StatusCode::kNotFound);
  // Nothing escapes the root, however it is spelled.
  WriteFile(dir_.path() + "-sibling/secret", "x");
  for (const char* bad : {"../x", "/a/../../etc/passwd", "..", "a//b"}) {
    EXPECT_EQ(store_->Stat(bad).status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(store_->ReadToString(bad, 0, 10).status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(store_->Write(bad, "x").code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(store_->Stat(std::string_view("a\0b", 3)).status().code(), StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir_.path() + "-sibling");
  EXPECT_EQ(OpenUnderStore("file:///definitely/not/here", {}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(OpenUnderStore("file://relative", {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenUnderStore("ftp://x", {}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(LocalStoreTest, ListsOneLevelRecursiveAndPaged) {
  for (int i = 0; i < 25; ++i) WriteFile(dir_.path() + "/flat/f" + std::to_string(100 + i), "x");
  WriteFile(dir_.path() + "/flat/sub dir/ünï.txt", "yy");
  auto level = store_->ListAll("flat", false);
  ASSERT_TRUE(level.ok());
  ASSERT_EQ(level->size(), 26u);
  EXPECT_EQ(level->front().path, "flat/f100");
  EXPECT_EQ(level->back().path, "flat/sub dir");
  EXPECT_TRUE(level->back().is_dir);

  auto all = store_->ListAll("/", true);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 26u);
  EXPECT_EQ(all->back().path, "flat/sub dir/ünï.txt");
  EXPECT_EQ(all->back().size, 2u);

  ListOptions opts;
  opts.max_keys = 10;
  std::vector<std::string> paged;
  int pages = 0;
  while (true) {
    auto page = store_->List("flat", opts);
    ASSERT_TRUE(page.ok());
    ++pages;
    for (auto& e : page->entries) paged.push_back(e.path);
    if (page->next_token.empty()) break;
    opts.continuation = page->next_token;
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(paged.size(), 26u);
}

TEST_F(LocalStoreTest, WriteDeleteMkdir) {
  std::string data = TestBytes(3000, 1);
  ASSERT_TRUE(store_->Write("new/deep/file name.bin", data).ok());
  EXPECT_EQ(ReadFile(dir_.path() + "/new/deep/file name.bin"), data);
  ASSERT_TRUE(store_->Write("new/deep/file name.bin", "short").ok());
  EXPECT_EQ(*store_->ReadToString("new/deep/file name.bin", 0, 100), "short");
  auto listed = store_->ListAll("new/deep", false);
  ASSERT_EQ(listed->size(), 1u);  // no temporary files left behind
  ASSERT_TRUE(store_->Delete("new/deep/file name.bin").ok());
  EXPECT_EQ(store_->Delete("new/deep/file name.bin").code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->Mkdir("m/n/o").ok());
  EXPECT_TRUE(store_->Stat("m/n/o")->is_dir);
}

}  // namespace
}  // namespace sluice::ufs
