// Tests for YAML configuration: defaults, typed values, and errors that name file and key.
#include "common/config.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(ConfigTest, EmptyGivesDefaults) {
  auto cfg = ParseConfig("", "empty.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->worker.page_size, 1u << 20);
  EXPECT_EQ(cfg->ufs.max_attempts, 5);
  EXPECT_EQ(cfg->log.level, "info");
}

TEST(ConfigTest, ParsesTypedValues) {
  auto cfg = ParseConfig(R"(
log: {level: debug}
worker:
  rpc_port: 4000
  page_size: 256KiB
  memory_quota: 2GiB
  disks:
    - {dir: /mnt/a, quota: 10GiB}
    - {dir: /mnt/b, quota: 500MB}
ufs:
  max_attempts: 3
  retry_base_delay: 50ms
  request_timeout: 2m
client: {direct_io_min_size: 0}
)",
                         "sluice.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->log.level, "debug");
  EXPECT_EQ(cfg->worker.rpc_port, 4000);
  EXPECT_EQ(cfg->worker.page_size, 256u << 10);
  EXPECT_EQ(cfg->worker.memory_quota, 2ull << 30);
  ASSERT_EQ(cfg->worker.disks.size(), 2u);
  EXPECT_EQ(cfg->worker.disks[1].dir, "/mnt/b");
  EXPECT_EQ(cfg->worker.disks[1].quota, 500000000u);
  EXPECT_EQ(cfg->ufs.retry_base_delay, std::chrono::milliseconds(50));
  EXPECT_EQ(cfg->ufs.request_timeout, std::chrono::minutes(2));
  EXPECT_EQ(cfg->client.direct_io_min_size, 0u);
}

void ExpectError(const std::string& yaml, const std::string& fragment) {
  auto cfg = ParseConfig(yaml, "bad.yaml");
  ASSERT_FALSE(cfg.ok()) << yaml;
  EXPECT_EQ(cfg.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(cfg.status().message().find("bad.yaml: "), std::string::npos) << cfg.status().message();
  EXPECT_NE(cfg.status().message().find(fragment), std::string::npos) << cfg.status().message();
}

TEST(ConfigTest, ErrorsNameFileAndKey) {
  ExpectError("wroker: {}", "wroker: unknown key");
  ExpectError("worker: {page_sise: 1MiB}", "worker.page_sise: unknown key");
  ExpectError("worker: {rpc_port: many}", "worker.rpc_port: expected an integer");
  ExpectError("worker: {rpc_port: 70000}", "worker.rpc_port: 70000 is out of range");
  ExpectError("worker: {page_size: 1KiB}", "worker.page_size:");
  ExpectError("worker: {page_size: lots}", "worker.page_size: 'lots' is not a size");
  ExpectError("ufs: {max_attempts: 0}", "ufs.max_attempts: 0 is out of range");
  ExpectError("ufs: {request_timeout: soon}", "ufs.request_timeout: 'soon' is not a duration");
  ExpectError("log: {level: loud}", "log.level: 'loud' is not one of");
  ExpectError("worker: {disks: [{dir: /x}]}", "worker.disks[0].quota: is required");
  ExpectError("worker: {disks: [{dir: /x, quota: 1GiB, speed: 3}]}", "worker.disks[0].speed: unknown key");
  ExpectError("worker: [1, 2]", "worker: expected a mapping");
  ExpectError("client: {short_circuit: perhaps}", "client.short_circuit: expected true or false");
  ExpectError("worker: {rpc_port: [1}", "line 1");
}

TEST(ConfigTest, MissingFile) {
  auto cfg = LoadConfigFile("/nonexistent/sluice.yaml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("/nonexistent/sluice.yaml"), std::string::npos);
}

}  // namespace
}  // namespace sluice
