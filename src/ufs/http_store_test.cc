// The http(s):// store against a real HTTP server (tests/fixtures/http_server.py) serving a
// temp directory, with faults injected by that server.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "support/test_support.h"
#include "ufs/stores.h"

namespace sluice::ufs {
namespace {

using testing::FaultyHttpServer;
using testing::TempDir;
using testing::TestBytes;
using testing::WriteFile;

class HttpStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    big_ = TestBytes((1 << 20) + 1, 5);
    WriteFile(dir_.path() + "/data/big.bin", big_);
    WriteFile(dir_.path() + "/data/with space ü.txt", "hello");
    WriteFile(dir_.path() + "/data/plus+sign", "p");
    WriteFile(dir_.path() + "/data/sub/inner.txt", "inner");
    WriteFile(dir_.path() + "/data/empty", "");
    auto server = FaultyHttpServer::Serve(dir_.path());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    UnderStoreOptions opts;
    opts.retry_base_delay = std::chrono::milliseconds(5);
    opts.retry_max_delay = std::chrono::milliseconds(20);
    auto store = OpenUnderStore(server_->url() + "/data", opts);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  TempDir dir_;
  std::string big_;
  std::unique_ptr<FaultyHttpServer> server_;
  std::unique_ptr<UnderStore> store_;
};

TEST_F(HttpStoreTest, StatFilesAndDirectories) {
  auto info = store_->Stat("big.bin");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, big_.size());
  EXPECT_GT(info->mtime_ns, 0);
  EXPECT_FALSE(info->Version().empty());
  EXPECT_TRUE(store_->Stat("sub")->is_dir);
  EXPECT_TRUE(store_->Stat("")->is_dir);
  EXPECT_EQ(store_->Stat("with space ü.txt")->size, 5u);
  auto missing = store_->Stat("nope");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/data/nope"), std::string::npos) << missing.status().message();
}

TEST_F(HttpStoreTest, RangedReads) {
  for (uint64_t off : {uint64_t{0}, uint64_t{1}, uint64_t{1 << 20}}) {
    for (uint64_t len : {uint64_t{1}, uint64_t{1 << 20}, uint64_t{2 << 20}}) {
      auto got = store_->ReadToString("big.bin", off, len);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      EXPECT_TRUE(*got == big_.substr(off, len)) << off << "+" << len;
    }
  }
  EXPECT_EQ(*store_->ReadToString("big.bin", big_.size(), 10), "");
  EXPECT_EQ(*store_->ReadToString("empty", 0, 10), "");
  EXPECT_EQ(*store_->ReadToString("plus+sign", 0, 10), "p");
  EXPECT_EQ(*store_->ReadToString("with space ü.txt", 1, 3), "ell");
  EXPECT_EQ(store_->ReadToString("nope", 0, 1).status().code(), StatusCode::kNotFound);
}

TEST_F(HttpStoreTest, AStatRidesOnTheFirstGet) {
  ASSERT_TRUE(server_->ResetStats().ok());
  std::string head;
  auto collect = [&](std::string_view chunk) {
    head.append(chunk);
    return Status::Ok();
  };
  auto info = store_->StatWithHead("big.bin", 1000, collect);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->path, "big.bin");
  EXPECT_EQ(info->size, big_.size());
  EXPECT_EQ(info->Version(), store_->Stat("big.bin")->Version());
  EXPECT_TRUE(head == big_.substr(0, 1000));
  EXPECT_EQ(*server_->RequestCount(), 2);  // the GET, then the Stat above
  head.clear();
  EXPECT_TRUE(store_->StatWithHead("sub", 1000, collect)->is_dir);
  EXPECT_EQ(store_->StatWithHead("empty", 1000, collect)->size, 0u);
  EXPECT_EQ(store_->StatWithHead("nope", 1000, collect).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(head, "");
}

