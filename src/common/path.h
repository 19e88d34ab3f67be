// Namespace paths. Every path that enters sluice (CLI, FUSE, gateway, Python) is normalized
// here once: the result is absolute, "/"-separated, without "." or ".." components, without a
// trailing "/" (except the root itself). Paths that could escape the root or be read two ways
// are rejected with an error that quotes them. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice {

inline constexpr size_t kMaxNameBytes = 255;   // one component, as NAME_MAX
inline constexpr size_t kMaxPathBytes = 4096;  // whole path, as PATH_MAX

// Normalizes `path` (relative paths are taken from the root). Rejects: NUL bytes, invalid
// UTF-8, ".." that climbs above the root, empty components inside the path ("a//b": S3 keys
// may hold "//", so it is ambiguous), a component over 255 bytes, a path over 4096 bytes.
// A trailing "/" is accepted and dropped.
Result<std::string> NormalizePath(std::string_view path);

// Components of a normalized path: "/a/b" -> {"a", "b"}; "/" -> {}.
std::vector<std::string> SplitPath(std::string_view normalized);

// Joins a normalized directory and a relative normalized tail: ("/a", "b/c") -> "/a/b/c".
std::string JoinPath(std::string_view dir, std::string_view tail);

// "/a/b" -> "/a"; "/a" -> "/"; "/" -> "/".
std::string ParentPath(std::string_view normalized);

// "/a/b" -> "b"; "/" -> "".
std::string BaseName(std::string_view normalized);

// True when `path` equals `prefix` or lies below it ("/a/b" is under "/a", "/ab" is not).
bool PathIsUnder(std::string_view path, std::string_view prefix);

// True when `text` is well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF).
bool IsValidUtf8(std::string_view text);

}  // namespace sluice
