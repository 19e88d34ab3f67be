// Typed configuration for every sluice process, read from YAML. Every key has a default, so an
// empty file is valid. Validation is strict: an unknown or repeated key, a wrong type, an
// out-of-range value or settings that contradict each other are errors naming the file and the
// dotted key ("sluice.yaml: worker.page_size: ..."). Command-line flags that stand for a key go
// through the same checks (SetConfigValue, ValidateConfig) and are named in their errors.
// Config is a plain value; loading is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice {

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error, off
  std::string file;            // empty: stderr
};

struct ClusterConfig {
  // "file" (the directory `dir`), "file:DIR", or "etcd://HOST:PORT[,HOST:PORT...]".
  std::string store = "file";
  std::string dir;             // file store directory; empty: $SLUICE_HOME or /var/lib/sluice
  std::string secret;          // shared secret that authenticates RPC connections
  std::string secret_file;     // or a file holding it
  // etcd: a worker that stops renewing its registration drops out after this long.
  std::chrono::nanoseconds lease_ttl = std::chrono::seconds(10);
  uint64_t placement_span = 64ull << 20;  // files above it are placed span by span

  // A static cluster without etcd: every worker's "host:rpc_port" (the file store in `dir`
  // keeps the mounts, so it must be shared, or the same, on every machine).
  std::vector<std::string> workers;

  // The etcd endpoints ("host:port") when `store` names etcd, else empty.
  std::vector<std::string> EtcdEndpoints() const;
  // Whether requests are spread over several workers: etcd, or a static list.
  bool Distributed() const { return !EtcdEndpoints().empty() || !workers.empty(); }
};

struct DiskTierConfig {
  std::string dir;
  uint64_t quota = 0;              // bytes
  uint64_t reserve = 64ull << 20;  // keep this much free on the directory's file system
};

struct WorkerConfig {
  // The name placement hashes; keep it across restarts so the worker keeps its keys. Empty:
  // HOST:RPC_PORT with etcd, worker-PID with the file store.
  std::string id;
  std::string zone;
  std::string host = "127.0.0.1";  // the address it listens on and that others reach it at
  int64_t rpc_port = 29990;            // 0: any free port (the worker registers the one it got)
  int64_t http_port = 29991;           // 0: any free port
  uint64_t page_size = 1 << 20;        // a power of two, 4 KiB .. 64 MiB
  uint64_t memory_quota = 1ull << 30;  // at least one page; 0: no memory tier (needs a disk tier)
  std::vector<DiskTierConfig> disks;
  std::string cache_policy = "lru";  // "lru", or "stable" for epoch scans larger than the cache
  // Memory for each mount's metadata cache (stats and packed listings, ~80-150 bytes per
  // listed entry); beyond it, listings are read back from the index on the first disk tier.
  uint64_t metadata_memory = 256ull << 20;
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
  // FUSE files carry user.sluice.cached / user.sluice.version. Off by default: with extended
  // attributes on, every getxattr is a round trip to sluice, and `ls -l` asks two per file
  // (security.selinux, system.posix_acl_access); off, the kernel answers them itself.
  bool xattrs = false;
  // `sluice fuse` answers lookups of names it listed from the listing pages, held for the
  // attribute timeout within this bound (about 60 bytes per entry). 0: off.
  uint64_t metadata_memory = 64ull << 20;
};

// The worker's RPC and HTTP ports against careless or hostile clients.
struct RpcConfig {
  std::chrono::nanoseconds handshake_timeout = std::chrono::seconds(10);  // connect to HELLO
  std::chrono::nanoseconds idle_timeout = std::chrono::minutes(10);       // no request: closed
  std::chrono::nanoseconds io_timeout = std::chrono::seconds(30);  // a frame's bytes, a reply taken
  int64_t max_connections = 1024;             // RPC connections open at once; beyond: refused
  int64_t max_http_connections = 256;         // the same for the HTTP port
  uint64_t max_buffered_bytes = 256ull << 20;  // request and unsent reply bytes, all connections
  int64_t handler_threads = 64;                // requests handled at once (a miss holds one for a round trip to the store)
};

// One key pair the S3 gateway accepts.
struct GatewayCredentialConfig {
  std::string access_key;
  std::string secret_key;
  std::vector<std::string> buckets;  // the buckets it may read; empty: all
};

// The S3 gateway (`sluice local --s3-port`, `sluice gateway`, or inside `sluice worker`).
struct GatewayConfig {
  int64_t port = -1;               // -1: no gateway; 0: any free port
  std::string bucket = "sluice";   // with a mount at "/", the one bucket, which is the root
  std::string region = "us-east-1";
  std::vector<GatewayCredentialConfig> credentials;  // none: `sluice local` makes a pair
  bool anonymous = false;          // unsigned requests may read
  int64_t max_connections = 512;   // beyond: 503 SlowDown
  int64_t threads = 16;            // requests served at once
  std::chrono::nanoseconds io_timeout = std::chrono::seconds(30);    // a request head, a reply chunk
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(60);  // between kept-alive requests
};

struct Config {
  LogConfig log;
  GatewayConfig gateway;
  RpcConfig rpc;
  ClientConfig client;
  ClusterConfig cluster;
  WorkerConfig worker;
  UfsConfig ufs;
};

// Parses YAML text; `source` names it in errors (usually the file path).
Result<Config> ParseConfig(const std::string& yaml_text, const std::string& source);

// Reads and parses a file.
Result<Config> LoadConfigFile(const std::string& path);

// Sets the dotted `key` (e.g. "worker.rpc_port") from a command-line flag's text, with the type
// and range checks of the config file; errors name `flag` ("--rpc-port: 70000 is out of range
// [0, 65535]"). Run ValidateConfig once all flags are applied.
Status SetConfigValue(Config* cfg, const std::string& key, const std::string& value, const std::string& flag);

// What no single key can check: settings against each other (a memory tier or disk quota
// smaller than one page, a page size that is not a power of two, one port for RPC and HTTP).
// ParseConfig runs it; run it again after command-line flags changed `cfg`. Errors name
// `source` and the key, or, for keys in `flags` (dotted key -> flag, e.g. "worker.memory_quota"
// -> "--memory-size"), the flag that set it.
Status ValidateConfig(const Config& cfg, const std::string& source,
                      const std::map<std::string, std::string>& flags = {});

}  // namespace sluice
