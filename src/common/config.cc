// YAML binding for Config: a table of typed fields per section, checked key by key.
#include "common/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "common/units.h"

namespace sluice {
namespace {

// Binds the keys of one YAML mapping to typed setters. Each setter gets the node and the
// dotted key, and returns an error that already names the key.
class Section {
 public:
  using Setter = std::function<Status(const YAML::Node&, const std::string&)>;

  Section(std::string source, std::string prefix) : source_(std::move(source)), prefix_(std::move(prefix)) {}

  void Field(const std::string& name, Setter setter) { fields_[name] = std::move(setter); }

  void String(const std::string& name, std::string* out, std::vector<std::string> allowed = {}) {
    Field(name, [this, out, allowed](const YAML::Node& n, const std::string& key) -> Status {
      if (!n.IsScalar()) return Error(key, "expected a string");
      std::string v = n.Scalar();
      if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        return Error(key, "'" + v + "' is not one of: " + list);
      }
      *out = v;
      return Status::Ok();
    });
  }

  void Bool(const std::string& name, bool* out) {
    Field(name, [this, out](const YAML::Node& n, const std::string& key) -> Status {
      bool v;
      if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) return Error(key, "expected true or false");
      *out = v;
      return Status::Ok();
    });
  }

  void Int(const std::string& name, int64_t* out, int64_t min, int64_t max) {
    Field(name, [this, out, min, max](const YAML::Node& n, const std::string& key) -> Status {
      int64_t v;
      if (!n.IsScalar() || !YAML::convert<int64_t>::decode(n, v)) return Error(key, "expected an integer");
      if (v < min || v > max) {
        return Error(key, std::to_string(v) + " is out of range [" + std::to_string(min) + ", " +
                              std::to_string(max) + "]");
      }
      *out = v;
      return Status::Ok();
    });
  }

  void Size(const std::string& name, uint64_t* out, uint64_t min, uint64_t max) {
    Field(name, [this, out, min, max](const YAML::Node& n, const std::string& key) -> Status {
      if (!n.IsScalar()) return Error(key, "expected a size such as 64MiB");
      auto v = ParseSize(n.Scalar());
      if (!v.ok()) return Error(key, v.status().message());
      if (*v < min || *v > max) {
        return Error(key, FormatSize(*v) + " is out of range [" + FormatSize(min) + ", " + FormatSize(max) + "]");
      }
      *out = *v;
      return Status::Ok();
    });
  }

  void Duration(const std::string& name, std::chrono::nanoseconds* out, std::chrono::nanoseconds min,
                std::chrono::nanoseconds max) {
    Field(name, [this, out, min, max](const YAML::Node& n, const std::string& key) -> Status {
      if (!n.IsScalar()) return Error(key, "expected a duration such as 30s");
      auto v = ParseDuration(n.Scalar());
      if (!v.ok()) return Error(key, v.status().message());
      if (*v < min || *v > max) {
        return Error(key, FormatDuration(*v) + " is out of range [" + FormatDuration(min) + ", " +
                              FormatDuration(max) + "]");
      }
      *out = *v;
      return Status::Ok();
    });
  }

  // Applies `node` (a mapping or null) to the bound fields; rejects unknown keys.
  Status Apply(const YAML::Node& node) {
    if (!node || node.IsNull()) return Status::Ok();
    if (!node.IsMap()) return Error(prefix_.empty() ? "(top level)" : prefix_, "expected a mapping of keys");
    for (const auto& kv : node) {
      std::string name = kv.first.as<std::string>();
      std::string key = prefix_.empty() ? name : prefix_ + "." + name;
      auto it = fields_.find(name);
      if (it == fields_.end()) {
        std::string known;
        for (const auto& f : fields_) known += (known.empty() ? "" : ", ") + f.first;
        return Error(key, "unknown key (known keys here: " + known + ")");
      }
      SLUICE_RETURN_IF_ERROR(it->second(kv.second, key));
    }
    return Status::Ok();
  }

  Status Error(const std::string& key, const std::string& what) const {
    return InvalidArgument(source_ + ": " + key + ": " + what);
  }

  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::string prefix_;
  std::map<std::string, Setter> fields_;
};

constexpr uint64_t kTiB = 1ull << 40;

