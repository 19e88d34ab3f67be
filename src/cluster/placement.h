// Placement: which workers hold a key, by rendezvous (highest random weight) hashing over the
// live worker ids. Every worker and client computes the same answer from the same member
// list, with no coordination; a worker that joins or leaves moves only the keys it wins or
// held. Keys: a file no larger than a span (and a directory's metadata) by its namespace
// path; a larger file by (path, span index), so one big shard spreads over many workers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::cluster {

// Default placement span: files above it are placed span by span.
constexpr uint64_t kDefaultPlacementSpan = 64ull << 20;

// The placement key of the byte at `offset` of a file of `file_size` bytes at `path`.
std::string PlacementKey(std::string_view path, uint64_t offset, uint64_t file_size, uint64_t span);

// The weight of `worker_id` for `key`; the highest weights own the key.
uint64_t RendezvousWeight(std::string_view worker_id, std::string_view key);

// Indexes into `worker_ids` of the top `count` owners of `key`, best first (all when count
// is larger than the list).
std::vector<size_t> RankOwners(const std::vector<std::string>& worker_ids, std::string_view key, size_t count);

}  // namespace sluice::cluster
