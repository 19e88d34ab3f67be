// The s3:// store against a real Ceph RADOS Gateway, which verifies every SigV4 signature,
// plus a fault-injecting proxy in front of it for the retry policy. One RGW serves the whole
// binary (it takes seconds to start), so this file runs as a single ctest test.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>

#include "support/test_support.h"
#include "ufs/http_client.h"
#include "ufs/stores.h"

namespace sluice::ufs {
namespace {

using testing::FaultProxy;
using testing::RgwServer;
using testing::TestBytes;

constexpr const char* kBucket = "sluice-test";  // S3 bucket names need 3+ characters
RgwServer* Rgw() { return testing::RgwEnvironment::server(); }

UnderStoreOptions Options(const std::string& endpoint, const std::string& secret = "") {
  UnderStoreOptions o;
  o.options = {{"endpoint", endpoint},
               {"access_key", Rgw()->access_key()},
               {"secret_key", secret.empty() ? Rgw()->secret_key() : secret}};
  o.retry_base_delay = std::chrono::milliseconds(10);
  o.retry_max_delay = std::chrono::milliseconds(50);
  o.connect_timeout = std::chrono::seconds(2);
  o.request_timeout = std::chrono::seconds(10);
  return o;
}

class S3StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(Rgw(), nullptr) << "radosgw did not start";
    store_ = Open("s3://" + std::string(kBucket) + "/" + prefix_);
  }
  std::unique_ptr<UnderStore> Open(const std::string& uri, const UnderStoreOptions& opts) {
    auto s = OpenUnderStore(uri, opts);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::unique_ptr<UnderStore> Open(const std::string& uri) { return Open(uri, Options(Rgw()->endpoint())); }

  // Each test writes under its own prefix.
  std::string prefix_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::unique_ptr<UnderStore> store_;
};

TEST_F(S3StoreTest, RoundTripsEdgeSizes) {
  const uint64_t kMiB = 1 << 20;
  for (uint64_t size : {uint64_t{0}, uint64_t{1}, kMiB, kMiB + 1}) {
    std::string key = "size-" + std::to_string(size);
    std::string data = TestBytes(size, size);
    ASSERT_TRUE(store_->Write(key, data).ok()) << key;
    auto info = store_->Stat(key);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(info->size, size);
    EXPECT_FALSE(info->etag.empty());
    EXPECT_GT(info->mtime_ns, 0);
    auto got = store_->ReadToString(key, 0, size + 10);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(*got == data) << key;
  }
}

TEST_F(S3StoreTest, MultipartWriteOf64MiB) {
  std::string data = TestBytes(64 << 20, 64);
  ASSERT_TRUE(store_->Write("big.bin", data).ok());  // the default threshold is 64 MiB: multipart
  auto info = store_->Stat("big.bin");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, data.size());
  EXPECT_NE(info->etag.find('-'), std::string::npos) << "not a multipart ETag: " << info->etag;
  auto got = store_->ReadToString("big.bin", 0, data.size());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == data);
}

TEST_F(S3StoreTest, RangedReadsAtEveryBoundary) {
  const uint64_t size = (1 << 20) + 1;
  std::string data = TestBytes(size, 3);
  ASSERT_TRUE(store_->Write("r.bin", data).ok());
  for (uint64_t off : {uint64_t{0}, uint64_t{1}, uint64_t{(1 << 20) - 1}, uint64_t{1 << 20}, size - 1}) {
    for (uint64_t len : {uint64_t{1}, uint64_t{2}, uint64_t{1 << 20}, size, size + 5}) {
      auto got = store_->ReadToString("r.bin", off, len);
      ASSERT_TRUE(got.ok()) << off << "+" << len << ": " << got.status().ToString();
      EXPECT_TRUE(*got == data.substr(off, len)) << off << "+" << len;
    }
  }
  EXPECT_EQ(*store_->ReadToString("r.bin", size, 1), "");       // at the end
  EXPECT_EQ(*store_->ReadToString("r.bin", size + 99, 1), "");  // past it
  ASSERT_TRUE(store_->Write("empty", "").ok());
  EXPECT_EQ(*store_->ReadToString("empty", 0, 100), "");
}