Status BindSections(const YAML::Node& root, const std::string& source, Config* cfg) {
  using std::chrono::hours;
  using std::chrono::milliseconds;
  using std::chrono::nanoseconds;

  Section log(source, "log");
  log.String("level", &cfg->log.level, {"trace", "debug", "info", "warn", "error", "off"});
  log.String("file", &cfg->log.file);

  Section cluster(source, "cluster");
  cluster.String("store", &cfg->cluster.store, {"file", "etcd"});
  cluster.String("dir", &cfg->cluster.dir);
  cluster.String("secret", &cfg->cluster.secret);

  Section worker(source, "worker");
  worker.String("host", &cfg->worker.host);
  worker.Int("rpc_port", &cfg->worker.rpc_port, 0, 65535);
  worker.Int("http_port", &cfg->worker.http_port, 0, 65535);
  worker.Size("page_size", &cfg->worker.page_size, 4096, 64ull << 20);
  worker.Size("memory_quota", &cfg->worker.memory_quota, 0, 16 * kTiB);
  worker.String("cache_policy", &cfg->worker.cache_policy, {"lru", "stable"});
  worker.Field("disks", [&](const YAML::Node& n, const std::string& key) -> Status {
    if (!n.IsSequence()) return worker.Error(key, "expected a list of {dir, quota}");
    cfg->worker.disks.clear();
    for (size_t i = 0; i < n.size(); ++i) {
      DiskTierConfig disk;
      Section s(source, key + "[" + std::to_string(i) + "]");
      s.String("dir", &disk.dir);
      s.Size("quota", &disk.quota, 1 << 20, 1024 * kTiB);
      SLUICE_RETURN_IF_ERROR(s.Apply(n[i]));
      if (disk.dir.empty()) return s.Error(key + "[" + std::to_string(i) + "].dir", "is required");
      if (disk.quota == 0) return s.Error(key + "[" + std::to_string(i) + "].quota", "is required");
      cfg->worker.disks.push_back(disk);
    }
    return Status::Ok();
  });

  Section ufs(source, "ufs");
  ufs.Int("max_attempts", &cfg->ufs.max_attempts, 1, 100);
  ufs.Duration("retry_base_delay", &cfg->ufs.retry_base_delay, nanoseconds(0), hours(1));
  ufs.Duration("retry_max_delay", &cfg->ufs.retry_max_delay, nanoseconds(0), hours(1));
  ufs.Duration("connect_timeout", &cfg->ufs.connect_timeout, milliseconds(1), hours(1));
  ufs.Duration("request_timeout", &cfg->ufs.request_timeout, milliseconds(1), hours(24));
  ufs.Size("multipart_threshold", &cfg->ufs.multipart_threshold, 5ull << 20, 5 * kTiB);
  ufs.Size("multipart_part_size", &cfg->ufs.multipart_part_size, 5ull << 20, 5ull << 30);

  Section client(source, "client");
  client.Bool("fallback_to_ufs", &cfg->client.fallback_to_ufs);
  client.Bool("short_circuit", &cfg->client.short_circuit);
  client.Size("readahead_per_handle", &cfg->client.readahead_per_handle, 0, 1ull << 30);
  client.Size("readahead_total", &cfg->client.readahead_total, 0, 64ull << 30);
  client.Size("direct_io_min_size", &cfg->client.direct_io_min_size, 0, 1ull << 50);

  Section top(source, "");
  top.Field("client", [&](const YAML::Node& n, const std::string&) { return client.Apply(n); });
  top.Field("log", [&](const YAML::Node& n, const std::string&) { return log.Apply(n); });
  top.Field("cluster", [&](const YAML::Node& n, const std::string&) { return cluster.Apply(n); });
  top.Field("worker", [&](const YAML::Node& n, const std::string&) { return worker.Apply(n); });
  top.Field("ufs", [&](const YAML::Node& n, const std::string&) { return ufs.Apply(n); });
  SLUICE_RETURN_IF_ERROR(top.Apply(root));

  if (cfg->ufs.retry_max_delay < cfg->ufs.retry_base_delay) {
    return ufs.Error("ufs.retry_max_delay", "must be at least ufs.retry_base_delay");
  }
  return Status::Ok();
}

}  // namespace

Result<Config> ParseConfig(const std::string& yaml_text, const std::string& source) {
  Config cfg;
  try {
    YAML::Node root = YAML::Load(yaml_text);
    SLUICE_RETURN_IF_ERROR(BindSections(root, source, &cfg));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(source + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return cfg;
}

Result<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return InvalidArgument("cannot read config file '" + path + "': " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path);
}

}  // namespace sluice
