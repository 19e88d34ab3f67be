// Fuzzes the HTTP index-page link scanner (ufs/index_page.h) with whole pages. Every link it
// returns becomes a child path of the listed directory, and a recursive listing walks the "/"
// ones: so each must be a single, non-empty, non-dot name (plus an optional trailing "/"),
// without NUL, and listed once.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "check.h"
#include "ufs/index_page.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view html(reinterpret_cast<const char*>(data), size);
  auto links = sluice::ufs::IndexLinks(html);
  std::set<std::string> seen;
  for (const std::string& link : links) {
    std::string_view name = link;
    if (!name.empty() && name.back() == '/') name.remove_suffix(1);
    FUZZ_CHECK(!name.empty(), "empty name from link '%s'", link.c_str());
    FUZZ_CHECK(name != "." && name != "..", "dot segment '%s' would make a listing climb", link.c_str());
    FUZZ_CHECK(name.find('/') == std::string_view::npos, "'%s' is not a direct child", link.c_str());
    FUZZ_CHECK(name.find('\0') == std::string_view::npos, "NUL in a name");
    FUZZ_CHECK(seen.insert(link).second, "'%s' listed twice", link.c_str());
  }
  FUZZ_CHECK(links.size() <= size / 7, "more links than href=\"\" attributes could hold");
  return 0;
}
