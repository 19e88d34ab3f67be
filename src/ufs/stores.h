// Factories of the concrete under-stores, used by OpenUnderStore (under_store.cc) and by
// tests that need a specific one. Each implementation lives in its own .cc file.
#pragma once

#include <memory>
#include <string_view>

#include "ufs/under_store.h"

namespace sluice::ufs {

// file:///abs/dir — `root` is the absolute directory. Option: follow_symlinks=inside (the
// default: links that stay beneath the root are followed, others refused) or never.
// `use_openat2` false resolves paths component by component, as where the kernel has no
// openat2(2) (for tests; the store falls back by itself where it is missing).
Result<std::unique_ptr<UnderStore>> NewLocalStore(std::string_view root, const UnderStoreOptions& options = {},
                                                  bool use_openat2 = true);

// s3://bucket/prefix — `bucket` and `prefix` ("" or "a/b") already split from the URI.
Result<std::unique_ptr<UnderStore>> NewS3Store(std::string_view bucket, std::string_view prefix,
                                               const UnderStoreOptions& options);

// http(s)://host/prefix — read-only; `base_url` is the URI itself.
Result<std::unique_ptr<UnderStore>> NewHttpStore(std::string_view base_url, const UnderStoreOptions& options);

}  // namespace sluice::ufs
