// YAML binding for Config: a table of typed fields per section, checked key by key.
#include "common/config.h"

#include <sys/stat.h>
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

  // Applies `node` (a mapping or null) to the bound fields; rejects unknown and repeated keys
  // (YAML would keep the last of two silently).
  Status Apply(const YAML::Node& node) {
    if (!node || node.IsNull()) return Status::Ok();
    if (!node.IsMap()) return Error(prefix_.empty() ? "(top level)" : prefix_, "expected a mapping of keys");
    std::map<std::string, int> seen;  // name -> line, 1-based
    for (const auto& kv : node) {
      std::string name = kv.first.as<std::string>();
      std::string key = prefix_.empty() ? name : prefix_ + "." + name;
      const int line = kv.first.Mark().line + 1;
      auto [first, inserted] = seen.emplace(name, line);
      if (!inserted) {
        return InvalidArgument(source_ + ": line " + std::to_string(line) + ": " + key +
                               ": given a second time (first on line " + std::to_string(first->second) +
                               "); give each key once");
      }
      SLUICE_RETURN_IF_ERROR(Set(name, kv.second, key));
    }
    return Status::Ok();
  }

  // Applies one field; `key` is how errors name it (the dotted key, or a flag).
  Status Set(const std::string& name, const YAML::Node& value, const std::string& key) {
    auto it = fields_.find(name);
    if (it == fields_.end()) {
      std::string known;
      for (const auto& f : fields_) known += (known.empty() ? "" : ", ") + f.first;
      return Error(key, "unknown key (known keys here: " + known + ")");
    }
    return it->second(value, key);
  }

  Status Error(const std::string& key, const std::string& what) const {
    return InvalidArgument((source_.empty() ? "" : source_ + ": ") + key + ": " + what);
  }

  const std::string& source() const { return source_; }
  const std::string& prefix() const { return prefix_; }

 private:
  std::string source_;
  std::string prefix_;
  std::map<std::string, Setter> fields_;
};

constexpr uint64_t kTiB = 1ull << 40;
constexpr uint64_t kMinPageSize = 4ull << 10;
constexpr uint64_t kMaxPageSize = 64ull << 20;
constexpr uint64_t kMaxDiskQuota = 1024 * kTiB;

