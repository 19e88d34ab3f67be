// The page buffer pool: mapped page-sized buffers kept for reuse, malloc below them.
#include "cache/page_buffers.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/unique_fd.h"

namespace sluice::cache {
namespace {

constexpr size_t kSmallestPooled = 64 << 10;  // smaller buffers come from malloc

// `bytes` of fresh memory, populated (faulted in) by the kernel in one call; nullptr if none.
char* MapPopulated(size_t bytes) {
  void* data = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  return data == MAP_FAILED ? nullptr : static_cast<char*>(data);
}

// Writes every page of a fresh buffer once from the kernel (a read of /dev/zero) and once from
// user space. On a virtual machine that shadows the guest's page tables (this project's), a
// populated page still traps to the host on the first write through each of the two
// mappings, and a cold read paid that in its recv copies: 256 MiB received into populated
// buffers took ~430 ms the first time, ~50 ms once the kernel had written them. Elsewhere it
// costs a memset.
void WriteOnce(char* data, size_t size, int zero_fd) {
  for (size_t done = 0; zero_fd >= 0 && done < size;) {
    ssize_t n = ::read(zero_fd, data + done, size - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  for (size_t off = 0; off < size; off += 4096) static_cast<volatile char*>(data)[off] = 0;
}

}  // namespace

PageBuffer::~PageBuffer() { pool_->Give(data_, capacity_); }

size_t PageBuffer::Append(std::string_view bytes) {
  size_t n = std::min(bytes.size(), capacity_ - size_);
  // Bytes received in place (ufs::ReceiveTarget) are already where they belong; others may
  // overlap this buffer's free space (a receive target's bytes, partly skipped), hence memmove.
  if (bytes.data() != data_ + size_) std::memmove(data_ + size_, bytes.data(), n);
  size_ += n;
  return n;
}

void PageBuffer::Resize(size_t size) { size_ = std::min(size, capacity_); }

PageBuffers& PageBuffers::Global() {
  static auto* pool = new PageBuffers(32 << 20);  // never destroyed: pages may outlive static teardown
  return *pool;
}

PageBuffers::~PageBuffers() {
  for (auto& [capacity, buffers] : idle_) {
    for (char* b : buffers) ::munmap(b, capacity);
  }
}

size_t PageBuffers::PooledCapacity(size_t capacity) {
  if (capacity < kSmallestPooled) return 0;
  // Four classes per doubling (64, 80, 96, 112, 128, 160 KiB...): at most a quarter wasted.
  size_t power = kSmallestPooled;
  while (power * 2 <= capacity) power *= 2;
  const size_t step = power / 4;
  return (capacity + step - 1) / step * step;
}

std::unique_ptr<PageBuffer> PageBuffers::Take(size_t capacity) {
  capacity = std::max<size_t>(capacity, 1);
  const size_t pooled = PooledCapacity(capacity);
  if (pooled == 0) {
    auto* data = static_cast<char*>(std::malloc(capacity));
    if (!data) throw std::bad_alloc();
    return std::unique_ptr<PageBuffer>(new PageBuffer(this, data, capacity));
  }
  std::vector<std::pair<char*, size_t>> doomed;
  char* carved = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_use_bytes_ += pooled;
    auto& idle = idle_[pooled];
    if (!idle.empty()) {
      char* data = idle.back();  // the most recently freed: still warm in the CPU's caches
      idle.pop_back();
      idle_bytes_ -= pooled;
      return std::unique_ptr<PageBuffer>(new PageBuffer(this, data, pooled));
    }
    // An idle buffer at least twice as large (a prefilled page's, written once: WriteOnce) is
    // carved into buffers of this size, the rest kept idle for the next ones: a fresh mapping's
    // first writes cost more than the copy itself here (a third of the worker's CPU in a
    // cold pass over 100 KiB files).
    for (auto& [larger, buffers] : idle_) {
      if (larger < 2 * pooled || buffers.empty()) continue;
      carved = buffers.back();
      buffers.pop_back();
      idle_bytes_ -= larger;
      const size_t pieces = larger / pooled;
      for (size_t k = 1; k < pieces; ++k) idle.push_back(carved + k * pooled);
      idle_bytes_ += (pieces - 1) * pooled;
      if (larger > pieces * pooled) doomed.emplace_back(carved + pieces * pooled, larger - pieces * pooled);
      break;
    }
    if (!carved) doomed = TrimLocked();  // idle buffers of other sizes make room for this one
  }
  for (auto& [b, size] : doomed) ::munmap(b, size);
  if (carved) return std::unique_ptr<PageBuffer>(new PageBuffer(this, carved, pooled));
  char* data = MapPopulated(pooled);
  if (!data) {
    std::lock_guard<std::mutex> lock(mu_);
    in_use_bytes_ -= pooled;
    throw std::bad_alloc();
  }
  return std::unique_ptr<PageBuffer>(new PageBuffer(this, data, pooled));
}

void PageBuffers::Prefill(size_t capacity, size_t bytes, const std::atomic<bool>& stop) {
  const size_t pooled = PooledCapacity(capacity);
  if (pooled == 0) return;
  UniqueFd zero(::open("/dev/zero", O_RDONLY | O_CLOEXEC));
  while (!stop.load(std::memory_order_relaxed)) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (in_use_bytes_ + idle_bytes_ + pooled > std::min(bytes, max_pooled_bytes_)) return;
      in_use_bytes_ += pooled;  // counted while it is mapped, as Take does
    }
    char* data = MapPopulated(pooled);
    if (!data) {
      std::lock_guard<std::mutex> lock(mu_);
      in_use_bytes_ -= pooled;
      return;
    }
    WriteOnce(data, pooled, zero.get());
    Give(data, pooled);
  }
}

std::vector<std::pair<char*, size_t>> PageBuffers::TrimLocked() {
  std::vector<std::pair<char*, size_t>> doomed;
  for (auto& [capacity, buffers] : idle_) {
    while (in_use_bytes_ + idle_bytes_ > max_pooled_bytes_ && !buffers.empty()) {
      doomed.emplace_back(buffers.back(), capacity);
      buffers.pop_back();
      idle_bytes_ -= capacity;
    }
  }
  return doomed;
}

PageData PageBuffers::Copy(std::string_view bytes) {
  auto buffer = Take(bytes.size());
  buffer->Append(bytes);
  return buffer;
}

void PageBuffers::Give(char* data, size_t capacity) {
  if (PooledCapacity(capacity) != capacity) {
    std::free(data);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_use_bytes_ -= capacity;
    if (in_use_bytes_ + idle_bytes_ + capacity <= max_pooled_bytes_) {
      idle_[capacity].push_back(data);
      idle_bytes_ += capacity;
      return;
    }
  }
  ::munmap(data, capacity);
}

void PageBuffers::set_max_pooled_bytes(size_t bytes) {
  std::vector<std::pair<char*, size_t>> doomed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    max_pooled_bytes_ = bytes;
    doomed = TrimLocked();
  }
  for (auto& [b, capacity] : doomed) ::munmap(b, capacity);
}

size_t PageBuffers::idle_bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return idle_bytes_;
}

size_t PageBuffers::in_use_bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return in_use_bytes_;
}

}  // namespace sluice::cache
