// UnderStoreWrapper forwards every call to another store; CountingStore is a wrapper that
// counts the requests and bytes going to the under-store, for metrics and for tests that
// check how often the cache asks the store. Thread-safe.
#pragma once

#include <atomic>
#include <memory>

#include "ufs/under_store.h"

namespace sluice::ufs {

// Base for decorators: forwards everything to `base`, which it owns.
class UnderStoreWrapper : public UnderStore {
 public:
  explicit UnderStoreWrapper(std::unique_ptr<UnderStore> base) : base_(std::move(base)) {}
  std::string Uri() const override { return base_->Uri(); }
  Result<ObjectInfo> Stat(std::string_view path) override { return base_->Stat(path); }
  Result<ListPage> List(std::string_view dir, const ListOptions& options) override { return base_->List(dir, options); }
  Result<uint64_t> Read(std::string_view path, uint64_t offset, uint64_t length, const ByteSink& sink) override {
    return base_->Read(path, offset, length, sink);
  }
  Result<uint64_t> ReadVersion(std::string_view path, uint64_t offset, uint64_t length, std::string_view version,
                               const ByteSink& sink) override {
    return base_->ReadVersion(path, offset, length, version, sink);
  }
  Result<ObjectInfo> StatWithHead(std::string_view path, uint64_t length, const ByteSink& sink) override {
    return base_->StatWithHead(path, length, sink);
  }
  Status Write(std::string_view path, std::string_view data) override { return base_->Write(path, data); }
  Result<std::unique_ptr<Upload>> StartUpload(std::string_view path, uint64_t part_size) override {
    return base_->StartUpload(path, part_size);
  }
  Status Rename(std::string_view from, std::string_view to) override { return base_->Rename(from, to); }
  Status Delete(std::string_view path) override { return base_->Delete(path); }
  Status Mkdir(std::string_view path) override { return base_->Mkdir(path); }

 protected:
  UnderStore& base() { return *base_; }

 private:
  std::unique_ptr<UnderStore> base_;
};

struct UnderStoreCounters {
  std::atomic<uint64_t> stats{0}, lists{0}, reads{0}, writes{0}, errors{0};
  std::atomic<uint64_t> bytes_read{0}, bytes_written{0};
};

class CountingStore final : public UnderStoreWrapper {
 public:
  explicit CountingStore(std::unique_ptr<UnderStore> base) : UnderStoreWrapper(std::move(base)) {}

  Result<ObjectInfo> Stat(std::string_view path) override;
  Result<ListPage> List(std::string_view dir, const ListOptions& options) override;
  Result<uint64_t> Read(std::string_view path, uint64_t offset, uint64_t length, const ByteSink& sink) override;
  Result<uint64_t> ReadVersion(std::string_view path, uint64_t offset, uint64_t length, std::string_view version,
                               const ByteSink& sink) override;
  // Counted as a stat (one request), its bytes as read.
  Result<ObjectInfo> StatWithHead(std::string_view path, uint64_t length, const ByteSink& sink) override;
  Status Write(std::string_view path, std::string_view data) override;
  // Each part counts as a write request; its bytes as written.
  Result<std::unique_ptr<Upload>> StartUpload(std::string_view path, uint64_t part_size) override;

  const UnderStoreCounters& counters() const { return counters_; }

 private:
  UnderStoreCounters counters_;
};

}  // namespace sluice::ufs
