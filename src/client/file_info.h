// FileInfo: a file or directory as clients see it (path under the sluice namespace, size,
// modification time, and the version that keys its cached pages).
#pragma once

#include <cstdint>
#include <string>

namespace sluice::client {

struct FileInfo {
  std::string path;
  bool is_dir = false;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string version;  // ufs::ObjectInfo::Version() of a file; "" for a directory
};

}  // namespace sluice::client
