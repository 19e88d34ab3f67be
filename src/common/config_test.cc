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
client: {direct_io_min_size: 0, metadata_memory: 1GiB}
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
  EXPECT_EQ(cfg->client.metadata_memory, 1ull << 30);
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

TEST(ConfigTest, RepeatedKeysAreRefusedWithTheirLines) {
  // YAML itself keeps the last of two values silently.
  ExpectError("worker:\n  rpc_port: 1000\n  http_port: 1001\n  rpc_port: 2000\n",
              "line 4: worker.rpc_port: given a second time (first on line 2)");
  ExpectError("log: {level: info}\nlog: {file: /tmp/x.log}\n", "line 2: log: given a second time (first on line 1)");
  ExpectError("worker:\n  disks:\n    - {dir: /a, quota: 1GiB, dir: /b}\n",
              "line 3: worker.disks[0].dir: given a second time");
}

TEST(ConfigTest, SettingsThatCannotWorkAreRefused) {
  ExpectError("worker: {rpc_port: -1}", "worker.rpc_port: -1 is out of range [0, 65535]");
  ExpectError("worker: {http_port: 65536}", "worker.http_port: 65536 is out of range [0, 65535]");
  ExpectError("worker: {rpc_port: 5000, http_port: 5000}", "worker.http_port: 5000 is also the RPC port");
  ExpectError("worker: {page_size: 4097}", "worker.page_size: 4097 bytes is not a power of two");
  ExpectError("worker: {page_size: 3MiB}", "worker.page_size: 3145728 bytes is not a power of two");
  ExpectError("worker: {page_size: 128MiB}", "worker.page_size: 128.0 MiB is out of range");
  ExpectError("worker: {memory_quota: 512KiB}",
              "worker.memory_quota: the memory tier (512.0 KiB) must hold at "
              "least one page (worker.page_size, 1.00 MiB)");
  ExpectError("worker: {memory_quota: 1}", "worker.memory_quota: the memory tier (1 B) must hold at least one page");
  ExpectError("worker: {memory_quota: 0}", "worker.memory_quota: 0 leaves no memory tier, and there is no disk tier");
  EXPECT_TRUE(ParseConfig("worker: {memory_quota: 0, disks: [{dir: /x, quota: 1GiB}]}", "disk-only.yaml").ok());
  ExpectError("worker: {memory_quota: 17TiB}", "worker.memory_quota: 17.0 TiB is out of range");
  ExpectError("worker: {page_size: 4MiB, disks: [{dir: /x, quota: 2MiB}]}",
              "worker.disks[0].quota: the disk tier in /x (2.00 MiB) must hold at least one page (worker.page_size, "
              "4.00 MiB)");
  // Both 0 is fine: each gets a free port of its own.
  auto ok = ParseConfig(
      "worker: {rpc_port: 0, http_port: 0, page_size: 64KiB, memory_quota: 64KiB,"
      " disks: [{dir: /x, quota: 1MiB, reserve: 0}]}",
      "ok.yaml");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->worker.disks[0].reserve, 0u);
  EXPECT_EQ(ParseConfig("worker: {disks: [{dir: /x, quota: 1GiB}]}", "d.yaml")->worker.disks[0].reserve, 64u << 20);
}

