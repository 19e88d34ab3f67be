// Namespace path normalization and helpers.
#include "common/path.h"

namespace sluice {
namespace {

std::string Quote(std::string_view path) {
  std::string out = "'";
  for (char c : path) {
    if (c == '\0') out += "\\0";
    else out += c;
  }
  return out + "'";
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  while (i < text.size()) {
    unsigned char c = s[i];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= text.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;  // overlong
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

Result<std::string> NormalizePath(std::string_view path) {
  if (path.find('\0') != std::string_view::npos) {
    return InvalidArgument("path " + Quote(path) + " contains a NUL byte");
  }
  if (path.size() > kMaxPathBytes) {
    return InvalidArgument("path '" + std::string(path.substr(0, 64)) + "...' is " + std::to_string(path.size()) +
                           " bytes long; the limit is " + std::to_string(kMaxPathBytes));
  }
  if (!IsValidUtf8(path)) return InvalidArgument("path " + Quote(path) + " is not valid UTF-8");

  std::vector<std::string_view> parts;
  std::string_view rest = path;
  if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (part.empty()) {
      return InvalidArgument("path " + Quote(path) + " has an empty component ('//')");
    }
    if (slash != std::string_view::npos && rest.empty()) {
      return InvalidArgument("path " + Quote(path) + " has an empty component ('//')");
    }
    if (part.size() > kMaxNameBytes) {
      return InvalidArgument("path " + Quote(path) + " has a name of " + std::to_string(part.size()) +
                             " bytes; the limit is " + std::to_string(kMaxNameBytes));
    }
    if (part == ".") continue;
    if (part == "..") {
      if (parts.empty()) return InvalidArgument("path " + Quote(path) + " climbs above the root with '..'");
      parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (auto p : parts) {
    out += '/';
    out += p;
  }
  return out.empty() ? std::string("/") : out;
}

std::vector<std::string> SplitPath(std::string_view normalized) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < normalized.size()) {
    if (normalized[i] == '/') {
      ++i;
      continue;
    }
    size_t j = normalized.find('/', i);
    if (j == std::string_view::npos) j = normalized.size();
    out.emplace_back(normalized.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string JoinPath(std::string_view dir, std::string_view tail) {
  std::string out(dir);
  while (!tail.empty() && tail.front() == '/') tail.remove_prefix(1);
  if (tail.empty()) return out.empty() ? "/" : out;
  if (out.empty() || out.back() != '/') out += '/';
  out += tail;
  return out;
}

std::string ParentPath(std::string_view normalized) {
  size_t slash = normalized.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return "/";
  return std::string(normalized.substr(0, slash));
}

std::string BaseName(std::string_view normalized) {
  size_t slash = normalized.rfind('/');
  return std::string(slash == std::string_view::npos ? normalized : normalized.substr(slash + 1));
}

bool PathIsUnder(std::string_view path, std::string_view prefix) {
  if (prefix == "/" || prefix.empty()) return true;
  if (path.size() < prefix.size() || path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

}  // namespace sluice
