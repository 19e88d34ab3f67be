// LRU (a list plus an index) and the stable policy.
#include "cache/cache_policy.h"

#include <list>
#include <unordered_map>

namespace sluice::cache {
namespace {

class LruPolicy final : public CachePolicy {
 public:
  void OnInsert(const PageKey& key) override { OnAccess(key); }
  void OnAccess(const PageKey& key) override {
    auto it = index_.find(key);
    if (it != index_.end()) {
      order_.splice(order_.begin(), order_, it->second);
      return;
    }
    order_.push_front(key);
    index_[key] = order_.begin();
  }
  void OnRemove(const PageKey& key) override {
    auto it = index_.find(key);
    if (it == index_.end()) return;
    order_.erase(it->second);
    index_.erase(it);
  }
  std::optional<PageKey> Victim() override {
    if (order_.empty()) return std::nullopt;
    return order_.back();
  }

 private:
  std::list<PageKey> order_;  // most recent first
  std::unordered_map<PageKey, std::list<PageKey>::iterator, PageKeyHash> index_;
};

class StablePolicy final : public CachePolicy {
 public:
  void OnInsert(const PageKey&) override {}
  void OnAccess(const PageKey&) override {}
  void OnRemove(const PageKey&) override {}
  std::optional<PageKey> Victim() override { return std::nullopt; }
};

}  // namespace

std::unique_ptr<CachePolicy> NewLruPolicy() { return std::make_unique<LruPolicy>(); }
std::unique_ptr<CachePolicy> NewStablePolicy() { return std::make_unique<StablePolicy>(); }

Result<std::unique_ptr<CachePolicy>> NewCachePolicy(std::string_view name) {
  if (name == "lru") return NewLruPolicy();
  if (name == "stable") return NewStablePolicy();
  return InvalidArgument("unknown cache policy '" + std::string(name) + "' (use lru or stable)");
}

}  // namespace sluice::cache