// Every section of Config, bound to one Config. Errors name `source` (empty: the key alone).
class Binder {
 public:
  Binder(const std::string& source, Config* cfg)
      : log_(source, "log"),
        cluster_(source, "cluster"),
        worker_(source, "worker"),
        ufs_(source, "ufs"),
        client_(source, "client"),
        rpc_(source, "rpc"),
        gateway_(source, "gateway"),
        top_(source, "") {
    using std::chrono::hours;
    using std::chrono::milliseconds;
    using std::chrono::nanoseconds;

    log_.String("level", &cfg->log.level, {"trace", "debug", "info", "warn", "error", "off"});
    log_.String("file", &cfg->log.file);

    cluster_.Field("store", [this, cfg](const YAML::Node& n, const std::string& key) -> Status {
      if (!n.IsScalar()) return cluster_.Error(key, "expected file, file:DIR or etcd://HOST:PORT[,HOST:PORT]");
      ClusterConfig c = cfg->cluster;
      c.store = n.Scalar();
      if (c.store.rfind("file:", 0) == 0) {
        cfg->cluster.dir = c.store.substr(5);
        c.store = "file";
      }
      if (c.store != "file" && c.EtcdEndpoints().empty()) {
        return cluster_.Error(key, "'" + c.store + "' is neither file, file:DIR nor etcd://HOST:PORT[,HOST:PORT]");
      }
      cfg->cluster.store = c.store;
      return Status::Ok();
    });
    cluster_.String("dir", &cfg->cluster.dir);
    cluster_.Field("workers", [this, cfg](const YAML::Node& n, const std::string& key) -> Status {
      if (!n.IsSequence()) return cluster_.Error(key, "expected a list of HOST:PORT (the workers' RPC addresses)");
      cfg->cluster.workers.clear();
      for (const auto& w : n) {
        const std::string v = w.IsScalar() ? w.Scalar() : "";
        const size_t colon = v.rfind(':');
        if (colon == std::string::npos || colon == 0 || colon + 1 == v.size() ||
            v.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
          return cluster_.Error(key, "'" + v + "' is not HOST:PORT");
        }
        cfg->cluster.workers.push_back(v);
      }
      return Status::Ok();
    });
    cluster_.String("secret", &cfg->cluster.secret);
    cluster_.String("secret_file", &cfg->cluster.secret_file);
    cluster_.Duration("lease_ttl", &cfg->cluster.lease_ttl, milliseconds(1000), hours(1));
    cluster_.Size("placement_span", &cfg->cluster.placement_span, 1 << 20, 1ull << 40);

    worker_.String("id", &cfg->worker.id);
    worker_.String("zone", &cfg->worker.zone);
    worker_.String("host", &cfg->worker.host);
    worker_.Int("rpc_port", &cfg->worker.rpc_port, 0, 65535);
    worker_.Int("http_port", &cfg->worker.http_port, 0, 65535);
    worker_.Size("page_size", &cfg->worker.page_size, kMinPageSize, kMaxPageSize);
    worker_.Size("memory_quota", &cfg->worker.memory_quota, 0, 16 * kTiB);
    worker_.String("cache_policy", &cfg->worker.cache_policy, {"lru", "stable"});
    worker_.Size("metadata_memory", &cfg->worker.metadata_memory, 64 << 10, 16 * kTiB);
    worker_.Field("disks", [this, source, cfg](const YAML::Node& n, const std::string& key) -> Status {
      if (!n.IsSequence()) return worker_.Error(key, "expected a list of {dir, quota, reserve}");
      cfg->worker.disks.clear();
      for (size_t i = 0; i < n.size(); ++i) {
        DiskTierConfig disk;
        const std::string item = key + "[" + std::to_string(i) + "]";
        Section s(source, item);
        s.String("dir", &disk.dir);
        s.Size("quota", &disk.quota, 1 << 20, kMaxDiskQuota);
        s.Size("reserve", &disk.reserve, 0, kMaxDiskQuota);
        SLUICE_RETURN_IF_ERROR(s.Apply(n[i]));
        if (disk.dir.empty()) return s.Error(item + ".dir", "is required");
        if (disk.quota == 0) return s.Error(item + ".quota", "is required");
        cfg->worker.disks.push_back(disk);
      }
      return Status::Ok();
    });

    ufs_.Int("max_attempts", &cfg->ufs.max_attempts, 1, 100);
    ufs_.Duration("retry_base_delay", &cfg->ufs.retry_base_delay, nanoseconds(0), hours(1));
    ufs_.Duration("retry_max_delay", &cfg->ufs.retry_max_delay, nanoseconds(0), hours(1));
    ufs_.Duration("connect_timeout", &cfg->ufs.connect_timeout, milliseconds(1), hours(1));
    ufs_.Duration("request_timeout", &cfg->ufs.request_timeout, milliseconds(1), hours(24));
    ufs_.Size("multipart_threshold", &cfg->ufs.multipart_threshold, 5ull << 20, 5 * kTiB);
    ufs_.Size("multipart_part_size", &cfg->ufs.multipart_part_size, 5ull << 20, 5ull << 30);

    rpc_.Duration("handshake_timeout", &cfg->rpc.handshake_timeout, milliseconds(10), hours(1));
    rpc_.Duration("idle_timeout", &cfg->rpc.idle_timeout, milliseconds(10), hours(24 * 7));
    rpc_.Duration("io_timeout", &cfg->rpc.io_timeout, milliseconds(10), hours(1));
    rpc_.Int("max_connections", &cfg->rpc.max_connections, 1, 1 << 20);
    rpc_.Int("max_http_connections", &cfg->rpc.max_http_connections, 1, 1 << 20);
    rpc_.Size("max_buffered_bytes", &cfg->rpc.max_buffered_bytes, 1ull << 20, 1ull << 40);
    rpc_.Int("handler_threads", &cfg->rpc.handler_threads, 1, 1024);

    gateway_.Int("port", &cfg->gateway.port, -1, 65535);
    gateway_.String("bucket", &cfg->gateway.bucket);
    gateway_.String("region", &cfg->gateway.region);
    gateway_.Bool("anonymous", &cfg->gateway.anonymous);
    gateway_.Int("max_connections", &cfg->gateway.max_connections, 1, 1 << 20);
    gateway_.Int("threads", &cfg->gateway.threads, 1, 1024);
    gateway_.Duration("io_timeout", &cfg->gateway.io_timeout, milliseconds(10), hours(1));
    gateway_.Duration("idle_timeout", &cfg->gateway.idle_timeout, milliseconds(10), hours(24));
    gateway_.Field("credentials", [this, source, cfg](const YAML::Node& n, const std::string& key) -> Status {
      if (!n.IsSequence()) return gateway_.Error(key, "expected a list of {access_key, secret_key, buckets}");
      cfg->gateway.credentials.clear();
      for (size_t i = 0; i < n.size(); ++i) {
        GatewayCredentialConfig c;
        const std::string item = key + "[" + std::to_string(i) + "]";
        Section s(source, item);
        s.String("access_key", &c.access_key);
        s.String("secret_key", &c.secret_key);
        s.Field("buckets", [&s, &c](const YAML::Node& list, const std::string& k) -> Status {
          if (!list.IsSequence()) return s.Error(k, "expected a list of bucket names");
          for (const auto& b : list) {
            if (!b.IsScalar() || b.Scalar().empty()) return s.Error(k, "expected a list of bucket names");
            c.buckets.push_back(b.Scalar());
          }
          return Status::Ok();
        });
        SLUICE_RETURN_IF_ERROR(s.Apply(n[i]));
        if (c.access_key.empty()) return s.Error(item + ".access_key", "is required");
        if (c.secret_key.empty()) return s.Error(item + ".secret_key", "is required");
        cfg->gateway.credentials.push_back(c);
      }
      return Status::Ok();
    });

    client_.Bool("fallback_to_ufs", &cfg->client.fallback_to_ufs);
    client_.Bool("short_circuit", &cfg->client.short_circuit);
    client_.Size("readahead_per_handle", &cfg->client.readahead_per_handle, 0, 1ull << 30);
    client_.Size("readahead_total", &cfg->client.readahead_total, 0, 64ull << 30);
    client_.Size("direct_io_min_size", &cfg->client.direct_io_min_size, 0, 1ull << 50);
    client_.Bool("xattrs", &cfg->client.xattrs);
    client_.Size("metadata_memory", &cfg->client.metadata_memory, 0, 1ull << 40);

    for (Section* s : Sections()) {
      top_.Field(s->prefix(), [s](const YAML::Node& n, const std::string&) { return s->Apply(n); });
    }
    // `cluster: etcd://...` is short for `cluster: {store: etcd://...}`.
    top_.Field("cluster", [this](const YAML::Node& n, const std::string& key) -> Status {
      return n.IsScalar() ? cluster_.Set("store", n, key) : cluster_.Apply(n);
    });
  }

