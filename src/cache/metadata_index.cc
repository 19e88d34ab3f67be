// The metadata cache's listings in RocksDB.
#include "cache/metadata_index.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>

#include <filesystem>

#include "common/logging.h"

namespace sluice::cache {
namespace {

Status FromRocks(const rocksdb::Status& st, const std::string& what) {
  if (st.ok()) return Status::Ok();
  return Status(StatusCode::kInternal, what + ": " + st.ToString());
}

rocksdb::Status OpenDb(const std::string& dir, std::unique_ptr<rocksdb::DB>* out) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.max_open_files = 256;
  options.write_buffer_size = 32ull << 20;
  options.max_background_jobs = 1;
  options.compression = rocksdb::kNoCompression;  // names and ETags: little to gain, CPU to lose
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));  // a directory never listed: no disk read
  table.block_cache = rocksdb::NewLRUCache(64ull << 20);
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* db = nullptr;
  rocksdb::Status st = rocksdb::DB::Open(options, dir, &db);
  out->reset(db);
  return st;
}

}  // namespace

Result<std::unique_ptr<MetadataIndex>> MetadataIndex::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status(StatusCode::kIoError, "creating the metadata index directory " + dir + ": " + ec.message());
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::Status st = OpenDb(dir, &db);
  if (st.IsCorruption() || st.IsInvalidArgument()) {
    // Unreadable: it is a cache, so it is started anew (the old one kept aside for a look).
    SLUICE_LOG_WARN("the metadata index {} cannot be read ({}); starting a new one (the old one is kept as {}.bad)",
                    dir, st.ToString(), dir);
    std::filesystem::remove_all(dir + ".bad", ec);
    std::filesystem::rename(dir, dir + ".bad", ec);
    if (!ec) std::filesystem::create_directories(dir, ec);
    if (!ec) st = OpenDb(dir, &db);
  }
  if (!st.ok()) return FromRocks(st, "opening the metadata index " + dir);
  return std::unique_ptr<MetadataIndex>(new MetadataIndex(std::move(db)));
}

MetadataIndex::MetadataIndex(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}

MetadataIndex::~MetadataIndex() {
  if (db_) (void)db_->Close();
}

Status MetadataIndex::Put(const std::string& dir_key, const std::string& packed) {
  return FromRocks(db_->Put(rocksdb::WriteOptions(), dir_key, packed), "writing the listing of '" + dir_key + "'");
}

std::optional<std::string> MetadataIndex::Get(const std::string& dir_key) {
  std::string value;
  rocksdb::Status st = db_->Get(rocksdb::ReadOptions(), dir_key, &value);
  if (st.ok()) return value;
  if (!st.IsNotFound()) SLUICE_LOG_WARN("reading the listing of '{}' from the metadata index: {}", dir_key, st.ToString());
  return std::nullopt;
}

Status MetadataIndex::Delete(const std::string& dir_key) {
  return FromRocks(db_->Delete(rocksdb::WriteOptions(), dir_key), "dropping the listing of '" + dir_key + "'");
}

Status MetadataIndex::DeleteTree(const std::string& key) {
  rocksdb::WriteOptions wo;
  auto* cf = db_->DefaultColumnFamily();
  if (key.empty()) {  // the root: every listing
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    rocksdb::WriteBatch batch;
    for (it->SeekToFirst(); it->Valid(); it->Next()) batch.Delete(it->key());
    return FromRocks(db_->Write(wo, &batch), "clearing the metadata index");
  }
  SLUICE_RETURN_IF_ERROR(FromRocks(db_->Delete(wo, key), "dropping the listing of '" + key + "'"));
  // Keys below `key`: "key/" up to "key0" ('0' follows '/').
  return FromRocks(db_->DeleteRange(wo, cf, key + "/", key + "0"), "dropping the listings below '" + key + "'");
}

uint64_t MetadataIndex::ApproximateDirectories() {
  uint64_t n = 0;
  db_->GetIntProperty("rocksdb.estimate-num-keys", &n);
  return n;
}

uint64_t MetadataIndex::DiskBytes() {
  uint64_t n = 0;
  db_->GetIntProperty("rocksdb.total-sst-files-size", &n);
  return n;
}

}  // namespace sluice::cache
