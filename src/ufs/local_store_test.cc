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
using testing::RewriteInPlaceKeepingMtime;
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

TEST_F(LocalStoreTest, InPlaceRewriteWithMtimeSetBackIsAnotherVersion) {
  const std::string old_bytes = TestBytes(3 << 20, 1), new_bytes = TestBytes(3 << 20, 2);
  const std::string file = dir_.path() + "/v.bin";
  WriteFile(file, old_bytes);
  auto before = store_->Stat("v.bin");
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  const std::string version = before->Version();
  // The cache fetches page 0 under that version; reading changes nothing the version holds.
  std::string page0;
  auto n = store_->ReadVersion("v.bin", 0, 1 << 20, version, [&](std::string_view c) {
    page0.append(c);
    return Status::Ok();
  });
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_TRUE(page0 == old_bytes.substr(0, 1 << 20));
  EXPECT_EQ(store_->Stat("v.bin")->Version(), version);
  EXPECT_EQ(store_->ListAll("", false)->front().Version(), version);  // listings agree with Stat

  RewriteInPlaceKeepingMtime(file, new_bytes);
  auto after = store_->Stat("v.bin");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->mtime_ns, before->mtime_ns);
  EXPECT_EQ(after->size, before->size);
  EXPECT_NE(after->Version(), version) << "an in-place rewrite with the mtime set back kept the version";

  // The cache's next miss, pinned to the old version: refused, no byte of the new content.
  std::string got;
  auto stale = store_->ReadVersion("v.bin", 1 << 20, 2 << 20, version, [&](std::string_view c) {
    got.append(c);
    return Status::Ok();
  });
  EXPECT_EQ(stale.status().code(), StatusCode::kStale) << stale.status().ToString();
  EXPECT_EQ(got.size(), 0u);
  auto fresh = store_->ReadVersion("v.bin", 1 << 20, 2 << 20, after->Version(), [&](std::string_view c) {
    got.append(c);
    return Status::Ok();
  });
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_TRUE(got == new_bytes.substr(1 << 20, 2 << 20));
}

TEST_F(LocalStoreTest, InPlaceRewriteDuringAPinnedReadHandsOutNoNewBytes) {
  const std::string old_bytes = TestBytes(3 << 20, 3), new_bytes = TestBytes(3 << 20, 4);
  const std::string file = dir_.path() + "/v.bin";
  WriteFile(file, old_bytes);
  const std::string version = store_->Stat("v.bin")->Version();
  std::string got;
  bool rewritten = false;
  auto n = store_->ReadVersion("v.bin", 0, old_bytes.size(), version, [&](std::string_view c) {
    got.append(c);
    if (!rewritten) {  // after the first chunk, the file changes under the open descriptor
      rewritten = true;
      RewriteInPlaceKeepingMtime(file, new_bytes);
    }
    return Status::Ok();
  });
  ASSERT_TRUE(rewritten);
  EXPECT_EQ(n.status().code(), StatusCode::kStale) << n.status().ToString();
  EXPECT_NE(n.status().message().find("changed in the under-store while it was read"), std::string::npos)
      << n.status().message();
  ASSERT_LT(got.size(), old_bytes.size());
  EXPECT_TRUE(got == old_bytes.substr(0, got.size())) << "bytes of the new content went out under the old version";
}