TEST_F(S3StoreTest, AwkwardKeys) {
  const std::vector<std::string> keys = {"with space.txt", "plus+sign", "per%cent", "ünïcødé/文件.bin",
                                         "a/b/c/d/e/f/g/h/deep.txt", "tilde~and=eq&amp;x", "semi;colon,comma"};
  for (const auto& k : keys) {
    ASSERT_TRUE(store_->Write(k, "data:" + k).ok()) << k;
    auto got = store_->ReadToString(k, 0, 1000);
    ASSERT_TRUE(got.ok()) << k << ": " << got.status().ToString();
    EXPECT_EQ(*got, "data:" + k);
  }
  auto all = store_->ListAll("", true);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::vector<std::string> listed;
  for (const auto& e : *all) listed.push_back(e.path);
  for (const auto& k : keys) EXPECT_NE(std::find(listed.begin(), listed.end(), k), listed.end()) << k;
  EXPECT_TRUE(store_->Stat("a/b/c")->is_dir);
  auto level = store_->ListAll("ünïcødé", false);
  ASSERT_TRUE(level.ok());
  ASSERT_EQ(level->size(), 1u);
  EXPECT_EQ((*level)[0].path, "ünïcødé/文件.bin");
}

TEST_F(S3StoreTest, ListsMoreThanAThousandKeysWithContinuation) {
  const int kCount = 1100;
  std::atomic<int> next{0}, failures{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&] {
      for (int i = next++; i < kCount; i = next++) {
        char name[32];
        std::snprintf(name, sizeof(name), "many/k%05d", i);
        if (!store_->Write(name, std::to_string(i)).ok()) ++failures;
      }
    });
  }
  for (auto& w : writers) w.join();
  ASSERT_EQ(failures, 0);
  ASSERT_TRUE(store_->Write("many/sub/x", "x").ok());

  ListOptions opts;
  int pages = 0;
  std::vector<ObjectInfo> seen;
  while (true) {
    auto page = store_->List("many", opts);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ++pages;
    seen.insert(seen.end(), page->entries.begin(), page->entries.end());
    if (page->next_token.empty()) break;
    opts.continuation = page->next_token;
  }
  EXPECT_EQ(pages, 2);
  ASSERT_EQ(seen.size(), kCount + 1u);  // 1100 keys and the "sub" directory
  EXPECT_EQ(seen.front().path, "many/k00000");
  EXPECT_EQ(seen.front().size, 1u);
  int dirs = 0;
  for (const auto& e : seen) dirs += e.is_dir;
  EXPECT_EQ(dirs, 1);
  auto recursive = store_->ListAll("many", true);
  ASSERT_TRUE(recursive.ok());
  EXPECT_EQ(recursive->size(), kCount + 1u);
}

