// The `sluice` binary as a user runs it: output, bytes and exit codes (0 ok, 1 failed,
// 2 usage or bad input), against a local directory and a real HTTP server.
#include <gtest/gtest.h>

#include "support/test_support.h"

namespace sluice::cli {
namespace {

using testing::FaultyHttpServer;
using testing::ReadFile;
using testing::RunCommand;
using testing::TempDir;
using testing::TestBytes;
using testing::WriteFile;

int Sluice(const std::vector<std::string>& args, std::string* out) {
  std::vector<std::string> argv{SLUICE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, out);
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_.path() + "/ds/a.bin", TestBytes(5000, 1));
    WriteFile(dir_.path() + "/ds/sub dir/b.txt", "hello world");
  }
  TempDir dir_;
};

TEST_F(CliTest, LsStatCat) {
  std::string out;
  ASSERT_EQ(Sluice({"ufs", "ls", "file://" + dir_.path() + "/ds"}, &out), 0) << out;
  EXPECT_EQ(out, "a.bin\nsub dir/\n");
  ASSERT_EQ(Sluice({"ufs", "ls", "-R", dir_.path() + "/ds"}, &out), 0) << out;
  EXPECT_EQ(out, "a.bin\nsub dir/b.txt\n");
  ASSERT_EQ(Sluice({"ufs", "stat", dir_.path() + "/ds/a.bin"}, &out), 0) << out;
  EXPECT_NE(out.find("size:     5000"), std::string::npos) << out;
  ASSERT_EQ(Sluice({"ufs", "cat", dir_.path() + "/ds/sub dir/b.txt"}, &out), 0);
  EXPECT_EQ(out, "hello world");
  ASSERT_EQ(Sluice({"ufs", "cat", "--offset", "6", "--length", "3", dir_.path() + "/ds/sub dir/b.txt"}, &out), 0);
  EXPECT_EQ(out, "wor");
}

TEST_F(CliTest, CopiesTreesAndReportsThroughput) {
  std::string out;
  ASSERT_EQ(Sluice({"ufs", "cp", "-R", dir_.path() + "/ds", "file://" + dir_.path() + "/copy"}, &out), 0) << out;
  EXPECT_EQ(ReadFile(dir_.path() + "/copy/a.bin"), TestBytes(5000, 1));
  EXPECT_EQ(ReadFile(dir_.path() + "/copy/sub dir/b.txt"), "hello world");
  ASSERT_EQ(Sluice({"ufs", "read", "-j", "2", dir_.path() + "/copy"}, &out), 0) << out;
  EXPECT_NE(out.find("read 2 files"), std::string::npos) << out;
  EXPECT_NE(Sluice({"ufs", "cp", dir_.path() + "/ds", dir_.path() + "/x"}, &out), 0);
  EXPECT_NE(out.find("is a directory (use -R"), std::string::npos) << out;
}

TEST_F(CliTest, ReadsOverHttp) {
  auto server = FaultyHttpServer::Serve(dir_.path());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  std::string out;
  ASSERT_EQ(Sluice({"ufs", "ls", (*server)->url() + "/ds/"}, &out), 0) << out;
  EXPECT_EQ(out, "a.bin\nsub dir/\n");
  ASSERT_EQ(Sluice({"ufs", "cat", (*server)->url() + "/ds/sub%20dir/b.txt"}, &out), 1) << out;
  ASSERT_EQ(Sluice({"ufs", "cat", (*server)->url() + "/ds/sub dir/b.txt"}, &out), 0) << out;
  EXPECT_EQ(out, "hello world");
}

TEST_F(CliTest, ErrorsNameTheCauseAndSetExitCodes) {
  std::string out;
  EXPECT_EQ(Sluice({"ufs", "cat", dir_.path() + "/ds/missing"}, &out), 1);
  EXPECT_NE(out.find(dir_.path() + "/ds/missing: No such file or directory"), std::string::npos) << out;
  EXPECT_EQ(Sluice({"ufs", "cat", "s3://bucket/../../etc/passwd"}, &out), 2);
  EXPECT_NE(out.find("climbs above the root"), std::string::npos) << out;
  EXPECT_EQ(Sluice({"ufs", "ls", "gopher://x/y"}, &out), 2);
  EXPECT_NE(out.find("unknown scheme 'gopher'"), std::string::npos) << out;
  EXPECT_EQ(Sluice({"ufs", "ls", "-o", "colour=blue", "s3://bucket"}, &out), 2);
  EXPECT_NE(out.find("unknown S3 option 'colour'"), std::string::npos) << out;
  EXPECT_EQ(Sluice({"ufs", "frobnicate"}, &out), 2);
  EXPECT_EQ(Sluice({}, &out), 2);
  WriteFile(dir_.path() + "/bad.yaml", "ufs: {max_atempts: 3}\n");
  EXPECT_EQ(Sluice({"ufs", "ls", "--config", dir_.path() + "/bad.yaml", dir_.path()}, &out), 2);
  EXPECT_NE(out.find("bad.yaml: ufs.max_atempts: unknown key"), std::string::npos) << out;
  EXPECT_EQ(Sluice({"--help"}, &out), 0);
  EXPECT_NE(out.find("ufs"), std::string::npos);
}

}  // namespace
}  // namespace sluice::cli
