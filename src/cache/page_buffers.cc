// The page buffer pool.
#include "cache/page_buffers.h"

namespace sluice::cache {

PageBuffers& PageBuffers::Global() {
  static auto* pool = new PageBuffers(32);  // never destroyed: pages may outlive static teardown
  return *pool;
}

std::unique_ptr<std::string> PageBuffers::Take(size_t capacity) {
  std::unique_ptr<std::string> buffer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      buffer = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!buffer) buffer = std::make_unique<std::string>();
  buffer->clear();
  buffer->reserve(capacity);
  return buffer;
}

std::shared_ptr<const std::string> PageBuffers::Share(std::unique_ptr<std::string> buffer) {
  return std::shared_ptr<const std::string>(buffer.release(), [this](const std::string* b) {
    Give(const_cast<std::string*>(b));
  });
}

void PageBuffers::Give(std::string* buffer) {
  std::unique_ptr<std::string> owned(buffer);
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(owned));
}

}  // namespace sluice::cache
