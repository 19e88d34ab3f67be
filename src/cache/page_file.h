// The on-disk format of one cached page, shared by the worker's disk tier (which writes and
// verifies page files) and by short-circuit clients on the same host (which read them
// directly, skipping a copy through the worker). A page file is a header — magic, format,
// length, then one XXH3-64 checksum per 32 KiB chunk of the page, each seeded by the page key
// and the chunk's index — followed by the page bytes; the file must end right there. Chunked
// checksums let a read of part of a page verify only the chunks it covers (a 100 KiB record
// of a 1 MiB page reads and hashes at most 160 KiB, not the page), as JuiceFS does for its
// cache blocks. Pure functions; thread-safe.
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

inline constexpr uint64_t kPageChunkBytes = 32 << 10;

// The checksum seed of a key: a page file renamed onto another key fails verification.
uint64_t PageSeed(const PageKey& key);

// Where a page of `length` bytes starts in its file (the header's size).
uint64_t PageHeaderBytes(uint64_t length);

// The header of a page file holding `data`.
std::string EncodePageHeader(uint64_t seed, std::string_view data);

// Reads a page file of `length` bytes and verifies it against `seed`: kCorruption when the
// file is short, long, or fails a checksum; kNotFound when it is gone or of another format
// (written by an older sluice).
Result<PageData> ReadPageFile(const std::string& path, uint64_t length, uint64_t seed);

// The same, reading the page's bytes into `dest` (which has room for `length`). On an error
// `dest` holds garbage.
Status ReadPageFileInto(const std::string& path, uint64_t length, uint64_t seed, char* dest);

// The whole chunks [start, end) of a page of `length` bytes that cover bytes [from, from + n)
// of it (clipped to the page): what a read of those bytes has to read and verify anyway.
struct ChunkSpan {
  uint64_t start = 0, end = 0;
};
ChunkSpan ChunksCovering(uint64_t length, uint64_t from, uint64_t n);

// Bytes [from, from + n) of a page file of `length` bytes, read and verified, in a buffer of
// their own. Errors as ReadPageFile's; kInvalidArgument past the page's end.
Result<PageData> ReadPageRange(const std::string& path, uint64_t length, uint64_t seed, uint64_t from, uint64_t n);

// Reads bytes [from, from + n) of a page file of `length` bytes into `dest`, verifying only
// the chunks that cover them. Errors as ReadPageRange's.
Status ReadPageRangeInto(const std::string& path, uint64_t length, uint64_t seed, uint64_t from, uint64_t n,
                         char* dest);

// Verifies a page file without copying its bytes out (it maps them) and returns it open: the
// page's bytes are at offset PageHeaderBytes(length), ready to be spliced. A page file is
// replaced by rename, never rewritten, so what the descriptor reads stays what was verified.
Result<UniqueFd> OpenVerifiedPageFile(const std::string& path, uint64_t length, uint64_t seed);

}  // namespace sluice::cache
