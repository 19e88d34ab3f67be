// The S3 gateway of a real `sluice local` over a real Ceph RGW, read by the S3 clients people
// use: awscli, boto3, s3cmd and rclone. Each lists a dataset (a 2,500-key prefix, so listings
// page, and awkward names) and downloads it; every byte is compared with what was uploaded.
// One RGW and one sluice for the binary, so it is one ctest test.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "support/test_support.h"
#include "ufs/stores.h"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;
using testing::ReadFile;
using testing::RgwServer;
using testing::RunCommand;
using testing::Subprocess;
using testing::TempDir;
using testing::TestBytes;
using testing::WriteFile;

constexpr int kManyKeys = 2500;
constexpr const char* kGatewayAccess = "CLIENTSTESTKEY";
constexpr const char* kGatewaySecret = "clients-test-secret/with+odd=chars";

RgwServer* Rgw() { return testing::RgwEnvironment::server(); }

// What was uploaded below "set/": relative key -> bytes.
std::map<std::string, std::string>& Dataset() {
  static std::map<std::string, std::string> data;
  return data;
}

class GatewayClientsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!Rgw()) return;
    dir_ = new TempDir();
    auto& data = Dataset();
    for (int i = 0; i < kManyKeys; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "many/k%04d", i);
      data[name] = TestBytes(64 + i % 7, static_cast<uint64_t>(i));
    }
    for (size_t size : {size_t{0}, size_t{1}, size_t{(1 << 20) + 1}, size_t{5 << 20}}) {
      data["sizes/f" + std::to_string(size)] = TestBytes(size, size);
    }
    for (const char* name : {"with space \xc3\xbcn\xc3\xaf" "c\xc3\xb8" "d\xc3\xa9 \xe6\x96\x87\xe4\xbb\xb6.txt",
                             "plus+equals=amp&.txt", "tilde~(paren)[bracket].txt", "percent%20literal.txt",
                             "deep/er/still/leaf.bin"}) {
      data[std::string("names/") + name] = std::string("content of ") + name;
    }
    ufs::UnderStoreOptions o;
    o.options = {{"endpoint", Rgw()->endpoint()}, {"access_key", Rgw()->access_key()},
                 {"secret_key", Rgw()->secret_key()}};
    auto store = ufs::NewS3Store("clients", "set", o);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    // Uploaded by 8 writers: RGW takes each PUT in a few ms.
    std::vector<std::pair<std::string, std::string>> items(data.begin(), data.end());
    std::atomic<size_t> next{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < 8; ++t) {
      writers.emplace_back([&] {
        for (size_t i; (i = next++) < items.size();) {
          if (!(*store)->Write(items[i].first, items[i].second).ok()) ++failures;
        }
      });
    }
    for (auto& w : writers) w.join();
    ASSERT_EQ(failures.load(), 0);

    const std::string home = dir_->path() + "/home";
    WriteFile(dir_->path() + "/rgw-secret", Rgw()->secret_key());
    const std::string log = dir_->path() + "/local.log";
    auto p = Subprocess::Start(
        {SLUICE_BINARY, "local", "--ufs", "s3://clients", "-o", "endpoint=" + Rgw()->endpoint(), "-o",
         "access_key=" + Rgw()->access_key(), "-o", "secret_key_file=" + dir_->path() + "/rgw-secret", "-o",
         "write_mode=through", "--s3-port", "0",
         "--rpc-port", "0", "--http-port", "0", "--cache-dir", dir_->path() + "/cache", "--cache-size", "1GiB",
         "--memory-size", "256MiB"},
        {{"SLUICE_HOME", home}, {"SLUICE_GATEWAY_ACCESS_KEY", kGatewayAccess},
         {"SLUICE_GATEWAY_SECRET_KEY", kGatewaySecret}},
        log);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    local_ = p->release();
    std::smatch m;
    std::string text;
    const std::regex address("S3 gateway (http://127\\.0\\.0\\.1:[0-9]+)");
    ASSERT_TRUE(testing::WaitFor([&] {
      text = ReadFile(log);
      return std::regex_search(text, m, address);
    }, 60s)) << text;
    endpoint_ = new std::string(m[1]);
  }

  static void TearDownTestSuite() {
    if (local_) local_->Stop();
    delete local_;
    delete endpoint_;
    delete dir_;
  }

  void SetUp() override {
    ASSERT_NE(Rgw(), nullptr);
    ASSERT_NE(endpoint_, nullptr) << "sluice local did not start its gateway";
  }

  // Files below `root` (relative paths) that differ from the dataset below `prefix` ("" for
  // all), and dataset keys missing there; `skip`: a prefix of keys not downloaded.
  static std::vector<std::string> Differences(const std::string& root, const std::string& prefix,
                                              const std::string& skip = "\x01") {
    std::vector<std::string> out;
    size_t expected = 0;
    for (const auto& [key, bytes] : Dataset()) {
      if (key.compare(0, prefix.size(), prefix) != 0 || key.compare(0, skip.size(), skip) == 0) continue;
      ++expected;
      const std::string path = root + "/" + key.substr(prefix.size());
      if (!std::filesystem::is_regular_file(path)) {
        out.push_back("missing " + key);
      } else if (ReadFile(path) != bytes) {
        out.push_back("differs " + key);
      }
    }
    size_t found = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(root)) found += e.is_regular_file();
    if (found != expected) out.push_back(std::to_string(found) + " files for " + std::to_string(expected) + " keys");
    return out;
  }

  static int CountLines(const std::string& text, const std::string& containing) {
    int n = 0;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) n += line.find(containing) != std::string::npos;
    return n;
  }

  // awscli (Debian's /usr/bin/aws, not a shim earlier in PATH), with `access`/`secret`.
  int Aws(std::vector<std::string> args, std::string* out, const std::string& access = kGatewayAccess,
          const std::string& secret = kGatewaySecret) {
    std::vector<std::string> argv{"env", "-u", "AWS_CA_BUNDLE", "-u", "AWS_PROFILE", "/usr/bin/aws",
                                  "--endpoint-url", *endpoint_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, out,
                      {{"AWS_ACCESS_KEY_ID", access}, {"AWS_SECRET_ACCESS_KEY", secret},
                       {"AWS_DEFAULT_REGION", "us-east-1"}, {"AWS_CONFIG_FILE", "/dev/null"},
                       {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"}, {"AWS_EC2_METADATA_DISABLED", "true"},
                       {"AWS_PAGER", ""}, {"HOME", dir_->path()}});
  }

  static TempDir* dir_;
  static Subprocess* local_;
  static std::string* endpoint_;
};

