// Packing, checking and searching a directory listing held in one buffer.
#include "cache/packed_listing.h"

#include <algorithm>
#include <cstring>

namespace sluice::cache {

constexpr uint32_t kMagic = 0x31504c53;  // "SLP1"
constexpr size_t kHeaderBytes = 16;      // magic, count, stored_unix_ns
constexpr size_t kRecordBytes = 28;
constexpr uint8_t kIsDir = 1;

struct PackedListing::Record {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint32_t offset = 0;  // of the name; the ETag and the identity follow it
  uint16_t name_len = 0, etag_len = 0, identity_len = 0;
  uint8_t flags = 0;
};

namespace {

template <typename T>
void Put(char*& at, T value) {
  std::memcpy(at, &value, sizeof value);
  at += sizeof value;
}

template <typename T>
T Get(const char*& at) {
  T value;
  std::memcpy(&value, at, sizeof value);
  at += sizeof value;
  return value;
}

std::string_view BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string_view(path) : std::string_view(path).substr(slash + 1);
}

}  // namespace

std::pair<std::string, std::string> SplitParent(const std::string& key) {
  size_t slash = key.rfind('/');
  if (slash == std::string::npos) return {"", key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

std::string PackedListing::Pack(std::vector<ufs::ObjectInfo> entries, int64_t stored_unix_ns) {
  std::sort(entries.begin(), entries.end(),
            [](const ufs::ObjectInfo& a, const ufs::ObjectInfo& b) { return BaseName(a.path) < BaseName(b.path); });
  size_t strings = 0;
  for (const auto& e : entries) {
    strings += BaseName(e.path).size() + std::min<size_t>(e.etag.size(), UINT16_MAX) +
               std::min<size_t>(e.identity.size(), UINT16_MAX);
  }
  std::string out(kHeaderBytes + entries.size() * kRecordBytes + strings, '\0');
  char* at = out.data();
  Put(at, kMagic);
  Put(at, static_cast<uint32_t>(entries.size()));
  Put(at, stored_unix_ns);
  char* text = out.data() + kHeaderBytes + entries.size() * kRecordBytes;
  for (const auto& e : entries) {
    std::string_view name = BaseName(e.path);
    std::string_view etag = std::string_view(e.etag).substr(0, UINT16_MAX);
    std::string_view identity = std::string_view(e.identity).substr(0, UINT16_MAX);
    Put(at, e.size);
    Put(at, e.mtime_ns);
    Put(at, static_cast<uint32_t>(text - out.data()));
    Put(at, static_cast<uint16_t>(std::min<size_t>(name.size(), UINT16_MAX)));
    Put(at, static_cast<uint16_t>(etag.size()));
    Put(at, static_cast<uint16_t>(identity.size()));
    Put(at, static_cast<uint8_t>(e.is_dir ? kIsDir : 0));
    Put(at, uint8_t{0});
    for (std::string_view s : {name.substr(0, UINT16_MAX), etag, identity}) {
      std::memcpy(text, s.data(), s.size());
      text += s.size();
    }
  }
  return out;
}

PackedListing::PackedListing(std::string_view bytes) : bytes_(bytes) {
  const char* at = bytes.data() + 4;
  count_ = Get<uint32_t>(at);
  stored_unix_ns_ = Get<int64_t>(at);
}

Result<PackedListing> PackedListing::Open(std::string_view bytes) {
  auto bad = [](const std::string& what) { return Status(StatusCode::kCorruption, "a cached directory listing " + what); };
  if (bytes.size() < kHeaderBytes) return bad("is " + std::to_string(bytes.size()) + " bytes, shorter than its header");
  const char* at = bytes.data();
  if (Get<uint32_t>(at) != kMagic) return bad("does not start with the listing format's magic number");
  PackedListing listing(bytes);
  const size_t text = kHeaderBytes + listing.count_ * kRecordBytes;
  if (text > bytes.size()) return bad("holds fewer records than its header counts");
  for (size_t i = 0; i < listing.count_; ++i) {
    Record r = listing.RecordAt(i);
    if (r.offset < text || size_t{r.offset} + r.name_len + r.etag_len + r.identity_len > bytes.size()) {
      return bad("has an entry pointing outside it");
    }
  }
  return listing;
}

PackedListing::Record PackedListing::RecordAt(size_t i) const {
  const char* at = bytes_.data() + kHeaderBytes + i * kRecordBytes;
  Record r;
  r.size = Get<uint64_t>(at);
  r.mtime_ns = Get<int64_t>(at);
  r.offset = Get<uint32_t>(at);
  r.name_len = Get<uint16_t>(at);
  r.etag_len = Get<uint16_t>(at);
  r.identity_len = Get<uint16_t>(at);
  r.flags = Get<uint8_t>(at);
  return r;
}

std::string_view PackedListing::NameAt(size_t i) const {
  const char* at = bytes_.data() + kHeaderBytes + i * kRecordBytes + 16;
  uint32_t offset = Get<uint32_t>(at);
  uint16_t len = Get<uint16_t>(at);
  return bytes_.substr(offset, len);
}

ufs::ObjectInfo PackedListing::InfoAt(size_t i, const std::string& dir) const {
  Record r = RecordAt(i);
  ufs::ObjectInfo info;
  std::string_view name = bytes_.substr(r.offset, r.name_len);
  info.path = dir.empty() ? std::string(name) : dir + "/" + std::string(name);
  info.is_dir = (r.flags & kIsDir) != 0;
  info.size = r.size;
  info.mtime_ns = r.mtime_ns;
  info.etag = std::string(bytes_.substr(r.offset + r.name_len, r.etag_len));
  info.identity = std::string(bytes_.substr(r.offset + r.name_len + r.etag_len, r.identity_len));
  return info;
}

size_t PackedListing::UpperBound(std::string_view name) const {
  size_t lo = 0, hi = count_;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (NameAt(mid) <= name) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

bool PackedListing::SameAs(size_t i, const PackedListing& other, size_t j) const {
  Record a = RecordAt(i), b = other.RecordAt(j);
  if (a.size != b.size || a.mtime_ns != b.mtime_ns || a.flags != b.flags || a.etag_len != b.etag_len ||
      a.identity_len != b.identity_len) {
    return false;
  }
  const size_t n = size_t{a.etag_len} + a.identity_len;
  return bytes_.substr(a.offset + a.name_len, n) == other.bytes_.substr(b.offset + b.name_len, n);
}

std::optional<size_t> PackedListing::Find(std::string_view name) const {
  size_t lo = 0, hi = count_;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    std::string_view at = NameAt(mid);
    if (at == name) return mid;
    if (at < name) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return std::nullopt;
}

}  // namespace sluice::cache