TEST_F(HttpStoreTest, WithoutEtagsAReadIsPinnedByItsOwnResponse) {
  auto server = FaultyHttpServer::Serve(dir_.path(), /*etags=*/false);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto store = *OpenUnderStore((*server)->url() + "/data", {});
  auto old = store->Stat("big.bin");
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(old->etag, "");
  ASSERT_TRUE(store->ReadToString("big.bin", 5, 10).ok());
  // Rewritten in place, same size, a later mtime: a read of the old version is refused by
  // what its own GET answers, with no HEAD before it.
  WriteFile(dir_.path() + "/data/big.bin", TestBytes(big_.size(), 6));
  struct timespec later[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(old->mtime_ns / 1000000000 + 10), 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (dir_.path() + "/data/big.bin").c_str(), later, 0), 0);
  ASSERT_TRUE((*server)->ResetStats().ok());
  std::string got;
  auto n = store->ReadVersion("big.bin", 0, 100, old->Version(), [&](std::string_view chunk) {
    got.append(chunk);
    return Status::Ok();
  });
  EXPECT_EQ(n.status().code(), StatusCode::kStale) << n.status().ToString();
  EXPECT_EQ(got, "");
  EXPECT_EQ(*(*server)->RequestCount(), 1);
  auto fresh = store->Stat("big.bin");
  auto now = store->ReadVersion("big.bin", 0, 100, fresh->Version(), [&](std::string_view chunk) {
    got.append(chunk);
    return Status::Ok();
  });
  ASSERT_TRUE(now.ok()) << now.status().ToString();
  EXPECT_TRUE(got == TestBytes(big_.size(), 6).substr(0, 100));
}

TEST_F(HttpStoreTest, ListsIndexPages) {
  auto level = store_->ListAll("", false);
  ASSERT_TRUE(level.ok()) << level.status().ToString();
  std::vector<std::string> names;
  for (const auto& e : *level) names.push_back(e.path + (e.is_dir ? "/" : ""));
  EXPECT_EQ(names, (std::vector<std::string>{"big.bin", "empty", "plus+sign", "sub/", "with space ü.txt"}));
  EXPECT_EQ((*level)[0].size, big_.size());
  auto all = store_->ListAll("", true);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 5u);
  EXPECT_EQ(all->back().path, "with space ü.txt");
  EXPECT_EQ(store_->List("nodir", {}).status().code(), StatusCode::kNotFound);
}

TEST_F(HttpStoreTest, IsReadOnly) {
  EXPECT_EQ(store_->Write("x", "y").code(), StatusCode::kNotSupported);
  EXPECT_EQ(store_->Delete("big.bin").code(), StatusCode::kNotSupported);
  EXPECT_EQ(store_->Mkdir("d").code(), StatusCode::kNotSupported);
}

TEST_F(HttpStoreTest, RetriesFaultsAndResumesCutReads) {
  ASSERT_TRUE(server_->ResetStats().ok());
  ASSERT_TRUE(server_->SetFaults("503 reset reset-mid-body").ok());
  auto got = store_->ReadToString("big.bin", 10, big_.size());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == big_.substr(10));
  EXPECT_EQ(*server_->RequestCount(), 4);
}

TEST_F(HttpStoreTest, StalledServerTimesOutAndIsRetried) {
  UnderStoreOptions opts;
  opts.request_timeout = std::chrono::seconds(1);
  opts.retry_base_delay = std::chrono::milliseconds(5);
  auto store = OpenUnderStore(server_->url() + "/data", opts);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(server_->ResetStats().ok());
  ASSERT_TRUE(server_->SetFaults("delay:4").ok());
  auto t0 = std::chrono::steady_clock::now();
  auto got = (*store)->ReadToString("with space ü.txt", 0, 100);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "hello");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(3500));  // did not wait out the stall
  EXPECT_EQ(*server_->RequestCount(), 2);
}

TEST_F(HttpStoreTest, ForbiddenIsNotRetried) {
  ASSERT_TRUE(server_->ResetStats().ok());
  ASSERT_TRUE(server_->SetFaults("403").ok());
  EXPECT_EQ(store_->ReadToString("big.bin", 0, 1).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(*server_->RequestCount(), 1);
}

TEST_F(HttpStoreTest, RejectsEscapingPaths) {
  EXPECT_EQ(store_->Stat("../etc/passwd").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenUnderStore(server_->url(), {{{"endpoint", "x"}}}).status().code(), StatusCode::kInvalidArgument);
}

TEST(HttpsStoreTest, VerifiesCertificatesAndHonoursTheCaBundle) {
  TempDir dir;
  WriteFile(dir.path() + "/f.txt", "secure bytes");
  auto server = FaultyHttpServer::ServeTls(dir.path());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  UnderStoreOptions opts;
  opts.max_attempts = 2;
  auto untrusted = OpenUnderStore((*server)->url(), opts);
  ASSERT_TRUE(untrusted.ok());
  auto refused = (*untrusted)->ReadToString("f.txt", 0, 100);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("TLS verification failed"), std::string::npos)
      << refused.status().message();
  opts.options = {{"ca_bundle", (*server)->ca_file()}};
  auto trusted = OpenUnderStore((*server)->url(), opts);
  ASSERT_TRUE(trusted.ok());
  auto got = (*trusted)->ReadToString("f.txt", 0, 100);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "secure bytes");
}

}  // namespace
}  // namespace sluice::ufs