  Binder(const Binder&) = delete;  // the setters point into this object
  Binder& operator=(const Binder&) = delete;

  Status ApplyRoot(const YAML::Node& root) { return top_.Apply(root); }

  // One dotted key ("worker.rpc_port") set from a scalar; errors call it `name`.
  Status SetOne(const std::string& key, const std::string& value, const std::string& name) {
    const size_t dot = key.find('.');
    for (Section* s : Sections()) {
      if (dot != std::string::npos && key.compare(0, dot, s->prefix()) == 0 && s->prefix().size() == dot) {
        return s->Set(key.substr(dot + 1), YAML::Node(value), name);
      }
    }
    return InvalidArgument(name + ": no config key " + key);  // a programmer's error, said plainly
  }

 private:
  std::vector<Section*> Sections() { return {&client_, &log_, &cluster_, &worker_, &ufs_, &rpc_, &gateway_}; }

  Section log_, cluster_, worker_, ufs_, client_, rpc_, gateway_, top_;
};

bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

std::vector<std::string> ClusterConfig::EtcdEndpoints() const {
  constexpr std::string_view kScheme = "etcd://";
  if (store.compare(0, kScheme.size(), kScheme) != 0) return {};
  std::vector<std::string> out;
  std::string rest = store.substr(kScheme.size());
  for (size_t at = 0; at <= rest.size();) {
    size_t comma = rest.find(',', at);
    if (comma == std::string::npos) comma = rest.size();
    std::string endpoint = rest.substr(at, comma - at);
    if (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
    if (endpoint.rfind("etcd://", 0) == 0) endpoint = endpoint.substr(7);
    const size_t colon = endpoint.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == endpoint.size() ||
        endpoint.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
      return {};  // not HOST:PORT
    }
    out.push_back(endpoint);
    at = comma + 1;
  }
  return out;
}

