// Membership, ranking and health of a cluster's workers.
#include "client/router.h"

#include <algorithm>

#include "cluster/placement.h"

namespace sluice::client {

using Clock = std::chrono::steady_clock;

Router::Router(cluster::ClusterStore* store, RouterOptions options) : store_(store), options_(std::move(options)) {}

bool Router::Unreachable(const Status& st) {
  // The RPC client's own words (rpc/client.cc); a worker's answer that its under-store is
  // unavailable is the worker speaking, not the worker gone.
  return st.code() == StatusCode::kUnavailable &&
         (st.message().rfind("cannot reach sluice worker", 0) == 0 || st.message().rfind("lost connection", 0) == 0);
}

void Router::Refresh() {
  const uint64_t generation = store_->Generation();
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool stale = generation == 0 ? Clock::now() - refreshed_ > std::chrono::seconds(1) : generation != generation_;
    if (!stale) return;
  }
  auto workers = store_->Workers();
  std::lock_guard<std::mutex> lock(mu_);
  generation_ = generation;
  refreshed_ = Clock::now();
  if (!workers.ok()) return;  // keep the members known: the data path outlives a store outage
  std::vector<Member> next;
  for (auto& w : *workers) {
    auto it = std::find_if(members_.begin(), members_.end(), [&](const Member& m) {
      return m.info.id == w.id && m.info.Endpoint() == w.Endpoint() && m.info.pid == w.pid;  // not restarted
    });
    if (it != members_.end()) {
      next.push_back(*it);
      continue;
    }
    rpc::RpcClientOptions o;
    o.host = w.host;
    o.port = w.rpc_port;
    o.secret = options_.secret;
    o.connect_timeout = options_.connect_timeout;
    o.io_timeout = options_.io_timeout;
    next.push_back(Member{w, std::make_shared<rpc::RpcClient>(o)});
  }
  std::sort(next.begin(), next.end(), [](const Member& a, const Member& b) { return a.info.id < b.info.id; });
  members_ = std::move(next);
  ids_.clear();
  for (const auto& m : members_) ids_.push_back(m.info.id);
}

std::vector<Router::Target> Router::Owners(std::string_view key, int replicas) {
  Refresh();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Target> out;
  for (size_t i : cluster::RankOwners(ids_, key, static_cast<size_t>(std::max(1, replicas)))) {
    out.push_back(TargetOf(members_[i]));
  }
  return out;
}

std::vector<Router::Target> Router::Route(std::string_view key, int replicas) {
  Refresh();
  std::lock_guard<std::mutex> lock(mu_);
  const size_t r = static_cast<size_t>(std::max(1, replicas));
  const auto ranked = cluster::RankOwners(ids_, key, r + 1);
  const auto now = Clock::now();
  auto down = [&](const std::string& id) {
    auto it = down_until_.find(id);
    return it != down_until_.end() && it->second > now;
  };
  std::vector<Target> copies, spare, failed;
  for (size_t i = 0; i < ranked.size(); ++i) {
    const Member& m = members_[ranked[i]];
    (down(m.info.id) ? failed : i < r ? copies : spare).push_back(TargetOf(m));
  }
  // Healthy copies take turns; the spare (rank r) comes after them, failed workers last.
  if (copies.size() > 1) {
    std::rotate(copies.begin(), copies.begin() + static_cast<ptrdiff_t>(turn_++ % copies.size()), copies.end());
  }
  copies.insert(copies.end(), spare.begin(), spare.end());
  copies.insert(copies.end(), failed.begin(), failed.end());
  return copies;
}

std::vector<Router::Target> Router::All() {
  Refresh();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Target> out;
  for (const auto& m : members_) out.push_back(TargetOf(m));
  return out;
}

void Router::MarkDown(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  down_until_[id] = Clock::now() + options_.down_for;
}

int Router::Replicas(const std::string& path) {
  const std::string version = store_->MountsVersion();
  std::lock_guard<std::mutex> lock(mu_);
  if (version != mounts_version_) {
    auto table = store_->LoadMounts();
    if (table.ok()) {
      mounts_ = std::move(*table);
      mounts_version_ = version;
    }
  }
  auto r = mounts_.Resolve(path);
  return r.ok() && r->mount->options.read_only() ? std::max(1, r->mount->options.replicas) : 1;
}

}  // namespace sluice::client
