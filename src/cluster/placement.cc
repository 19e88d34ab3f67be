// Rendezvous hashing on XXH3.
#include "cluster/placement.h"

#include <xxhash.h>

#include <algorithm>
#include <numeric>

namespace sluice::cluster {

std::string PlacementKey(std::string_view path, uint64_t offset, uint64_t file_size, uint64_t span) {
  if (span == 0 || file_size <= span) return std::string(path);
  return std::string(path) + "#" + std::to_string(offset / span);
}

uint64_t RendezvousWeight(std::string_view worker_id, std::string_view key) {
  const uint64_t seed = XXH3_64bits(worker_id.data(), worker_id.size());
  return XXH3_64bits_withSeed(key.data(), key.size(), seed);
}

std::vector<size_t> RankOwners(const std::vector<std::string>& worker_ids, std::string_view key, size_t count) {
  std::vector<std::pair<uint64_t, size_t>> scored;
  scored.reserve(worker_ids.size());
  for (size_t i = 0; i < worker_ids.size(); ++i) scored.emplace_back(RendezvousWeight(worker_ids[i], key), i);
  count = std::min(count, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + static_cast<ptrdiff_t>(count), scored.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<size_t> out(count);
  for (size_t i = 0; i < count; ++i) out[i] = scored[i].second;
  return out;
}

}  // namespace sluice::cluster
