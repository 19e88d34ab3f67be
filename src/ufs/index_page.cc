// Index-page link scanning for the http:// under-store.
#include "ufs/index_page.h"

#include <algorithm>

#include "ufs/sigv4.h"

namespace sluice::ufs {

std::vector<std::string> IndexLinks(std::string_view html) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = html.find("href=", pos)) != std::string_view::npos) {
    pos += 5;
    if (pos >= html.size()) break;
    char quote = html[pos];
    if (quote != '"' && quote != '\'') continue;
    size_t end = html.find(quote, pos + 1);
    if (end == std::string_view::npos) break;
    std::string link(html.substr(pos + 1, end - pos - 1));
    pos = end + 1;
    if (link.empty() || link[0] == '/' || link[0] == '?' || link[0] == '#' || link.find("://") != std::string::npos ||
        link.rfind("..", 0) == 0 || link.find('?') != std::string::npos || link.find('#') != std::string::npos) {
      continue;
    }
    if (link.rfind("./", 0) == 0) link = link.substr(2);
    std::string name = UriDecode(link);
    size_t slash = name.find('/');
    if (name.empty() || (slash != std::string::npos && slash != name.size() - 1)) continue;  // not a direct child
    // Checked after decoding: "%2e%2e/" is "../" too, and a recursive listing would climb back
    // up and around forever; "." would list the directory as a file of itself; NUL cannot be in
    // a name (found by fuzz/index_page_fuzzer).
    std::string_view bare = std::string_view(name).substr(0, name.size() - (name.back() == '/' ? 1 : 0));
    if (bare.empty() || bare == "." || bare == ".." || name.find('\0') != std::string::npos) continue;
    for (std::string_view entity : {"&amp;"}) {
      for (size_t p = name.find(entity); p != std::string::npos; p = name.find(entity, p + 1)) name.replace(p, 5, "&");
    }
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  return out;
}

}  // namespace sluice::ufs
