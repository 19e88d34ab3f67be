// The `sluice` binary as a user runs it: output, bytes and exit codes (0 ok, 1 failed,
// 2 usage or bad input), against a local directory and a real HTTP server.
#include <gtest/gtest.h>

#include <filesystem>

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
  EXPECT_EQ(out, "a.bin\n'sub dir'/\n");  // quoted as a shell would need it
  ASSERT_EQ(Sluice({"ufs", "ls", "-R", dir_.path() + "/ds"}, &out), 0) << out;
  EXPECT_EQ(out, "a.bin\n'sub dir/b.txt'\n");
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
  EXPECT_EQ(out, "a.bin\n'sub dir'/\n");
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

// A name with a newline or a terminal escape prints as one quoted line, never raw.
TEST_F(CliTest, LsQuotesNamesThatWouldForgeLinesOrDriveTheTerminal) {
  WriteFile(dir_.path() + "/odd/a\nb", "x");
  WriteFile(dir_.path() + "/odd/\x1b[31mred", "x");
  WriteFile(dir_.path() + "/odd/plain.txt", "x");
  std::string out;
  ASSERT_EQ(Sluice({"ufs", "ls", dir_.path() + "/odd"}, &out), 0) << out;
  EXPECT_EQ(out, "''$'\\033''[31mred'\n'a'$'\\n''b'\nplain.txt\n");
}

// Settings that cannot work stop a command at once (exit 2), naming the flag or key and what
// is allowed; nothing is started.
class SettingsTest : public CliTest {
 protected:
  int Run(const std::vector<std::string>& args, std::string* out) {
    std::vector<std::string> argv{SLUICE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, out, {{"SLUICE_HOME", dir_.path() + "/home"}});
  }
  // `sluice local` over the test data with `flags`.
  int Local(const std::vector<std::string>& flags, std::string* out) {
    std::vector<std::string> args{"local", "--ufs", "file://" + dir_.path() + "/ds"};
    args.insert(args.end(), flags.begin(), flags.end());
    return Run(args, out);
  }
  std::string Config(const std::string& yaml) {
    WriteFile(dir_.path() + "/sluice.yaml", yaml);
    return dir_.path() + "/sluice.yaml";
  }
};

TEST_F(SettingsTest, PortsOutsideZeroTo65535AreRefused) {
  std::string out;
  EXPECT_EQ(Local({"--rpc-port", "70000", "--http-port", "0"}, &out), 2) << out;
  EXPECT_NE(out.find("--rpc-port: 70000 is out of range [0, 65535]"), std::string::npos) << out;
  EXPECT_EQ(Local({"--rpc-port", "-1", "--http-port", "0"}, &out), 2) << out;
  EXPECT_NE(out.find("--rpc-port: -1 is out of range [0, 65535]"), std::string::npos) << out;
  EXPECT_EQ(Local({"--rpc-port", "0", "--http-port", "65536"}, &out), 2) << out;
  EXPECT_NE(out.find("--http-port: 65536 is out of range [0, 65535]"), std::string::npos) << out;
  EXPECT_EQ(Local({"--rpc-port", "0", "--http-port", "web"}, &out), 2) << out;
  EXPECT_NE(out.find("--http-port: expected an integer"), std::string::npos) << out;
  EXPECT_EQ(Run({"worker", "--config", Config("worker: {http_port: 70000}\n")}, &out), 2) << out;
  EXPECT_NE(out.find("sluice.yaml: worker.http_port: 70000 is out of range [0, 65535]"), std::string::npos) << out;
  EXPECT_EQ(Local({"--rpc-port", "4000", "--http-port", "4000"}, &out), 2) << out;
  EXPECT_NE(out.find("--http-port: 4000 is also the RPC port (--rpc-port)"), std::string::npos) << out;
  EXPECT_EQ(out.find("serving"), std::string::npos) << out;
}

TEST_F(SettingsTest, MemoryTiersBeyondTheCapOrTheMachineOrBelowAPageAreRefused) {
  std::string out;
  EXPECT_EQ(Local({"--memory-size", "17TiB", "--rpc-port", "0", "--http-port", "0"}, &out), 2) << out;
  EXPECT_NE(out.find("--memory-size: 17.0 TiB is out of range [0 B, 16.0 TiB]"), std::string::npos) << out;
  EXPECT_EQ(Local({"--memory-size", "100KiB", "--rpc-port", "0", "--http-port", "0"}, &out), 2) << out;
  EXPECT_NE(out.find("--memory-size: the memory tier (100.0 KiB) must hold at least one page (worker.page_size, "
                     "1.00 MiB)"),
            std::string::npos)
      << out;
  // Larger than this machine's memory, from the flag and from the config file: both sizes said.
  EXPECT_EQ(Local({"--memory-size", "15TiB", "--rpc-port", "0", "--http-port", "0"}, &out), 2) << out;
  EXPECT_NE(out.find("the memory tier (15.0 TiB, --memory-size or worker.memory_quota) is larger than this machine's "
                     "memory ("),
            std::string::npos)
      << out;
  EXPECT_EQ(Run({"worker", "--config", Config("worker: {memory_quota: 15TiB, rpc_port: 0, http_port: 0}\n")}, &out), 2)
      << out;
  EXPECT_NE(out.find("the memory tier (15.0 TiB, --memory-size or worker.memory_quota) is larger than this machine's "
                     "memory ("),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("serving"), std::string::npos) << out;
}

