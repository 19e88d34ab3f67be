// The gateway's keys and options, as the CLI starts it.
#include "cli/gateway_setup.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>

namespace sluice::cli {
namespace {

constexpr const char* kAccessKeyVar = "SLUICE_GATEWAY_ACCESS_KEY";
constexpr const char* kSecretKeyVar = "SLUICE_GATEWAY_SECRET_KEY";

std::string RandomText(size_t n, std::string_view alphabet) {
  std::random_device rd;
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  std::string out;
  for (size_t i = 0; i < n; ++i) out += alphabet[pick(rd)];
  return out;
}

// The key pair in `path` ("access_key secret_key"), made when there is none. *made tells
// whether this call made it.
Result<gateway::GatewayCredential> KeptCredential(const std::string& path, bool* made) {
  *made = false;
  gateway::GatewayCredential c;
  {
    std::ifstream in(path);
    if (in && (in >> c.access_key >> c.secret_key) && !c.secret_key.empty()) return c;
  }
  c.access_key = "SLUICE" + RandomText(14, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
  c.secret_key = RandomText(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::ifstream in(path);  // another process made it first
    if (in && (in >> c.access_key >> c.secret_key)) return c;
    return IoError("cannot create " + path + " for the S3 gateway's keys: " + std::strerror(errno));
  }
  std::string line = c.access_key + " " + c.secret_key + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!ok) return IoError("cannot write " + path);
  *made = true;
  return c;
}

}  // namespace

Result<StartedGateway> StartGateway(const Context& ctx, client::FileSystem* fs) {
  const GatewayConfig& g = ctx.config.gateway;
  gateway::GatewayOptions o;
  o.host = ctx.config.worker.host;
  o.port = static_cast<int>(g.port);
  o.region = g.region;
  o.max_connections = static_cast<size_t>(g.max_connections);
  o.threads = static_cast<int>(g.threads);
  o.io_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(g.io_timeout);
  o.idle_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(g.idle_timeout);
  o.auth.allow_anonymous = g.anonymous;
  o.upload_dir = ctx.cluster_dir + "/gateway-uploads";  // parts of multipart uploads, until completed
  std::string keys;
  for (const auto& c : g.credentials) o.auth.credentials.push_back({c.access_key, c.secret_key, c.buckets});
  if (!o.auth.credentials.empty()) {
    keys = std::to_string(o.auth.credentials.size()) + " key(s) from gateway.credentials";
  } else if (const char* ak = std::getenv(kAccessKeyVar), *sk = std::getenv(kSecretKeyVar); ak && *ak && sk && *sk) {
    o.auth.credentials.push_back({ak, sk, {}});
    keys = std::string("access key ") + ak + " from " + kAccessKeyVar;
  } else if (!g.anonymous) {
    const std::string path = ctx.cluster_dir + "/gateway-credentials";
    bool made = false;
    SLUICE_ASSIGN_OR_RETURN(gateway::GatewayCredential c, KeptCredential(path, &made));
    o.auth.credentials.push_back(c);
    keys = made ? "new keys (kept in " + path + "): access key " + c.access_key + ", secret key " + c.secret_key
                : "access key " + c.access_key + ", secret key in " + path;
  }
  if (g.anonymous) keys += std::string(keys.empty() ? "" : "; ") + "anonymous reads allowed";
  auto mounts = ctx.store->LoadMounts();
  std::string buckets = "buckets: the namespace's top-level directories";
  if (mounts.ok()) {
    for (const auto& m : mounts->mounts()) {
      if (m.path == "/") {
        o.root_bucket = g.bucket;
        buckets = "bucket '" + g.bucket + "' is the namespace root";
      }
    }
  }
  SLUICE_ASSIGN_OR_RETURN(auto started, gateway::Gateway::Start(o, fs));
  StartedGateway out;
  out.banner = "S3 gateway http://" + o.host + ":" + std::to_string(started->port()) + " (" + buckets + "; " + keys +
               ")";
  out.gateway = std::move(started);
  return out;
}

}  // namespace sluice::cli
