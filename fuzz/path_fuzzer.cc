// Fuzzes namespace-path normalization (common/path.h). The input is one path, or two separated
// by a newline (for PathIsUnder). Checks what every caller relies on: a normalized path is
// absolute and canonical (no "//", ".", "..", NUL, trailing "/"), valid UTF-8 within the
// limits, a fixed point of NormalizePath, and consistent with the split/join helpers.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "common/path.h"

namespace {

using sluice::BaseName;
using sluice::IsValidUtf8;
using sluice::JoinPath;
using sluice::NormalizePath;
using sluice::ParentPath;
using sluice::PathIsUnder;
using sluice::SplitPath;

// An independent UTF-8 check (Unicode 15, table 3-7), to compare IsValidUtf8 against.
bool ReferenceUtf8(std::string_view s) {
  size_t i = 0;
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  while (i < s.size()) {
    unsigned char c = b[i];
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c <= 0x7F)
      n = 0;
    else if (c >= 0xC2 && c <= 0xDF)
      n = 1;
    else if (c == 0xE0)
      n = 2, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
      n = 2;
    else if (c == 0xED)
      n = 2, hi = 0x9F;
    else if (c == 0xF0)
      n = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
      n = 3;
    else if (c == 0xF4)
      n = 3, hi = 0x8F;
    else
      return false;
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      unsigned char t = b[i + k];
      if (k == 1 ? (t < lo || t > hi) : (t < 0x80 || t > 0xBF)) return false;
    }
    i += n + 1;
  }
  return true;
}

void CheckNormalized(std::string_view input, const std::string& p) {
  FUZZ_CHECK(!p.empty() && p.front() == '/', "'%s' -> '%s' is not absolute", std::string(input).c_str(), p.c_str());
  FUZZ_CHECK(p.find('\0') == std::string::npos, "NUL in the result");
  FUZZ_CHECK(p.find("//") == std::string::npos, "'%s' has '//'", p.c_str());
  FUZZ_CHECK(p.find("/../") == std::string::npos && p.find("/./") == std::string::npos, "'%s' has a dot segment",
             p.c_str());
  FUZZ_CHECK(p == "/" || p.back() != '/', "'%s' ends in '/'", p.c_str());
  FUZZ_CHECK(p.size() <= sluice::kMaxPathBytes, "result over the path limit");
  FUZZ_CHECK(IsValidUtf8(p), "result is not UTF-8");
  auto parts = SplitPath(p);
  std::string joined;
  for (const auto& part : parts) {
    FUZZ_CHECK(!part.empty() && part != "." && part != "..", "'%s' has component '%s'", p.c_str(), part.c_str());
    FUZZ_CHECK(part.size() <= sluice::kMaxNameBytes, "component over the name limit");
    joined += "/" + part;
  }
  FUZZ_CHECK((joined.empty() ? "/" : joined) == p, "SplitPath('%s') does not join back", p.c_str());
  auto again = NormalizePath(p);
  FUZZ_CHECK(again.ok() && *again == p, "NormalizePath is not idempotent on '%s'", p.c_str());
  if (p != "/") {
    std::string parent = ParentPath(p), base = BaseName(p);
    FUZZ_CHECK(JoinPath(parent, base) == p, "JoinPath(ParentPath, BaseName) != '%s'", p.c_str());
    FUZZ_CHECK(PathIsUnder(p, parent) && !PathIsUnder(parent, p), "'%s' is not under its parent", p.c_str());
    FUZZ_CHECK(base == parts.back(), "BaseName('%s') is not its last component", p.c_str());
  } else {
    FUZZ_CHECK(parts.empty() && ParentPath(p) == "/" && BaseName(p).empty(), "root helpers");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  FUZZ_CHECK(IsValidUtf8(input) == ReferenceUtf8(input), "IsValidUtf8 disagrees with the reference");

  size_t nl = input.find('\n');
  std::string_view first = input.substr(0, nl);
  auto a = NormalizePath(first);
  if (a.ok()) {
    CheckNormalized(first, *a);
  } else {
    FUZZ_CHECK(a.status().code() == sluice::StatusCode::kInvalidArgument, "unexpected error code");
  }
  if (nl == std::string_view::npos) return 0;

  std::string_view second = input.substr(nl + 1);
  auto b = NormalizePath(second);
  if (!a.ok() || !b.ok()) return 0;
  CheckNormalized(second, *b);
  // PathIsUnder agrees with comparing components.
  auto pa = SplitPath(*a), pb = SplitPath(*b);
  bool prefix = pb.size() <= pa.size();
  for (size_t i = 0; prefix && i < pb.size(); ++i) prefix = pa[i] == pb[i];
  FUZZ_CHECK(PathIsUnder(*a, *b) == prefix, "PathIsUnder('%s', '%s') != %d", a->c_str(), b->c_str(), prefix);
  return 0;
}