TEST(ConfigTest, FlagsGoThroughTheSameChecksAndAreNamed) {
  Config cfg;
  auto expect_refused = [&](const std::string& key, const std::string& value, const std::string& flag,
                            const std::string& fragment) {
    Status st = SetConfigValue(&cfg, key, value, flag);
    ASSERT_FALSE(st.ok()) << flag << " " << value;
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(st.message().rfind(flag + ": ", 0), 0u) << st.message();
    EXPECT_NE(st.message().find(fragment), std::string::npos) << st.message();
  };
  expect_refused("worker.rpc_port", "70000", "--rpc-port", "70000 is out of range [0, 65535]");
  expect_refused("worker.rpc_port", "-1", "--rpc-port", "-1 is out of range [0, 65535]");
  expect_refused("worker.http_port", "http", "--http-port", "expected an integer");
  expect_refused("worker.memory_quota", "17TiB", "--memory-size", "17.0 TiB is out of range [0 B, 16.0 TiB]");
  expect_refused("worker.memory_quota", "lots", "--memory-size", "'lots' is not a size");
  EXPECT_EQ(cfg.worker.rpc_port, 29990);  // untouched by the refused values
  ASSERT_TRUE(SetConfigValue(&cfg, "worker.rpc_port", "0", "--rpc-port").ok());
  EXPECT_EQ(cfg.worker.rpc_port, 0);
  ASSERT_TRUE(SetConfigValue(&cfg, "worker.memory_quota", "256KiB", "--memory-size").ok());
  EXPECT_EQ(cfg.worker.memory_quota, 256u << 10);
  // Checks across keys name the flag that set the value, and the file for the rest.
  Status st = ValidateConfig(cfg, "sluice.yaml", {{"worker.memory_quota", "--memory-size"}});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("--memory-size: the memory tier (256.0 KiB) must hold at least one page", 0), 0u)
      << st.message();
  cfg.worker.memory_quota = 1 << 20;
  cfg.worker.disks = {{"/cache", 0}};
  st = ValidateConfig(cfg, "sluice.yaml", {{"worker.disks[0].quota", "--cache-size"}});
  EXPECT_EQ(st.message().rfind("--cache-size: the disk tier in /cache (0 B) must hold", 0), 0u) << st.message();
  cfg.worker.disks = {{"/cache", 2000ull << 40}};
  st = ValidateConfig(cfg, "sluice.yaml");
  EXPECT_EQ(st.message().rfind("sluice.yaml: worker.disks[0].quota: 1.95 PiB is out of range", 0), 0u) << st.message();
}

TEST(ConfigTest, ADirectoryIsNotAConfigFile) {
  auto cfg = LoadConfigFile("/tmp");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(cfg.status().message().find("'/tmp' is a directory, not a config file"), std::string::npos)
      << cfg.status().message();
}

TEST(ConfigTest, RpcLimitsAreSettableAndChecked) {
  auto c = ParseConfig("rpc:\n  idle_timeout: 2m\n  io_timeout: 5s\n  max_connections: 64\n"
                       "  max_buffered_bytes: 64MiB\n  handler_threads: 8\n",
                       "s.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->rpc.idle_timeout, std::chrono::minutes(2));
  EXPECT_EQ(c->rpc.io_timeout, std::chrono::seconds(5));
  EXPECT_EQ(c->rpc.max_connections, 64);
  EXPECT_EQ(c->rpc.max_buffered_bytes, 64ull << 20);
  EXPECT_EQ(c->rpc.handler_threads, 8);
  EXPECT_EQ(c->rpc.handshake_timeout, std::chrono::seconds(10));  // the default stays
  auto bad = ParseConfig("rpc:\n  max_connections: 0\n", "s.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("rpc.max_connections"), std::string::npos) << bad.status().message();
}

TEST(ConfigTest, MissingFile) {
  auto cfg = LoadConfigFile("/nonexistent/sluice.yaml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("/nonexistent/sluice.yaml"), std::string::npos);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST(ConfigTest, ClusterStoreForms) {
  auto etcd = ParseConfig("cluster: etcd://10.0.0.5:2379,10.0.0.6:2379\n", "c.yaml");
  ASSERT_TRUE(etcd.ok()) << etcd.status().ToString();
  EXPECT_EQ(etcd->cluster.EtcdEndpoints(), (std::vector<std::string>{"10.0.0.5:2379", "10.0.0.6:2379"}));
  EXPECT_TRUE(etcd->cluster.Distributed());
  auto file = ParseConfig("cluster:\n  store: file:/srv/sluice\n  workers: [10.0.0.1:29990, 'h2:29990']\n", "c.yaml");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->cluster.store, "file");
  EXPECT_EQ(file->cluster.dir, "/srv/sluice");
  EXPECT_EQ(file->cluster.workers.size(), 2u);
  EXPECT_TRUE(file->cluster.Distributed());
  EXPECT_FALSE(ParseConfig("", "c.yaml")->cluster.Distributed());
  auto bad = ParseConfig("cluster:\n  store: etcd://nohost\n", "c.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("c.yaml: cluster.store: 'etcd://nohost' is neither"), std::string::npos)
      << bad.status().message();
  auto bad_worker = ParseConfig("cluster:\n  workers: [justahost]\n", "c.yaml");
  ASSERT_FALSE(bad_worker.ok());
  EXPECT_NE(bad_worker.status().message().find("'justahost' is not HOST:PORT"), std::string::npos);
}

}  // namespace
}  // namespace sluice
