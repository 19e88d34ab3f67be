// Page file encoding and verified reads.
#include "cache/page_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>

namespace sluice::cache {
namespace {

constexpr uint32_t kMagic = 0x47504c53;  // "SLPG"
constexpr uint32_t kFormat = 1;

struct PageHeader {
  uint32_t magic;
  uint32_t format;
  uint64_t length;
  uint64_t checksum;
};
static_assert(sizeof(PageHeader) == kPageHeaderBytes);

}  // namespace

uint64_t PageSeed(const PageKey& key) { return key.file.lo ^ key.file.hi ^ (key.index * 0x9E3779B97F4A7C15ull); }

std::string EncodePageHeader(uint64_t seed, std::string_view data) {
  PageHeader h{kMagic, kFormat, data.size(), XXH3_64bits_withSeed(data.data(), data.size(), seed)};
  return std::string(reinterpret_cast<const char*>(&h), sizeof(h));
}

Result<std::shared_ptr<const std::string>> ReadPageFile(const std::string& path, uint64_t length, uint64_t seed) {
  auto data = std::make_shared<std::string>(length, '\0');
  SLUICE_RETURN_IF_ERROR(ReadPageFileInto(path, length, seed, data->data()));
  return std::shared_ptr<const std::string>(std::move(data));
}

Status ReadPageFileInto(const std::string& path, uint64_t length, uint64_t seed, char* dest) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("page file " + path + " is gone");
    return IoError("cannot open page file " + path + ": " + std::strerror(errno));
  }
  PageHeader header{};
  // Header and bytes in one call; then the file must end exactly there.
  iovec parts[2] = {{&header, sizeof(header)}, {dest, length}};
  ssize_t got = ::preadv(fd, parts, 2, 0);
  struct stat st;
  bool ok = got == static_cast<ssize_t>(sizeof(header) + length) && ::fstat(fd, &st) == 0 &&
            static_cast<uint64_t>(st.st_size) == sizeof(header) + length && header.magic == kMagic &&
            header.format == kFormat && header.length == length;
  ::close(fd);
  if (!ok || XXH3_64bits_withSeed(dest, length, seed) != header.checksum) {
    return Corruption("page file " + path + " is truncated or fails its checksum");
  }
  return Status::Ok();
}

}  // namespace sluice::cache
