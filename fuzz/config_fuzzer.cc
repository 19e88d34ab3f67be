// Fuzzes the YAML config loader (common/config.h) through ParseConfig, the text entry point
// LoadConfigFile uses. Beyond not crashing (yaml-cpp's exceptions must not escape): errors are
// kInvalidArgument naming the source, and an accepted config holds only values its keys allow.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "check.h"
#include "common/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string source = "fuzz.yaml";
  auto cfg = sluice::ParseConfig(std::string(reinterpret_cast<const char*>(data), size), source);
  if (!cfg.ok()) {
    FUZZ_CHECK(cfg.status().code() == sluice::StatusCode::kInvalidArgument, "unexpected error code");
    FUZZ_CHECK(cfg.status().message().rfind(source + ": ", 0) == 0, "error does not name the source: %s",
               cfg.status().message().c_str());
    return 0;
  }
  const auto& w = cfg->worker;
  FUZZ_CHECK(w.rpc_port >= 0 && w.rpc_port <= 65535 && w.http_port >= 0 && w.http_port <= 65535, "port range");
  FUZZ_CHECK(w.page_size >= 4096 && w.page_size <= (64ull << 20), "page_size %llu",
             static_cast<unsigned long long>(w.page_size));
  FUZZ_CHECK(w.cache_policy == "lru" || w.cache_policy == "stable", "cache_policy '%s'", w.cache_policy.c_str());
  for (const auto& disk : w.disks) FUZZ_CHECK(!disk.dir.empty() && disk.quota > 0, "disk without dir or quota");
  const auto& u = cfg->ufs;
  FUZZ_CHECK(u.max_attempts >= 1 && u.max_attempts <= 100, "max_attempts %lld", static_cast<long long>(u.max_attempts));
  FUZZ_CHECK(u.retry_base_delay.count() >= 0 && u.retry_max_delay >= u.retry_base_delay, "retry delays");
  FUZZ_CHECK(u.connect_timeout >= std::chrono::milliseconds(1) && u.request_timeout >= std::chrono::milliseconds(1),
             "timeouts");
  FUZZ_CHECK(u.multipart_part_size >= (5ull << 20), "multipart_part_size");
  const std::string& level = cfg->log.level;
  FUZZ_CHECK(
      level == "trace" || level == "debug" || level == "info" || level == "warn" || level == "error" || level == "off",
      "log.level '%s'", level.c_str());
  FUZZ_CHECK(cfg->cluster.store == "file" || cfg->cluster.store == "etcd", "cluster.store");
  return 0;
}