// A store root with symbolic links in it, and a directory outside the root that holds secrets.
class LocalStoreLinksTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    root_ = base_.path() + "/root";
    outside_ = base_.path() + "/outside";
    WriteFile(outside_ + "/shadow", "SECRET shadow");
    WriteFile(outside_ + "/passwd", "SECRET passwd");
    WriteFile(root_ + "/data/real.txt", "inside");
    WriteFile(root_ + "/data/sub/x", "x");
    Link(outside_ + "/passwd", "passwd_link");                                      // absolute, outside
    Link(outside_, "etc_link");                                                     // directory outside
    Link("../outside/shadow", "rel_link");                                          // relative, outside
    Link("../../../outside/shadow", "data/sub/up");                                 // relative, from below
    std::string climb;
    for (int i = 0; i < 12; ++i) climb += "../";
    Link(climb + outside_.substr(1) + "/shadow", "deep_climb");                     // ../../../etc/shadow style
    Link("../../../outside", "data/sub/mid");                                       // outside, used mid-path
    Link("chain_out2", "chain_out1");                                               // a chain that ends outside
    Link(outside_ + "/passwd", "chain_out2");
    Link("data/real.txt", "in_file");                                               // inside: followed
    Link("data", "in_dir");
    Link("../real.txt", "data/sub/back");
    Link(root_ + "/data/real.txt", "abs_in");                                       // absolute, inside
    Link("chain2", "chain1");                                                       // a chain inside
    Link("in_file", "chain2");
    Link("..", "data/up_to_root");                                                  // a loop for recursion
    Link("nope", "dangling");
    Link("self_loop", "self_loop");
    Open(GetParam(), {});
  }

  void Link(const std::string& target, const std::string& name) {
    std::filesystem::create_symlink(target, root_ + "/" + name);
  }
  void Open(bool use_openat2, std::vector<std::pair<std::string, std::string>> options) {
    UnderStoreOptions o;
    o.options = std::move(options);
    auto s = NewLocalStore(root_, o, use_openat2);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  // Asserts `path` cannot be reached, naming `link` as a link that leads outside.
  void ExpectOutside(const std::string& path, const std::string& link) {
    const std::string says =
        "file://" + root_ + "/" + link + " is a symbolic link that leads outside the store's root (file://" + root_ + ")";
    auto st = store_->Stat(path);
    EXPECT_EQ(st.status().code(), StatusCode::kPermissionDenied) << path << ": " << st.status().ToString();
    EXPECT_NE(st.status().message().find(says), std::string::npos) << st.status().message();
    auto read = store_->ReadToString(path, 0, 100);
    EXPECT_EQ(read.status().code(), StatusCode::kPermissionDenied) << path;
    EXPECT_NE(read.status().message().find(says), std::string::npos) << read.status().message();
    EXPECT_EQ(store_->ReadVersion(path, 0, 100, "mtime:0:size:0", [](std::string_view) { return Status::Ok(); })
                  .status()
                  .code(),
              StatusCode::kPermissionDenied)
        << path;
  }
  std::vector<std::string> Listed(const std::string& dir, bool recursive) {
    auto all = store_->ListAll(dir, recursive);
    EXPECT_TRUE(all.ok()) << all.status().ToString();
    std::vector<std::string> out;
    if (all.ok()) {
      for (const auto& e : *all) out.push_back(e.path);
    }
    return out;
  }

  TempDir base_;
  std::string root_, outside_;
  std::unique_ptr<UnderStore> store_;
};

bool Has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

