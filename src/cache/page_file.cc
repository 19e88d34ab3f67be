// Page file encoding and verified reads.
#include "cache/page_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>  // the same hashes, with the widest vector unit the CPU has (AVX2/AVX-512)
#endif

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

Result<UniqueFd> OpenPageFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.valid()) return fd;
  if (errno == ENOENT) return NotFound("page file " + path + " is gone");
  return IoError("cannot open page file " + path + ": " + std::strerror(errno));
}

bool HeaderMatches(const PageHeader& header, uint64_t length) {
  return header.magic == kMagic && header.format == kFormat && header.length == length;
}

Status Corrupt(const std::string& path) {
  return Corruption("page file " + path + " is truncated or fails its checksum");
}

}  // namespace

uint64_t PageSeed(const PageKey& key) { return key.file.lo ^ key.file.hi ^ (key.index * 0x9E3779B97F4A7C15ull); }

std::string EncodePageHeader(uint64_t seed, std::string_view data) {
  PageHeader h{kMagic, kFormat, data.size(), XXH3_64bits_withSeed(data.data(), data.size(), seed)};
  return std::string(reinterpret_cast<const char*>(&h), sizeof(h));
}

Result<PageData> ReadPageFile(const std::string& path, uint64_t length, uint64_t seed) {
  std::unique_ptr<PageBuffer> data = PageBuffers::Global().Take(length);
  SLUICE_RETURN_IF_ERROR(ReadPageFileInto(path, length, seed, data->data()));
  data->Resize(length);
  return PageData(std::move(data));
}

Status ReadPageFileInto(const std::string& path, uint64_t length, uint64_t seed, char* dest) {
  SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenPageFile(path));
  PageHeader header{};
  // Header and bytes in one call; then the file must end exactly there.
  iovec parts[2] = {{&header, sizeof(header)}, {dest, length}};
  ssize_t got = ::preadv(fd.get(), parts, 2, 0);
  struct stat st;
  bool ok = got == static_cast<ssize_t>(sizeof(header) + length) && ::fstat(fd.get(), &st) == 0 &&
            static_cast<uint64_t>(st.st_size) == sizeof(header) + length && HeaderMatches(header, length);
  if (!ok || XXH3_64bits_withSeed(dest, length, seed) != header.checksum) return Corrupt(path);
  return Status::Ok();
}

Result<UniqueFd> OpenVerifiedPageFile(const std::string& path, uint64_t length, uint64_t seed) {
  SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenPageFile(path));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || static_cast<uint64_t>(st.st_size) != sizeof(PageHeader) + length) {
    return Corrupt(path);
  }
  const size_t size = sizeof(PageHeader) + length;
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
  if (map == MAP_FAILED) return IoError("cannot map page file " + path + ": " + std::strerror(errno));
  PageHeader header;
  std::memcpy(&header, map, sizeof(header));
  bool ok = HeaderMatches(header, length) &&
            XXH3_64bits_withSeed(static_cast<const char*>(map) + sizeof(header), length, seed) == header.checksum;
  ::munmap(map, size);
  if (!ok) return Corrupt(path);
  return fd;
}

}  // namespace sluice::cache
