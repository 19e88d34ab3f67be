// Store options as given on the command line (-o KEY=VALUE to sluice local, mount add and the
// ufs commands). A secret on the command line is visible to every user of the machine in `ps`,
// so secrets can also come from a file: secret_key_file=PATH and session_token_file=PATH read
// the file (its first line) here and stand for secret_key=... and session_token=....
// (AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, read by the S3 store, are the other way.)
// Pure but for reading those files; thread-safe.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace sluice::cli {

struct StoreOptions {
  std::vector<std::pair<std::string, std::string>> options;  // in the order given, *_file resolved
  std::vector<std::string> warnings;  // for stderr, one line each: a secret given on the command line
};

// Splits each "KEY=VALUE", reads the *_file secrets, and refuses a malformed option, an
// unreadable or empty secret file, and a secret given both ways.
Result<StoreOptions> ParseStoreOptions(const std::vector<std::string>& key_values);

// The -o help text's sentence about secrets.
inline constexpr const char* kSecretOptionsHelp =
    "secret_key=... shows in `ps`: prefer secret_key_file=PATH (session_token_file=PATH too) or the "
    "environment (AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)";

}  // namespace sluice::cli
