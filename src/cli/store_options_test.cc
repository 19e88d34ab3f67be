// ParseStoreOptions: KEY=VALUE splitting, secrets read from files, and the warnings.
#include "cli/store_options.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "support/test_support.h"

namespace sluice::cli {
namespace {

using testing::TempDir;
using testing::WriteFile;

TEST(StoreOptionsTest, ASecretFileStandsForTheSecret) {
  TempDir dir;
  WriteFile(dir.path() + "/secret", "  s3cr3t/With+Chars \r\nsecond line ignored\n");
  ::chmod((dir.path() + "/secret").c_str(), 0600);
  WriteFile(dir.path() + "/token", "tok");
  ::chmod((dir.path() + "/token").c_str(), 0400);
  auto parsed =
      ParseStoreOptions({"endpoint=http://h:1/x=y", "access_key=AK", "secret_key_file=" + dir.path() + "/secret",
                         "session_token_file=" + dir.path() + "/token"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  using Options = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(parsed->options, (Options{{"endpoint", "http://h:1/x=y"},
                                      {"access_key", "AK"},
                                      {"secret_key", "s3cr3t/With+Chars"},
                                      {"session_token", "tok"}}));
  EXPECT_TRUE(parsed->warnings.empty());
}

TEST(StoreOptionsTest, ASecretOnTheCommandLineIsAcceptedWithAWarning) {
  auto parsed = ParseStoreOptions({"access_key=AK", "secret_key=plain"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->options.back(), (std::pair<std::string, std::string>{"secret_key", "plain"}));
  ASSERT_EQ(parsed->warnings.size(), 1u);
  EXPECT_EQ(parsed->warnings[0],
            "warning: -o secret_key=... is visible to every user of this machine in `ps`; use -o "
            "secret_key_file=PATH or the environment variable AWS_SECRET_ACCESS_KEY instead");
}

TEST(StoreOptionsTest, BadSecretFilesAndMalformedOptionsAreRefused) {
  TempDir dir;
  auto refused = [](const std::vector<std::string>& args, const std::string& fragment) {
    auto parsed = ParseStoreOptions(args);
    ASSERT_FALSE(parsed.ok()) << fragment;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(fragment), std::string::npos) << parsed.status().message();
  };
  refused({"secret_key_file=" + dir.path() + "/missing"},
          "-o secret_key_file=" + dir.path() + "/missing: cannot read it: No such file or directory");
  refused({"secret_key_file=" + dir.path()}, "is a directory, not a file holding the secret");
  WriteFile(dir.path() + "/empty", "\n");
  refused({"secret_key_file=" + dir.path() + "/empty"}, "the file is empty");
  WriteFile(dir.path() + "/secret", "x\n");
  refused({"secret_key=a", "secret_key_file=" + dir.path() + "/secret"}, "-o secret_key is given twice");
  refused({"endpoint"}, "option 'endpoint' is not KEY=VALUE");
  refused({"=x"}, "option '=x' is not KEY=VALUE");
}

TEST(StoreOptionsTest, ASecretFileOthersCanReadIsWarnedAbout) {
  TempDir dir;
  WriteFile(dir.path() + "/secret", "x\n");
  ::chmod((dir.path() + "/secret").c_str(), 0644);
  auto parsed = ParseStoreOptions({"secret_key_file=" + dir.path() + "/secret"});
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->warnings.size(), 1u);
  EXPECT_NE(parsed->warnings[0].find("is readable by other users (mode 0644)"), std::string::npos)
      << parsed->warnings[0];
}

}  // namespace
}  // namespace sluice::cli
