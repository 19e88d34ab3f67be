// `sluice local` as a real process, driven by the `sluice` CLI as a user would: reads, load
// with progress, report, and the faults: SIGKILL and restart (the disk cache survives and no
// corrupt page is served), a bit-flipped or truncated page file, a wrong cluster secret.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>

#include "support/test_support.h"

namespace sluice::cli {
namespace {

using namespace std::chrono_literals;
using testing::ReadFile;
using testing::RunCommand;
using testing::Subprocess;
using testing::TempDir;
using testing::TestBytes;
using testing::WriteFile;

class LocalProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = TestBytes(3 << 20, 42);
    WriteFile(dir_.path() + "/ufs/train/shard-0.bin", data_);
    WriteFile(dir_.path() + "/ufs/train/label.txt", "cat\n");
    env_ = {{"SLUICE_HOME", dir_.path() + "/home"}};
    Start();
  }
  void TearDown() override {
    if (local_) local_->Stop(SIGTERM);
  }

  void Start() {
    auto p = Subprocess::Start({SLUICE_BINARY, "local", "--ufs", "file://" + dir_.path() + "/ufs", "--rpc-port", "0",
                                "--http-port", "0", "--memory-size", "1MiB", "--cache-dir",
                                dir_.path() + "/cache", "--cache-size", "1GiB"},
                               env_, dir_.path() + "/local.log");
    ASSERT_TRUE(p.ok());
    local_ = std::move(p).value();
    std::string out;
    ASSERT_TRUE(testing::WaitFor([&] { return Run({"report"}, &out) == 0; }, 20s))
        << out << ReadFile(dir_.path() + "/local.log");
  }

  int Run(const std::vector<std::string>& args, std::string* out) {
    std::vector<std::string> argv{SLUICE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, out, env_);
  }

  std::vector<std::string> PageFiles() {
    std::vector<std::string> out;
    for (auto& e : std::filesystem::recursive_directory_iterator(dir_.path() + "/cache/pages")) {
      if (e.is_regular_file()) out.push_back(e.path().string());
    }
    return out;
  }

  TempDir dir_;
  std::string data_;
  std::map<std::string, std::string> env_;
  std::unique_ptr<Subprocess> local_;
};

TEST_F(LocalProcessTest, ReadsLoadsAndReports) {
  std::string out;
  ASSERT_EQ(Run({"fs", "ls", "/train"}, &out), 0) << out;
  EXPECT_EQ(out, "label.txt\nshard-0.bin\n");
  ASSERT_EQ(Run({"fs", "cat", "/train/label.txt"}, &out), 0);
  EXPECT_EQ(out, "cat\n");
  ASSERT_EQ(Run({"load", "/train", "--progress"}, &out), 0) << out;
  EXPECT_NE(out.find("load load-1 done: 2 files, 3.00 MiB"), std::string::npos) << out;
  EXPECT_NE(out.find("[##############################] 2/2 files"), std::string::npos) << out;
  ASSERT_EQ(Run({"fs", "check-cached", "/train"}, &out), 0);
  EXPECT_NE(out.find("2 files, 3.00 MiB of 3.00 MiB cached (100.0%)"), std::string::npos) << out;
  ASSERT_EQ(Run({"fs", "cp", "/train/shard-0.bin", dir_.path() + "/copy.bin"}, &out), 0) << out;
  EXPECT_TRUE(ReadFile(dir_.path() + "/copy.bin") == data_);
  ASSERT_EQ(Run({"report"}, &out), 0);
  EXPECT_NE(out.find("page hit ratio"), std::string::npos) << out;
  EXPECT_NE(out.find("3.00 MiB read"), std::string::npos) << out;  // the under-store gave each byte once
  EXPECT_EQ(Run({"fs", "cat", "/train/missing"}, &out), 1);
  EXPECT_NE(out.find("mount / (file://"), std::string::npos) << out;
  EXPECT_EQ(Run({"fs", "ls", "/../etc"}, &out), 2);
  ASSERT_EQ(Run({"mount", "list"}, &out), 0);
  EXPECT_NE(out.find("/ -> file://" + dir_.path() + "/ufs (read-only"), std::string::npos) << out;
}