TEST_F(S3StoreTest, MissingObjectsAndDirectories) {
  auto st = store_->Stat("missing.bin");
  EXPECT_EQ(st.status().code(), StatusCode::kNotFound);
  EXPECT_NE(st.status().message().find("missing.bin"), std::string::npos) << st.status().message();
  auto rd = store_->ReadToString("missing.bin", 0, 10);
  EXPECT_EQ(rd.status().code(), StatusCode::kNotFound);
  EXPECT_NE(rd.status().message().find("s3://sluice-test/" + prefix_ + "/missing.bin"), std::string::npos)
      << rd.status().message();
  EXPECT_EQ(store_->List("nodir", {}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Delete("missing.bin").code(), StatusCode::kNotFound);
  auto nobucket = Open("s3://no-such-bucket-here");
  EXPECT_EQ(nobucket->Stat("").status().code(), StatusCode::kNotFound);
  EXPECT_NE(nobucket->Stat("x").status().message().find("no-such-bucket-here"), std::string::npos);
}

TEST_F(S3StoreTest, DeleteAndMkdir) {
  ASSERT_TRUE(store_->Write("gone.txt", "x").ok());
  ASSERT_TRUE(store_->Delete("gone.txt").ok());
  EXPECT_EQ(store_->Stat("gone.txt").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->Mkdir("emptydir").ok());
  EXPECT_TRUE(store_->Stat("emptydir")->is_dir);
  auto listed = store_->List("emptydir", {});
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_TRUE(listed->entries.empty());
  auto top = store_->ListAll("", false);
  ASSERT_TRUE(top.ok());
  ASSERT_EQ(top->size(), 1u);
  EXPECT_EQ((*top)[0].path, "emptydir");
  EXPECT_TRUE((*top)[0].is_dir);
}

TEST_F(S3StoreTest, UploadsInPartsOutOfOrderAndTheirETagIsTheStat) {
  constexpr uint64_t kPart = 5 << 20;  // S3's least part
  const std::string data = TestBytes(3 * kPart + 1000, 21);
  auto upload = store_->StartUpload("parts/model.bin", kPart);
  ASSERT_TRUE(upload.ok()) << upload.status().ToString();
  std::vector<std::thread> parts;
  std::vector<Status> results(4);
  for (uint64_t i : {3, 1, 2, 0}) {  // in parallel, in any order
    parts.emplace_back([&, i] { results[i] = (*upload)->PutPart(i, std::string_view(data).substr(i * kPart, kPart)); });
  }
  for (auto& t : parts) t.join();
  for (const auto& st : results) ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(store_->Stat("parts/model.bin").status().code(), StatusCode::kNotFound);  // not before Finish
  auto etag = (*upload)->Finish(4);
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();
  auto info = store_->Stat("parts/model.bin");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(info->etag, *etag);
  EXPECT_EQ(*store_->ReadToString("parts/model.bin", 0, data.size()), data);

  // One part is one PUT; an abandoned upload leaves nothing.
  auto one = store_->StartUpload("parts/small.txt", kPart);
  ASSERT_TRUE((*one)->PutPart(0, "small").ok());
  auto small_etag = (*one)->Finish(1);
  ASSERT_TRUE(small_etag.ok()) << small_etag.status().ToString();
  EXPECT_EQ(store_->Stat("parts/small.txt")->etag, *small_etag);
  {
    auto abandoned = store_->StartUpload("parts/abandoned.bin", kPart);
    ASSERT_TRUE((*abandoned)->PutPart(0, std::string_view(data).substr(0, kPart)).ok());
    ASSERT_TRUE((*abandoned)->PutPart(1, std::string_view(data).substr(kPart, kPart)).ok());
  }
  EXPECT_EQ(store_->Stat("parts/abandoned.bin").status().code(), StatusCode::kNotFound);

  // Rename: a copy and a delete; a directory's marker deletes as the directory.
  ASSERT_TRUE(store_->Rename("parts/small.txt", "moved/small.txt").ok());
  EXPECT_EQ(store_->Stat("parts/small.txt").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*store_->ReadToString("moved/small.txt", 0, 100), "small");
  ASSERT_TRUE(store_->Mkdir("marked").ok());
  ASSERT_TRUE(store_->Delete("marked").ok());
  EXPECT_EQ(store_->Stat("marked").status().code(), StatusCode::kNotFound);
}

TEST_F(S3StoreTest, WrongSecretIsAClearAuthenticationError) {
  auto bad = Open("s3://" + std::string(kBucket), Options(Rgw()->endpoint(), "not-the-secret"));
  auto st = bad->Stat("anything");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(st.status().message().find("authentication failed"), std::string::npos) << st.status().message();
  EXPECT_EQ(bad->ReadToString("anything", 0, 1).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(bad->Write("x", "y").code(), StatusCode::kPermissionDenied);
}

// Sets environment variables for a test and restores them after.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::map<std::string, std::string>& vars) {
    for (const char* name : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                             "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
                             "AWS_ROLE_ARN", "AWS_ENDPOINT_URL_STS", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                             "AWS_EC2_METADATA_DISABLED", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"}) {
      const char* v = std::getenv(name);
      saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(name);
    }
    ::setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    for (const auto& [k, v] : vars) {
      if (v.empty()) ::unsetenv(k.c_str());
      else ::setenv(k.c_str(), v.c_str(), 1);
    }
  }
  ~ScopedEnv() {
    for (const auto& [k, v] : saved_) {
      if (v) ::setenv(k.c_str(), v->c_str(), 1);
      else ::unsetenv(k.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// Options without keys: the credential chain finds them.
UnderStoreOptions NoKeys(const std::string& endpoint = "") {
  UnderStoreOptions o = Options(Rgw()->endpoint());
  o.options.clear();
  if (!endpoint.empty()) o.options.emplace_back("endpoint", endpoint);
  return o;
}

// The fake STS and IMDSv2 (tests/fixtures/aws_metadata.py), handing out RGW's keys.
std::unique_ptr<testing::Subprocess> StartMetadata(const testing::TempDir& dir, int expires_in, int* port) {
  const std::string port_file = dir.path() + "/metadata.port";
  auto p = testing::Subprocess::Start({SLUICE_PYTHON, SLUICE_FIXTURES_DIR "/aws_metadata.py", "--port-file", port_file,
                                       "--access-key", Rgw()->access_key(), "--secret-key", Rgw()->secret_key(),
                                       "--expires-in", std::to_string(expires_in)});
  EXPECT_TRUE(p.ok());
  EXPECT_TRUE(testing::WaitFor([&] { return std::filesystem::exists(port_file); }, std::chrono::seconds(20)));
  *port = std::atoi(testing::ReadFile(port_file).c_str());
  return p.ok() ? std::move(p).value() : nullptr;
}

TEST_F(S3StoreTest, CredentialsAndEndpointFromAProfile) {
  testing::TempDir dir;
  testing::WriteFile(dir.path() + "/credentials", "[default]\naws_access_key_id = WRONG\naws_secret_access_key = x\n\n"
                                                  "[training]\naws_access_key_id = " + Rgw()->access_key() +
                                                  "\naws_secret_access_key = " + Rgw()->secret_key() + "\n");
  testing::WriteFile(dir.path() + "/config", "[profile training]\nregion = us-east-1\nendpoint_url = " +
                                             Rgw()->endpoint() + "\n");
  ScopedEnv env({{"AWS_SHARED_CREDENTIALS_FILE", dir.path() + "/credentials"},
                 {"AWS_CONFIG_FILE", dir.path() + "/config"},
                 {"AWS_PROFILE", "training"}});
  auto store = OpenUnderStore("s3://" + std::string(kBucket) + "/" + prefix_, NoKeys());  // endpoint from the config
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->Write("p", "profile").ok());
  EXPECT_EQ(*(*store)->ReadToString("p", 0, 100), "profile");
  ::setenv("AWS_PROFILE", "nope", 1);
  auto missing = OpenUnderStore("s3://" + std::string(kBucket), NoKeys());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("no such profile"), std::string::npos) << missing.status().message();
}

TEST_F(S3StoreTest, CredentialsFromAWebIdentityAreRefreshedBeforeTheyExpire) {
  testing::TempDir dir;
  int port = 0;
  auto metadata = StartMetadata(dir, /*expires_in=*/120, &port);  // inside the 5-minute refresh window
  testing::WriteFile(dir.path() + "/token", "eyJhbGciOiJSUzI1NiJ9.e30.sig\n");
  ScopedEnv env({{"AWS_WEB_IDENTITY_TOKEN_FILE", dir.path() + "/token"},
                 {"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/training"},
                 {"AWS_ENDPOINT_URL_STS", "http://127.0.0.1:" + std::to_string(port)}});
  auto store = OpenUnderStore("s3://" + std::string(kBucket) + "/" + prefix_, NoKeys(Rgw()->endpoint()));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->Write("w", "web identity").ok());
  EXPECT_EQ(*(*store)->ReadToString("w", 0, 100), "web identity");
  ufs::HttpClient http(ufs::HttpClientOptions{});
  ufs::HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/stats";
  ufs::HttpResponse r;
  ASSERT_TRUE(http.Send(req, &r).ok());
  // {"sts": N, ...}: fetched at open, then again for requests made close to the expiry.
  EXPECT_GE(std::atoi(r.body.c_str() + r.body.find(':') + 1), 2) << r.body;
}

TEST_F(S3StoreTest, CredentialsFromTheInstanceRoleThroughImdsV2) {
  testing::TempDir dir;
  int port = 0;
  auto metadata = StartMetadata(dir, 3600, &port);
  ScopedEnv env({{"AWS_EC2_METADATA_DISABLED", ""},
                 {"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:" + std::to_string(port) + "/"}});
  auto store = OpenUnderStore("s3://" + std::string(kBucket) + "/" + prefix_, NoKeys(Rgw()->endpoint()));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->Write("i", "instance").ok());
  EXPECT_EQ(*(*store)->ReadToString("i", 0, 100), "instance");
}

