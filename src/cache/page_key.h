// Keys of cached pages. A FileId hashes the under-store URI, the path and the content
// version (ETag, or mtime+size), so a changed object gets a new id and its old pages can
// never be mixed with new ones. A page is (file id, index); page i holds bytes
// [i * page_size, (i + 1) * page_size). Plain values; thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace sluice::cache {

struct FileId {
  uint64_t hi = 0;
  uint64_t lo = 0;

  // XXH3-128 of uri, path and version, separated so that no two triples collide by shifting.
  static FileId For(std::string_view uri, std::string_view path, std::string_view version);
  // 32 lowercase hex digits; ParseHex reverses it (false on malformed input).
  std::string Hex() const;
  static bool ParseHex(std::string_view hex, FileId* out);

  bool operator==(const FileId& o) const { return hi == o.hi && lo == o.lo; }
};

struct PageKey {
  FileId file;
  uint64_t index = 0;
  bool operator==(const PageKey& o) const { return file == o.file && index == o.index; }
};

struct FileIdHash {
  size_t operator()(const FileId& f) const { return static_cast<size_t>(f.lo ^ (f.hi * 0x9E3779B97F4A7C15ull)); }
};
struct PageKeyHash {
  size_t operator()(const PageKey& k) const { return FileIdHash()(k.file) ^ (k.index * 0xC2B2AE3D27D4EB4Full); }
};

}  // namespace sluice::cache
