// ListObjects (v1 and v2) over a tree of directories: the keys below a prefix in S3's order
// (bytes of the whole key), a page of at most max-keys entries after a marker, with keys that
// hold the delimiter after the prefix rolled up into common prefixes. The tree is read one
// directory at a time through a callback, depth first, with each directory's children sorted
// as their keys sort ("a/" for directory a), so the walk meets keys in S3's order and stops
// after one page; subtrees that lie wholly before the marker are not read. Pure logic, so it
// is unit-tested without a worker.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice::gateway {

struct ListedEntry {
  std::string name;  // one path component
  bool is_dir = false;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string etag;  // as S3 shows it, with quotes
};

// The entries of the directory whose keys start with `dir` ("" for the bucket's top, else
// "a/b/"); kNotFound when it does not exist (an empty result).
using ListDirFn = std::function<Result<std::vector<ListedEntry>>(const std::string& dir)>;

struct ListQuery {
  std::string prefix;
  std::string delimiter;
  std::string after;      // only keys (and common prefixes) greater than this
  size_t max_keys = 1000;
};

struct ListedObject {
  std::string key;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string etag;
};

struct ListPage {
  std::vector<ListedObject> objects;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string last;  // the greatest key or common prefix in the page: where the next one starts
};

Result<ListPage> ListKeys(const ListQuery& query, const ListDirFn& list_dir);

}  // namespace sluice::gateway
