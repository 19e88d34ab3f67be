// The on-disk format of one cached page, shared by the worker's disk tier (which writes and
// verifies page files) and by short-circuit clients on the same host (which read them
// directly, skipping a copy through the worker). A page file is a 24-byte header — magic,
// format, length, XXH3-64 checksum seeded by the page key — followed by the page bytes; the
// file must end right there. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cache/page_buffers.h"
#include "cache/page_key.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace sluice::cache {

inline constexpr size_t kPageHeaderBytes = 24;

// The checksum seed of a key: a page file renamed onto another key fails verification.
uint64_t PageSeed(const PageKey& key);

// Header + bytes of a page file.
std::string EncodePageHeader(uint64_t seed, std::string_view data);

// Reads a page file of `length` bytes and verifies it against `seed`: kCorruption when the
// file is short, long, or fails the checksum; kNotFound when it is gone.
Result<PageData> ReadPageFile(const std::string& path, uint64_t length, uint64_t seed);

// The same, reading the page's bytes into `dest` (which has room for `length`). On an error
// `dest` holds garbage.
Status ReadPageFileInto(const std::string& path, uint64_t length, uint64_t seed, char* dest);

// Verifies a page file without copying its bytes out (it maps them) and returns it open: the
// page's bytes are at offset kPageHeaderBytes, ready to be spliced. A page file is replaced by
// rename, never rewritten, so what the descriptor reads stays what was verified.
Result<UniqueFd> OpenVerifiedPageFile(const std::string& path, uint64_t length, uint64_t seed);

}  // namespace sluice::cache
