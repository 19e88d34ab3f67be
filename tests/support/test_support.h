// Helpers for sluice's integration tests: private temp directories, child processes stopped
// by pid, bounded waits, deterministic test data, and the real servers the tests run against
// (Ceph RGW as S3, and a Python HTTP server/proxy with fault injection). Every instance picks
// its own ports and directories, so two test runs can share a machine. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/status.h"

namespace sluice::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A child process. The destructor SIGKILLs it if still running and reaps it.
class Subprocess {
 public:
  // Starts argv[0] (searched in PATH) with extra environment variables; stdout and stderr go
  // to `log_file` (appended) when given, else are inherited.
  static Result<std::unique_ptr<Subprocess>> Start(const std::vector<std::string>& argv,
                                                   const std::map<std::string, std::string>& env = {},
                                                   const std::string& log_file = "");
  ~Subprocess();
  pid_t pid() const { return pid_; }
  // Sends `signal` and waits for the exit; returns the wait status.
  int Stop(int signal = 15);
  // Waits up to `timeout` for the process to exit by itself; true when it did.
  bool WaitExit(std::chrono::milliseconds timeout, int* wait_status = nullptr);

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  bool reaped_ = false;
};

// Runs a command to completion; returns its exit code (or -1), with output in *output.
int RunCommand(const std::vector<std::string>& argv, std::string* output,
               const std::map<std::string, std::string>& env = {});

// Polls `condition` every 10 ms until it holds or `timeout` passes; returns the last result.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// Deterministic pseudo-random bytes.
std::string TestBytes(size_t n, uint64_t seed);

// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
int UnusedPort();

std::string ReadFile(const std::string& path);
// Whether something is mounted at `dir` (this process's /proc/self/mountinfo).
bool IsMounted(const std::string& dir);
void WriteFile(const std::string& path, const std::string& data);
// Overwrites `path` in place with `data` (same inode, same size), then sets its mtime back:
// what a careless writer does, and what an mtime+size version cannot see.
void RewriteInPlaceKeepingMtime(const std::string& path, const std::string& data);

// A throwaway Ceph RADOS Gateway on loopback (tests/fixtures/radosgw.sh): the reference S3
// server, which verifies SigV4. Stopped, by pid, on destruction or if this process dies.
class RgwServer {
 public:
  static Result<std::unique_ptr<RgwServer>> Start(const std::vector<std::string>& buckets);
  ~RgwServer();
  const std::string& endpoint() const { return endpoint_; }  // http://127.0.0.1:PORT
  const std::string& access_key() const { return access_key_; }
  const std::string& secret_key() const { return secret_key_; }

 private:
  RgwServer() = default;
  std::unique_ptr<TempDir> parent_;
  std::string dir_;
  std::string endpoint_, access_key_, secret_key_;
};

// A gtest Environment that holds one RgwServer for a whole test binary (RGW takes seconds to
// start): register it in main(), then reach the server with RgwEnvironment::server().
class RgwEnvironment : public ::testing::Environment {
 public:
  explicit RgwEnvironment(std::vector<std::string> buckets) : buckets_(std::move(buckets)) {}
  void SetUp() override;
  void TearDown() override;
  // The running server; nullptr if it failed to start (SetUp reported why).
  static RgwServer* server();

 private:
  std::vector<std::string> buckets_;
  std::unique_ptr<RgwServer> server_;
};

// tests/fixtures/http_server.py: a static file server (with Range, ETags and index pages) able
// to inject faults on request.
class FaultyHttpServer {
 public:
  // `etags` false: no ETag header, as python's http.server (versions are mtime and size).
  static Result<std::unique_ptr<FaultyHttpServer>> Serve(const std::string& root_dir, bool etags = true);
  // Serves HTTPS with a fresh self-signed certificate for 127.0.0.1, saved as ca_file().
  static Result<std::unique_ptr<FaultyHttpServer>> ServeTls(const std::string& root_dir);
  int port() const { return port_; }
  std::string url() const { return (tls_ ? "https" : "http") + std::string("://127.0.0.1:") + std::to_string(port_); }
  std::string ca_file() const { return dir_->path() + "/cert.pem"; }
  // Faults for the next requests, one per request: "503 slowdown reset reset-mid-body 403 ok".
  Status SetFaults(const std::string& plan);
  // Normal (non-control) requests seen since start or the last ResetStats().
  Result<int> RequestCount();
  Status ResetStats();

 private:
  static Result<std::unique_ptr<FaultyHttpServer>> Launch(const std::vector<std::string>& args,
                                                          std::unique_ptr<TempDir> dir = nullptr);
  std::unique_ptr<TempDir> dir_;
  bool tls_ = false;
  std::unique_ptr<Subprocess> process_;
  int port_ = 0;
};

// tests/fixtures/fault_proxy.cc between a client and an HTTP or S3 server: first-byte latency,
// bandwidth, error and reset rates, an outage switch and planned faults, all changeable while
// it runs, and request counters by kind. Requests pass through unchanged (SigV4 verifies).
class FaultProxy {
 public:
  static Result<std::unique_ptr<FaultProxy>> Start(const std::string& upstream_url);
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Changes settings, as "latency_ms=20&jitter_ms=2&error_rate=0.3&reset_rate=0.05&outage=1".
  Status Set(const std::string& settings);
  // Faults for the next requests, one each, in order: "503 slowdown 500 403 reset reset-mid-body ok".
  Status SetFaults(const std::string& plan);
  // Counters since start or ResetStats(): requests, GET (not LIST), HEAD, LIST, PUT, POST,
  // DELETE, errors, resets, outage, in_flight, in_flight_max.
  Result<std::map<std::string, uint64_t>> Stats();
  Result<int> RequestCount();
  Status ResetStats();

 private:
  FaultProxy() = default;
  Result<std::string> Control(const std::string& request);
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Subprocess> process_;
  int port_ = 0;
};

}  // namespace sluice::testing
