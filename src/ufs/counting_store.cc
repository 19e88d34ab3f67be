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

}  // namespace sluice::ufs
