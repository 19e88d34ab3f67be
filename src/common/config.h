// Typed configuration for every sluice process, read from YAML. Every key has a default, so an
// empty file is valid. Validation is strict: an unknown key, a wrong type or an out-of-range
// value is an error naming the file and the dotted key ("sluice.yaml: worker.page_size: ...").
// Config is a plain value; loading is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice {

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error, off
  std::string file;            // empty: stderr
};

struct ClusterConfig {
  std::string store = "file";  // "file" (a directory) or "etcd"
  std::string dir;             // file store directory; empty: $SLUICE_HOME or /var/lib/sluice
  std::string secret;          // shared secret that authenticates RPC connections
};

struct DiskTierConfig {
  std::string dir;
  uint64_t quota = 0;  // bytes
};

struct WorkerConfig {
  std::string host = "127.0.0.1";
  int64_t rpc_port = 29990;
  int64_t http_port = 29991;
  uint64_t page_size = 1 << 20;
  uint64_t memory_quota = 1ull << 30;
  std::vector<DiskTierConfig> disks;
  std::string cache_policy = "lru";  // "lru", or "stable" for epoch scans larger than the cache
};

// Under-store client behaviour (retries, timeouts, multipart). Applies to every mount.
struct UfsConfig {
  int64_t max_attempts = 5;  // total tries of one request, including the first
  std::chrono::nanoseconds retry_base_delay = std::chrono::milliseconds(100);
  std::chrono::nanoseconds retry_max_delay = std::chrono::seconds(5);
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(5);
  std::chrono::nanoseconds request_timeout = std::chrono::seconds(60);  // no progress for this long
  uint64_t multipart_threshold = 64ull << 20;  // writes at least this large use multipart upload
  uint64_t multipart_part_size = 16ull << 20;
};

// How clients (CLI, FUSE, Python) read.
struct ClientConfig {
  bool fallback_to_ufs = true;  // read the under-store directly when the worker is unreachable
  bool short_circuit = true;    // on the worker's host, read its page files directly
  uint64_t readahead_per_handle = 128ull << 20;
  uint64_t readahead_total = 256ull << 20;
  // FUSE opens files at least this large with direct I/O, bypassing the kernel's page cache
  // (faster for large sequential reads; a file read in small pieces goes back to the page
  // cache on its next open). 0: never.
  uint64_t direct_io_min_size = 64ull << 20;
};

struct Config {
  LogConfig log;
  ClientConfig client;
  ClusterConfig cluster;
  WorkerConfig worker;
  UfsConfig ufs;
};

// Parses YAML text; `source` names it in errors (usually the file path).
Result<Config> ParseConfig(const std::string& yaml_text, const std::string& source);

// Reads and parses a file.
Result<Config> LoadConfigFile(const std::string& path);

}  // namespace sluice