TEST_F(SettingsTest, PageSizesAndDiskQuotasThatCannotWorkAreRefused) {
  std::string out;
  EXPECT_EQ(Run({"worker", "--config", Config("worker: {page_size: 4097}\n")}, &out), 2) << out;
  EXPECT_NE(out.find("sluice.yaml: worker.page_size: 4097 bytes is not a power of two from 4KiB to 64MiB"),
            std::string::npos)
      << out;
  EXPECT_EQ(Local({"--cache-size", "0", "--rpc-port", "0", "--http-port", "0"}, &out), 2) << out;
  EXPECT_NE(out.find("--cache-size: the disk tier in " + dir_.path() + "/home/cache (0 B) must hold at least one page"),
            std::string::npos)
      << out;
  EXPECT_EQ(Local({"--config", Config("worker: {page_size: 4MiB}\n"), "--cache-size", "2MiB", "--rpc-port", "0",
                   "--http-port", "0"},
                  &out),
            2)
      << out;
  EXPECT_NE(out.find("--cache-size: the disk tier in " + dir_.path() +
                     "/home/cache (2.00 MiB) must hold at least "
                     "one page (worker.page_size, 4.00 MiB)"),
            std::string::npos)
      << out;
}

// A disk tier whose file system is no larger than the space kept free on it caches nothing:
// said at start, with the directory, the file system's size and the reserve.
TEST_F(SettingsTest, ADiskTierThatCanCacheNothingIsWarnedAbout) {
  const std::string config =
      Config("worker: {disks: [{dir: " + dir_.path() + "/cache, quota: 1GiB, reserve: 1000TiB}]}\n");
  auto local = testing::Subprocess::Start({SLUICE_BINARY, "local", "--ufs", "file://" + dir_.path() + "/ds", "--config",
                                           config, "--memory-size", "1MiB", "--rpc-port", "0", "--http-port", "0"},
                                          {{"SLUICE_HOME", dir_.path() + "/home"}}, dir_.path() + "/local.log");
  ASSERT_TRUE(local.ok()) << local.status().ToString();
  EXPECT_TRUE(
      testing::WaitFor([&] { return ReadFile(dir_.path() + "/local.log").find("serving") != std::string::npos; },
                       std::chrono::seconds(20)))
      << ReadFile(dir_.path() + "/local.log");
  const std::string log = ReadFile(dir_.path() + "/local.log");
  EXPECT_NE(log.find(" W ["), std::string::npos) << log;
  EXPECT_NE(log.find("disk cache " + dir_.path() + "/cache will cache nothing: its file system holds "),
            std::string::npos)
      << log;
  EXPECT_NE(log.find(", and 1000.0 TiB of it is kept free (the reserve, worker.disks[].reserve)"), std::string::npos)
      << log;
}

TEST_F(SettingsTest, ConfigFilesThatAreDirectoriesOrRepeatKeysAreRefused) {
  std::string out;
  EXPECT_EQ(Run({"fs", "ls", "/", "--config", dir_.path()}, &out), 2) << out;
  EXPECT_NE(out.find("config file '" + dir_.path() + "' is a directory, not a config file"), std::string::npos) << out;
  EXPECT_EQ(Run({"worker", "--config", Config("worker:\n  rpc_port: 4000\n  rpc_port: 5000\n")}, &out), 2) << out;
  EXPECT_NE(out.find("sluice.yaml: line 3: worker.rpc_port: given a second time (first on line 2)"), std::string::npos)
      << out;
}

TEST_F(SettingsTest, ALogFileThatCannotBeOpenedIsRefusedAtStart) {
  std::string out;
  const std::string missing = dir_.path() + "/no/such/dir/x.log";
  EXPECT_EQ(Run({"worker", "--config", Config("log: {file: " + missing + "}\n")}, &out), 2) << out;
  EXPECT_NE(out.find("sluice.yaml: log.file: cannot open log file '" + missing + "': No such file or directory"),
            std::string::npos)
      << out;
  EXPECT_EQ(Local({"--log-file", "/proc/sluice.log"}, &out), 2) << out;
  EXPECT_NE(out.find("--log-file: cannot open log file '/proc/sluice.log': "), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/no"));
}

// A secret can come from a file instead of the command line, where `ps` shows it.
TEST_F(CliTest, SecretsFromFilesAndAWarningForOnesOnTheCommandLine) {
  std::string out;
  EXPECT_EQ(Sluice({"ufs", "ls", "-o", "secret_key_file=" + dir_.path() + "/none", "s3://bucket"}, &out), 2) << out;
  EXPECT_NE(out.find("-o secret_key_file=" + dir_.path() + "/none: cannot read it: No such file or directory"),
            std::string::npos)
      << out;
  // Given on the command line, it still works, with a warning naming the alternatives.
  EXPECT_EQ(Sluice({"ufs", "ls", "-o", "endpoint=http://127.0.0.1:1", "-o", "access_key=a", "-o", "secret_key=b", "-o",
                    "colour=blue", "s3://bucket"},
                   &out),
            2)
      << out;
  EXPECT_NE(out.find("warning: -o secret_key=... is visible to every user of this machine in `ps`; use -o "
                     "secret_key_file=PATH or the environment variable AWS_SECRET_ACCESS_KEY instead"),
            std::string::npos)
      << out;
  for (const std::vector<std::string>& help :
       {std::vector<std::string>{"local", "--help"}, std::vector<std::string>{"mount", "add", "--help"},
        std::vector<std::string>{"ufs", "ls", "--help"}}) {
    ASSERT_EQ(Sluice(help, &out), 0) << out;
    EXPECT_NE(out.find("secret_key_file=PATH"), std::string::npos) << out;
    EXPECT_NE(out.find("AWS_SECRET_ACCESS_KEY"), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace sluice::cli