TempDir* GatewayClientsTest::dir_ = nullptr;
Subprocess* GatewayClientsTest::local_ = nullptr;
std::string* GatewayClientsTest::endpoint_ = nullptr;

TEST_F(GatewayClientsTest, AwsCliListsCopiesSyncsAndReadsRanges) {
  std::string out;
  ASSERT_EQ(Aws({"s3", "ls"}, &out), 0) << out;
  EXPECT_NE(out.find("sluice"), std::string::npos) << out;
  // The root bucket of an S3 store has no time of its own; it is dated by the gateway's start.
  EXPECT_EQ(out.find("1970-"), std::string::npos) << out;
  ASSERT_EQ(Aws({"s3", "ls", "s3://sluice/set/"}, &out), 0) << out;
  for (const char* p : {"PRE many/", "PRE names/", "PRE sizes/"}) EXPECT_NE(out.find(p), std::string::npos) << out;
  ASSERT_EQ(Aws({"s3", "ls", "--recursive", "s3://sluice/set/many/"}, &out), 0) << out.substr(0, 2000);
  EXPECT_EQ(CountLines(out, "set/many/k"), kManyKeys);

  const std::string cp = dir_->path() + "/aws-cp";
  ASSERT_EQ(Aws({"s3", "cp", "--recursive", "--only-show-errors", "s3://sluice/set/", cp}, &out), 0) << out;
  EXPECT_EQ(Differences(cp, ""), std::vector<std::string>{});
  const std::string sync = dir_->path() + "/aws-sync";
  ASSERT_EQ(Aws({"s3", "sync", "--only-show-errors", "s3://sluice/set/names/", sync}, &out), 0) << out;
  EXPECT_EQ(Differences(sync, "names/"), std::vector<std::string>{});
  ASSERT_EQ(Aws({"s3", "sync", "s3://sluice/set/names/", sync}, &out), 0) << out;
  EXPECT_EQ(out, "") << "a second sync found something to copy";

  const std::string part = dir_->path() + "/range.bin";
  ASSERT_EQ(Aws({"s3api", "get-object", "--bucket", "sluice", "--key", "set/sizes/f5242880", "--range",
                 "bytes=100-1099", part},
                &out),
            0)
      << out;
  EXPECT_TRUE(ReadFile(part) == Dataset()["sizes/f5242880"].substr(100, 1000));

  EXPECT_NE(Aws({"s3", "ls", "s3://sluice/set/"}, &out, kGatewayAccess, "wrong-secret"), 0);
  EXPECT_NE(out.find("SignatureDoesNotMatch"), std::string::npos) << out;
  EXPECT_NE(Aws({"s3", "ls", "s3://sluice/set/"}, &out, "NOSUCHKEY", kGatewaySecret), 0);
  EXPECT_NE(out.find("InvalidAccessKeyId"), std::string::npos) << out;
  EXPECT_NE(Aws({"s3", "cp", "s3://sluice/set/nope", dir_->path() + "/nope"}, &out), 0);
  EXPECT_NE(out.find("404"), std::string::npos) << out;
}

