// FileId hashing and hex encoding.
#include "cache/page_key.h"

#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>  // the same hashes, with the widest vector unit the CPU has (AVX2/AVX-512)
#endif

namespace sluice::cache {

FileId FileId::For(std::string_view uri, std::string_view path, std::string_view version) {
  std::string buf;
  buf.reserve(uri.size() + path.size() + version.size() + 2);
  buf.append(uri).push_back('\0');
  buf.append(path).push_back('\0');
  buf.append(version);
  XXH128_hash_t h = XXH3_128bits(buf.data(), buf.size());
  return FileId{h.high64, h.low64};
}

std::string FileId::Hex() const {
  static const char* kDigits = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[15 - i] = kDigits[(hi >> (4 * i)) & 15];
    out[31 - i] = kDigits[(lo >> (4 * i)) & 15];
  }
  return out;
}

bool FileId::ParseHex(std::string_view hex, FileId* out) {
  if (hex.size() != 32) return false;
  uint64_t parts[2] = {0, 0};
  for (int i = 0; i < 32; ++i) {
    char c = hex[i];
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    parts[i / 16] = (parts[i / 16] << 4) | static_cast<uint64_t>(d);
  }
  *out = FileId{parts[0], parts[1]};
  return true;
}

}  // namespace sluice::cache
