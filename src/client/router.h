// Router: the workers of a cluster and which of them serves a key. It keeps the member list
// the cluster store reports (looked at again when the store's watch saw a change, or every
// second when the store cannot tell), one pooled RpcClient per worker, and which workers
// failed lately: those are tried last for a while (down_for), then trusted again, so a
// restarted worker rejoins. Ranking is rendezvous hashing (cluster/placement.h): every
// client and worker computes the same owners from the same members. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/cluster_store.h"
#include "rpc/client.h"

namespace sluice::client {

struct RouterOptions {
  std::string secret;
  std::chrono::milliseconds connect_timeout{1000};
  // No byte moving on a connection for this long: the worker is treated as gone.
  std::chrono::milliseconds io_timeout{20000};
  std::chrono::milliseconds down_for{3000};  // a worker that failed is tried last this long
  uint64_t span = 64ull << 20;               // placement span (ClusterConfig::placement_span)
};

class Router {
 public:
  struct Target {
    std::string id;
    std::string endpoint;  // host:port
    std::shared_ptr<rpc::RpcClient> rpc;
  };

  Router(cluster::ClusterStore* store, RouterOptions options);

  // Where to send a request for `key`: its `replicas` owners first (healthy ones first,
  // taking turns among them so concurrent readers spread over the copies), then the next
  // worker by rank (the owner once a dead one drops out of the membership). Empty when no
  // worker is registered.
  std::vector<Target> Route(std::string_view key, int replicas);
  // The owners of `key` alone, best first, regardless of health.
  std::vector<Target> Owners(std::string_view key, int replicas);
  // Every live worker, by id.
  std::vector<Target> All();
  // Notes that `id` failed to answer; it is tried last for down_for.
  void MarkDown(const std::string& id);
  // How many copies a read of `path` may take turns among: the mount's replica count on a
  // read-only mount; 1 on a writable one (its first owner is the one that saw the last write)
  // and outside every mount.
  int Replicas(const std::string& path);
  uint64_t span() const { return options_.span; }

  // Whether a Status means the worker could not be reached (not that it refused the request).
  static bool Unreachable(const Status& st);

 private:
  struct Member {
    cluster::WorkerInfo info;
    std::shared_ptr<rpc::RpcClient> rpc;
  };
  void Refresh();  // REQUIRES(mu_) not held
  Target TargetOf(const Member& m) const { return Target{m.info.id, m.info.Endpoint(), m.rpc}; }

  cluster::ClusterStore* const store_;
  const RouterOptions options_;
  std::atomic<uint64_t> turn_{0};
  std::mutex mu_;
  std::vector<Member> members_;  // GUARDED_BY(mu_), by id
  std::vector<std::string> ids_;  // GUARDED_BY(mu_): members_' ids, for ranking
  uint64_t generation_ = UINT64_MAX;  // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point refreshed_{};  // GUARDED_BY(mu_)
  std::map<std::string, std::chrono::steady_clock::time_point> down_until_;  // GUARDED_BY(mu_)
  std::string mounts_version_;  // GUARDED_BY(mu_)
  cluster::MountTable mounts_;  // GUARDED_BY(mu_)
};

}  // namespace sluice::client