TEST_F(GatewayClientsTest, Boto3PaginatesDownloadsInPartsAndPresigns) {
  const std::string dest = dir_->path() + "/boto3";
  std::string out;
  ASSERT_EQ(RunCommand({"env", "-u", "AWS_CA_BUNDLE", "/usr/bin/python3", SLUICE_GATEWAY_TESTDATA "/boto3_client.py",
                        *endpoint_, kGatewayAccess, kGatewaySecret, "sluice", "set/", dest, "many/"},
                       &out, {{"AWS_CONFIG_FILE", "/dev/null"}, {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"}}),
            0)
      << out;
  const size_t total = Dataset().size();
  EXPECT_NE(out.find("\"count\": " + std::to_string(total)), std::string::npos) << out;
  EXPECT_NE(out.find("\"pages\": " + std::to_string((total + 999) / 1000)), std::string::npos) << out;
  EXPECT_NE(out.find("\"prefixes\": [\"set/many/\", \"set/names/\", \"set/sizes/\"]"), std::string::npos) << out;
  EXPECT_NE(out.find("\"presigned_bytes\": " + std::to_string(Dataset().begin()->second.size())), std::string::npos)
      << out;
  EXPECT_NE(out.find("\"wrong_secret\": \"SignatureDoesNotMatch\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"unknown_key\": \"InvalidAccessKeyId\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"skewed_clock\": \"RequestTimeTooSkewed\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"missing\": \"NoSuchKey\""), std::string::npos) << out;
  EXPECT_EQ(Differences(dest, "", "many/"), std::vector<std::string>{});  // all but the 2,500
}

// Writes through the gateway land in the bucket sluice caches: awscli cp (a multipart upload
// of 20 MiB: three parts) and rm, read back from RGW itself.
TEST_F(GatewayClientsTest, AwsCliWritesThroughTheGateway) {
  const std::string local = dir_->path() + "/upload.bin", data = TestBytes((20 << 20) + 9, 77);
  WriteFile(local, data);
  std::string out;
  ASSERT_EQ(Aws({"s3", "cp", "--only-show-errors", local, "s3://sluice/uploads/upload.bin"}, &out), 0) << out;
  ufs::UnderStoreOptions o;
  o.options = {{"endpoint", Rgw()->endpoint()}, {"access_key", Rgw()->access_key()},
               {"secret_key", Rgw()->secret_key()}};
  auto rgw = *ufs::NewS3Store("clients", "", o);
  EXPECT_TRUE(*rgw->ReadToString("uploads/upload.bin", 0, data.size() + 1) == data);
  const std::string back = dir_->path() + "/back.bin";
  ASSERT_EQ(Aws({"s3", "cp", "--only-show-errors", "s3://sluice/uploads/upload.bin", back}, &out), 0) << out;
  EXPECT_TRUE(ReadFile(back) == data);
  ASSERT_EQ(Aws({"s3", "rm", "--only-show-errors", "s3://sluice/uploads/upload.bin"}, &out), 0) << out;
  EXPECT_EQ(rgw->Stat("uploads/upload.bin").status().code(), StatusCode::kNotFound);
}

TEST_F(GatewayClientsTest, S3cmdListsAndGetsRecursively) {
  const std::string cfg = dir_->path() + "/s3cmd.cfg";
  const std::string host = endpoint_->substr(std::string("http://").size());
  WriteFile(cfg, "[default]\naccess_key = " + std::string(kGatewayAccess) + "\nsecret_key = " + kGatewaySecret +
                     "\nhost_base = " + host + "\nhost_bucket = " + host +
                     "\nuse_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n");
  std::string out;
  ASSERT_EQ(RunCommand({"s3cmd", "-c", cfg, "ls", "s3://sluice/set/"}, &out), 0) << out;
  EXPECT_NE(out.find("DIR  s3://sluice/set/many/"), std::string::npos) << out;
  ASSERT_EQ(RunCommand({"s3cmd", "-c", cfg, "ls", "--recursive", "s3://sluice/set/many/"}, &out), 0)
      << out.substr(0, 2000);
  EXPECT_EQ(CountLines(out, "s3://sluice/set/many/k"), kManyKeys);
  for (const char* sub : {"names", "sizes"}) {
    const std::string dest = dir_->path() + "/s3cmd/" + sub + "/";
    std::filesystem::create_directories(dest);
    ASSERT_EQ(RunCommand({"s3cmd", "-c", cfg, "get", "--recursive", "s3://sluice/set/" + std::string(sub) + "/", dest},
                         &out),
              0)
        << out;
    EXPECT_EQ(Differences(dest, std::string(sub) + "/"), std::vector<std::string>{}) << out;
  }
}

TEST_F(GatewayClientsTest, RcloneListsAndCopiesEverything) {
  const std::map<std::string, std::string> env{
      {"RCLONE_CONFIG_GW_TYPE", "s3"},           {"RCLONE_CONFIG_GW_PROVIDER", "Other"},
      {"RCLONE_CONFIG_GW_ENDPOINT", *endpoint_}, {"RCLONE_CONFIG_GW_ACCESS_KEY_ID", kGatewayAccess},
      {"RCLONE_CONFIG_GW_SECRET_ACCESS_KEY", kGatewaySecret}, {"RCLONE_CONFIG_GW_REGION", "us-east-1"}};
  std::string out;
  ASSERT_EQ(RunCommand({"env", "-u", "AWS_CA_BUNDLE", "rclone", "--config", "/dev/null", "lsf", "-R",
                        "gw:sluice/set/many"},
                       &out, env),
            0)
      << out.substr(0, 2000);
  EXPECT_EQ(CountLines(out, "k"), kManyKeys);
  const std::string dest = dir_->path() + "/rclone";
  ASSERT_EQ(RunCommand({"env", "-u", "AWS_CA_BUNDLE", "rclone", "--config", "/dev/null", "copy", "gw:sluice/set", dest},
                       &out, env),
            0)
      << out;
  EXPECT_EQ(Differences(dest, ""), std::vector<std::string>{}) << out;
}

}  // namespace
}  // namespace sluice::gateway

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new sluice::testing::RgwEnvironment({"clients"}));
  return RUN_ALL_TESTS();
}
