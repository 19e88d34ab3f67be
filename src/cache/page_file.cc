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

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace sluice::cache {
namespace {

constexpr uint32_t kMagic = 0x47504c53;  // "SLPG"
constexpr uint32_t kFormat = 2;          // 1 had one checksum for the whole page

// The fixed start of a header; the chunk checksums follow it.
struct PageHeaderStart {
  uint32_t magic;
  uint32_t format;
  uint64_t length;
};
static_assert(sizeof(PageHeaderStart) == 16);

uint64_t Chunks(uint64_t length) { return (length + kPageChunkBytes - 1) / kPageChunkBytes; }

uint64_t ChunkChecksum(const char* bytes, uint64_t n, uint64_t seed, uint64_t chunk) {
  return XXH3_64bits_withSeed(bytes, n, seed ^ (chunk * 0xC2B2AE3D27D4EB4Full));
}

Result<UniqueFd> OpenPageFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.valid()) return fd;
  if (errno == ENOENT) return NotFound("page file " + path + " is gone");
  return IoError("cannot open page file " + path + ": " + std::strerror(errno));
}

Status Corrupt(const std::string& path) {
  return Corruption("page file " + path + " is truncated or fails its checksum");
}

Status OlderFormat(const std::string& path) { return NotFound("page file " + path + " is of an older format"); }

// Opens a page file whose size is what a page of `length` bytes needs.
Result<UniqueFd> OpenSizedPageFile(const std::string& path, uint64_t length) {
  SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenPageFile(path));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || static_cast<uint64_t>(st.st_size) != PageHeaderBytes(length) + length) {
    PageHeaderStart start{};  // an older format has another header size
    bool older = ::pread(fd.get(), &start, sizeof(start), 0) == static_cast<ssize_t>(sizeof(start)) &&
                 start.magic == kMagic && start.format != kFormat;
    return older ? OlderFormat(path) : Corrupt(path);
  }
  return fd;
}

// Checks a header read from `path` and the chunks [first, ...) of the page that `bytes` holds
// from the start of chunk `first` on, `n` bytes of them.
Status Verify(const std::string& path, const char* header, uint64_t length, uint64_t seed, uint64_t first,
              const char* bytes, uint64_t n) {
  PageHeaderStart start;
  std::memcpy(&start, header, sizeof(start));
  if (start.magic != kMagic) return Corrupt(path);
  if (start.format != kFormat) return OlderFormat(path);
  if (start.length != length) return Corrupt(path);
  for (uint64_t done = 0, chunk = first; done < n; ++chunk) {
    const uint64_t size = std::min(kPageChunkBytes, n - done);
    uint64_t expected;
    std::memcpy(&expected, header + sizeof(start) + 8 * chunk, sizeof(expected));
    if (ChunkChecksum(bytes + done, size, seed, chunk) != expected) return Corrupt(path);
    done += size;
  }
  return Status::Ok();
}

}  // namespace

uint64_t PageSeed(const PageKey& key) { return key.file.lo ^ key.file.hi ^ (key.index * 0x9E3779B97F4A7C15ull); }

uint64_t PageHeaderBytes(uint64_t length) { return sizeof(PageHeaderStart) + 8 * Chunks(length); }

std::string EncodePageHeader(uint64_t seed, std::string_view data) {
  std::string header(PageHeaderBytes(data.size()), '\0');
  PageHeaderStart start{kMagic, kFormat, data.size()};
  std::memcpy(header.data(), &start, sizeof(start));
  for (uint64_t chunk = 0; chunk < Chunks(data.size()); ++chunk) {
    const uint64_t at = chunk * kPageChunkBytes;
    uint64_t sum = ChunkChecksum(data.data() + at, std::min(kPageChunkBytes, data.size() - at), seed, chunk);
    std::memcpy(header.data() + sizeof(start) + 8 * chunk, &sum, sizeof(sum));
  }
  return header;
}

Result<PageData> ReadPageFile(const std::string& path, uint64_t length, uint64_t seed) {
  std::unique_ptr<PageBuffer> data = PageBuffers::Global().Take(length);
  SLUICE_RETURN_IF_ERROR(ReadPageFileInto(path, length, seed, data->data()));
  data->Resize(length);
  return PageData(std::move(data));
}

Status ReadPageFileInto(const std::string& path, uint64_t length, uint64_t seed, char* dest) {
  SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenSizedPageFile(path, length));
  std::string header(PageHeaderBytes(length), '\0');
  iovec parts[2] = {{header.data(), header.size()}, {dest, length}};  // header and bytes in one call
  if (::preadv(fd.get(), parts, 2, 0) != static_cast<ssize_t>(header.size() + length)) return Corrupt(path);
  return Verify(path, header.data(), length, seed, 0, dest, length);
}

ChunkSpan ChunksCovering(uint64_t length, uint64_t from, uint64_t n) {
  const uint64_t first = std::min(from, length), last = first + std::min(n, length - first);
  return ChunkSpan{first / kPageChunkBytes * kPageChunkBytes,
                   std::min(length, (last + kPageChunkBytes - 1) / kPageChunkBytes * kPageChunkBytes)};
}

Result<PageData> ReadPageRange(const std::string& path, uint64_t length, uint64_t seed, uint64_t from, uint64_t n) {
  std::unique_ptr<PageBuffer> data = PageBuffers::Global().Take(n);
  SLUICE_RETURN_IF_ERROR(ReadPageRangeInto(path, length, seed, from, n, data->data()));
  data->Resize(n);
  return PageData(std::move(data));
}

Status ReadPageRangeInto(const std::string& path, uint64_t length, uint64_t seed, uint64_t from, uint64_t n,
                         char* dest) {
  if (from > length || n > length - from) return InvalidArgument("a read past the end of page file " + path);
  if (n == 0) return Status::Ok();
  SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenSizedPageFile(path, length));
  // The chunks covering the range, read into `dest` when they are exactly the range.
  const auto [span_start, span_end] = ChunksCovering(length, from, n);
  const uint64_t first = span_start / kPageChunkBytes;
  thread_local std::vector<char> scratch;
  char* span = dest;
  if (span_start != from || span_end != from + n) {
    if (scratch.size() < span_end - span_start) scratch.resize(span_end - span_start);
    span = scratch.data();
  }
  const uint64_t header_bytes = PageHeaderBytes(length);
  std::string header(header_bytes, '\0');
  if (::pread(fd.get(), header.data(), header_bytes, 0) != static_cast<ssize_t>(header_bytes) ||
      ::pread(fd.get(), span, span_end - span_start, static_cast<off_t>(header_bytes + span_start)) !=
          static_cast<ssize_t>(span_end - span_start)) {
    return Corrupt(path);
  }
  SLUICE_RETURN_IF_ERROR(Verify(path, header.data(), length, seed, first, span, span_end - span_start));
  if (span != dest) std::memcpy(dest, span + (from - span_start), n);
  return Status::Ok();
}

Result<UniqueFd> OpenVerifiedPageFile(const std::string& path, uint64_t length, uint64_t seed) {
  SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenSizedPageFile(path, length));
  const size_t size = PageHeaderBytes(length) + length;
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
  if (map == MAP_FAILED) return IoError("cannot map page file " + path + ": " + std::strerror(errno));
  const char* bytes = static_cast<const char*>(map);
  Status st = Verify(path, bytes, length, seed, 0, bytes + PageHeaderBytes(length), length);
  ::munmap(map, size);
  if (!st.ok()) return st;
  return fd;
}

}  // namespace sluice::cache
