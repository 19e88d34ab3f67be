// The links of an HTML directory index page (nginx/Apache autoindex, `python3 -m http.server`),
// which is how the http:// under-store lists a directory, as rclone's http backend does. Not an
// HTML parser: it scans for href="..." / href='...' attributes. Pure function; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice::ufs {

// The direct children an index page links to, decoded, each once, in page order: "a.bin" for
// a file, "sub/" for a directory. Skips parent and absolute links, queries and fragments, and
// links that reach below a direct child ("a/b").
std::vector<std::string> IndexLinks(std::string_view html);

}  // namespace sluice::ufs
