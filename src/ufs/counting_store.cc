// Request and byte counting around an under-store.
#include "ufs/counting_store.h"

namespace sluice::ufs {

Result<ObjectInfo> CountingStore::Stat(std::string_view path) {
  ++counters_.stats;
  auto r = UnderStoreWrapper::Stat(path);
  if (!r.ok() && r.status().code() != StatusCode::kNotFound) ++counters_.errors;
  return r;
}

Result<ListPage> CountingStore::List(std::string_view dir, const ListOptions& options) {
  ++counters_.lists;
  auto r = UnderStoreWrapper::List(dir, options);
  if (!r.ok()) ++counters_.errors;
  return r;
}

Result<uint64_t> CountingStore::Read(std::string_view path, uint64_t offset, uint64_t length, const ByteSink& sink) {
  ++counters_.reads;
  auto r = UnderStoreWrapper::Read(path, offset, length, [&](std::string_view chunk) {
    counters_.bytes_read += chunk.size();
    return sink(chunk);
  });
  if (!r.ok()) ++counters_.errors;
  return r;
}

Result<uint64_t> CountingStore::ReadVersion(std::string_view path, uint64_t offset, uint64_t length,
                                            std::string_view version, const ByteSink& sink) {
  ++counters_.reads;
  auto r = UnderStoreWrapper::ReadVersion(path, offset, length, version, [&](std::string_view chunk) {
    counters_.bytes_read += chunk.size();
    return sink(chunk);
  });
  if (!r.ok() && r.status().code() != StatusCode::kStale) ++counters_.errors;
  return r;
}

Result<ObjectInfo> CountingStore::StatWithHead(std::string_view path, uint64_t length, const ByteSink& sink) {
  ++counters_.stats;
  auto r = UnderStoreWrapper::StatWithHead(path, length, [&](std::string_view chunk) {
    counters_.bytes_read += chunk.size();
    return sink(chunk);
  });
  if (!r.ok() && r.status().code() != StatusCode::kNotFound) ++counters_.errors;
  return r;
}

Status CountingStore::Write(std::string_view path, std::string_view data) {
  ++counters_.writes;
  Status st = UnderStoreWrapper::Write(path, data);
  if (st.ok()) counters_.bytes_written += data.size();
  else ++counters_.errors;
  return st;
}

namespace {

class CountingUpload final : public Upload {
 public:
  CountingUpload(std::unique_ptr<Upload> base, UnderStoreCounters* counters)
      : base_(std::move(base)), counters_(counters) {}
  Status PutPart(uint64_t index, std::string_view data) override {
    ++counters_->writes;
    Status st = base_->PutPart(index, data);
    if (st.ok()) counters_->bytes_written += data.size();
    else ++counters_->errors;
    return st;
  }
  Result<std::string> Finish(uint64_t parts) override {
    auto etag = base_->Finish(parts);
    if (!etag.ok()) ++counters_->errors;
    return etag;
  }

 private:
  std::unique_ptr<Upload> base_;
  UnderStoreCounters* counters_;
};

}  // namespace

Result<std::unique_ptr<Upload>> CountingStore::StartUpload(std::string_view path, uint64_t part_size) {
  auto upload = UnderStoreWrapper::StartUpload(path, part_size);
  if (!upload.ok()) {
    ++counters_.errors;
    return upload.status();
  }
  return std::unique_ptr<Upload>(std::make_unique<CountingUpload>(std::move(*upload), &counters_));
}

}  // namespace sluice::ufs