TEST_F(LocalProcessTest, AnOptionTheStoreDoesNotKnowStopsAtOnce) {
  // Exit 2 with the store's message, before the mount table changes: the running instance
  // in this SLUICE_HOME keeps serving its dataset.
  for (const auto& [uri, option] : std::vector<std::pair<std::string, std::string>>{
           {"s3://bucket/prefix", "storage_class=x"}, {"s3://bucket", "endpint=http://127.0.0.1:1"},
           {"file://" + dir_.path() + "/ufs", "region=x"}}) {
    std::string out;
    EXPECT_EQ(Run({"local", "--ufs", uri, "-o", option, "--rpc-port", "0", "--http-port", "0"}, &out), 2) << out;
    EXPECT_NE(out.find("unknown"), std::string::npos) << out;
    EXPECT_NE(out.find(option.substr(0, option.find('='))), std::string::npos) << out;
  }
  std::string out;
  ASSERT_EQ(Run({"fs", "cat", "/train/label.txt"}, &out), 0) << out;
  EXPECT_EQ(out, "cat\n");
}

TEST_F(LocalProcessTest, ASecondInstanceInOneHomeIsRefusedAndTheFirstKeepsServing) {
  WriteFile(dir_.path() + "/other/x.txt", "other");
  for (std::vector<std::string> args : {std::vector<std::string>{"--ufs", "file://" + dir_.path() + "/other"},
                                        std::vector<std::string>{}}) {
    std::vector<std::string> argv{"local", "--rpc-port", "0", "--http-port", "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out;
    EXPECT_EQ(Run(argv, &out), 2) << out;
    EXPECT_NE(out.find("already serves " + dir_.path() + "/home"), std::string::npos) << out;
  }
  std::string out;
  ASSERT_EQ(Run({"fs", "cat", "/train/label.txt"}, &out), 0) << out;
  EXPECT_EQ(out, "cat\n");
}

TEST_F(LocalProcessTest, AStoreThatCannotServeStopsLocalWithTheReason) {
  env_["SLUICE_HOME"] = dir_.path() + "/another-home";  // no worker runs there
  for (const auto& [args, reason] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--ufs", "file://" + dir_.path() + "/missing"}, "cannot serve file://"},
           {{"--ufs", "gs://bucket/x"}, "unknown scheme 'gs'"},
           {{"--ufs", "s3://bucket", "-o", "endpoint=http://127.0.0.1:1", "-o", "access_key=a", "-o", "secret_key=b"},
            "cannot serve s3://bucket"}}) {
    std::vector<std::string> argv{"local", "--rpc-port", "0", "--http-port", "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out;
    EXPECT_EQ(Run(argv, &out), 2) << out;
    EXPECT_NE(out.find(reason), std::string::npos) << out;
    EXPECT_EQ(out.find("serving"), std::string::npos) << out;
  }
}

TEST_F(LocalProcessTest, SurvivesSigkillWithTheCacheIntact) {
  std::string out;
  ASSERT_EQ(Run({"load", "/train", "--wait"}, &out), 0) << out;
  // Loaded pages reach the disk once reads go quiet; then a kill -9 loses nothing.
  ASSERT_TRUE(testing::WaitFor(
      [&] { return Run({"report"}, &out) == 0 && out.find("not on disk yet") == std::string::npos; }, 20s))
      << out;
  ASSERT_TRUE(testing::WaitFor([&] { return PageFiles().size() == 4; }, 20s));  // 3 MiB in 1 MiB pages + label
  local_->Stop(SIGKILL);
  local_.reset();
  Start();
  ASSERT_EQ(Run({"fs", "check-cached", "/train"}, &out), 0);
  EXPECT_NE(out.find("3.00 MiB of 3.00 MiB cached (100.0%)"), std::string::npos) << out;
  ASSERT_EQ(Run({"fs", "cat", "/train/shard-0.bin"}, &out), 0);
  EXPECT_TRUE(out == data_);
  ASSERT_EQ(Run({"report"}, &out), 0);
  EXPECT_NE(out.find("0 B read"), std::string::npos) << out;  // all from the surviving cache
}

// A read keeps its pages in memory first; they reach the disk tier once reads go quiet, and
// the report says what is still only in memory.
TEST_F(LocalProcessTest, ReadPagesReachTheDiskOnceReadsGoQuiet) {
  std::string out;
  ASSERT_EQ(Run({"fs", "cat", "/train/shard-0.bin"}, &out), 0);
  EXPECT_TRUE(out == data_);
  ASSERT_TRUE(testing::WaitFor(
      [&] { return Run({"report"}, &out) == 0 && out.find("not on disk yet") == std::string::npos; }, 20s))
      << out;
  // The last page may still be on its way to the file system.
  EXPECT_TRUE(testing::WaitFor([&] { return PageFiles().size() == 3; }, 20s));  // 3 MiB in 1 MiB pages
}

TEST_F(LocalProcessTest, CorruptPageFilesAreNeverServed) {
  std::string out;
  ASSERT_EQ(Run({"load", "/train", "--wait"}, &out), 0) << out;
  local_->Stop(SIGTERM);
  local_.reset();
  auto pages = PageFiles();
  ASSERT_EQ(pages.size(), 4u);  // 3 MiB in 1 MiB pages, and the label
  for (const auto& p : pages) {
    if (std::filesystem::file_size(p) < 1000) continue;
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5000);
    f.put('\x7f');  // flip bytes in every big page...
  }
  std::filesystem::resize_file(pages[0], 10);  // ...and truncate one
  Start();
  ASSERT_EQ(Run({"fs", "cat", "/train/shard-0.bin"}, &out), 0);
  EXPECT_TRUE(out == data_);  // refetched from the under-store
  ASSERT_EQ(Run({"fs", "cat", "/train/label.txt"}, &out), 0);
  EXPECT_EQ(out, "cat\n");
  ASSERT_EQ(Run({"report"}, &out), 0);
  EXPECT_TRUE(out.find("3 corrupt pages dropped") != std::string::npos ||
              out.find("4 corrupt pages dropped") != std::string::npos)
      << out;
}