TEST_F(S3StoreTest, NoCredentialsAnywhereSaysWhatWasTried) {
  testing::TempDir dir;
  ScopedEnv env({{"AWS_SHARED_CREDENTIALS_FILE", dir.path() + "/none"}, {"AWS_CONFIG_FILE", dir.path() + "/none"}});
  auto store = OpenUnderStore("s3://" + std::string(kBucket), NoKeys(Rgw()->endpoint()));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto info = (*store)->Stat("anything");
  ASSERT_EQ(info.status().code(), StatusCode::kPermissionDenied) << info.status().ToString();
  EXPECT_NE(info.status().message().find("no credentials found: tried"), std::string::npos) << info.status().message();
}

TEST_F(S3StoreTest, UnreachableEndpointFailsAfterBoundedRetries) {
  auto opts = Options("http://127.0.0.1:" + std::to_string(testing::UnusedPort()));
  opts.max_attempts = 4;
  auto down = Open("s3://" + std::string(kBucket), opts);
  auto t0 = std::chrono::steady_clock::now();
  auto st = down->ReadToString("x", 0, 10);
  auto elapsed = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(st.status().message().find("cannot reach the server"), std::string::npos) << st.status().message();
  EXPECT_NE(st.status().message().find("gave up after 4 attempts"), std::string::npos) << st.status().message();
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

class S3RetryTest : public S3StoreTest {
 protected:
  void SetUp() override {
    S3StoreTest::SetUp();
    auto proxy = FaultProxy::Start(Rgw()->endpoint());
    ASSERT_TRUE(proxy.ok()) << proxy.status().ToString();
    proxy_ = std::move(proxy).value();
    via_proxy_ = Open("s3://" + std::string(kBucket) + "/" + prefix_, Options(proxy_->url()));
    data_ = TestBytes(3 << 20, 11);
    ASSERT_TRUE(store_->Write("obj", data_).ok());
    ASSERT_TRUE(proxy_->ResetStats().ok());
  }
  int Requests() { return *proxy_->RequestCount(); }

  std::unique_ptr<FaultProxy> proxy_;
  std::unique_ptr<UnderStore> via_proxy_;
  std::string data_;
};

TEST_F(S3RetryTest, ServerErrorsAndSlowDownAreRetried) {
  ASSERT_TRUE(proxy_->SetFaults("503 slowdown 500").ok());
  auto got = via_proxy_->ReadToString("obj", 0, data_.size());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == data_);
  EXPECT_EQ(Requests(), 4);  // three faults, then success
}

