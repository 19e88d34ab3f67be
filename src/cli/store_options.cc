// -o KEY=VALUE parsing, with secrets read from files.
#include "cli/store_options.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>

namespace sluice::cli {
namespace {

struct Secret {
  const char* key;
  const char* env;  // the S3 store's environment variable for it
};
constexpr Secret kSecrets[] = {{"secret_key", "AWS_SECRET_ACCESS_KEY"}, {"session_token", "AWS_SESSION_TOKEN"}};

// The first line of `path`, without its line end or surrounding blanks.
Result<std::string> ReadSecretFile(const std::string& option, const std::string& path, std::string* warning) {
  const std::string what = "-o " + option + "=" + path;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return InvalidArgument(what + ": cannot read it: " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return InvalidArgument(what + ": is a directory, not a file holding the secret");
  std::ifstream in(path);
  std::string line;
  if (!in) return InvalidArgument(what + ": cannot read it: " + std::strerror(errno));
  std::getline(in, line);
  const size_t first = line.find_first_not_of(" \t\r");
  const size_t last = line.find_last_not_of(" \t\r");
  if (first == std::string::npos) {
    return InvalidArgument(what + ": the file is empty (put the secret on its first line)");
  }
  if (st.st_mode & (S_IRGRP | S_IROTH)) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    *warning = "warning: " + path + " (" + option + ") is readable by other users (mode " + mode + "); `chmod 600 " +
               path + "` keeps the secret yours";
  }
  return line.substr(first, last - first + 1);
}

}  // namespace

Result<StoreOptions> ParseStoreOptions(const std::vector<std::string>& key_values) {
  StoreOptions out;
  std::set<std::string> given;
  for (const auto& kv : key_values) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return InvalidArgument("option '" + kv + "' is not KEY=VALUE");
    std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    for (const Secret& secret : kSecrets) {
      const std::string from_file = std::string(secret.key) + "_file";
      if (key == secret.key) {
        out.warnings.push_back("warning: -o " + key + "=... is visible to every user of this machine in `ps`; use -o " +
                               from_file + "=PATH or the environment variable " + secret.env + " instead");
      } else if (key == from_file) {
        std::string warning;
        SLUICE_ASSIGN_OR_RETURN(value, ReadSecretFile(key, value, &warning));
        if (!warning.empty()) out.warnings.push_back(warning);
        key = secret.key;
      } else {
        continue;
      }
      if (!given.insert(key).second) {
        return InvalidArgument("-o " + key + " is given twice (as " + key + " or " + from_file + "); give it once");
      }
    }
    out.options.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

}  // namespace sluice::cli