Result<Config> ParseConfig(const std::string& yaml_text, const std::string& source) {
  Config cfg;
  try {
    YAML::Node root = YAML::Load(yaml_text);
    Binder binder(source, &cfg);
    SLUICE_RETURN_IF_ERROR(binder.ApplyRoot(root));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(source + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  SLUICE_RETURN_IF_ERROR(ValidateConfig(cfg, source));
  return cfg;
}

Result<Config> LoadConfigFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return InvalidArgument("config file '" + path +
                           "' is a directory, not a config file (give the path of a YAML file)");
  }
  std::ifstream in(path);
  if (!in) return InvalidArgument("cannot read config file '" + path + "': " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return InvalidArgument("cannot read config file '" + path + "': " + std::strerror(errno));
  return ParseConfig(ss.str(), path);
}

Status SetConfigValue(Config* cfg, const std::string& key, const std::string& value, const std::string& flag) {
  try {
    Binder binder("", cfg);
    return binder.SetOne(key, value, flag);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(flag + ": " + e.msg);
  }
}

Status ValidateConfig(const Config& cfg, const std::string& source, const std::map<std::string, std::string>& flags) {
  // "--memory-size" when a flag set the key, else "sluice.yaml: worker.memory_quota".
  auto name = [&](const std::string& key) {
    auto it = flags.find(key);
    if (it != flags.end()) return it->second;
    return source.empty() ? key : source + ": " + key;
  };
  auto error = [&](const std::string& key, const std::string& what) {
    return InvalidArgument(name(key) + ": " + what);
  };
  const WorkerConfig& w = cfg.worker;
  if (!IsPowerOfTwo(w.page_size) || w.page_size < kMinPageSize || w.page_size > kMaxPageSize) {
    return error("worker.page_size", std::to_string(w.page_size) +
                                         " bytes is not a power of two from 4KiB to 64MiB (e.g. 256KiB, 1MiB, 4MiB)");
  }
  const std::string one_page = "one page (worker.page_size, " + FormatSize(w.page_size) + ")";
  if (w.memory_quota == 0 && w.disks.empty()) {
    return error("worker.memory_quota",
                 "0 leaves no memory tier, and there is no disk tier (worker.disks): "
                 "nothing would be cached");
  }
  if (w.memory_quota != 0 && w.memory_quota < w.page_size) {
    return error("worker.memory_quota", "the memory tier (" + FormatSize(w.memory_quota) + ") must hold at least " +
                                            one_page + ", or be 0 for none (pages then go to the disk tiers)");
  }
  for (size_t i = 0; i < w.disks.size(); ++i) {
    const std::string key = "worker.disks[" + std::to_string(i) + "].quota";
    if (w.disks[i].quota < w.page_size) {
      return error(key, "the disk tier in " + w.disks[i].dir + " (" + FormatSize(w.disks[i].quota) +
                            ") must hold at least " + one_page);
    }
    if (w.disks[i].quota > kMaxDiskQuota) {
      return error(key, FormatSize(w.disks[i].quota) + " is out of range [" + FormatSize(w.page_size) + ", " +
                            FormatSize(kMaxDiskQuota) + "]");
    }
  }
  if (w.rpc_port != 0 && w.rpc_port == w.http_port) {
    return error("worker.http_port", std::to_string(w.http_port) + " is also the RPC port (" + name("worker.rpc_port") +
                                         "); give each its own port, or 0 for any free one");
  }
  const int64_t g = cfg.gateway.port;
  if (g > 0 && (g == w.rpc_port || g == w.http_port)) {
    return error("gateway.port", std::to_string(g) + " is also the worker's " +
                                     (g == w.rpc_port ? "RPC port (" + name("worker.rpc_port") + ")"
                                                      : "HTTP port (" + name("worker.http_port") + ")") +
                                     "; give each its own port, or 0 for any free one");
  }
  if (cfg.ufs.retry_max_delay < cfg.ufs.retry_base_delay) {
    return error("ufs.retry_max_delay", "must be at least ufs.retry_base_delay");
  }
  return Status::Ok();
}

}  // namespace sluice