TEST_F(S3RetryTest, ResetConnectionsAreRetried) {
  ASSERT_TRUE(proxy_->SetFaults("reset reset").ok());
  auto info = via_proxy_->Stat("obj");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, data_.size());
  EXPECT_EQ(Requests(), 3);
}

TEST_F(S3RetryTest, ReadCutMidBodyResumesWithTheRightBytes) {
  ASSERT_TRUE(proxy_->SetFaults("reset-mid-body reset-mid-body").ok());
  auto got = via_proxy_->ReadToString("obj", 1000, data_.size());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == data_.substr(1000));
  EXPECT_EQ(Requests(), 3);
}

TEST_F(S3RetryTest, ForbiddenIsNeverRetried) {
  ASSERT_TRUE(proxy_->SetFaults("403").ok());
  auto got = via_proxy_->ReadToString("obj", 0, 10);
  EXPECT_EQ(got.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Requests(), 1);
}

TEST_F(S3RetryTest, WritesAreRetriedToo) {
  ASSERT_TRUE(proxy_->SetFaults("503 reset").ok());
  ASSERT_TRUE(via_proxy_->Write("written", "payload").ok());
  EXPECT_EQ(*store_->ReadToString("written", 0, 100), "payload");
}

TEST_F(S3RetryTest, PersistentFailureGivesUp) {
  ASSERT_TRUE(proxy_->SetFaults("503 503 503 503 503 503 503 503").ok());
  auto got = via_proxy_->ReadToString("obj", 0, 10);
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(got.status().retryable());
  EXPECT_EQ(Requests(), 5);  // max_attempts
}

}  // namespace
}  // namespace sluice::ufs

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new sluice::testing::RgwEnvironment({"sluice-test"}));
  return RUN_ALL_TESTS();
}