// `fs ls` prints a name with a newline or a terminal escape as one quoted line, as GNU ls
// --quoting-style=shell-escape does; plain names as they are.
TEST_F(LocalProcessTest, LsQuotesNamesThatWouldForgeLinesOrDriveTheTerminal) {
  WriteFile(dir_.path() + "/ufs/odd/a\nb", "x");
  WriteFile(dir_.path() + "/ufs/odd/\x1b[2Jclear", "x");
  WriteFile(dir_.path() + "/ufs/odd/plain.txt", "x");
  WriteFile(dir_.path() + "/ufs/odd/sub dir/x", "x");
  std::string out;
  ASSERT_EQ(Run({"fs", "ls", "/odd"}, &out), 0) << out;
  EXPECT_EQ(out, "''$'\\033''[2Jclear'\n'a'$'\\n''b'\nplain.txt\n'sub dir'/\n");
  ASSERT_EQ(Run({"fs", "ls", "-l", "/odd"}, &out), 0) << out;
  EXPECT_NE(out.find("  'a'$'\\n''b'\n"), std::string::npos) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
}

TEST_F(LocalProcessTest, WrongSecretIsRefused) {
  WriteFile(dir_.path() + "/bad.yaml", "cluster: {dir: " + dir_.path() + "/home, secret: not-it}\n");
  std::string out;
  EXPECT_EQ(Run({"fs", "ls", "/", "--config", dir_.path() + "/bad.yaml"}, &out), 1);
  EXPECT_NE(out.find("wrong cluster secret"), std::string::npos) << out;
}

TEST_F(LocalProcessTest, SigtermStopsCleanlyAndUnregisters) {
  int status = local_->Stop(SIGTERM);
  local_.reset();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::string out;
  EXPECT_EQ(Run({"fs", "ls", "/"}, &out), 1);
  EXPECT_NE(out.find("no running sluice worker found"), std::string::npos) << out;
  EXPECT_NE(out.find("SLUICE_HOME"), std::string::npos) << out;
}