TEST_P(LocalStoreLinksTest, LinksLeadingOutsideAreRefused) {
  ExpectOutside("passwd_link", "passwd_link");
  ExpectOutside("rel_link", "rel_link");
  ExpectOutside("deep_climb", "deep_climb");
  ExpectOutside("data/sub/up", "data/sub/up");
  ExpectOutside("etc_link", "etc_link");
  ExpectOutside("etc_link/shadow", "etc_link");  // a link mid-path: `sluice fs cat /etc_link/shadow`
  ExpectOutside("data/sub/mid/shadow", "data/sub/mid");
  ExpectOutside("in_dir/sub/mid/shadow", "in_dir/sub/mid");  // inside link, then an outside one
  ExpectOutside("chain_out1", "chain_out1");
  auto mid = store_->Stat("etc_link/shadow");
  EXPECT_NE(mid.status().message().find("cannot reach file://" + root_ + "/etc_link/shadow: "), std::string::npos)
      << mid.status().message();
  EXPECT_EQ(store_->List("etc_link", {}).status().code(), StatusCode::kPermissionDenied);

  // Writes do not go through them either.
  EXPECT_EQ(store_->Write("etc_link/planted", "x").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(store_->Write("etc_link/new/planted", "x").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(store_->Mkdir("etc_link/made").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(store_->Delete("etc_link/shadow").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(store_->Delete("data/sub/mid/passwd").code(), StatusCode::kPermissionDenied);
  EXPECT_FALSE(std::filesystem::exists(outside_ + "/planted"));
  EXPECT_FALSE(std::filesystem::exists(outside_ + "/new"));
  EXPECT_FALSE(std::filesystem::exists(outside_ + "/made"));
  EXPECT_EQ(ReadFile(outside_ + "/shadow"), "SECRET shadow");
  EXPECT_EQ(ReadFile(outside_ + "/passwd"), "SECRET passwd");
}

TEST_P(LocalStoreLinksTest, LinksStayingInsideAreFollowed) {
  for (const char* path : {"in_file", "in_dir/real.txt", "data/sub/back", "abs_in", "chain1", "in_dir/sub/back",
                           "data/up_to_root/in_file"}) {
    auto got = store_->ReadToString(path, 0, 100);
    ASSERT_TRUE(got.ok()) << path << ": " << got.status().ToString();
    EXPECT_EQ(*got, "inside") << path;
    auto info = store_->Stat(path);
    ASSERT_TRUE(info.ok()) << path;
    EXPECT_EQ(info->Version(), store_->Stat("data/real.txt")->Version()) << path;  // the target's version
    EXPECT_EQ(info->path, path);
  }
  EXPECT_TRUE(store_->Stat("in_dir")->is_dir);
  EXPECT_EQ(Listed("in_dir", false), (std::vector<std::string>{"in_dir/real.txt", "in_dir/sub", "in_dir/up_to_root"}));
  ASSERT_TRUE(store_->Write("in_dir/new.txt", "written").ok());  // lands in data/
  EXPECT_EQ(ReadFile(root_ + "/data/new.txt"), "written");
  EXPECT_EQ(store_->Stat("dangling").status().code(), StatusCode::kNotFound);
  EXPECT_NE(store_->Stat("self_loop").status().code(), StatusCode::kOk);
}

TEST_P(LocalStoreLinksTest, ListingsLeaveOutLinksThatLeadOutside) {
  auto top = Listed("", false);
  EXPECT_EQ(top, (std::vector<std::string>{"abs_in", "chain1", "chain2", "data", "in_dir", "in_file"}));
  auto level = store_->ListAll("", false);
  for (const auto& e : *level) {
    auto st = store_->Stat(e.path);
    ASSERT_TRUE(st.ok()) << e.path;
    EXPECT_EQ(e.is_dir, st->is_dir) << e.path;
    EXPECT_EQ(e.Version(), st->Version()) << e.path;  // a link is listed as what it leads to
  }
  auto sub = Listed("data/sub", false);
  EXPECT_EQ(sub, (std::vector<std::string>{"data/sub/back", "data/sub/x"}));
  // Recursive: every file reached by links inside, nothing outside, no endless loop through
  // data/up_to_root (a link to the root).
  auto all = Listed("", true);
  for (const auto& p : all) EXPECT_EQ(p.find("SECRET"), std::string::npos);
  for (const char* p : {"abs_in", "chain1", "chain2", "in_file", "data/real.txt", "data/sub/x", "data/sub/back",
                        "in_dir/real.txt", "in_dir/sub/x", "in_dir/sub/back"}) {
    EXPECT_TRUE(Has(all, p)) << p;
  }
  for (const auto& p : all) {
    EXPECT_EQ(p.find("up_to_root"), std::string::npos) << p;
    EXPECT_EQ(p.find("mid"), std::string::npos) << p;
    EXPECT_EQ(p.find("_out"), std::string::npos) << p;
  }
  EXPECT_EQ(all.size(), 10u);
}

TEST_P(LocalStoreLinksTest, NeverFollowsNoLinkAtAll) {
  Open(GetParam(), {{"follow_symlinks", "never"}});
  EXPECT_EQ(*store_->ReadToString("data/real.txt", 0, 100), "inside");
  const std::string says = " follows none (it is mounted with follow_symlinks=never)";
  for (const char* path : {"in_file", "in_dir/real.txt", "abs_in", "chain1", "passwd_link", "etc_link/shadow",
                           "data/sub/back"}) {
    auto st = store_->Stat(path);
    EXPECT_EQ(st.status().code(), StatusCode::kPermissionDenied) << path;
    EXPECT_NE(st.status().message().find(says), std::string::npos) << st.status().message();
    EXPECT_EQ(store_->ReadToString(path, 0, 100).status().code(), StatusCode::kPermissionDenied) << path;
  }
  auto in_dir = store_->Stat("in_dir/real.txt");
  EXPECT_NE(in_dir.status().message().find("file://" + root_ + "/in_dir is a symbolic link"), std::string::npos)
      << in_dir.status().message();
  EXPECT_EQ(Listed("", false), (std::vector<std::string>{"data"}));
  EXPECT_EQ(Listed("", true), (std::vector<std::string>{"data/real.txt", "data/sub/x"}));
  EXPECT_EQ(store_->Write("in_dir/new.txt", "x").code(), StatusCode::kPermissionDenied);
  EXPECT_FALSE(std::filesystem::exists(root_ + "/data/new.txt"));
}

TEST_P(LocalStoreLinksTest, FollowSymlinksOptionIsChecked) {
  UnderStoreOptions o;
  o.options = {{"follow_symlinks", "inside"}};
  EXPECT_TRUE(OpenUnderStore("file://" + root_, o).ok());
  o.options = {{"follow_symlinks", "always"}};
  auto bad = OpenUnderStore("file://" + root_, o);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  for (const char* word : {"follow_symlinks=always", "inside", "never"}) {
    EXPECT_NE(bad.status().message().find(word), std::string::npos) << bad.status().message();
  }
  o.options = {{"endpoint", "http://x"}};
  auto unknown = OpenUnderStore("file://" + root_, o);
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("'endpoint'"), std::string::npos) << unknown.status().message();
}

INSTANTIATE_TEST_SUITE_P(Resolution, LocalStoreLinksTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "Openat2" : "Walk"; });

}  // namespace
}  // namespace sluice::ufs