TEST_F(LocalProcessTest, FirstHourDetails) {
  std::string out;
  // Global options after the subcommand too, and a log file.
  EXPECT_EQ(Run({"report", "--log-level", "debug"}, &out), 0) << out;
  EXPECT_EQ(Run({"fs", "ls", "/", "--log-file", dir_.path() + "/cli.log"}, &out), 0) << out;
  // A memory tier larger than the machine is refused at start, before anything changes: the
  // running instance keeps serving its mount.
  WriteFile(dir_.path() + "/other/x.txt", "other");
  EXPECT_EQ(Run({"local", "--ufs", "file://" + dir_.path() + "/other", "--memory-size", "4096GiB", "--rpc-port", "0",
                 "--http-port", "0"},
                &out),
            2)
      << out;
  EXPECT_NE(out.find("the memory tier (4.00 TiB, --memory-size or worker.memory_quota) is larger than this machine's "
                     "memory ("),
            std::string::npos)
      << out;
  ASSERT_EQ(Run({"mount", "list"}, &out), 0) << out;
  EXPECT_NE(out.find("/ -> file://" + dir_.path() + "/ufs "), std::string::npos) << out;
  // Removing a mount says what it removed, and that the running worker stops serving it.
  WriteFile(dir_.path() + "/extra/e.txt", "e");
  ASSERT_EQ(Run({"mount", "add", "/extra", "file://" + dir_.path() + "/extra"}, &out), 0) << out;
  ASSERT_EQ(Run({"mount", "remove", "/extra"}, &out), 0) << out;
  EXPECT_NE(out.find("removed /extra -> file://"), std::string::npos) << out;
  EXPECT_NE(out.find("no longer serves it"), std::string::npos) << out;
  // More replicas than workers: said, not pretended.
  ASSERT_EQ(Run({"load", "/train", "--replicas", "2", "--wait"}, &out), 0) << out;
  EXPECT_NE(out.find("note: --replicas 2, but this cluster has one worker"), std::string::npos) << out;
  // --cache-size with a config file keeps the configured cache directory.
  WriteFile(dir_.path() + "/cfg.yaml", "worker:\n  disks: [{dir: " + dir_.path() + "/configured-cache, quota: 1GiB}]\n");
  {
    auto second = Subprocess::Start({SLUICE_BINARY, "local", "--ufs", "file://" + dir_.path() + "/ufs", "--config",
                                     dir_.path() + "/cfg.yaml", "--cache-size", "2GiB", "--memory-size", "1MiB",
                                     "--rpc-port", "0", "--http-port", "0"},
                                    {{"SLUICE_HOME", dir_.path() + "/home3"}}, dir_.path() + "/second.log");
    ASSERT_TRUE(second.ok());
    EXPECT_TRUE(testing::WaitFor(
        [&] { return ReadFile(dir_.path() + "/second.log").find("2.00 GiB in " + dir_.path() + "/configured-cache") !=
                     std::string::npos; },
        20s))
        << ReadFile(dir_.path() + "/second.log");
  }
  // `fs cp -R` copies a tree; without -R a directory is refused.
  EXPECT_EQ(Run({"fs", "cp", "/train", dir_.path() + "/copy"}, &out), 2) << out;
  EXPECT_NE(out.find("is a directory (copy a tree with -R)"), std::string::npos) << out;
  ASSERT_EQ(Run({"fs", "cp", "-R", "/train", dir_.path() + "/copy"}, &out), 0) << out;
  EXPECT_EQ(ReadFile(dir_.path() + "/copy/label.txt"), "cat\n");
  EXPECT_TRUE(ReadFile(dir_.path() + "/copy/shard-0.bin") == data_);
  // Without a job id, `load status` lists the jobs the worker keeps.
  ASSERT_EQ(Run({"load", "status"}, &out), 0) << out;
  EXPECT_NE(out.find("load load-1 done: 2 files"), std::string::npos) << out;
}

}  // namespace
}  // namespace sluice::cli
